"""Traces: written, read and pruned.

A trace is written after the call it describes has its status (``api.middleware.ObservedMiddleware``)
or when a worker starts or ends a job (``worker.runner``), in its own short write transaction, never in
the request's: a failed request is still traced, and a trace that cannot be written (the database busy,
the table gone) is logged and dropped — it never makes the request fail. Each trace is also appended
as one JSON line (CTS's fields) to ``OPENIMS_AUDIT_LOG`` when that is set, for a SIEM.

A trace holds ids and names only. Nothing here ever sees a request or response body (the middleware
reads one id out of a creation's response, as ``audit.actions`` says where), a header or a query string.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import uuid
from dataclasses import dataclass, replace
from typing import Any, TextIO

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from openims.clock import Clock
from openims.db.models import AuditTrace, Domain, Job, Project, User
from openims.db.session import Database

log = logging.getLogger("openims.audit")

# CTS's trace ratings and source types.
NORMAL, WARNING, INCIDENT = "normal", "warning", "incident"
API_CALL, SYSTEM_ACTION = "ApiCall", "SystemAction"
# CTS: "limit … default 10, at most 200".
DEFAULT_LIMIT = 10
MAX_LIMIT = 200


def rating_of(status: int) -> str:
    """CTS's rating of a call by its HTTP status: 2xx/3xx normal, 4xx warning, 5xx incident."""
    return INCIDENT if status >= 500 else WARNING if status >= 400 else NORMAL


def epoch_ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


@dataclass(frozen=True)
class Trace:
    """One event to record. ``domain_id`` is the account the trace belongs to (who may read it)."""

    service_type: str
    resource_type: str
    trace_name: str
    trace_rating: str
    trace_type: str
    time: int  # epoch ms
    domain_id: str | None = None
    project_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    user_domain_name: str | None = None
    access_key_id: str | None = None
    resource_id: str | None = None
    resource_name: str | None = None
    code: str | None = None
    request_id: str | None = None
    source_ip: str | None = None
    api_version: str | None = None


class AuditTrail:
    """Writes traces to the database (and the JSON-lines file), prunes and lists them."""

    def __init__(self, db: Database, clock: Clock, *, log_path: str = "", retention_days: int = 7) -> None:
        self.db = db
        self.clock = clock
        self.retention_days = retention_days
        self._log_path = log_path
        self._file_lock = threading.Lock()

    # ------------------------------------------------------------ writing

    def record(self, trace: Trace) -> None:
        """Store one trace; a failure is logged, never raised (the call it describes has happened)."""
        row: AuditTrace | None = None
        try:
            with self.db.transaction() as session:
                trace = _completed(session, trace)
                row = _row(trace, trace_id=str(uuid.uuid4()), record_time=epoch_ms(self.clock()))
                session.add(row)
        except Exception:
            log.warning("audit: the trace %s %s could not be stored; it is lost", trace.service_type,
                        trace.trace_name, exc_info=True)
        if self._log_path:
            try:
                wire = to_wire(row) if row is not None else _unstored_wire(trace, epoch_ms(self.clock()))
                self._append(json.dumps(wire, ensure_ascii=False, separators=(",", ":")))
            except Exception:
                log.warning("audit: the trace %s could not be written to %s", trace.trace_name, self._log_path,
                            exc_info=True)

    def _append(self, line: str) -> None:
        with self._file_lock:
            if self._log_path == "-":
                out: TextIO = sys.stdout
                out.write(line + "\n")
                out.flush()
                return
            with open(self._log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    # ------------------------------------------------------------ retention

    def prune(self) -> int:
        """Delete the traces older than the retention; how many."""
        cutoff = epoch_ms(self.clock() - dt.timedelta(days=self.retention_days))
        with self.db.transaction() as session:
            result = session.execute(delete(AuditTrace).where(AuditTrace.time < cutoff))
            removed = result.rowcount  # type: ignore[attr-defined]
        return int(removed or 0)


def job_trace(job: Job, trace_name: str, when: dt.datetime, *, outcome: str | None = None,
              failed: bool = False) -> Trace:
    """A worker's trace of a job starting (``startJob``) or ending (``endJob``, ``outcome`` SUCCESS or the
    job's error code): a SystemAction of the job's project, rated warning when the job failed."""
    return Trace(service_type="IMS", resource_type="job", trace_name=trace_name,
                 trace_rating=WARNING if failed else NORMAL, trace_type=SYSTEM_ACTION, time=epoch_ms(when),
                 project_id=job.project_id, resource_id=job.id, resource_name=job.job_type, code=outcome)


def _completed(session: Session, trace: Trace) -> Trace:
    """The user's and account's names from their ids, or (a failed login by name) the ids from the names."""
    user: User | None = None
    if trace.user_id:
        user = session.get(User, trace.user_id)
    elif trace.user_name and (trace.domain_id or trace.user_domain_name):
        stmt = select(User).where(User.name == trace.user_name)
        if trace.domain_id:
            stmt = stmt.where(User.domain_id == trace.domain_id)
        else:
            stmt = stmt.join(Domain, Domain.id == User.domain_id).where(Domain.name == trace.user_domain_name)
        user = session.scalars(stmt.limit(1)).first()
    if user is not None:
        trace = replace(trace, user_id=user.id, user_name=user.name, domain_id=trace.domain_id or user.domain_id)
    if trace.domain_id is None and trace.project_id:
        project = session.get(Project, trace.project_id)
        if project is not None:
            trace = replace(trace, domain_id=project.domain_id)
    if trace.domain_id and not trace.user_domain_name:
        domain = session.get(Domain, trace.domain_id)
        if domain is not None:
            trace = replace(trace, user_domain_name=domain.name)
    return trace


def _row(trace: Trace, *, trace_id: str, record_time: int) -> AuditTrace:
    return AuditTrace(
        # What a failed login claimed is the caller's word: cut to the columns' sizes.
        id=trace_id, time=trace.time, record_time=record_time, domain_id=_cut(trace.domain_id, 64),
        project_id=_cut(trace.project_id, 64), user_id=_cut(trace.user_id, 64), user_name=_cut(trace.user_name, 255),
        user_domain_name=_cut(trace.user_domain_name, 255), access_key_id=_cut(trace.access_key_id, 64),
        service_type=trace.service_type, resource_type=trace.resource_type,
        resource_id=_cut(trace.resource_id, 255), resource_name=_cut(trace.resource_name, 255),
        trace_name=trace.trace_name, trace_rating=trace.trace_rating, trace_type=trace.trace_type,
        code=_cut(trace.code, 16), request_id=_cut(trace.request_id, 64), source_ip=_cut(trace.source_ip, 64),
        api_version=_cut(trace.api_version, 16))


def _cut(value: str | None, size: int) -> str | None:
    return value[:size] if value is not None else None


def _unstored_wire(trace: Trace, record_time: int) -> dict[str, Any]:
    return to_wire(_row(trace, trace_id=str(uuid.uuid4()), record_time=record_time))


# ------------------------------------------------------------ reading


@dataclass(frozen=True)
class TraceQuery:
    """The filters of ``GET /v3/{project_id}/traces``; ``accounts`` None: every account (the operator)."""

    accounts: tuple[str, ...] | None
    since: int  # exclusive, epoch ms
    until: int  # exclusive, epoch ms
    limit: int = DEFAULT_LIMIT
    marker: str | None = None
    trace_id: str | None = None
    service_type: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    resource_name: str | None = None
    trace_name: str | None = None
    trace_rating: str | None = None
    user: str | None = None
    access_key_id: str | None = None


class UnknownMarker(ValueError):
    """``next`` names no trace the caller may read."""


def list_traces(session: Session, q: TraceQuery) -> tuple[list[AuditTrace], str | None]:
    """The matching traces newest first, at most ``q.limit``, and the marker of the next page (None: last)."""
    stmt = select(AuditTrace)
    if q.accounts is not None:
        stmt = stmt.where(AuditTrace.domain_id.in_(q.accounts))
    if q.trace_id is not None:
        # CTS: with trace_id, the other conditions do not apply.
        rows = list(session.scalars(stmt.where(AuditTrace.id == q.trace_id)))
        return rows, None
    stmt = stmt.where(AuditTrace.time > q.since, AuditTrace.time < q.until)
    for column, value in ((AuditTrace.service_type, q.service_type), (AuditTrace.resource_type, q.resource_type),
                          (AuditTrace.resource_id, q.resource_id), (AuditTrace.resource_name, q.resource_name),
                          (AuditTrace.trace_name, q.trace_name), (AuditTrace.trace_rating, q.trace_rating),
                          (AuditTrace.user_name, q.user), (AuditTrace.access_key_id, q.access_key_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if q.marker is not None:
        # From the marker's trace on, towards older ones (CTS's next), in the same total order.
        marked = session.get(AuditTrace, q.marker)
        if marked is None or (q.accounts is not None and marked.domain_id not in q.accounts):
            raise UnknownMarker(q.marker)
        stmt = stmt.where(or_(AuditTrace.time < marked.time,
                              and_(AuditTrace.time == marked.time, AuditTrace.id < marked.id)))
    rows = list(session.scalars(stmt.order_by(AuditTrace.time.desc(), AuditTrace.id.desc()).limit(q.limit + 1)))
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    return rows, rows[-1].id if more and rows else None


def to_wire(row: AuditTrace) -> dict[str, Any]:
    """A trace in CTS's shape (huaweicloudsdkcts ``Traces``: code is a string, times are epoch ms)."""
    user: dict[str, Any] | None = None
    if row.user_id or row.user_name:
        user = {"id": row.user_id, "name": row.user_name, "user_name": row.user_name,
                "account_id": row.domain_id, "access_key_id": row.access_key_id,
                "domain": {"id": row.domain_id, "name": row.user_domain_name}}
    return {
        "trace_id": row.id,
        "trace_name": row.trace_name,
        "trace_rating": row.trace_rating,
        "trace_type": row.trace_type,
        "resource_type": row.resource_type,
        "resource_id": row.resource_id,
        "resource_name": row.resource_name,
        "service_type": row.service_type,
        "code": row.code,
        "time": row.time,
        "record_time": row.record_time,
        "user": user,
        "source_ip": row.source_ip,
        "request_id": row.request_id,
        "api_version": row.api_version,
        "project_id": row.project_id,
        "read_only": False,
    }

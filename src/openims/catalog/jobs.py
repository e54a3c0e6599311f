"""Asynchronous jobs: the state machine, submission, leases and the wire-facing view.

A job is claimed with one atomic statement (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
``BEGIN IMMEDIATE`` write lock on SQLite), held with a lease the worker renews, and claimed again
by any worker once the lease lapses (the worker died). Every write a worker makes is fenced by
``lease_owner``, so a worker that lost its lease cannot overwrite its successor's work.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from openims import metrics
from openims.db.models import Job
from openims.db.session import Database, after_commit
from openims.errors import ImsNotFound


class CorruptPayload(ValueError):
    """A job's stored payload does not have the shape its type needs: the job fails with this reason."""


class JobPayload(BaseModel):
    """What a job type needs to run, stored as JSON in ``jobs.payload`` and validated when read."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: object) -> Self:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors()[:3])
            raise CorruptPayload(f"the job's stored payload is not a valid {cls.__name__} ({problems})") from exc


class JobStatus(StrEnum):
    INIT = "INIT"  # submitted, waiting for a worker
    RUNNING = "RUNNING"  # claimed by a worker holding a lease
    SUCCESS = "SUCCESS"  # finished; entities name the result
    FAIL = "FAIL"  # finished with error_code and fail_reason


class JobType(StrEnum):
    IMPORT_IMAGE = "imsImportImageJob"  # system disk image from an external file
    IMPORT_DATA_IMAGE = "imsImportDataImageJob"  # data disk image from an external file
    NATIVE_IMPORT_IMAGE = "imsNativeImportImageJob"  # register a queued image from a bucket file
    NATIVE_EXPORT_IMAGE = "imsNativeExportImageJob"  # export an image into a bucket
    COPY_IMAGE_IN_REGION = "imsCopyImageInRegionJob"  # replicate an image within the region
    ADD_IMAGE_MEMBERS = "imsAddImageMembersJob"  # share images with projects (batch)
    DEL_IMAGE_MEMBERS = "imsDelImageMembersJob"  # stop sharing images with projects (batch)
    UPDATE_IMAGE_MEMBERS = "imsUpdateImageMembersJob"  # a member accepts or rejects shared images (batch)
    # Not an IMS job type: Glance's interoperable import (a task there), run by the same workers.
    GLANCE_IMPORT = "glanceImageImportJob"


VALID_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.INIT: frozenset({JobStatus.RUNNING, JobStatus.FAIL}),
    # RUNNING → RUNNING: a lapsed lease re-claimed by another worker (or released to retry later).
    # RUNNING → INIT: handed back before it changed anything, to wait (e.g. for scratch space).
    JobStatus.RUNNING: frozenset({JobStatus.RUNNING, JobStatus.INIT, JobStatus.SUCCESS, JobStatus.FAIL}),
    JobStatus.SUCCESS: frozenset(),
    JobStatus.FAIL: frozenset(),
}

# A job whose worker keeps dying under it (lease lapsed, claimed again) is abandoned after this many
# attempts: high enough that killed or restarted workers never cost a job, low enough to stop one that
# itself brings its workers down.
MAX_ATTEMPTS = 10
# The entity of a job handed back to wait: why it waits (e.g. for scratch space).
WAITING = "waiting_reason"


class LeaseLost(RuntimeError):
    """This worker no longer holds the job's lease; it must stop without writing."""


def new_job_id() -> str:
    return uuid.uuid4().hex


def submit(session: Session, *, project_id: str, job_type: JobType, payload: dict[str, Any],
           entities: dict[str, Any], now: dt.datetime, parent_id: str | None = None,
           job_id: str | None = None) -> Job:
    job = Job(id=job_id or new_job_id(), project_id=project_id, job_type=job_type.value,
              status=JobStatus.INIT.value, payload=payload, entities=entities, parent_id=parent_id,
              created_at=now, attempts=0)
    session.add(job)
    session.flush()
    return job


def get_for_project(session: Session, project_id: str, job_id: str) -> Job:
    job = session.scalar(select(Job).where(Job.id == job_id, Job.project_id == project_id))
    if job is None:
        raise ImsNotFound(f"Job {job_id} does not exist.", code="IMG.0023")
    return job


def list_for_project(session: Session, project_id: str, *, statuses: frozenset[JobStatus] = frozenset(),
                     job_types: frozenset[str] = frozenset(), limit: int = 100,
                     marker: str | None = None) -> list[Job]:
    """The project's top-level jobs, newest first, keyset-paged after ``marker`` (a job id of the project).

    The project is in the query (another project's marker is unknown here: ImsNotFound).
    """
    query = select(Job).where(Job.project_id == project_id, Job.parent_id.is_(None))
    if statuses:
        query = query.where(Job.status.in_(sorted(statuses)))
    if job_types:
        query = query.where(Job.job_type.in_(sorted(job_types)))
    if marker:
        after = session.execute(select(Job.created_at, Job.id).where(
            Job.id == marker, Job.project_id == project_id)).first()
        if after is None:
            raise ImsNotFound(f"Job {marker} (the marker) does not exist.", code="IMG.0023")
        query = query.where(or_(Job.created_at < after.created_at,
                                and_(Job.created_at == after.created_at, Job.id < after.id)))
    return list(session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)))


def children(session: Session, job_id: str) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.parent_id == job_id).order_by(Job.created_at, Job.id)))


def claim(db: Database, worker_id: str, lease_seconds: int, now: dt.datetime) -> Job | None:
    """Take the oldest runnable top-level job (new, or its lease lapsed) — atomically."""
    with db.transaction() as s:
        # An INIT job with a lease time was handed back to wait: not before that time.
        runnable = and_(
            Job.parent_id.is_(None),
            or_(and_(Job.status == JobStatus.INIT.value,
                     or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now)),
                and_(Job.status == JobStatus.RUNNING.value, Job.lease_expires_at < now)),
        )
        job = s.scalar(
            select(Job).where(runnable).order_by(Job.created_at, Job.id).limit(1).with_for_update(skip_locked=True)
        )
        if job is None:
            return None
        transition(job, JobStatus.RUNNING)
        job.lease_owner = worker_id
        job.lease_expires_at = now + dt.timedelta(seconds=lease_seconds)
        job.attempts += 1
        if WAITING in job.entities:
            job.entities = {k: v for k, v in job.entities.items() if k != WAITING}
        if job.begin_time is None:
            job.begin_time = now
        s.flush()
        s.expunge(job)
        return job


def renew(db: Database, job_id: str, worker_id: str, lease_seconds: int, now: dt.datetime,
          entities: dict[str, Any] | None = None) -> None:
    values: dict[str, Any] = {"lease_expires_at": now + dt.timedelta(seconds=lease_seconds)}
    if entities is not None:
        values["entities"] = entities
    with db.transaction() as s:
        result = s.execute(
            update(Job).where(Job.id == job_id, Job.lease_owner == worker_id,
                              Job.status == JobStatus.RUNNING.value).values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(job_id)


def fenced(session: Session, job_id: str, worker_id: str) -> Job:
    """The job row, locked, if this worker still holds its lease; else LeaseLost."""
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None or job.lease_owner != worker_id or job.status != JobStatus.RUNNING.value:
        raise LeaseLost(job_id)
    return job


def transition(job: Job, target: JobStatus) -> None:
    """The one way a job's (or sub-job's) status changes: along VALID_TRANSITIONS, or not at all."""
    current = JobStatus(job.status)
    if target not in VALID_TRANSITIONS[current]:
        raise RuntimeError(f"job {job.id}: {current} → {target} is not allowed")
    job.status = target.value


def hand_back(job: Job, now: dt.datetime, *, delay: float, reason: str) -> None:
    """Back to INIT, to be claimed again after ``delay`` seconds; ``reason`` shows in the job's entities.

    Only for a job that has not changed anything yet: waiting is not an attempt.
    """
    transition(job, JobStatus.INIT)
    job.lease_owner = None
    job.lease_expires_at = now + dt.timedelta(seconds=delay)
    job.attempts = max(0, job.attempts - 1)
    job.entities = {**job.entities, WAITING: reason}


def release(job: Job, now: dt.datetime, *, delay: float, counts: bool = True) -> None:
    """Give up the lease early: the job stays RUNNING and is claimed again after ``delay`` s.

    ``counts``: the attempt counts toward MAX_ATTEMPTS (a failure), or not (a worker shutting down).
    """
    transition(job, JobStatus.RUNNING)
    job.lease_owner = None
    job.lease_expires_at = now + dt.timedelta(seconds=delay)
    if not counts:
        job.attempts = max(0, job.attempts - 1)


def finish(job: Job, status: JobStatus, now: dt.datetime, *, error_code: str | None = None,
           fail_reason: str | None = None) -> None:
    transition(job, status)
    job.end_time = now
    job.error_code = error_code
    job.fail_reason = fail_reason
    job.lease_owner = None
    job.lease_expires_at = None
    _count_end(job, status, now)


def _count_end(job: Job, status: JobStatus, now: dt.datetime) -> None:
    """The metrics of a top-level job's end, once it is committed (a rolled-back end never happened).

    Here, the one place every job ends, whichever handler ends it (sub-jobs are parts of their parent).
    """
    session = Session.object_session(job)
    if job.parent_id is not None or session is None:
        return
    job_type, begun = job.job_type, job.begin_time
    seconds = (now - begun).total_seconds() if begun is not None else None

    def count() -> None:
        metrics.JOBS_FINISHED.labels(job_type, status.value).inc()
        if seconds is not None:
            metrics.JOB_DURATION.labels(job_type).observe(max(0.0, seconds))

    after_commit(session, count)


def queue_depth(session: Session, now: dt.datetime) -> dict[JobStatus, tuple[int, float]]:
    """Top-level jobs waiting (INIT) and running (RUNNING): how many, and the age in seconds of the
    oldest (0 when none). One grouped query on the claim index, for /metrics."""
    rows = session.execute(
        select(Job.status, func.count(), func.min(Job.created_at))
        .where(Job.status.in_((JobStatus.INIT.value, JobStatus.RUNNING.value)), Job.parent_id.is_(None))
        .group_by(Job.status)).all()
    depth = {JobStatus.INIT: (0, 0.0), JobStatus.RUNNING: (0, 0.0)}
    for status, count, oldest in rows:
        depth[JobStatus(status)] = (int(count), max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    return depth

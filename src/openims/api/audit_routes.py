"""Cloud Trace Service's trace list: ``GET /v3/{project_id}/traces`` over the audit trail (``openims.audit``).

Who may read: an administrator of the account (an admin role — te_admin, secu_admin or Keystone's admin
— on the account or on all its projects, as for IAM administration) reads the account's traces; a member
or reader gets 403. The operator reads every account's traces (naming a project of its own account) or
one account's (naming a project of that account). A project of another account is 404 to everyone else.

Errors have CTS's shape, ``{"error_code": …, "error_msg": …}`` (the codes are ours).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Query
from fastapi.responses import JSONResponse

from openims.api.auth import CallerDep, RuntimeDep
from openims.api.deps import SessionDep, api_router
from openims.api.iam_routes import is_account_admin
from openims.api.openapi_docs import (
    INT_TEXT,
    OBJECT,
    STRING,
    Responses,
    array,
    json_response,
    obj,
    required_rule,
)
from openims.audit.trail import DEFAULT_LIMIT, MAX_LIMIT, TraceQuery, UnknownMarker, epoch_ms, list_traces, to_wire
from openims.db.models import Project
from openims.iam.roles import Permission

router = api_router(tags=["audit"])

# Our error codes, in CTS's error shape.
BAD_REQUEST, FORBIDDEN, NOT_FOUND = "CTS.0001", "CTS.0003", "CTS.0004"
# CTS: without from/to, the last hour.
DEFAULT_WINDOW = dt.timedelta(hours=1)
_RATINGS = ("normal", "warning", "incident")
# Only management traces are recorded, by the one tracker.
TRACE_TYPES = ("system",)
TRACKERS = ("", "system")
# from/to/limit are read with int() (empty: left out): an integer in 0..2^63-1 (a stored time is a signed 64-bit
# number of milliseconds).
_MAX_MS = 2 ** 63 - 1
_MS: dict[str, Any] = {"pattern": INT_TEXT,
                       "description": f"Milliseconds since the epoch, 0 to {_MAX_MS}"}


# For the OpenAPI document: CTS's error shape, and Keystone's from the central layers (a 400 of request
# validation on this IAM path, 401, 503).
_CTS_ERROR = obj("error_code", "error_msg", error_code=STRING, error_msg=STRING)
_RESPONSES: Responses = {
    200: json_response("The traces", obj("traces", "meta_data", traces=array(OBJECT), meta_data=obj(
        "count", count={"type": "integer"}, marker={"type": ["string", "null"]}))),
    400: json_response("Invalid parameters", {"anyOf": [_CTS_ERROR, {"$ref": "#/components/schemas/KeystoneError"}]}),
    403: json_response("Not an administrator of the account", _CTS_ERROR),
    404: json_response("No such project visible to the caller", _CTS_ERROR),
}


def cts_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "error_msg": message}, status_code=status)


class _BadParameter(ValueError):
    pass


def _int(name: str, text: str | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise _BadParameter(f"{name} must be an integer ({name}={text[:32]!r}).") from None
    if not 0 <= value <= _MAX_MS:  # a stored time is a signed 64-bit number of milliseconds
        raise _BadParameter(f"{name} is out of range.")
    return value


@router.get("/v3/{project_id}/traces", summary="List audit traces (CTS ListTraces)", responses=_RESPONSES)
def list_audit_traces(
    project_id: str, caller: CallerDep, session: SessionDep, rt: RuntimeDep,
    trace_type: str | None = Query(default=None, max_length=16, json_schema_extra=required_rule(
        enum=list(TRACE_TYPES))),
    limit: str | None = Query(default=None, max_length=32, json_schema_extra={
        **_MS, "description": f"Traces per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"}),
    from_: str | None = Query(default=None, alias="from", max_length=32, json_schema_extra=_MS),
    to: str | None = Query(default=None, max_length=32, json_schema_extra=_MS),
    next_: str | None = Query(default=None, alias="next", max_length=64),
    tracker_name: str | None = Query(default=None, max_length=64, json_schema_extra={"enum": list(TRACKERS)}),
    service_type: str | None = Query(default=None, max_length=16),
    user: str | None = Query(default=None, max_length=255),
    resource_id: str | None = Query(default=None, max_length=255),
    resource_name: str | None = Query(default=None, max_length=255),
    resource_type: str | None = Query(default=None, max_length=64),
    trace_id: str | None = Query(default=None, max_length=64),
    trace_name: str | None = Query(default=None, max_length=64),
    trace_rating: str | None = Query(default=None, max_length=16, json_schema_extra={"enum": list(_RATINGS)}),
    access_key_id: str | None = Query(default=None, max_length=64),
    enterprise_project_id: str | None = Query(default=None, max_length=64),
) -> Any:
    project = session.get(Project, project_id)
    operator = caller.can(Permission.OPERATOR)
    if project is None or (project.domain_id != caller.domain_id and not operator):
        return cts_error(404, NOT_FOUND, f"The project {project_id} could not be found.")
    if not operator and not is_account_admin(session, caller):
        return cts_error(403, FORBIDDEN, "Reading the traces takes an administrator of the account.")
    if trace_type is None:
        return cts_error(400, BAD_REQUEST, "trace_type is required (system).")
    if trace_type not in TRACE_TYPES:
        return cts_error(400, BAD_REQUEST, "Only management traces are recorded: trace_type must be system.")
    if tracker_name is not None and tracker_name not in TRACKERS:
        return cts_error(400, BAD_REQUEST, "The only tracker is system.")
    if trace_rating is not None and trace_rating not in _RATINGS:
        return cts_error(400, BAD_REQUEST, f"trace_rating must be one of {', '.join(_RATINGS)}.")
    try:
        size = _int("limit", limit)
        since, until = _int("from", from_), _int("to", to)
    except _BadParameter as exc:
        return cts_error(400, BAD_REQUEST, str(exc))
    if size is not None and not 1 <= size <= MAX_LIMIT:
        return cts_error(400, BAD_REQUEST, f"limit must be 1 to {MAX_LIMIT}.")
    now = rt.clock()
    until = until if until is not None else epoch_ms(now) + 1
    since = since if since is not None else epoch_ms(now - DEFAULT_WINDOW)
    if since >= until:
        return cts_error(400, BAD_REQUEST, "from must be earlier than to.")
    # The operator's own account: every account; a project of another account: that account only.
    accounts = None if operator and project.domain_id == caller.domain_id else (project.domain_id,)
    query = TraceQuery(accounts=accounts, since=since, until=until, limit=size or DEFAULT_LIMIT, marker=next_ or None,
                       trace_id=trace_id or None, service_type=service_type or None,
                       resource_type=resource_type or None, resource_id=resource_id or None,
                       resource_name=resource_name or None, trace_name=trace_name or None,
                       trace_rating=trace_rating or None, user=user or None, access_key_id=access_key_id or None)
    try:
        rows, marker = list_traces(session, query)
    except UnknownMarker:
        return cts_error(400, BAD_REQUEST, "next names no trace of this account.")
    return {"traces": [to_wire(r) for r in rows], "meta_data": {"count": len(rows), "marker": marker}}

"""Jobs beyond IMS's one-job query (openims extensions): the project's job list and a job's live event stream.

The event stream (``text/event-stream``) is what the web console and ``--wait`` follow instead of
polling: the server polls the job's row at ``EVENT_POLL_SECONDS`` — each look one short read
transaction in a pool thread, none held while it sleeps — and sends an event whenever the job's
state (status, attempt, percent) changed. An event's id *is* that state, so a client that
reconnects with ``Last-Event-ID`` gets the next change, never one it already saw. The stream ends
with the job's final event (SUCCESS or FAIL).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from openims.api.auth import ReaderDep, RuntimeDep
from openims.api.deps import SessionDep, api_router, run_read
from openims.api.ims_wire import job_body
from openims.api.openapi_docs import INTEGER, STRING, Responses, array, json_response, obj, query
from openims.api.params import parse_int
from openims.catalog import jobs
from openims.catalog.jobs import JobStatus
from openims.db.models import Job
from openims.errors import ImsBadRequest, ImsNotFound, ServiceUnavailable
from openims.runtime import Runtime

router = api_router(tags=["ims"])

# How often the stream looks at the job: a percent the worker's heartbeat writes every few seconds
# needs no finer look, and each look is one indexed read by primary key.
EVENT_POLL_SECONDS = 0.5
# A comment line this often keeps proxies from closing an idle stream (a job waiting for a worker).
KEEPALIVE_SECONDS = 15.0
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
_FINAL = frozenset({JobStatus.SUCCESS.value, JobStatus.FAIL.value})

_JOB_ITEM = obj("job_id", "job_type", "status", "entities", job_id=STRING, job_type=STRING, status=STRING,
                entities={"type": "object"})
_LIST: Responses = {200: json_response("The project's jobs, newest first",
                                       obj("jobs", jobs=array(_JOB_ITEM), next_marker={"type": ["string", "null"]})),
                    400: {"description": "Invalid filter or limit (IMS error code in the body)"},
                    401: {"description": "Missing or invalid token"},
                    403: {"description": "Another project's path"},
                    404: {"description": "The marker is no job of the project"}}
_LIST_QUERY: dict[str, Any] = {"parameters": query(
    ("status", STRING, "INIT, RUNNING, SUCCESS or FAIL; comma-separated for several"),
    ("job_type", STRING, "Job types (imsImportImageJob, …), comma-separated"),
    ("limit", {**INTEGER, "minimum": 1, "maximum": MAX_LIMIT}, f"Page size (default {DEFAULT_LIMIT})"),
    ("marker", STRING, "The last job id of the previous page"))}
_EVENTS: Responses = {200: {"description": "Server-sent events until the job ends: each `id` (the state, for "
                                           "Last-Event-ID), `event: job`, `data` JSON {job_id, status, progress, "
                                           "stage, error_code, fail_reason, entities}",
                            # OpenAPI 3.1: an event stream's schema describes each event (schemathesis reads it so).
                            "content": {"text/event-stream": {"schema": {"type": "object", "properties": {
                                "id": STRING, "event": {"type": "string", "enum": ["job"]},
                                "data": {**STRING, "contentMediaType": "application/json"}, "retry": INTEGER}}}}},
                      401: {"description": "Missing or invalid token"},
                      403: {"description": "Another project's path"},
                      404: {"description": "No such job in the project"}}


def _choices(raw: str | None, allowed: frozenset[str] | None, name: str) -> frozenset[str]:
    values = frozenset(v.strip() for v in (raw or "").split(",") if v.strip())
    if allowed is not None and values - allowed:
        raise ImsBadRequest(f"{name} must be one of {', '.join(sorted(allowed))}.")
    return values


def _list(request: Request, session: Session, project_id: str) -> dict[str, Any]:
    p = request.query_params
    statuses = _choices(p.get("status"), frozenset(s.value for s in JobStatus), "status")
    limit = parse_int("limit", p["limit"], low=1, high=MAX_LIMIT) if p.get("limit") else DEFAULT_LIMIT
    found = jobs.list_for_project(session, project_id, statuses=frozenset(JobStatus(s) for s in statuses),
                                  job_types=_choices(p.get("job_type"), None, "job_type"), limit=limit,
                                  marker=p.get("marker") or None)
    return {"jobs": [job_body(job, []) for job in found],
            "next_marker": found[-1].id if len(found) == limit else None}


@router.get("/v1/{project_id}/jobs", summary="List the project's jobs (openims extension)", responses=_LIST,
            openapi_extra=_LIST_QUERY)
async def list_jobs(request: Request, project_id: str, caller: ReaderDep, session: SessionDep) -> JSONResponse:
    return JSONResponse(await run_read(request, session, _list, request, session, caller.project_id))


@dataclass(frozen=True)
class JobState:
    """What an event reports; ``event_id`` names it (equal ids: nothing new to send)."""

    job_id: str
    status: str
    attempts: int
    progress: float
    stage: str
    error_code: str | None
    fail_reason: str | None
    entities: dict[str, Any]

    @property
    def event_id(self) -> str:
        return f"{self.attempts}-{self.status}-{self.progress:.1f}"

    @property
    def final(self) -> bool:
        return self.status in _FINAL

    def message(self) -> str:
        data = {"job_id": self.job_id, "status": self.status, "progress": self.progress, "stage": self.stage,
                "error_code": self.error_code, "fail_reason": self.fail_reason, "entities": self.entities}
        return f"id: {self.event_id}\nevent: job\ndata: {json.dumps(data)}\n\n"


def _stage(job: Job) -> str:
    if job.status == JobStatus.INIT.value:
        return "waiting" if jobs.WAITING in job.entities else "queued"
    return {JobStatus.RUNNING.value: "running", JobStatus.SUCCESS.value: "done"}.get(job.status, "failed")


def _state(rt: Runtime, project_id: str, job_id: str) -> JobState:
    with rt.db.transaction(readonly=True) as session:
        job = jobs.get_for_project(session, project_id, job_id)
        percent = job.entities.get("process_percent")
        progress = 100.0 if job.status == JobStatus.SUCCESS.value else float(percent or 0)
        return JobState(job.id, job.status, job.attempts, round(progress, 1), _stage(job), job.error_code,
                        job.fail_reason, dict(job.entities))


async def _events(rt: Runtime, project_id: str, first: JobState, last_id: str | None) -> AsyncIterator[str]:
    yield f"retry: {int(EVENT_POLL_SECONDS * 2000)}\n\n"
    state, quiet = first, 0.0
    while True:
        if state.event_id != last_id:
            last_id = state.event_id
            quiet = 0.0
            yield state.message()
        if state.final:
            return
        await anyio.sleep(EVENT_POLL_SECONDS)  # no session is open here
        quiet += EVENT_POLL_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": keep-alive\n\n"
        try:
            state = await run_in_threadpool(_state, rt, project_id, first.job_id)
        except ImsNotFound:
            return  # deleted with its project meanwhile: nothing more will happen
        except ServiceUnavailable:
            continue  # the database away for a moment: look again at the next interval


@router.get("/v1/{project_id}/jobs/{job_id}/events", summary="Follow a job as server-sent events (openims extension)",
            responses=_EVENTS, response_class=StreamingResponse)
async def job_events(request: Request, project_id: str, job_id: str, caller: ReaderDep,
                     rt: RuntimeDep) -> StreamingResponse:
    # Looked up before the answer starts: an unknown job is a 404, not an empty stream.
    first = await run_in_threadpool(_state, rt, caller.project_id, job_id)
    return StreamingResponse(_events(rt, caller.project_id, first, request.headers.get("last-event-id")),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

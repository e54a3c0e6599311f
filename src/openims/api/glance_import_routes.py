"""Glance's interoperable import on the native API: ``POST /v2/images/{id}/import`` and the image's tasks.

Staging (``PUT /v2/images/{id}/stage``) streams like the direct upload and lives beside it in
``glance_routes``; the rules are ``catalog.glance_import``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from openims.api.auth import ReaderDep, RuntimeDep, WriterDep
from openims.api.deps import SessionDep, api_router
from openims.api.glance_routes import json_body
from openims.api.glance_wire import naive_time
from openims.api.ims_wire import job_started
from openims.catalog import glance_import
from openims.catalog.jobs import JobStatus
from openims.db.models import Job
from openims.iam.roles import Permission
from openims.objects.web_download import UriFilter

router = api_router(tags=["glance"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid import request (method unknown, malformed body, all_stores with stores, "
                         "copy to a store that holds the data)"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not permitted (another project's image; copy-image without the administrator role)"},
    404: {"description": "No such image visible to the project"},
    409: {"description": "The image's status does not allow this import, an import is in progress, or an "
                         "unknown store"},
}
# As glance_import.submit checks it: a known method (web-download with its uri), stores a list of ids, the
# flags booleans, and all_stores not combined with stores.
_IMPORT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["method"], "properties": {
        "method": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "enum": list(glance_import.METHODS)}, "uri": {"type": "string"}},
            "if": {"properties": {"name": {"const": glance_import.WEB_DOWNLOAD}}}, "then": {"required": ["uri"]}},
        "stores": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        "all_stores": {"type": "boolean"}, "all_stores_must_succeed": {"type": "boolean"}},
    "not": {"required": ["stores", "all_stores"],
            "properties": {"stores": {"type": "array"}, "all_stores": {"const": True}}}}}}}}


def task_body(job: Job) -> dict[str, Any]:
    payload = glance_import.ImportPayload.from_json(job.payload)
    return {
        "id": job.id, "type": glance_import.TASK_TYPE, "status": glance_import.task_status(job),
        "owner": job.project_id, "expires_at": naive_time(glance_import.expires_at(job)),
        "created_at": naive_time(job.created_at), "updated_at": naive_time(job.end_time or job.begin_time
                                                                                or job.created_at),
        "deleted_at": None, "deleted": False, "image_id": payload.image_id, "request_id": payload.request_id,
        "user_id": payload.user_id,
        "input": {"image_id": payload.image_id, "import_req": payload.import_req, "backend": payload.stores},
        "result": {"image_id": payload.image_id} if job.status == JobStatus.SUCCESS.value else None,
        "message": job.fail_reason or "",
    }


@router.post("/v2/images/{image_id}/import", status_code=202, response_class=Response,
             summary="Import the image's data (native, interoperable import: glance-direct, web-download, "
                     "copy-image between stores)",
             responses={202: {"description": "The import task was started (empty body)"}, **_ERRORS},
             openapi_extra=_IMPORT_BODY)
def import_image(image_id: str, request: Request, caller: WriterDep, body: Annotated[Any, Depends(json_body)],
                 session: SessionDep, rt: RuntimeDep) -> Response:
    job = glance_import.submit(session, project_id=caller.project_id, user_id=caller.user_id,
                               request_id=f"req-{request.state.request_id}", image_id=image_id, body=body,
                               may_copy=caller.can(Permission.IMAGE_ADMIN),
                               refused_uri=UriFilter.from_settings(rt.settings).refusal, now=rt.clock(),
                               stores=rt.stores)
    if job is not None:
        job_started(session, rt, job.id)  # in-process workers start it now, not at their next poll
    return Response(status_code=202)


@router.get("/v2/images/{image_id}/tasks", summary="The image's import tasks (native, v2.12)",
            responses={401: _ERRORS[401], 404: _ERRORS[404]})
def image_tasks(image_id: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    _image, found = glance_import.tasks_of(session, caller.project_id, image_id)
    return {"tasks": [task_body(j) for j in found]}

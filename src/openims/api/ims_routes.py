"""IMS image creation from files, job status, and image queries."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from openims.api.auth import Caller, ReaderDep, RuntimeDep, WriterDep
from openims.api.deps import SessionDep, api_router, run_read
from openims.api.glance_schemas import SCHEMAS
from openims.api.ims_wire import (
    IMAGE_TYPES,
    MEMBER_FILTERS,
    SORT_DIRS,
    CreateDataImageWire,
    CreateImageWire,
    choice,
    image_body,
    int_text,
    job_body,
    job_started,
    time_filter,
)
from openims.api.openapi_docs import BOOLEAN, OBJECT, STRING, Responses, array, json_response, obj, query
from openims.api.params import INT32_MAX, parse_int
from openims.catalog import images as image_rules
from openims.catalog import jobs
from openims.catalog.images import ImageQuery, parse_time_filter, tags_of
from openims.catalog.imports import submit_file_import
from openims.errors import ImsBadRequest
from openims.iam.roles import Permission

router = api_router(tags=["ims"])

_NULLABLE: dict[str, Any] = {"type": ["string", "null"]}
_JOB_SCHEMA = obj("job_id", "job_type", "status", "entities", job_id=STRING, job_type=STRING,
                  status={"type": "string", "enum": ["INIT", "RUNNING", "SUCCESS", "FAIL"]},
                  begin_time=_NULLABLE, end_time=_NULLABLE, error_code=_NULLABLE, fail_reason=_NULLABLE,
                  entities=OBJECT)
_JOB: Responses = {200: json_response("The job", _JOB_SCHEMA), 401: {"description": "Missing or invalid token"},
                   403: {"description": "Another project's path"}, 404: {"description": "No such job in the project"}}
_STARTED: Responses = {200: json_response("The job was started", obj("job_id", job_id=STRING)),
                       400: {"description": "Invalid request, or over the image quota (IMS error code in the body)"},
                       401: {"description": "Missing or invalid token"},
                       403: {"description": "Not permitted (read-only role)"}}
# An IMS image is the native one with IMS's two deletion fields (ims_wire.image_body).
_IMS_IMAGE = {**SCHEMAS["image"], "properties": {**SCHEMAS["image"]["properties"], "deleted": BOOLEAN,
                                                 "deleted_at": {"type": ["null", "string"]}}}
_IMAGES: Responses = {200: json_response("The images", obj("images", images=array(_IMS_IMAGE))),
                      400: {"description": "Invalid filter (IMS error code in the body)"},
                      401: {"description": "Missing or invalid token"}}
# images.list_images' bounds; the IMS default page.
LIST_MAX, LIST_DEFAULT = 1000, 500
# Filters compared for equality with any value (an unknown one matches nothing).
_FILTER = ("name", "status", "disk_format", "container_format", "visibility", "owner", "tag",
           *image_rules.PROPERTY_FILTERS)
_LIST_QUERY: dict[str, Any] = {"parameters": query(
    ("id", STRING, "Image ids, comma-separated"),
    ("limit", int_text(empty=True), f"Page size, 0 to {LIST_MAX} (default {LIST_DEFAULT})"),
    ("marker", STRING, "The id of the last image of the previous page (one the caller can see)"),
    ("min_disk", int_text(empty=True), f"Minimum disk (GB), 0 to {INT32_MAX} (empty: 0)"),
    ("protected", STRING, "true (any case) for protected images; any other value for unprotected ones"),
    ("sort_key", choice(*image_rules.SORT_KEYS), "Sort key"),
    ("sort_dir", choice(*SORT_DIRS), "asc or desc"),
    ("__imagetype", choice(*IMAGE_TYPES), "gold (public), private or shared"),
    ("member_status", choice("", *MEMBER_FILTERS), "For shared images (empty: accepted)"),
    ("created_at", time_filter(), "gt:|gte:|lt:|lte:|eq:|neq:<ISO 8601 time>"),
    ("updated_at", time_filter(), "gt:|gte:|lt:|lte:|eq:|neq:<ISO 8601 time>"),
    *((name, STRING, f"Filter on {name}") for name in _FILTER))}


def refuse_cloud_sources(instance_id: str | None, volume_id: str | None, backup_id: str | None) -> None:
    """Images made from servers, volumes or backups: this deployment has none of them (IMS's errors)."""
    if instance_id:
        raise ImsBadRequest("The ECS does not exist: this deployment has no servers; create images from "
                            "files with image_url.", code="IMG.0005")
    if volume_id:
        raise ImsBadRequest("The specified data disk is unavailable: this deployment has no volumes; create "
                            "images from files with image_url.", code="IMG.0120")
    if backup_id:
        raise ImsBadRequest("The backup does not exist: this deployment has no backups.", code="IMG.0020")


def _refuse_other_forms(body: CreateImageWire) -> None:
    refuse_cloud_sources(body.instance_id, body.volume_id, body.backup_id)
    if not body.image_url:
        raise ImsBadRequest("image_url is required: <bucket>:<object key> of the image file.", code="IMG.0017")
    if body.min_disk is None:
        raise ImsBadRequest("min_disk is required (GB).", code="IMG.0055")


def _create(body: CreateImageWire, caller: WriterDep, session: SessionDep, rt: RuntimeDep, *,
            data_disk: bool) -> dict[str, Any]:
    _refuse_other_forms(body)
    job = submit_file_import(session, project_id=caller.project_id, domain_id=caller.domain_id,
                             req=body.to_domain(data_disk=data_disk), quota=rt.settings.image_quota,
                             now=rt.clock())
    return job_started(session, rt, job.id)


@router.post("/v2/cloudimages/action", summary="Create a system disk image from an image file",
             responses=_STARTED)
@router.post("/v2.1/cloudimages/action", include_in_schema=False)
def create_image(body: CreateImageWire, caller: WriterDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    return _create(body, caller, session, rt, data_disk=False)


@router.post("/v1/cloudimages/dataimages/action", summary="Create a data disk image from an image file",
             responses=_STARTED)
@router.post("/v2.1/cloudimages/dataimages/action", include_in_schema=False)
def create_data_image(body: CreateDataImageWire, caller: WriterDep, session: SessionDep,
                      rt: RuntimeDep) -> dict[str, Any]:
    return _create(body, caller, session, rt, data_disk=True)


def _job_view(session: Session, project_id: str, job_id: str) -> dict[str, Any]:
    job = jobs.get_for_project(session, project_id, job_id)
    return job_body(job, jobs.children(session, job.id))


# Jobs are polled: these and the image queries are the hot read routes (see deps.run_read).
@router.get("/v1/{project_id}/jobs/{job_id}", summary="Query the status of an asynchronous job",
            responses=_JOB)
async def show_job(request: Request, project_id: str, job_id: str, caller: ReaderDep,
                   session: SessionDep) -> JSONResponse:
    return JSONResponse(await run_read(request, session, _job_view, session, caller.project_id, job_id))


@router.get("/v1/cloudimages/job/{job_id}", summary="Query the status of an asynchronous job (legacy path)",
            responses=_JOB)
async def show_job_legacy(request: Request, job_id: str, caller: ReaderDep, session: SessionDep) -> JSONResponse:
    return JSONResponse(await run_read(request, session, _job_view, session, caller.project_id, job_id))


_EQUALS = ("name", "status", "disk_format", "container_format", "visibility")


def _int_param(params: Any, name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    return parse_int(name, raw)


@router.get("/v2/cloudimages", summary="Query images (IMS)", responses=_IMAGES, openapi_extra=_LIST_QUERY)
async def list_cloudimages(request: Request, caller: ReaderDep, session: SessionDep) -> JSONResponse:
    # Hot path: a JSONResponse skips FastAPI's response-model pass.
    return JSONResponse(await run_read(request, session, _list_cloudimages, request, caller, session))


def _list_cloudimages(request: Request, caller: Caller, session: Session) -> dict[str, Any]:
    p = request.query_params
    q = ImageQuery(project_id=caller.project_id, limit=_int_param(p, "limit", LIST_DEFAULT), marker=p.get("marker"),
                   sort_key=p.get("sort_key", "created_at"), sort_dir=p.get("sort_dir", "desc"),
                   image_type=p.get("__imagetype"), tag=p.get("tag"), member_status=p.get("member_status"),
                   operator=caller.can(Permission.OPERATOR))
    for name in _EQUALS:
        if name in p:
            q.equals[name] = p[name]
    if "min_disk" in p:
        q.equals["min_disk"] = _int_param(p, "min_disk", 0)
    if "protected" in p:
        q.equals["protected"] = p["protected"].lower() == "true"
    if "owner" in p:
        # Within what the caller may see: its own images, or those a given owner shares with it (the
        # operator: any project's images).
        q.equals["owner"] = p["owner"]
    if "id" in p:
        q.ids = [i for i in p["id"].split(",") if i]
    for key in image_rules.PROPERTY_FILTERS:
        if key in p:
            q.properties[key] = p[key]
    for column in ("created_at", "updated_at"):
        if column in p:
            q.time_filters.append(parse_time_filter(column, p[column]))
    found = image_rules.list_images(session, q)
    tags = tags_of(session, [i.id for i in found])
    return {"images": [image_body(i, tags[i.id]) for i in found]}

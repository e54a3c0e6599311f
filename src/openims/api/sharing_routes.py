"""Image sharing: the IMS batch jobs (``/v1/cloudimages/members``), IMS member queries and the native routes."""

from __future__ import annotations

from typing import Any

from fastapi import Query
from fastapi.responses import Response
from pydantic import ConfigDict, Field
from sqlalchemy.orm import Session

from openims.api.auth import Caller, ReaderDep, RuntimeDep, WriterDep
from openims.api.deps import SessionDep, api_router
from openims.api.ims_wire import IMAGE_ERRORS, Wire, job_started, ts
from openims.api.openapi_docs import INT_TEXT, Schema, model_rules
from openims.catalog import members
from openims.catalog.images import MemberStatus
from openims.catalog.jobs import JobType
from openims.db.models import ImageMember
from openims.errors import ImsBadRequest
from openims.runtime import Runtime

router = api_router(tags=["sharing"])


# What members.submit_batch and members.answer check by hand (IMG.0001), for the document: non-empty lists
# of ids of 1 to 64 characters; a member answers accepted or rejected (Glance's native route: pending too).
_IDS: Schema = {"minItems": 1, "items": {"type": "string", "minLength": 1, "maxLength": members._ID_MAX}}
IMS_ANSWERS = (MemberStatus.ACCEPTED.value, MemberStatus.REJECTED.value)
GLANCE_ANSWERS = (*IMS_ANSWERS, MemberStatus.PENDING.value)


class MemberBatchWire(Wire):
    model_config = ConfigDict(json_schema_extra=model_rules(images=_IDS, projects=_IDS))

    images: list[str] = Field(max_length=members.MAX_BATCH_IMAGES)
    projects: list[str] = Field(max_length=members.MAX_MEMBERS)


class MemberAnswerBatchWire(Wire):
    # project_id must also be the token's own project (IMG.0067): a member answers for itself.
    model_config = ConfigDict(json_schema_extra=model_rules(images=_IDS, status={"enum": list(IMS_ANSWERS)}))

    images: list[str] = Field(max_length=members.MAX_BATCH_IMAGES)
    project_id: str = Field(max_length=64)
    status: str = Field(max_length=16)
    # Only full-ECS images created from CBR backups need a vault; none exist here, so it is ignored.
    vault_id: str | None = Field(default=None, max_length=64)


class AddMemberWire(Wire):
    member: str = Field(min_length=1, max_length=64)


class MemberAnswerWire(Wire):
    model_config = ConfigDict(json_schema_extra=model_rules(status={"enum": list(GLANCE_ANSWERS)}))

    status: str = Field(max_length=16)
    vault_id: str | None = Field(default=None, max_length=64)


def member_body(m: ImageMember, *, ims: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": m.status,
        "created_at": ts(m.created_at),
        "updated_at": ts(m.updated_at),
        "image_id": m.image_id,
        "member_id": m.member_id,
        "schema": "/v2/schemas/member",
    }
    if ims:
        # The IMS member queries add the member's kind; only projects can be members here.
        body["member_type"] = "project"
    return body


# ---------------------------------------------------------------- IMS batch jobs


def _batch(job_type: JobType, body: MemberBatchWire, caller: Caller, session: Session, rt: Runtime) -> dict[str, Any]:
    job = members.submit_batch(session, job_type, project_id=caller.project_id, images=body.images,
                               projects=body.projects, now=rt.clock())
    return job_started(session, rt, job.id)


@router.post("/v1/cloudimages/members", responses=IMAGE_ERRORS, summary="Share images with projects (asynchronous)")
def add_members(body: MemberBatchWire, caller: WriterDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    return _batch(JobType.ADD_IMAGE_MEMBERS, body, caller, session, rt)


@router.delete("/v1/cloudimages/members",
               responses=IMAGE_ERRORS, summary="Stop sharing images with projects (asynchronous)")
def delete_members(body: MemberBatchWire, caller: WriterDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    return _batch(JobType.DEL_IMAGE_MEMBERS, body, caller, session, rt)


@router.put("/v1/cloudimages/members",
            responses=IMAGE_ERRORS, summary="Accept or reject images shared with you (asynchronous)")
def answer_members(body: MemberAnswerBatchWire, caller: WriterDep, session: SessionDep,
                   rt: RuntimeDep) -> dict[str, Any]:
    job = members.submit_batch(session, JobType.UPDATE_IMAGE_MEMBERS, project_id=caller.project_id,
                               images=body.images, member_project=body.project_id, status=body.status,
                               now=rt.clock())
    return job_started(session, rt, job.id)


# ---------------------------------------------------------------- IMS member queries


@router.get("/v1/{project_id}/cloudimages/{image_id}/members",
            responses=IMAGE_ERRORS, summary="Query the members of an image")
def ims_list_members(project_id: str, image_id: str, caller: ReaderDep, session: SessionDep,
                     limit: str | None = Query(default=None, json_schema_extra={
                         "pattern": INT_TEXT, "description": "Members per page, 1 to 1000 (default 1000)"}),
                     marker: str | None = None) -> dict[str, Any]:
    try:
        size = int(limit) if limit else 1000
    except ValueError as exc:
        raise ImsBadRequest("limit must be an integer.", code="IMG.0001") from exc
    every = members.list_members(session, caller.project_id, image_id)
    page = members.page(every, limit=size, marker=marker)
    more = bool(page) and page[-1] is not every[-1]
    return {
        "members": [member_body(m, ims=True) for m in page],
        "schema": "/v2/schemas/members",
        "page_info": {"next_marker": page[-1].member_id if more else None, "current_count": len(page)},
    }


@router.get("/v1/{project_id}/cloudimages/{image_id}/members/{member_id}",
            responses=IMAGE_ERRORS, summary="Query one member of an image")
def ims_show_member(project_id: str, image_id: str, member_id: str, caller: ReaderDep,
                    session: SessionDep) -> dict[str, Any]:
    return member_body(members.get_member(session, caller.project_id, image_id, member_id), ims=True)


# ---------------------------------------------------------------- native (Glance v2)


@router.post("/v2/images/{image_id}/members", responses=IMAGE_ERRORS, summary="Add an image member (native)")
def native_add_member(image_id: str, body: AddMemberWire, caller: WriterDep, session: SessionDep,
                      rt: RuntimeDep) -> dict[str, Any]:
    member = members.add_member(session, caller.project_id, image_id, body.member, rt.clock(), glance=True)
    return member_body(member)


@router.get("/v2/images/{image_id}/members", responses=IMAGE_ERRORS, summary="List image members (native)")
def native_list_members(image_id: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    found = members.list_members(session, caller.project_id, image_id, glance=True)
    return {"members": [member_body(m) for m in found], "schema": "/v2/schemas/members"}


@router.get("/v2/images/{image_id}/members/{member_id}",
            responses=IMAGE_ERRORS, summary="Show an image member (native)")
def native_show_member(image_id: str, member_id: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    return member_body(members.get_member(session, caller.project_id, image_id, member_id, glance=True))


@router.put("/v2/images/{image_id}/members/{member_id}",
            responses=IMAGE_ERRORS, summary="Accept or reject a shared image (native)")
def native_update_member(image_id: str, member_id: str, body: MemberAnswerWire, caller: WriterDep,
                         session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    status = members.answer(body.status, glance=True)
    member = members.set_status(session, caller.project_id, image_id, member_id, status, rt.clock(), glance=True)
    return member_body(member)


@router.delete("/v2/images/{image_id}/members/{member_id}", status_code=204,
               responses=IMAGE_ERRORS, summary="Stop sharing an image with a project (native)")
def native_delete_member(image_id: str, member_id: str, caller: WriterDep, session: SessionDep,
                         rt: RuntimeDep) -> Response:
    members.remove_member(session, caller.project_id, image_id, member_id, rt.clock(), glance=True)
    return Response(status_code=204)

"""IMS lifecycle routes: update, quick import, register, export, copy, quota and OS versions.

Wire ↔ domain only; the rules are in ``catalog.lifecycle`` and ``catalog.quotas``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import ConfigDict, Field, StrictBool, TypeAdapter, ValidationError

from openims.api.auth import CallerDep, ReaderDep, RuntimeDep, WriterDep
from openims.api.deps import SessionDep, api_router
from openims.api.glance_routes import views
from openims.api.glance_schemas import SCHEMAS
from openims.api.iam_routes import is_account_admin
from openims.api.ims_wire import (
    DESCRIPTION_RULE,
    IMAGE_URL_RULE,
    NAME_RULE,
    OS_VERSION_RULE,
    REFUSED_RULE,
    TAGS_RULE,
    ImageTagWire,
    Wire,
    any_case,
    disk_rule,
    job_started,
)
from openims.api.openapi_docs import array, json_body, json_response, model_rules, obj
from openims.catalog import lifecycle, patch, quotas, validation
from openims.catalog.imports import DiskSource, FileImportRequest, submit_file_import
from openims.catalog.os_versions import all_versions
from openims.errors import ImsBadRequest, ImsForbidden, ImsNotFound
from openims.iam.roles import Permission

router = api_router(tags=["ims-lifecycle"])


class PatchOpWire(Wire):
    """One item of the IMS update body (updating_an_image.rst): ``{"op", "path", "value"}``."""

    op: str = Field(max_length=16)
    path: str = Field(max_length=300)
    value: Any = None


def _patchable_path() -> str:
    """'/' and an attribute lifecycle.update_image changes: one of its table (the operator's too), or an
    extension attribute (lifecycle._CUSTOM_NAME, neither read-only nor a "__" system attribute)."""
    listed = "|".join(re.escape(name) for name in sorted({*lifecycle.RULES, *lifecycle.OPERATOR_RULES}))
    read_only = "|".join(re.escape(name) for name in sorted(lifecycle.READ_ONLY))
    return rf"^/(?:(?:{listed})|(?!(?:{read_only})$)(?!__){lifecycle._CUSTOM_NAME.pattern.strip('^$')})$"


# lifecycle.parse_patch and patch.apply check by hand (IMG.0001): an op of patch.OPS on a patchable path; add
# and replace carry a value.
PATCH_PATH = _patchable_path()
_PATCH_DOC = array({**obj("op", "path", op={"type": "string", "enum": list(patch.OPS)},
                           path={"type": "string", "maxLength": 300, "pattern": PATCH_PATH}, value={}),
                     "if": {"properties": {"op": {"enum": [op for op in patch.OPS if op != "remove"]}}},
                     "then": {"required": ["value"]}})


class QuickImportWire(Wire):
    """POST /v2/cloudimages/quickimport/action (importing_an_image_file_quickly.rst)."""

    # Checked by hand (catalog.imports, with IMG codes); os_version is required too unless type is DataImage.
    model_config = ConfigDict(json_schema_extra=model_rules(
        "name", "image_url", "min_disk", name=NAME_RULE, description=DESCRIPTION_RULE, image_url=IMAGE_URL_RULE,
        min_disk=disk_rule((validation.SYSTEM_DISK_GB[0], validation.DATA_DISK_GB[1])), os_version=OS_VERSION_RULE,
        os_type={"enum": list(validation.OS_TYPES)}, tags=TAGS_RULE,
        type={"enum": [*validation.IMAGE_TYPES, lifecycle.DATA_IMAGE]},
        architecture={"enum": list(validation.ARCHITECTURES)},
        hw_firmware_type={"enum": list(validation.FIRMWARE_TYPES)}))

    name: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=4096)
    os_version: str | None = Field(default=None, max_length=255)
    os_type: str | None = Field(default=None, max_length=32)
    image_url: str | None = Field(default=None, max_length=2048)
    min_disk: int | None = None
    tags: list[str] | None = Field(default=None, max_length=64)
    image_tags: list[ImageTagWire] | None = Field(default=None, max_length=64)
    type: str | None = Field(default=None, max_length=32)
    enterprise_project_id: str | None = Field(default=None, max_length=64)
    architecture: str | None = Field(default=None, max_length=16)
    hw_firmware_type: str | None = Field(default=None, max_length=16)


class RegisterWire(Wire):
    model_config = ConfigDict(json_schema_extra=model_rules("image_url", image_url=IMAGE_URL_RULE))

    image_url: str | None = Field(default=None, max_length=2048)


class ExportWire(Wire):
    # Checked by hand (catalog.lifecycle.export_format, export_url); a quick export is refused (ZVHD2).
    model_config = ConfigDict(json_schema_extra=model_rules(
        "bucket_url", "file_format",
        bucket_url={"pattern": IMAGE_URL_RULE["pattern"].removesuffix(r"[\s\S]")
                    + r"[A-Za-z0-9._\-]+(/[A-Za-z0-9._\-]+)*$", "description": "<bucket>:<folder/…/file name>"},
        file_format={"pattern": "^(" + "|".join(any_case(f) for f in lifecycle.EXPORT_FORMATS) + ")$"},
        is_quick_export={"enum": [False]}))

    bucket_url: str | None = Field(default=None, max_length=2048)
    file_format: str | None = Field(default=None, max_length=16)
    is_quick_export: StrictBool = False


class CopyWire(Wire):
    model_config = ConfigDict(json_schema_extra=model_rules(
        "name", name=NAME_RULE, description=DESCRIPTION_RULE, cmk_id=REFUSED_RULE))

    name: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=4096)
    cmk_id: str | None = Field(default=None, max_length=255)
    enterprise_project_id: str | None = Field(default=None, max_length=64)


class QuotaResourceWire(Wire):
    model_config = ConfigDict(json_schema_extra=model_rules(
        type={"enum": ["image"]}, quota={"minimum": quotas.MIN_IMAGES, "maximum": quotas.MAX_IMAGES}))

    type: str = Field(max_length=32)
    # null returns the project to the deployment default.
    quota: int | None


class QuotaSetWire(Wire):
    resources: list[QuotaResourceWire] = Field(min_length=1, max_length=8)


class QuotaUpdateWire(Wire):
    """openims extension: ``{"quotas": {"resources": [{"type": "image", "quota": N}]}}``, as GET shows it."""

    quotas: QuotaSetWire


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request: an IMS error code (IMG.xxxx) in the body"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "The role may not do this (IMG.0026), or the image is shared with you (IMG.0047)"},
    404: {"description": "No such image visible to the project (IMG.0144)"},
}
_JOB: dict[int | str, dict[str, Any]] = {
    200: {"description": "The asynchronous job, {\"job_id\": …}: poll GET /v1/{project_id}/jobs/{job_id}"},
}


# ---------------------------------------------------------------- update


_PATCH_BODY = TypeAdapter(list[PatchOpWire])


async def _patch_body(request: Request) -> list[PatchOpWire]:
    # Parsed whatever the Content-Type: the SDK sends application/json, Glance users the JSON-patch type.
    raw = await request.body()
    if not raw.strip():
        raise ImsBadRequest("The request body is empty.", code="IMG.0007")
    try:
        return _PATCH_BODY.validate_json(raw)
    except ValidationError as exc:
        raise ImsBadRequest("The body must be a JSON array of {\"op\", \"path\", \"value\"} operations "
                            f"({exc.errors()[0]['msg']}).", code="IMG.0001") from exc


@router.patch("/v2/cloudimages/{image_id}", summary="Update image information (IMS)",
              responses={**_ERRORS, 200: json_response("The updated image, as GET /v2/images/{image_id}",
                                                       SCHEMAS["image"])},
              openapi_extra=json_body(_PATCH_DOC,
                                      description="JSON-patch operations (read whatever the Content-Type)"))
def update_image(image_id: str, body: Annotated[list[PatchOpWire], Depends(_patch_body)], caller: WriterDep,
                 session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    ops = lifecycle.parse_patch([item.model_dump(exclude_unset=True) for item in body])
    image = lifecycle.update_image(session, caller.project_id, image_id, ops, rt.clock(),
                                   operator=caller.can(Permission.OPERATOR))
    # As GET /v2/images/{id} shows it: the reference's example (and the SDK's model) is that view.
    return views(session, rt, [image])[0]


# ---------------------------------------------------------------- quick import


@router.post("/v2/cloudimages/quickimport/action", summary="Import an image file quickly (raw, no conversion)",
             responses={**_ERRORS, **_JOB})
@router.post("/v2.1/cloudimages/quickimport/action", include_in_schema=False)
def quick_import(body: QuickImportWire, caller: WriterDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    if not body.image_url:
        raise ImsBadRequest("image_url is required: <bucket>:<object key> of the image file.", code="IMG.0017")
    if body.min_disk is None:
        raise ImsBadRequest("min_disk is required (GB).", code="IMG.0055")
    # The data-disk form is the same request with type DataImage (and os_type instead of os_version).
    data = body.type == lifecycle.DATA_IMAGE
    src = DiskSource(image_url=body.image_url, min_disk=body.min_disk, name=body.name, description=body.description,
                     tags=body.tags,
                     image_tags=[t.model_dump() for t in body.image_tags] if body.image_tags else None)
    req = FileImportRequest(
        source=src, data_disk=data, os_version=None if data else body.os_version, os_type=body.os_type,
        image_type=None if data else body.type, architecture=body.architecture,
        hw_firmware_type=body.hw_firmware_type, enterprise_project_id=body.enterprise_project_id,
        is_quick_import=True)
    job = submit_file_import(session, project_id=caller.project_id, domain_id=caller.domain_id, req=req,
                             quota=rt.settings.image_quota, now=rt.clock())
    return job_started(session, rt, job.id)


# ---------------------------------------------------------------- register, export, copy


@router.put("/v1/cloudimages/{image_id}/upload", summary="Register an image file as a queued image's data",
            responses={**_ERRORS, **_JOB})
@router.post("/v1/cloudimages/{image_id}/upload", include_in_schema=False)
def register_image(image_id: str, body: RegisterWire, caller: WriterDep, session: SessionDep,
                   rt: RuntimeDep) -> dict[str, Any]:
    job = lifecycle.submit_register(session, project_id=caller.project_id, domain_id=caller.domain_id,
                                    image_id=image_id, image_url=body.image_url, now=rt.clock())
    return job_started(session, rt, job.id)


@router.post("/v1/cloudimages/{image_id}/file", summary="Export an image into a bucket", responses={**_ERRORS, **_JOB})
@router.post("/v2.1/cloudimages/{image_id}/file", include_in_schema=False)
def export_image(image_id: str, body: ExportWire, caller: WriterDep, session: SessionDep,
                 rt: RuntimeDep) -> dict[str, Any]:
    job = lifecycle.submit_export(session, project_id=caller.project_id, domain_id=caller.domain_id,
                                  image_id=image_id, bucket_url=body.bucket_url, file_format=body.file_format,
                                  is_quick_export=body.is_quick_export, max_size=rt.settings.max_image_file_size,
                                  now=rt.clock())
    return job_started(session, rt, job.id)


@router.post("/v1/cloudimages/{image_id}/copy", summary="Replicate an image within the region",
             responses={**_ERRORS, **_JOB})
@router.post("/v2.1/cloudimages/{image_id}/copy", include_in_schema=False)
def copy_image(image_id: str, body: CopyWire, caller: WriterDep, session: SessionDep,
               rt: RuntimeDep) -> dict[str, Any]:
    job = lifecycle.submit_copy(session, project_id=caller.project_id, image_id=image_id, name=body.name,
                                description=body.description, cmk_id=body.cmk_id,
                                enterprise_project_id=body.enterprise_project_id, quota=rt.settings.image_quota,
                                now=rt.clock())
    return job_started(session, rt, job.id)


# ---------------------------------------------------------------- quota


def _quota_body(q: quotas.ImageQuota) -> dict[str, Any]:
    return {"quotas": {"resources": [
        {"type": "image", "used": q.used, "quota": q.quota, "min": quotas.MIN_IMAGES, "max": quotas.MAX_IMAGES},
    ]}}


ProjectParam = Annotated[str | None, Query(max_length=64, description="openims: another project of the account "
                                                                       "(id or name); account administrators only")]


def _target_project(caller: CallerDep, session: SessionDep, project: str | None) -> str:
    """The token's project, or (administrators only) another project of the same account; the operator
    names any project by its id."""
    if project is None or project == caller.token.project_id:
        return caller.project_id
    if caller.can(Permission.OPERATOR):
        try:
            return quotas.find_project(session, None, project).id
        except ImsNotFound:
            pass  # a name: looked up in the operator's own account
    message = "The role is invalid: only account administrators may manage other projects' quotas."
    if not caller.can(Permission.IAM_ADMIN):
        raise ImsForbidden(message)
    target = quotas.find_project(session, caller.domain_id, project).id  # another account's: 404
    # An administrator of the whole account, not of one project: a project's te_admin naming another
    # project of its account read and set that project's quota (issue 16, the isolation matrix).
    if not is_account_admin(session, caller):
        raise ImsForbidden(message)
    return target


@router.get("/v1/cloudimages/quota", summary="Query the image quota", responses=_ERRORS)
def show_quota(caller: ReaderDep, session: SessionDep, rt: RuntimeDep,
               project_id: ProjectParam = None) -> dict[str, Any]:
    target = _target_project(caller, session, project_id)
    return _quota_body(quotas.usage(session, target, rt.settings.image_quota))


@router.put("/v1/cloudimages/quota", summary="Set a project's image quota (openims; account administrators)",
            responses=_ERRORS)
def set_quota(body: QuotaUpdateWire, caller: CallerDep, session: SessionDep, rt: RuntimeDep,
              project_id: ProjectParam = None) -> dict[str, Any]:
    message = "The role is invalid: only account administrators may change quotas."
    if not caller.can(Permission.IAM_ADMIN) and not caller.can(Permission.OPERATOR):
        raise ImsForbidden(message)
    if project_id is None and not caller.token.project_id:
        raise ImsBadRequest("project_id is required with a token that is not scoped to a project.", code="IMG.0067")
    target = _target_project(caller, session, project_id)
    # Not a project's te_admin, even for its own project: the quota is the account administrators' limit.
    if not caller.can(Permission.OPERATOR) and not is_account_admin(session, caller):
        raise ImsForbidden(message)
    for resource in body.quotas.resources:
        if resource.type != "image":
            raise ImsBadRequest(f"The quota of {resource.type!r} cannot be set: only 'image' is configurable.",
                                code="IMG.0034")
        quotas.set_image_quota(session, target, resource.quota)
    return _quota_body(quotas.usage(session, target, rt.settings.image_quota))


# ---------------------------------------------------------------- OS versions


@router.get("/v1/cloudimages/os_version", summary="Query the OS versions images can declare", responses=_ERRORS)
def list_os_versions(caller: ReaderDep) -> list[dict[str, Any]]:
    # The official SDK's ListOsVersions shape: one entry per platform with its versions.
    by_platform: dict[str, list[dict[str, Any]]] = {}
    for v in all_versions():
        by_platform.setdefault(v.platform, []).append({
            "platform": v.platform, "os_version_key": v.os_version, "os_version": v.os_version,
            "os_bit": int(v.os_bit), "os_type": v.os_type})
    return [{"platform": platform, "version_list": versions} for platform, versions in by_platform.items()]

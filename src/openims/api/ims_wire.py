"""IMS / Glance wire shapes for images and jobs."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from openims.api.openapi_docs import Schema, model_rules
from openims.catalog import validation as v
from openims.catalog.images import ALL_STATUSES, TIME_OPS
from openims.catalog.imports import MAX_DATA_IMAGES, DiskSource, FileImportRequest
from openims.catalog.os_versions import all_versions
from openims.db.models import Image, Job
from openims.db.session import after_commit
from openims.objects.base import BUCKET_NAME
from openims.runtime import Runtime


def ts(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_ts(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def image_body(image: Image, tags: list[str]) -> dict[str, Any]:
    """One image as both IMS (``/v2/cloudimages``) and Glance (``/v2/images``) render it."""
    body: dict[str, Any] = {
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "visibility": image.visibility,
        "protected": image.protected,
        "tags": tags,
        "container_format": image.container_format,
        "disk_format": image.disk_format,
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "owner": image.owner,
        "created_at": ts(image.created_at),
        "updated_at": ts(image.updated_at),
        "self": f"/v2/images/{image.id}",
        "file": f"/v2/images/{image.id}/file",
        "schema": "/v2/schemas/image",
        "deleted": False,
        "deleted_at": None,
        "__imagetype": image.image_type,
    }
    for key, value in image.properties.items():
        # Extension attributes are strings (IMS's ListImages types max_ram so, and the document says it): imports
        # and Glance's POST /v2/images stored max_ram as a number, which showed as one.
        body.setdefault(key, value if value is None else as_string(value))
    return body


def as_string(value: Any) -> str:
    """A property's value as the image views show it: a string."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def job_body(job: Job, children: list[Job]) -> dict[str, Any]:
    entities = dict(job.entities)
    if children:
        entities["sub_jobs_list"] = [c.id for c in children]
        entities["sub_jobs_result"] = [job_body(c, []) for c in children]
    return {
        "job_id": job.id,
        "job_type": job.job_type,
        "status": job.status,
        "begin_time": job_ts(job.begin_time),
        "end_time": job_ts(job.end_time),
        "error_code": job.error_code,
        "fail_reason": job.fail_reason,
        "entities": entities,
    }


class Wire(BaseModel):
    """Base of every IMS request body: unknown fields are ignored, as the service documents; known ones are typed."""

    model_config = ConfigDict(extra="ignore")


# OpenAPI descriptions of the errors of routes on one image of the caller's (tags, members).
IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request (IMS error code in the body)"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not permitted (read-only role, or an image shared with you: only its owner changes it)"},
    404: {"description": "No such image (or member) visible to the project"},
}


def job_started(session: Session, rt: Runtime, job_id: str) -> dict[str, Any]:
    """The answer to a request that submitted a job; the workers are woken once it is committed."""
    after_commit(session, rt.job_submitted.set)
    return {"job_id": job_id}


# The rules catalog.validation and catalog.imports check by hand (with their IMG codes), for the document.
NAME_RULE: Schema = {"maxLength": v.IMAGE_NAME_MAX, "pattern": v.IMAGE_NAME_PATTERN}
DESCRIPTION_RULE: Schema = {"maxLength": v.DESCRIPTION_MAX, "pattern": v.DESCRIPTION_PATTERN}
IMAGE_URL_RULE: Schema = {"pattern": rf"^{BUCKET_NAME.pattern.strip('^$')}:[\s\S]",
                      "description": "<bucket>:<object key> of the image file"}
TAGS_RULE: Schema = {"items": {"type": "string", "minLength": 1, "pattern": v.TAG_PATTERN}}
REFUSED_RULE: Schema = {"maxLength": 0, "description": "Not available in this deployment: any value is refused"}
# A {key, value} tag (validation.tags) is trimmed, then its key has 1 to 36 and its value 0 to 43 letters, digits,
# '_' or '-'.
TAG_KEY_RULE: Schema = {"pattern": rf"^\s*[\w-]{{1,{v.TAG_KEY_MAX}}}\s*$"}
TAG_VALUE_RULE: Schema = {"pattern": rf"^\s*[\w-]{{0,{v.TAG_VALUE_MAX}}}\s*$"}
# catalog.tags.checked_tag_string: the "key.value" form, not trimmed.
TAG_STRING_RULE: Schema = {"pattern": rf"^[\w-]{{1,{v.TAG_KEY_MAX}}}(?:\.[\w-]{{0,{v.TAG_VALUE_MAX}}})?$"}


def any_case(text: str) -> str:
    """A regex matching ``text`` in any case (JSON Schema patterns have no case-insensitive flag)."""
    escaped = re.escape(text).replace("\\ ", " ")
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in escaped)


# validation.os_version: one of GET /v1/cloudimages/os_version's values, in any case and trimmed (or empty).
OS_VERSION_RULE: Schema = {
    "pattern": r"^(?:|\s*(?:" + "|".join(any_case(osv.os_version) for osv in all_versions()) + r")\s*)$",
    "description": "An OS version of GET /v1/cloudimages/os_version (any case)"}


def disk_rule(low_high: tuple[int, int]) -> Schema:
    return {"minimum": low_high[0], "maximum": low_high[1]}


class ImageTagWire(Wire):
    model_config = ConfigDict(json_schema_extra=model_rules(key=TAG_KEY_RULE, value=TAG_VALUE_RULE))

    key: str = Field(max_length=128)
    value: str = Field(default="", max_length=128)


class DataImageWire(Wire):
    model_config = ConfigDict(json_schema_extra=model_rules(
        name={"maxLength": v.IMAGE_NAME_MAX, "pattern": f"^(?:{v.IMAGE_NAME_PATTERN.strip('^$')})?$",
              "description": "Empty or left out: the system disk image's name with -data<n>"},
        description=DESCRIPTION_RULE, image_url=IMAGE_URL_RULE, min_disk=disk_rule(v.DATA_DISK_GB), tags=TAGS_RULE))

    name: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=4096)
    image_url: str = Field(max_length=2048)
    min_disk: int
    tags: list[str] | None = Field(default=None, max_length=64)
    image_tags: list[ImageTagWire] | None = Field(default=None, max_length=64)


def _create_rules(*, data_disk: bool) -> Any:
    kinds: Schema = {} if data_disk else {"type": {"enum": list(v.IMAGE_TYPES)}}  # a data image ignores type
    memory = {"minimum": 0, "maximum": v.INT32_MAX}
    return model_rules(
        "name", "image_url", "min_disk", name=NAME_RULE, description=DESCRIPTION_RULE, image_url=IMAGE_URL_RULE,
        min_disk=disk_rule(v.DATA_DISK_GB if data_disk else v.SYSTEM_DISK_GB), os_type={"enum": list(v.OS_TYPES)},
        tags=TAGS_RULE, architecture={"enum": list(v.ARCHITECTURES)}, hw_firmware_type={"enum": list(v.FIRMWARE_TYPES)},
        min_ram=memory, max_ram=memory, data_images={"maxItems": 0 if data_disk else MAX_DATA_IMAGES},
        os_version=OS_VERSION_RULE,
        cmk_id=REFUSED_RULE, instance_id=REFUSED_RULE, volume_id=REFUSED_RULE, backup_id=REFUSED_RULE, **kinds)


class CreateImageWire(Wire):
    """POST /v2/cloudimages/action — the external-file form (the ECS/volume forms are refused)."""

    model_config = ConfigDict(json_schema_extra=_create_rules(data_disk=False))

    name: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=4096)
    image_url: str | None = Field(default=None, max_length=2048)
    min_disk: int | None = None
    os_version: str | None = Field(default=None, max_length=255)
    os_type: str | None = Field(default=None, max_length=32)
    is_config: bool = False
    is_config_init: bool = False
    tags: list[str] | None = Field(default=None, max_length=64)
    image_tags: list[ImageTagWire] | None = Field(default=None, max_length=64)
    type: str | None = Field(default=None, max_length=32)
    architecture: str | None = Field(default=None, max_length=16)
    hw_firmware_type: str | None = Field(default=None, max_length=16)
    max_ram: int | None = None
    min_ram: int | None = None
    cmk_id: str | None = Field(default=None, max_length=255)
    enterprise_project_id: str | None = Field(default=None, max_length=64)
    is_quick_import: bool = False
    data_images: list[DataImageWire] | None = Field(default=None, max_length=16)
    instance_id: str | None = Field(default=None, max_length=255)
    volume_id: str | None = Field(default=None, max_length=255)
    backup_id: str | None = Field(default=None, max_length=255)

    def to_domain(self, *, data_disk: bool) -> FileImportRequest:
        assert self.image_url is not None and self.min_disk is not None
        src = DiskSource(
            image_url=self.image_url, min_disk=self.min_disk, name=self.name, description=self.description,
            tags=self.tags, image_tags=[t.model_dump() for t in self.image_tags] if self.image_tags else None)
        data = [
            DiskSource(image_url=d.image_url, min_disk=d.min_disk, name=d.name, description=d.description,
                       tags=d.tags, image_tags=[t.model_dump() for t in d.image_tags] if d.image_tags else None)
            for d in self.data_images or []
        ]
        return FileImportRequest(
            source=src, data_disk=data_disk, os_version=self.os_version, os_type=self.os_type,
            is_config=self.is_config, is_config_init=self.is_config_init, image_type=self.type,
            architecture=self.architecture, hw_firmware_type=self.hw_firmware_type, min_ram=self.min_ram,
            max_ram=self.max_ram, cmk_id=self.cmk_id, enterprise_project_id=self.enterprise_project_id,
            is_quick_import=self.is_quick_import, data_images=data)


class CreateDataImageWire(CreateImageWire):
    """POST /v1/cloudimages/dataimages/action: the same body, a data disk's sizes (documented apart)."""

    model_config = ConfigDict(json_schema_extra=_create_rules(data_disk=True))


# ---------------------------------------------------------------- image list queries, for the document
#
# GET /v2/cloudimages, GET /v1/cloudimages/tags and GET /v2/images read their query strings by hand (their
# errors keep IMS's codes); these are the rules images.list_images and the routes check, declared as they are.

# images.list_images: the sort directions, and what __imagetype selects (anything else is IMG.0024).
SORT_DIRS = ("asc", "desc")
IMAGE_TYPES = ("gold", "private", "shared")
# images.statuses_for_filter: a membership status or all (empty or absent: accepted).
MEMBER_FILTERS = (*ALL_STATUSES, "all")
# params.parse_int's syntax: a decimal integer of at most 19 digits, signed, trimmed.
_PARSE_INT = r"\s*[+-]?[0-9]{1,19}\s*"


def int_text(*, empty: bool = False) -> Schema:
    """A query integer as params.parse_int reads it (``empty``: an empty value is left out); the range is
    the parameter's description, as the route checks it."""
    return {"type": "string", "pattern": f"^(?:{_PARSE_INT}{'|' if empty else ''})$"}


def time_filter(*, empty: bool = False) -> Schema:
    """images.parse_time_filter: ``<operator>:<ISO 8601 time>``, an operator of TIME_OPS."""
    ops = "|".join(TIME_OPS)
    return {"type": "string", "pattern": f"^(?:(?:{ops}):.{'|$' if empty else ''})"}


def choice(*words: str) -> Schema:
    return {"type": "string", "enum": list(words)}

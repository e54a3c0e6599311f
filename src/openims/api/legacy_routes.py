"""The deprecated routes the IMS reference still documents: Glance v1 and v1.1, and full-ECS images.

``GET /v1.1/images/detail``, ``DELETE /v1.1/images/{id}`` and ``HEAD /v1/images/{id}`` render the
same images under the same rules as the native v2 routes, in Glance v1's shapes. ``POST
/v1/cloudimages/wholeimages/action`` makes images of servers or their backups, which this
deployment has none of: it answers IMS's errors for them.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from urllib.parse import quote

from fastapi import Query, Response
from pydantic import Field

from openims.api.auth import ReaderDep, RuntimeDep, WriterDep
from openims.api.deps import SessionDep, api_router
from openims.api.glance_wire import naive_time
from openims.api.ims_routes import refuse_cloud_sources
from openims.api.ims_wire import Wire
from openims.api.params import parse_int
from openims.catalog import images as image_rules
from openims.catalog import native
from openims.catalog.images import ImageQuery
from openims.catalog.members import visible_to
from openims.db.models import Image
from openims.db.session import after_commit
from openims.errors import ImsBadRequest

router = api_router(tags=["deprecated"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request"}, 401: {"description": "Missing or invalid token"},
    403: {"description": "Not permitted"}, 404: {"description": "No such image visible to the project"},
}
_INT64_MAX = 2**63 - 1


def _v1_body(image: Image) -> dict[str, Any]:
    """An image in Glance v1's shape: custom properties apart, IMS's own ("__") left out."""
    return {
        "id": image.id, "name": image.name, "status": image.status, "deleted": False, "deleted_at": None,
        "container_format": image.container_format, "disk_format": image.disk_format,
        "created_at": naive_time(image.created_at), "updated_at": naive_time(image.updated_at),
        "min_disk": image.min_disk, "min_ram": image.min_ram, "protected": image.protected,
        "checksum": image.checksum, "owner": image.owner, "is_public": image.visibility == "public",
        "virtual_size": image.virtual_size, "size": image.size,
        "properties": {k: str(v) for k, v in image.properties.items() if not k.startswith("__")},
    }


@router.get("/v1.1/images/detail", summary="Query image details (Glance v1.1, deprecated)", responses=_ERRORS,
            deprecated=True)
def v1_list(caller: ReaderDep, session: SessionDep,
            name: str | None = Query(default=None, max_length=255),
            container_format: str | None = Query(default=None, max_length=16),
            disk_format: str | None = Query(default=None, max_length=16),
            status: str | None = Query(default=None, max_length=16),
            size_min: str | None = Query(default=None, max_length=32),
            size_max: str | None = Query(default=None, max_length=32),
            changes_since: str | None = Query(default=None, alias="changes-since", max_length=64)) -> dict[str, Any]:
    q = ImageQuery(project_id=caller.project_id, limit=1000, member_status="accepted")
    for column, value in (("name", name), ("container_format", container_format), ("disk_format", disk_format),
                          ("status", status)):
        if value is not None:
            q.equals[column] = value
    q.size_min = None if size_min is None else parse_int("size_min", size_min, high=_INT64_MAX)
    q.size_max = None if size_max is None else parse_int("size_max", size_max, high=_INT64_MAX)
    if changes_since is not None:
        try:
            since = dt.datetime.fromisoformat(changes_since.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ImsBadRequest("changes-since must be an ISO 8601 time.", code="IMG.0001") from exc
        q.time_filters.append(("updated_at", "gte", since if since.tzinfo else since.replace(tzinfo=dt.UTC)))
    return {"images": [_v1_body(i) for i in image_rules.list_images(session, q)]}


def _header_value(value: Any) -> str:
    # Headers carry Latin-1 only: anything else is percent-encoded, as Glance v1 clients decode it.
    text = str(value) if not isinstance(value, bool) else ("True" if value else "False")
    return quote(text, safe=" !\"#$&'()*+,-./:;<=>?@[]^_`{|}~")


@router.head("/v1/images/{image_id}", summary="Query image metadata (Glance v1, deprecated)", responses=_ERRORS,
             deprecated=True, response_class=Response)
def v1_head(image_id: str, caller: ReaderDep, session: SessionDep) -> Response:
    body = _v1_body(visible_to(session, caller.project_id, image_id))
    headers = {f"X-Image-Meta-{key.capitalize()}": _header_value(value)
               for key, value in body.items() if key != "properties" and value is not None}
    headers.update({f"X-Image-Meta-Property-{key}": _header_value(value)
                    for key, value in body["properties"].items() if key.isascii() and key.isprintable()})
    if body["checksum"]:
        headers["Etag"] = body["checksum"]
    return Response(status_code=200, headers=headers)


@router.delete("/v1.1/images/{image_id}", status_code=204, summary="Delete an image (Glance v1.1, deprecated)",
               responses=_ERRORS, deprecated=True)
def v1_delete(image_id: str, caller: WriterDep, session: SessionDep, rt: RuntimeDep) -> Response:
    keys = native.delete_image(session, caller.project_id, image_id)
    for key in keys:
        after_commit(session, functools.partial(rt.images.delete, key))
    return Response(status_code=204)


class WholeImageWire(Wire):
    """POST /v1/cloudimages/wholeimages/action: a full-ECS image, from a server or a backup."""

    name: str | None = Field(default=None, max_length=1024)
    instance_id: str | None = Field(default=None, max_length=255)
    backup_id: str | None = Field(default=None, max_length=255)
    whole_image_type: str | None = Field(default=None, max_length=16)
    description: str | None = Field(default=None, max_length=4096)


@router.post("/v1/cloudimages/wholeimages/action", summary="Create a full-ECS image (no servers here: refused)",
             responses=_ERRORS)
def create_whole_image(body: WholeImageWire, caller: WriterDep) -> dict[str, Any]:
    refuse_cloud_sources(body.instance_id, None, body.backup_id)
    raise ImsBadRequest("instance_id or backup_id is required: a full-ECS image is made of a server or "
                        "its backup.", code="IMG.0001")

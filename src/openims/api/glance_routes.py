"""The native OpenStack image API (Glance v2) that IMS also serves.

Images (list, create, show, JSON-patch update, delete), their data (streamed upload through the
import pipeline, streamed download with ranges), the schemas, the import-methods and stores discovery,
and the deletion of an image's copy in one store.
Tags and members of this API live in ``tag_routes`` and ``sharing_routes``.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect

from openims.api import glance_wire
from openims.api.auth import Caller, ReaderDep, RuntimeDep, WriterDep, runtime_of
from openims.api.deps import SessionDep, api_router, run_read
from openims.api.glance_schemas import SCHEMAS
from openims.api.openapi_docs import json_body as json_body_doc
from openims.api.openapi_docs import json_response, query
from openims.catalog import glance_import, native
from openims.catalog import images as image_rules
from openims.catalog import stores as image_stores
from openims.catalog.images import ImageStatus, tags_of
from openims.catalog.members import visible_to
from openims.catalog.patch import PatchOp
from openims.catalog.stores import copies_of, locations_of, stores_field
from openims.db.models import Image
from openims.db.session import after_commit
from openims.errors import (
    ImsBadRequest,
    ImsForbidden,
    ImsNotFound,
    ImsRangeNotSatisfiable,
    ImsUnsupportedMediaType,
    ImsUploadTooLarge,
)
from openims.iam.roles import Permission
from openims.objects.image_stores import ImageStores, StoreInfo
from openims.runtime import Runtime
from openims.worker import uploads as transfer

router = api_router(tags=["glance"])

_CHUNK = 1024 * 1024
_WITH_DATA = (ImageStatus.ACTIVE.value, ImageStatus.DEACTIVATED.value)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request (IMS error code in the body)"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not permitted (read-only attribute, image shared with you, protected image)"},
    404: {"description": "No such image visible to the project"},
}

# The bodies are read by dependencies (arbitrary properties; JSON-patch media types): glance_wire describes them.
_CREATE_BODY = json_body_doc(glance_wire.CREATE_BODY)
_PATCH_BODY = json_body_doc(
    {"type": "array", "items": glance_wire.PATCH_ITEM}, media_types=("application/openstack-images-v2.1-json-patch",))
_PATCH_BODY["requestBody"]["content"]["application/openstack-images-v2.0-json-patch"] = {
    "schema": {"type": "array", "items": glance_wire.PATCH_ITEM_V20}}
_IMAGE = json_response("The image, as GET /v2/schemas/image describes it", SCHEMAS["image"])
_IMAGES = json_response("A page of images, as GET /v2/schemas/images describes it", SCHEMAS["images"])
_LIST_QUERY: dict[str, Any] = {"parameters": query(*glance_wire.LIST_PARAMETERS)}
_DATA_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _not_json(constant: str) -> Any:
    # json.loads takes NaN and ±Infinity, which JSON (RFC 8259) does not have and no column can store: a
    # metadef property with "minimum": NaN was a 500 when it was written.
    raise ValueError(f"{constant} is not a JSON value")


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise ImsBadRequest("Body expected in request.", code="IMG.0007")
    try:
        return json.loads(raw, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImsBadRequest("The request body is not valid JSON.", code="IMG.0001") from exc


async def _create_body(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ImsBadRequest("The request body must be a JSON object of image attributes.", code="IMG.0001")
    return body


async def _patch_ops(request: Request) -> list[PatchOp]:
    draft = glance_wire.PATCH_MEDIA_TYPES.get(_media_type(request))
    if draft is None:
        raise ImsUnsupportedMediaType("The PATCH body must be a JSON patch: use the media type "
                                        "application/openstack-images-v2.1-json-patch.",
                            headers={"Accept-Patch": ", ".join(sorted(glance_wire.PATCH_MEDIA_TYPES))})
    return glance_wire.parse_patch(await json_body(request), draft)


def views(session: Session, rt: Runtime, images: list[Image]) -> list[dict[str, Any]]:
    """Images as Glance renders them, with their tags, and their stores when there are several."""
    tags = tags_of(session, [i.id for i in images])
    held = stores_field(session, rt.stores, images) if rt.stores is not None else {}
    return [glance_wire.image_view(i, tags[i.id], held.get(i.id)) for i in images]


def _view(session: Session, rt: Runtime, image: Image) -> dict[str, Any]:
    return views(session, rt, [image])[0]


# ---------------------------------------------------------------- images


@router.get("/v2/images", summary="List images (native)", responses={200: _IMAGES, **_ERRORS},
            openapi_extra=_LIST_QUERY)
async def list_images(request: Request, caller: ReaderDep, session: SessionDep) -> JSONResponse:
    # The hot reads return a JSONResponse: FastAPI then skips its response-model pass.
    return JSONResponse(await run_read(request, session, _list_images, request, caller, session, runtime_of(request)))


def _list_images(request: Request, caller: Caller, session: Session, rt: Runtime) -> dict[str, Any]:
    params = request.query_params.multi_items()
    q = glance_wire.list_query(params, caller.project_id)
    # The operator lists any project's images with owner= (images.list_images).
    q.operator = caller.can(Permission.OPERATOR)
    found = image_rules.list_images(session, q)
    # As Glance: a full page may be followed by more, so it links the next one.
    last = found[-1].id if found and len(found) == q.limit else None
    first, following = glance_wire.list_links(params, limit=q.limit, last_id=last)
    body: dict[str, Any] = {"images": views(session, rt, found), "first": first, "schema": "/v2/schemas/images"}
    if following is not None:
        body["next"] = following
    return body


@router.post("/v2/images", status_code=201, summary="Create image metadata (native): a queued image",
             responses={201: _IMAGE, **_ERRORS, 409: {"description": "An image with this id exists"}},
             openapi_extra=_CREATE_BODY)
def create_image(request: Request, caller: WriterDep, body: Annotated[dict[str, Any], Depends(_create_body)],
                 session: SessionDep, rt: RuntimeDep) -> JSONResponse:
    image = native.create_queued(session, project_id=caller.project_id, body=body, quota=rt.settings.image_quota,
                                 now=rt.clock(), operator=caller.can(Permission.OPERATOR))
    location = str(request.base_url).rstrip("/") + f"/v2/images/{image.id}"
    headers = {"Location": location, "OpenStack-image-import-methods": ",".join(glance_import.METHODS)}
    if rt.stores is not None:
        # Only with several stores, as Glance (which also lists its reserved os_glance_* stores here).
        headers["OpenStack-image-store-ids"] = ",".join(rt.stores.ids)
    return JSONResponse(_view(session, rt, image), status_code=201, headers=headers)


@router.get("/v2/images/{image_id}", summary="Show image details (native)", responses={200: _IMAGE, **_ERRORS})
async def show_image(request: Request, image_id: str, caller: ReaderDep, session: SessionDep) -> JSONResponse:
    rt = runtime_of(request)

    # Members who have not answered yet may look at what they are offered, as in Glance.
    def show() -> dict[str, Any]:
        return _view(session, rt, visible_to(session, caller.project_id, image_id))

    return JSONResponse(await run_read(request, session, show))


@router.patch("/v2/images/{image_id}", summary="Update an image with a JSON patch (native)",
              responses={200: _IMAGE, **_ERRORS,
                         409: {"description": "Replacing or removing a property that does not exist"},
                         415: {"description": "Not a JSON-patch media type"}}, openapi_extra=_PATCH_BODY)
def update_image(image_id: str, caller: WriterDep, ops: Annotated[list[PatchOp], Depends(_patch_ops)],
                 session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    return _view(session, rt, native.update(session, caller.project_id, image_id, ops, rt.clock(),
                                            operator=caller.can(Permission.OPERATOR)))


@router.delete("/v2/images/{image_id}", status_code=204, summary="Delete an image and its data (native)",
               responses=_ERRORS)
def delete_image(image_id: str, caller: WriterDep, session: SessionDep, rt: RuntimeDep) -> Response:
    keys = native.delete_image(session, caller.project_id, image_id)
    # The row is gone in this transaction; the data follows once it commits.
    for key in keys:
        after_commit(session, functools.partial(rt.images.delete, key))
    return Response(status_code=204)


@router.post("/v2/images/{image_id}/actions/deactivate", status_code=204,
             summary="Deactivate an image: its data cannot be downloaded (native, v2.3)", responses=_ERRORS)
def deactivate_image(image_id: str, caller: WriterDep, session: SessionDep, rt: RuntimeDep) -> Response:
    native.set_deactivated(session, caller.project_id, image_id, True, rt.clock())
    return Response(status_code=204)


@router.post("/v2/images/{image_id}/actions/reactivate", status_code=204,
             summary="Reactivate a deactivated image (native, v2.3)", responses=_ERRORS)
def reactivate_image(image_id: str, caller: WriterDep, session: SessionDep, rt: RuntimeDep) -> Response:
    native.set_deactivated(session, caller.project_id, image_id, False, rt.clock())
    return Response(status_code=204)


# ---------------------------------------------------------------- image data


def _declared_size(request: Request) -> int:
    """The largest size the client announces (Content-Length, openstacksdk's X-OpenStack-Image-Size)."""
    sizes = [int(raw) for raw in (request.headers.get("content-length"), request.headers.get("x-openstack-image-size"))
             if raw is not None and raw.strip().isdigit()]
    return max(sizes, default=0)


async def _receive(image_id: str, request: Request, caller: Any, rt: Runtime, *, stage: bool) -> Response:
    media_type = _media_type(request)
    if media_type not in ("", "application/octet-stream"):
        raise ImsUnsupportedMediaType("Image data must be sent as application/octet-stream.")
    limit = rt.settings.max_image_file_size
    size = _declared_size(request)
    if size > limit:
        raise ImsUploadTooLarge(f"The image data ({size} bytes) exceeds the limit of {limit} bytes.")
    announced = request.headers.get("x-openstack-image-size", "").strip()
    limits = transfer.UploadLimits(max_file_size=limit, timeout=rt.settings.convert_timeout,
                                   lease_seconds=rt.settings.upload_lease_seconds,
                                   expected_size=int(announced) if announced.isdigit() else None)
    try:
        await transfer.upload(rt.db, rt.images, project_id=caller.project_id, image_id=image_id,
                             stream=request.stream(), limits=limits, clock=rt.clock, upload_id=uuid.uuid4().hex,
                             stage=stage)
    except ClientDisconnect as exc:
        raise ImsBadRequest("The upload was interrupted before all data arrived.", code="IMG.0057") from exc
    return Response(status_code=204)


@router.put("/v2/images/{image_id}/file", status_code=204, summary="Upload image data (native, streamed)",
            responses={**_ERRORS, 409: {"description": "The image is not queued, is receiving data, "
                                                 "or the upload stalled past its lease"},
                       410: {"description": "The image was deleted during the upload"},
                       413: {"description": "The data exceeds the size limit"},
                       415: {"description": "Not application/octet-stream"}}, openapi_extra=_DATA_BODY)
async def upload_image_data(image_id: str, request: Request, caller: WriterDep, rt: RuntimeDep) -> Response:
    return await _receive(image_id, request, caller, rt, stage=False)


@router.put("/v2/images/{image_id}/stage", status_code=204,
            summary="Stage image data for an interoperable import (native, v2.6, streamed)",
            responses={**_ERRORS, 409: {"description": "The image is not queued, or is receiving data"},
                       410: {"description": "The image was deleted while its data was staged"},
                       413: {"description": "The data exceeds the size limit"},
                       415: {"description": "Not application/octet-stream"}}, openapi_extra=_DATA_BODY)
async def stage_image_data(image_id: str, request: Request, caller: WriterDep, rt: RuntimeDep) -> Response:
    return await _receive(image_id, request, caller, rt, stage=True)


def _stored_data(rt: Runtime, image_id: str, locations: list[str], start: int, length: int) -> Iterator[bytes]:
    """The stored bytes, opened before the response starts, from the first copy that can be read; data
    missing from every store is a 404."""
    for location in locations:
        try:
            return rt.images.read(location, start, length)
        except FileNotFoundError:
            continue
    raise ImsNotFound(f"The data of image {image_id} is missing from the store.", code="IMG.0046")


@router.get("/v2/images/{image_id}/file", summary="Download image data (native, streamed, ranges)",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}},
                       204: {"description": "The image has no data"},
                       206: {"description": "The requested byte range"},
                       416: {"description": "The range is not satisfiable"}, **_ERRORS})
def download_image_data(image_id: str, request: Request, caller: ReaderDep, session: SessionDep,
                        rt: RuntimeDep) -> Response:
    image = native.downloadable(session, caller.project_id, image_id, may_download=caller.can(Permission.DOWNLOAD),
                                image_admin=caller.can(Permission.IMAGE_ADMIN))
    if image.status not in _WITH_DATA or not image.location or image.size is None:
        return Response(status_code=204)
    locations = [image.location]
    if rt.stores is not None:
        # The default store's copy first, then the others (a copy may be gone; the next one serves).
        locations = rt.stores.preferred(locations_of(image, copies_of(session, [image.id])[image.id]))
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    if image.checksum:
        # Glance sends the hex md5 here (not RFC 1864's base64); glanceclient compares it as hex.
        headers["Content-MD5"] = image.checksum
    range_header = request.headers.get("range")
    if range_header is None:
        headers["Content-Length"] = str(image.size)
        return StreamingResponse(_stored_data(rt, image_id, locations, 0, image.size), headers=headers)
    try:
        wanted = glance_wire.parse_range(range_header, image.size)
    except glance_wire.RangeNotSatisfiable:
        raise ImsRangeNotSatisfiable(f"The range {range_header[:64]!r} is not satisfiable for {image.size} bytes.",
                                     headers={"Content-Range": f"bytes */{image.size}"}) from None
    headers["Content-Length"] = str(wanted.length)
    headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{image.size}"
    return StreamingResponse(_stored_data(rt, image_id, locations, wanted.start, wanted.length), status_code=206,
                             headers=headers)


# ---------------------------------------------------------------- schemas and discovery


# {name:path}: the metadefs schemas are named metadefs/namespace, metadefs/objects, …
@router.get("/v2/schemas/{name:path}", summary="Image, member, task and metadefs schemas (native)",
            responses={401: _ERRORS[401], 404: {"description": "No such schema"}})
def show_schema(name: str, caller: ReaderDep) -> dict[str, Any]:
    if name not in SCHEMAS:
        raise ImsNotFound(f"The schema {name[:64]!r} does not exist.", code="IMG.0001")
    return SCHEMAS[name]


@router.get("/v2/info/import", summary="Interoperable image import methods (native)",
            responses={401: _ERRORS[401]})
def import_info(caller: ReaderDep) -> dict[str, Any]:
    return {"import-methods": {"description": "Import methods available.", "type": "array",
                               "value": list(glance_import.METHODS)}}


_SINGLE_STORE = "Multi backend is not supported at this site."


@router.get("/v2/info/stores", summary="Image stores (native, v2.7): their ids, and which is the default",
            responses={401: _ERRORS[401], 404: {"description": "A single store (Glance without multi-backend)"}})
def stores_info(caller: ReaderDep, rt: RuntimeDep) -> dict[str, Any]:
    if rt.stores is None:
        raise ImsNotFound(_SINGLE_STORE, code="IMG.0001")
    return {"stores": [_store_entry(rt.stores, info) for info in rt.stores.infos]}


@router.get("/v2/info/stores/detail", summary="Image stores in detail (native, v2.15; image administrators)",
            responses={401: _ERRORS[401], 403: {"description": "Not an image administrator"},
                       404: {"description": "A single store (Glance without multi-backend)"}})
def stores_detail(caller: ReaderDep, rt: RuntimeDep) -> dict[str, Any]:
    if not caller.can(Permission.IMAGE_ADMIN):
        raise ImsForbidden("Only image administrators may read the stores' details.", code="IMG.0026")
    if rt.stores is None:
        raise ImsNotFound(_SINGLE_STORE, code="IMG.0001")
    return {"stores": [{**_store_entry(rt.stores, info), "type": info.kind, "weight": info.weight,
                        "properties": info.properties} for info in rt.stores.infos]}


def _store_entry(stores: ImageStores, info: StoreInfo) -> dict[str, Any]:
    # Glance's flags are the string "true", present only when true.
    entry: dict[str, Any] = {"id": info.id}
    if info.description:
        entry["description"] = info.description
    if info.id == stores.default_id:
        entry["default"] = "true"
    return entry


@router.delete("/v2/stores/{store_id}/{image_id}", status_code=204,
               summary="Delete an image's data from one store (native, v2.10; image administrators)",
               responses={**_ERRORS, 403: {"description": "Not an image administrator, or the store holds the "
                                                         "image's only copy"},
                          404: {"description": "No such image, no copy in that store, or a single store"},
                          409: {"description": "Unknown store, or the image is not active"}})
def delete_from_store(store_id: str, image_id: str, caller: WriterDep, session: SessionDep,
                      rt: RuntimeDep) -> Response:
    if rt.stores is None:
        raise ImsNotFound(_SINGLE_STORE, code="IMG.0001")
    if not caller.can(Permission.IMAGE_ADMIN):
        visible_to(session, caller.project_id, image_id)  # an image the caller cannot see is 404, not 403
        raise ImsForbidden("Only image administrators may delete an image's data from a store.", code="IMG.0026")
    location = image_stores.remove_copy(session, rt.stores, caller.project_id, store_id, image_id, rt.clock())
    after_commit(session, functools.partial(rt.images.delete, location))
    return Response(status_code=204)

"""Minimal object API for the embedded buckets: make buckets, list them, stream uploads in.

Not S3: just enough for ``openims obs put/ls/mb`` to work from another host. Buckets belong to
the caller's account. Reading or uploading into another account's bucket answers 404 like a missing
one; creating a bucket under a name another account holds is 409 IMG.0038 (names are one namespace).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse

from openims.api.auth import ReaderDep, RuntimeDep, WriterDep
from openims.api.deps import SessionDep, api_router
from openims.api.ims_wire import ts
from openims.api.openapi_docs import STRING, json_body, json_response, obj, rule
from openims.catalog import buckets
from openims.concurrency import transfer_limiter
from openims.errors import ImsBadRequest, ImsNotFound
from openims.objects.base import (
    BUCKET_NAME,
    BUCKET_NAME_LENGTH,
    InvalidObjectName,
    ObjectInfo,
    ObjectNotFound,
    check_bucket_name,
    check_key,
)

router = api_router(prefix="/obs", tags=["obs"])

_BUCKET = obj("name", name=STRING)
# The bucket-name rule, declared but checked by _valid_bucket (IMG.0109, not request validation's IMG.0001).
_BUCKET_PATH = Path(description="3-63 lower-case letters, digits, hyphens and periods, starting and ending with a "
                    "letter or digit; no '..', '.-' or '-.'; not shaped like an IPv4 address",
                    json_schema_extra=rule(BUCKET_NAME, BUCKET_NAME_LENGTH))


def _object(info: ObjectInfo) -> dict[str, Any]:
    return {"bucket": info.bucket, "key": info.key, "size": info.size, "last_modified": ts(info.modified)}


def _valid_bucket(name: str) -> str:
    try:
        return check_bucket_name(name)
    except InvalidObjectName as exc:
        raise ImsBadRequest(str(exc), code="IMG.0109") from exc


@router.get("", summary="List the account's buckets")
def list_buckets(caller: ReaderDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    return {"buckets": [{"name": b} for b in buckets.list_for(session, rt.buckets, caller.domain_id)]}


@router.put("/{bucket}", summary="Create a bucket",
            responses={200: json_response("The bucket existed already", _BUCKET),
                       201: json_response("The bucket was created", _BUCKET),
                       400: {"description": "Invalid bucket name"}, 401: {"description": "Missing or invalid token"},
                       403: {"description": "Not permitted (read-only role)"},
                       409: {"description": "The name is another account's bucket"}})
def make_bucket(bucket: Annotated[str, _BUCKET_PATH], caller: WriterDep, rt: RuntimeDep) -> JSONResponse:
    created = buckets.create(rt.db, rt.buckets, caller.domain_id, _valid_bucket(bucket), rt.clock())
    return JSONResponse({"name": bucket}, status_code=201 if created else 200)


@router.get("/{bucket}", summary="List objects in a bucket")
def list_objects(bucket: Annotated[str, _BUCKET_PATH], caller: ReaderDep, session: SessionDep, rt: RuntimeDep,
                 prefix: str = Query(default="", max_length=1024),
                 limit: int = Query(default=1000, ge=1, le=10000)) -> dict[str, Any]:
    buckets.require_own(session, rt.buckets, caller.domain_id, _valid_bucket(bucket))
    out = []
    for info in rt.buckets.list_objects(bucket, prefix):
        out.append(_object(info))
        if len(out) >= limit:
            break
    return {"bucket": bucket, "objects": out}


class _StreamReader:
    """A blocking ``read()`` over the request body, for a store running in a worker thread."""

    def __init__(self, stream: AsyncIterator[bytes], limit: int) -> None:
        self._stream = stream
        self._buffer = b""
        self._done = False
        self._limit = limit
        self.total = 0

    def _next(self) -> bytes | None:
        async def pull() -> bytes | None:
            try:
                return await self._stream.__anext__()
            except StopAsyncIteration:
                return None

        return anyio.from_thread.run(pull)

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = self._next()
            if chunk is None:
                self._done = True
                break
            self.total += len(chunk)
            if self.total > self._limit:
                raise _TooLarge
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


class _TooLarge(Exception):
    pass


@router.put("/{bucket}/{key:path}", summary="Upload an object (streamed)", status_code=201,
            responses={201: json_response("The stored object", obj(
                "bucket", "key", "size", bucket=STRING, key=STRING, size={"type": "integer"}, last_modified=STRING)),
                400: {"description": "Invalid bucket name or key"}, 401: {"description": "Missing or invalid token"},
                403: {"description": "Not permitted (read-only role)"}, 404: {"description": "No such bucket"},
                413: {"description": "Larger than OPENIMS_MAX_QUICK_IMPORT_SIZE"}},
            openapi_extra=json_body({"type": "string", "format": "binary"}, media_types=("application/octet-stream",),
                                    description="The object's bytes, streamed"))
async def put_object(bucket: Annotated[str, _BUCKET_PATH], key: str, request: Request, caller: WriterDep,
                     rt: RuntimeDep) -> JSONResponse:
    _valid_bucket(bucket)
    try:
        check_key(key)
    except InvalidObjectName as exc:
        raise ImsBadRequest(str(exc), code="IMG.0075") from exc
    limit = rt.settings.max_quick_import_size

    def ensure_bucket() -> None:
        with rt.db.transaction(readonly=True) as s:
            # Created on first upload; refused (404-like) if another account owns the name.
            owner = buckets.owner_of(s, rt.buckets, bucket)
        if owner is not None and owner != caller.domain_id:
            raise ImsNotFound(f"Bucket {bucket} does not exist.", code="IMG.0069")
        buckets.create(rt.db, rt.buckets, caller.domain_id, bucket, rt.clock())

    await anyio.to_thread.run_sync(ensure_bucket)
    reader = _StreamReader(request.stream(), limit)
    try:
        info = await anyio.to_thread.run_sync(lambda: rt.buckets.put(bucket, key, reader),  # type: ignore[arg-type]
                                             limiter=transfer_limiter())
    except _TooLarge as exc:
        raise ImsBadRequest(f"The object exceeds the limit of {limit} bytes.", code="IMG.0059") from exc
    except ObjectNotFound as exc:
        raise ImsNotFound(str(exc), code="IMG.0121") from exc
    return JSONResponse(_object(info), status_code=201)

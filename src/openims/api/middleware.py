"""Pure ASGI middleware: request ids, path prefixes, and the JSON body size limit."""

from __future__ import annotations

import json
import re
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openims.api.errors import ims_body, is_iam_path, keystone_body
from openims.errors import title_of

# devstack-style prefixes (see docs/architecture.md): keystoneauth looks for Keystone's versions
# document at the identity root and Glance's at the image endpoint; both cannot be "/".
PREFIXES = ("/identity", "/image")
# The path as the client sent it (percent-decoded, prefix included), kept in the scope when
# PrefixMiddleware routes a prefixed request: an AK/SK signature covers that path, not the routed one.
ORIGINAL_PATH = "openims.original_path"

# The only requests whose bodies are streamed instead of read in full, as routed (after the prefix):
# PUT /v2/images/{image_id}/file and …/stage (image data) and PUT /obs/{bucket}/{key} (an object). Every other
# request, including other methods on those paths (POST /v1/cloudimages/{id}/file exports an image
# and carries JSON), gets the JSON body limit.
_STREAMING_UPLOADS = (re.compile(r"/v2/images/[^/]+/(?:file|stage)"), re.compile(r"/obs/[^/]+/.+"))


def is_streaming_upload(method: str, path: str) -> bool:
    """Whether a request (its routed path) is one of the streamed uploads."""
    return method == "PUT" and any(p.fullmatch(path) for p in _STREAMING_UPLOADS)


def original_path(scope: Scope) -> str:
    """The percent-decoded path the client requested, before any prefix was taken off."""
    path: str = scope.get(ORIGINAL_PATH, scope["path"])
    return path


class HttpMiddleware:
    """Pure ASGI middleware that acts on HTTP requests only (``applies``); anything else passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope):
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    def applies(self, scope: Scope) -> bool:
        return True

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestIdMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-openstack-request-id", f"req-{request_id}".encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


class PrefixMiddleware(HttpMiddleware):
    """Serve ``/identity/v3/…`` as ``/v3/…`` and ``/image/v2/…`` as ``/v2/…``; the original path stays in the scope."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        for prefix in PREFIXES:
            if path.startswith(prefix + "/") and len(path) > len(prefix) + 1:
                scope = dict(scope)
                scope[ORIGINAL_PATH] = path
                scope["path"] = path[len(prefix):]
                raw: bytes | None = scope.get("raw_path")
                # The raw path keeps the client's percent-encoding; only the prefix goes.
                scope["raw_path"] = raw[len(prefix):] if raw and raw.startswith(prefix.encode() + b"/") \
                    else scope["path"].encode()
                break
        await self.app(scope, receive, send)


class BodyLimitMiddleware(HttpMiddleware):
    """Refuse oversized request bodies early (413) — except on the streaming upload routes.

    A declared Content-Length over the limit is refused before the route runs. A body without one
    (chunked) is counted as the route reads it; going over raises an HTTPException(413), which
    FastAPI lets through its body parsing (any other exception there becomes a 400) to the central
    error rendering.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        super().__init__(app)
        self.limit = limit

    def applies(self, scope: Scope) -> bool:
        return not is_streaming_upload(scope["method"], scope["path"])

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(scope, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge(self._message())
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            # Only reached when the route read the body outside FastAPI's handling (nothing sent yet).
            await self._reject(scope, send)

    def _message(self) -> str:
        return f"The request body exceeds the limit of {self.limit} bytes."

    async def _reject(self, scope: Scope, send: Send) -> None:
        # The shapes of api.errors.render: Keystone's on identity routes, IMS's elsewhere.
        body = (keystone_body(413, title_of(413), self._message()) if is_iam_path(scope["path"])
                else ims_body("IMG.0001", self._message()))
        raw = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(raw)).encode())]})
        await send({"type": "http.response.body", "body": raw})


class _BodyTooLarge(HTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(413, detail=message)

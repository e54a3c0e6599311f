"""Pure ASGI middleware: request ids, path prefixes, and the JSON body size limit."""

from __future__ import annotations

import json
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# devstack-style prefixes (see docs/architecture.md): keystoneauth looks for Keystone's versions
# document at the identity root and Glance's at the image endpoint; both cannot be "/".
PREFIXES = ("/identity", "/image")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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


class PrefixMiddleware:
    """Serve ``/identity/v3/…`` as ``/v3/…`` and ``/image/v2/…`` as ``/v2/…``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            for prefix in PREFIXES:
                if path.startswith(prefix + "/") and len(path) > len(prefix) + 1:
                    scope = dict(scope)
                    scope["path"] = path[len(prefix):]
                    scope["raw_path"] = scope["path"].encode()
                    break
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse oversized request bodies early (413) — except on the streaming upload routes."""

    def __init__(self, app: ASGIApp, *, limit: int, streaming_suffixes: tuple[str, ...] = ("/file",),
                 streaming_prefixes: tuple[str, ...] = ("/obs/",)) -> None:
        self.app = app
        self.limit = limit
        self.streaming_suffixes = streaming_suffixes
        self.streaming_prefixes = streaming_prefixes

    def _streaming(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return path.endswith(self.streaming_suffixes) or path.startswith(self.streaming_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._streaming(scope):
            await self.app(scope, receive, send)
            return
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
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        path: str = scope["path"]
        message = f"The request body exceeds the limit of {self.limit} bytes."
        if path.startswith(("/v3", "/v5")):
            body = {"error": {"code": 413, "title": "Request Entity Too Large", "message": message}}
        else:
            body = {"error": {"code": "IMG.0001", "message": message}}
        raw = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(raw)).encode())]})
        await send({"type": "http.response.body", "body": raw})


class _BodyTooLarge(Exception):
    pass

"""Pure ASGI middleware: request ids, path prefixes, access log and metrics, and the JSON body size limit."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Protocol

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openims import logs, metrics
from openims.api.errors import ims_body, is_iam_path, keystone_body
from openims.errors import title_of

access_log = logging.getLogger("openims.access")

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


def route_template(scope: Scope) -> str:
    """The template of the route that answered (``/v2/images/{image_id}``), or ``metrics.UNMATCHED``.

    Never the path itself: a label value per image id would grow without bound.
    """
    route = scope.get("route")  # set by the router on the scope it was given (FastAPI's APIRoute.matches)
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else metrics.UNMATCHED


# Probes answered 2xx are logged at DEBUG: a balancer asking every few seconds would drown the access log.
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestAuditor(Protocol):
    """What ``ObservedMiddleware`` hands each finished request to for the audit trail (``api.auditing``)."""

    def wants_response(self, method: str, route: str, status: int) -> bool:
        """Whether the trace needs the response body (a creation's new id); bounded, read for ids only."""

    async def record(self, scope: Scope, status: int, ctx: logs.LogContext, response: bytes | None) -> None:
        """Record the request's trace when it is one to record; never raises."""


# A response body kept for the auditor is at most this long (a creation's body is far smaller).
AUDIT_RESPONSE_LIMIT = 64 * 1024


class ObservedMiddleware(HttpMiddleware):
    """Per request: the log context of every line logged while it runs (``openims.logs``), its metrics
    (count and duration by method, route template and status), one access-log line (unless
    ``OPENIMS_ACCESS_LOG`` turns it off) and — once its status is known — its audit trace (``auditor``,
    when given: mutating calls and failed authentications).

    It must sit inside ``PrefixMiddleware``, which routes a prefixed request with a copy of the scope: the
    router records the matched route on the scope this middleware passed on.
    """

    def __init__(self, app: ASGIApp, *, auditor: RequestAuditor | None = None, access_log: bool = True) -> None:
        super().__init__(app)
        self.auditor = auditor
        self.access_log = access_log

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before it responded
        ctx = logs.LogContext(request_id=scope.get("state", {}).get("request_id"))
        auditor = self.auditor
        kept: list[bytes] | None = None  # the response body, when the auditor wants it

        async def send_observed(message: Message) -> None:
            nonlocal status, kept
            if message["type"] == "http.response.start":
                status = message["status"]
                if auditor is not None and auditor.wants_response(scope["method"], route_template(scope), status):
                    kept = []
            elif kept is not None and message["type"] == "http.response.body":
                body = message.get("body", b"")
                if sum(map(len, kept)) + len(body) <= AUDIT_RESPONSE_LIMIT:
                    kept.append(body)
                else:
                    kept = None
            await send(message)

        with logs.bound(ctx):
            try:
                await self.app(scope, receive, send_observed)
            finally:
                seconds = time.perf_counter() - started
                method, route = scope["method"], route_template(scope)
                metrics.observe_request(method, route, status, seconds)
                if self.access_log:
                    quiet = route in _PROBES and status < 300
                    ms = seconds * 1000
                    access_log.log(logging.DEBUG if quiet else logging.INFO, "%s %s %d %.1f ms", method, route,
                                   status, ms, extra={"fields": {"route": route, "method": method, "status": status,
                                                                 "duration_ms": round(ms, 3)}})
                if auditor is not None:
                    await auditor.record(scope, status, ctx, b"".join(kept) if kept is not None else None)


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

"""Who is calling: a token or an AK/SK signature → Caller, and the permission checks routes declare.

Token and signature are two equal ways in: both resolve to the same ``Caller`` (user, project,
roles). A signed request names its project with ``X-Project-Id`` (or the ``{project_id}`` of its
path); without one it speaks for the user's account, as a domain-scoped token does.

The signature covers the body's hash. Ordinary bodies are read in full before the route runs
(Starlette caches them for the route). Streaming uploads are not buffered: they must declare
their hash in ``X-Sdk-Content-Sha256`` (``UNSIGNED-PAYLOAD``, or the hex digest of the body,
which ``SignedPayloadMiddleware`` then checks as the bytes arrive and which fails the upload
before it is stored when they differ).
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope, Send

from openims import logs, metrics
from openims.api import auditing
from openims.api.errors import is_iam_path
from openims.api.middleware import HttpMiddleware, is_streaming_upload, original_path
from openims.errors import ApigThrottled, IamUnauthorized, ImsForbidden, ServiceError, ServiceUnavailable
from openims.iam import access_keys, signing
from openims.iam.ratelimit import Limit
from openims.iam.roles import Permission, permissions_of
from openims.iam.tokens import TokenData
from openims.runtime import Runtime

# Where an armed streaming check waits for the body (the ASGI scope's shared "state").
_STREAM_CHECK = "openims.signed_payload"


@dataclass(frozen=True)
class Caller:
    token: TokenData

    @property
    def user_id(self) -> str:
        return self.token.user_id

    @property
    def domain_id(self) -> str:
        return self.token.user_domain_id

    @property
    def project_id(self) -> str:
        if not self.token.project_id:
            raise ImsForbidden("This operation needs a project: a project-scoped token, or X-Project-Id on a "
                               "signed request.")
        return self.token.project_id

    @property
    def access_key(self) -> str | None:
        """The access key a signed request was made with (None for tokens)."""
        return self.token.extra.get("access_key")

    def can(self, permission: Permission) -> bool:
        return permission in permissions_of(self.token.roles)


# The dependencies below are async on purpose: FastAPI runs a sync dependency in the thread pool,
# a hop that costs more than the work itself on every request. The token path is CPU-only (the
# revocation view refreshes from the database at most once a second); the signature path reads
# the access key from the database, so it goes to a thread.


def runtime_of(request: Request) -> Runtime:
    """The runtime, for the hot read routes: each dependency node (``RuntimeDep``) costs per request."""
    rt: Runtime = request.app.state.runtime
    return rt


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _is_signed(request: Request) -> bool:
    # A token, when present, is what authenticates; the signature path is for requests without one.
    return not request.headers.get("x-auth-token") and signing.is_signature_scheme(
        request.headers.get("authorization"))


def _is_streaming(request: Request) -> bool:
    # The uploads BodyLimitMiddleware lets through unbuffered (PUT /obs/{bucket}/{key}, PUT
    # /v2/images/{id}/file and /stage); every other body is read in full like any request.
    return is_streaming_upload(request.method, request.scope["path"])


async def signed_body(request: Request) -> bytes | None:
    """The exact body bytes a signature covers; read only for signed, non-streaming requests."""
    if not _is_signed(request) or _is_streaming(request):
        return None
    return await request.body()


SignedBodyDep = Annotated[bytes | None, Depends(signed_body)]


def caller_from_token(rt: Runtime, token: str) -> Caller:
    data = rt.codec.verify(token.strip())
    if rt.revocations.is_revoked(data):
        raise IamUnauthorized("The token has been revoked.")
    return Caller(data)


async def authenticate(request: Request, rt: RuntimeDep, body: SignedBodyDep) -> Caller:
    token = request.headers.get("x-auth-token")
    method = "token" if token else "signature" if _is_signed(request) else None
    if method is None:
        raise IamUnauthorized("The request you have made requires authentication (X-Auth-Token, or an AK/SK "
                              "signature).")
    try:
        caller = (caller_from_token(rt, token) if token
                  else await run_in_threadpool(_rate_limited_signed_caller, request, rt, body))
    except (ServiceUnavailable, ApigThrottled):
        raise  # the database, or a rate limit: not the credentials
    except ServiceError:
        metrics.AUTH_FAILURES.labels(method).inc()
        raise
    # The request's log lines (and its access line) say who called.
    logs.note_caller(user_id=caller.user_id, account=caller.domain_id, project=caller.token.project_id)
    if caller.access_key is not None:
        auditing.note(request.scope, auditing.ACCESS_KEY, caller.access_key)
    return caller


async def optional_caller(request: Request, rt: RuntimeDep, body: SignedBodyDep) -> Caller | None:
    """The caller when the request carries credentials, else None (for routes with other ways in)."""
    if request.headers.get("x-auth-token") or _is_signed(request):
        return await authenticate(request, rt, body)
    return None


CallerDep = Annotated[Caller, Depends(authenticate)]
OptionalCallerDep = Annotated[Caller | None, Depends(optional_caller)]


# ---------------------------------------------------------------- signatures


def _raw_headers(request: Request) -> dict[str, bytes]:
    """Lower-case name → the value bytes as received; a repeated header's values joined by ','."""
    out: dict[str, bytes] = {}
    for name, value in request.scope["headers"]:
        key = name.decode("latin-1").lower()
        out[key] = out[key] + b"," + value if key in out else value
    return out


def _header(headers: dict[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1").strip() if value is not None else None


def _payload_hashes(request: Request, algorithm: signing.Algorithm, body: bytes | None,
                    headers: dict[str, bytes]) -> tuple[str, ...]:
    declared = _header(headers, signing.content_hash_header(algorithm))
    empty = signing.empty_hash(algorithm)
    if body is None:
        # A streamed upload: its hash must be declared up front; a real digest is checked as it arrives.
        length = _header(headers, "content-length")
        if length == "0" or (length is None and "transfer-encoding" not in headers):
            return (empty,) if declared is None else (empty, declared)
        if declared is None:
            raise signing.refused("a signed upload must carry X-Sdk-Content-Sha256 (X-Sdk-Content-Sm3 for SM3): "
                                  "UNSIGNED-PAYLOAD, or the hex digest of the body.")
        if declared != signing.UNSIGNED_PAYLOAD:
            request.scope.setdefault("state", {})[_STREAM_CHECK] = _StreamedPayloadCheck(algorithm, declared)
        return (declared,)
    if not body:
        # The SDK signs an empty body with the empty hash whatever it declares.
        return (empty,) if declared is None else (empty, declared)
    if declared is None:
        return (signing.hex_digest(algorithm, body),)
    if declared != signing.UNSIGNED_PAYLOAD and not hmac.compare_digest(
            declared.lower(), signing.hex_digest(algorithm, body)):
        raise signing.refused("the body does not match the hash declared in its content-hash header.")
    return (declared,)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # an IPv4 peer on a dual-stack socket
    return address


def source_address(request: Request, rt: Runtime) -> str | None:
    """The caller's address for the per-source rate limits: the TCP peer's, or — when the peer is one of
    ``OPENIMS_TRUSTED_PROXIES`` — the nearest X-Forwarded-For entry that is not a trusted proxy (the
    entries left of it could be written by anyone)."""
    peer = request.client.host if request.client else None
    trusted = rt.settings.trusted_proxy_networks
    if peer is None or not trusted:
        return peer
    address = _address(peer)
    if address is None or not any(address in net for net in trusted):
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")).split(",")
    for entry in reversed([e for e in forwarded if e.strip()]):
        hop = _address(entry)
        if hop is None:
            return peer  # a malformed entry: nothing left of it can be believed
        if not any(hop in net for net in trusted):
            return str(hop)
    return peer


def _rate_limited_signed_caller(request: Request, rt: Runtime, body: bytes | None) -> Caller:
    """The signed caller, unless its access key or its address already failed too often (iam.ratelimit):
    then 429 before the signature is checked. A failure counts against both."""
    try:
        access_key: str | None = signing.parse_authorization(request.headers["authorization"]).access_key
    except ServiceError:
        access_key = None  # a malformed header counts against its address only
    if access_key is not None:
        auditing.note(request.scope, auditing.ACCESS_KEY, access_key)  # a failed signature's trace names it
    counted = [(Limit.SIGNATURE_KEY, access_key), (Limit.SIGNATURE_SOURCE, source_address(request, rt))]
    refusal = rt.limits.over(counted)
    if refusal is not None:
        metrics.RATE_LIMITED.labels(refusal.limit.value).inc()
        raise ApigThrottled(refusal.message, retry_after=refusal.retry_after)
    try:
        return _signed_caller(request, rt, body)
    except ServiceUnavailable:
        raise
    except ServiceError:
        rt.limits.hit(counted)  # its own short transaction; a failure to count is logged, not raised
        raise


def _signed_caller(request: Request, rt: Runtime, body: bytes | None) -> Caller:
    auth = signing.parse_authorization(request.headers["authorization"])
    headers = _raw_headers(request)
    now = rt.clock()
    sdk_date = signing.check_date(_header(headers, "x-sdk-date"), now)
    signing.check_signed_headers(auth, headers)
    signing.check_scope(auth, sdk_date, rt.settings.region)
    # The path the client sent and signed — /image/v2/… stays /image/v2/…, not the routed /v2/… —
    # percent-decoded (request.url would re-parse it and cut at a decoded '?').
    received = signing.ReceivedRequest(
        method=request.method, path=original_path(request.scope),
        query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=headers, payload_hashes=_payload_hashes(request, auth.algorithm, body, headers))
    project_id = _header(headers, "x-project-id")
    if not project_id and not is_iam_path(request.scope["path"]):
        # IMS paths that carry the project (/v1/{project_id}/jobs/…) need no header; IAM paths name
        # projects as the object of the call (/v3/projects/{project_id}), not as the caller's scope.
        project_id = request.path_params.get("project_id")
    with rt.db.transaction(readonly=True) as session:
        ident = access_keys.authenticate_signed(
            session, rt.credential_cipher, auth, received, sdk_date, now=now,
            security_token=_header(headers, "x-security-token"), project_id=project_id or None,
            domain_id=_header(headers, "x-domain-id"))
    if ident.stale_last_use:
        access_keys.record_use(rt.db, ident.access_key, now)
    # The synthetic token of a signed request lives as long as its key, or a token's lifetime.
    expires_at = ident.expires_at or now + dt.timedelta(seconds=rt.settings.token_ttl)
    data = TokenData(
        user_id=ident.user_id, user_domain_id=ident.domain_id, methods=("hmac",), roles=ident.roles,
        issued_at=now, expires_at=expires_at, audit_id=secrets.token_urlsafe(16),
        project_id=ident.project_id, domain_id=None if ident.project_id else ident.domain_id,
        extra={"access_key": ident.access_key},
    )
    return Caller(data)


class _StreamedPayloadCheck:
    """The declared digest of a streamed body, compared once its last byte has arrived."""

    def __init__(self, algorithm: signing.Algorithm, declared: str) -> None:
        self._hash = signing.new_hash(algorithm)
        self._declared = declared.lower()
        self.started = False

    def feed(self, chunk: bytes, more: bool) -> None:
        self.started = True
        self._hash.update(chunk)
        if not more and not hmac.compare_digest(self._hash.hexdigest(), self._declared):
            raise signing.refused("the uploaded body does not match the hash declared in X-Sdk-Content-Sha256.")


class SignedPayloadMiddleware(HttpMiddleware):
    """Hashes a streamed body as the route reads it when the signature check armed a digest to meet.

    Raising from ``receive`` fails the route while it still reads: upload routes write to a
    temporary name and publish only after the last byte, so a mismatching body is never stored.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope.setdefault("state", {})
        seen_before_check = 0

        async def checked_receive() -> Message:
            nonlocal seen_before_check
            message = await receive()
            if message["type"] != "http.request":
                return message
            check: _StreamedPayloadCheck | None = state.get(_STREAM_CHECK)
            chunk = message.get("body", b"")
            if check is None:
                seen_before_check += len(chunk)
            else:
                if not check.started and seen_before_check:
                    # Bytes went by before the check was armed: it cannot vouch for the body.
                    raise signing.refused("the body could not be checked against its declared hash.")
                check.feed(chunk, bool(message.get("more_body", False)))
            return message

        await self.app(scope, checked_receive, send)


# ---------------------------------------------------------------- permissions


def _project_checked(request: Request, caller: Caller) -> None:
    path_project = request.path_params.get("project_id")
    if path_project is not None and path_project != caller.token.project_id:
        raise ImsForbidden("The project in the path is not the project of the token.")


async def _permitted(request: Request, permission: Permission, action: str) -> Caller:
    # One flat dependency rather than a chain (runtime → body → caller → check): FastAPI's
    # resolution of each dependency node costs about as much as the check itself.
    rt: Runtime = request.app.state.runtime
    caller = await authenticate(request, rt, await signed_body(request))
    _project_checked(request, caller)
    if not caller.can(permission):
        raise ImsForbidden(f"The role is invalid: no permission to {action} IMS resources.")
    return caller


async def reader(request: Request) -> Caller:
    return await _permitted(request, Permission.READ, "read")


async def writer(request: Request) -> Caller:
    return await _permitted(request, Permission.WRITE, "change")


async def downloader(request: Request) -> Caller:
    return await _permitted(request, Permission.DOWNLOAD, "download the data of")


ReaderDep = Annotated[Caller, Depends(reader)]
WriterDep = Annotated[Caller, Depends(writer)]
DownloaderDep = Annotated[Caller, Depends(downloader)]

"""IAM tokens: issue (POST), validate (GET/HEAD), revoke (DELETE) on /v3/auth/tokens."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from openims import logs, metrics
from openims.api import auditing
from openims.api.auth import Caller, CallerDep, RuntimeDep, source_address
from openims.api.deps import SessionDep, api_router
from openims.api.iam_routes import is_account_admin
from openims.api.iam_wire import AuthRequest, catalog, iso
from openims.api.openapi_docs import OBJECT, STRING, array, json_response, obj
from openims.concurrency import hashing_limiter
from openims.db.models import Domain, Project, Role, User
from openims.errors import IamBadRequest, IamNotFound, IamRateLimited, IamTooManyRequests, IamUnauthorized
from openims.iam.ratelimit import Limit, Refusal
from openims.iam.service import WRONG_PASSWORD, LoginAttempt, PasswordIdentity, ScopeRequest
from openims.iam.tokens import TokenData
from openims.runtime import Runtime

router = api_router(tags=["iam-tokens"])


def _scope_request(req: AuthRequest) -> ScopeRequest:
    scope = req.auth.scope
    if scope is None or scope == "unscoped" or isinstance(scope, str):
        return ScopeRequest()
    if scope.project is not None:
        p = scope.project
        d = p.domain
        return ScopeRequest(project_id=p.id, project_name=p.name, domain_id=d.id if d else None,
                            domain_name=d.name if d else None, kind="project")
    if scope.domain is not None:
        return ScopeRequest(domain_id=scope.domain.id, domain_name=scope.domain.name, kind="domain")
    return ScopeRequest()


def token_body(session: Session, rt: Runtime, data: TokenData, *, with_catalog: bool) -> dict[str, Any]:
    user = session.get(User, data.user_id)
    if user is None:
        raise IamUnauthorized("The token's user no longer exists.")
    user_domain = session.get(Domain, user.domain_id)
    assert user_domain is not None
    role_ids = {r.name: r.id for r in session.query(Role).filter(Role.name.in_(data.roles))}
    body: dict[str, Any] = {
        "methods": list(data.methods),
        "expires_at": iso(data.expires_at),
        "issued_at": iso(data.issued_at),
        "audit_ids": [data.audit_id],
        "user": {
            "id": user.id,
            "name": user.name,
            "password_expires_at": None,
            "domain": {"id": user_domain.id, "name": user_domain.name},
        },
        "roles": [{"id": role_ids.get(name, "0"), "name": name} for name in data.roles],
    }
    if data.project_id:
        project = session.get(Project, data.project_id)
        if project is None:
            raise IamUnauthorized("The token's project no longer exists.")
        pdomain = session.get(Domain, project.domain_id)
        assert pdomain is not None
        body["project"] = {"id": project.id, "name": project.name,
                           "domain": {"id": pdomain.id, "name": pdomain.name}}
        body["is_domain"] = False
    elif data.domain_id:
        domain = session.get(Domain, data.domain_id)
        assert domain is not None
        body["domain"] = {"id": domain.id, "name": domain.name}
    if with_catalog and data.scope != "unscoped":
        body["catalog"] = catalog(rt.settings)
    return body


def _truthy(v: str | None) -> bool:
    return v is not None and v != "" and v.lower() not in ("0", "false", "no")


def _find_login(rt: Runtime, ident: PasswordIdentity) -> LoginAttempt:
    with rt.db.transaction(readonly=True) as s:
        return rt.authenticator.find_login(s, ident)


def _record_failure(rt: Runtime, attempt: LoginAttempt) -> None:
    with rt.db.transaction() as s:
        rt.authenticator.record_failure(s, attempt)


def _password_token(rt: Runtime, attempt: LoginAttempt, scope: ScopeRequest,
                    with_catalog: bool) -> tuple[str, dict[str, Any]]:
    with rt.db.transaction() as s:
        user = rt.authenticator.complete_login(s, attempt)
        token, data = rt.authenticator.issue_for(s, user, scope, ("password",))
        return token, token_body(s, rt, data, with_catalog=with_catalog)


def _rescoped_token(rt: Runtime, old: TokenData, scope: ScopeRequest,
                    with_catalog: bool) -> tuple[str, dict[str, Any]]:
    with rt.db.transaction(readonly=True) as s:
        user = s.get(User, old.user_id)
        if user is None or not user.enabled:
            raise IamUnauthorized("The token's user is unknown or disabled.")
        # A rescoped token never outlives the token it came from (as Keystone).
        token, data = rt.authenticator.issue_for(s, user, scope, old.methods, expires_at=old.expires_at)
        return token, token_body(s, rt, data, with_catalog=with_catalog)


async def _limited(rt: Runtime, counted: list[tuple[Limit, str | None]]) -> None:
    """Count this request against the rate limits (iam.ratelimit); past one, 429 with Retry-After."""
    refusal: Refusal | None = await run_in_threadpool(rt.limits.hit, counted)
    if refusal is not None:
        metrics.RATE_LIMITED.labels(refusal.limit.value).inc()
        raise IamRateLimited(refusal.message, retry_after=refusal.retry_after)


_TOKEN = obj("token", token=obj("methods", "expires_at", "issued_at", "user", methods=array(STRING), expires_at=STRING,
                                 issued_at=STRING, user=obj("id", "name", "domain", id=STRING, name=STRING,
                                                            domain=obj("id", "name", id=STRING, name=STRING)),
                                 roles=array(obj("id", "name", id=STRING, name=STRING)), project=OBJECT, domain=OBJECT,
                                 catalog=array(OBJECT)))


# The token GET, HEAD and DELETE act on (X-Auth-Token is the caller's).
_SUBJECT: dict[str, Any] = {"parameters": [{"name": "X-Subject-Token", "in": "header", "required": True,
                                             "schema": {"type": "string", "minLength": 1},
                                             "description": "The token to validate, check or revoke"}]}


@router.post("/v3/auth/tokens", status_code=201, summary="Obtain a token (password or token method)",
             responses={201: json_response("The token (its id in X-Subject-Token)", _TOKEN),
                        400: {"description": "Invalid request (Keystone's error shape)"},
                        401: {"description": "Wrong credentials, or a disabled user, project or account"},
                        429: {"description": "Rate-limited or locked out (Retry-After)"}})
async def create_token(req: AuthRequest, request: Request, rt: RuntimeDep,
                       nocatalog: str | None = Query(default=None, max_length=16)) -> JSONResponse:
    """A password login in three steps, so that the slow one (argon2) holds no transaction: find the
    user (a read), verify the password (on the hashing threads), then record the outcome (a short write)."""
    methods = tuple(req.auth.identity.methods)
    method = "password" if "password" in methods else "token"
    if req.auth.identity.password is not None:
        # Whom a failed login tried, for its audit trace (ids and names only, never the password).
        named, domain = req.auth.identity.password.user, req.auth.identity.password.user.domain
        auditing.note(request.scope, auditing.LOGIN_SUBJECT, {
            "user_id": named.id, "user_name": named.name,
            "domain_id": domain.id if domain else None, "domain_name": domain.name if domain else None})
    try:
        token, body = await _issue(req, rt, nocatalog, source_address(request, rt))
    except IamRateLimited:
        raise  # refused before the credentials were tried (counted in openims_rate_limited)
    except (IamUnauthorized, IamTooManyRequests):
        metrics.AUTH_FAILURES.labels(method).inc()
        raise
    metrics.TOKENS_ISSUED.labels(method).inc()
    user, project = body["user"], body.get("project")
    logs.note_caller(user_id=user["id"], account=user["domain"]["id"], project=project["id"] if project else None)
    return JSONResponse({"token": body}, status_code=201, headers={"X-Subject-Token": token})


async def _issue(req: AuthRequest, rt: Runtime, nocatalog: str | None,
                 source: str | None) -> tuple[str, dict[str, Any]]:
    ident = req.auth.identity
    scope = _scope_request(req)
    methods = tuple(ident.methods)
    with_catalog = not _truthy(nocatalog)
    if "password" in methods:
        if ident.password is None:
            raise IamBadRequest("'password' is listed in methods but no password identity is given.")
        u = ident.password.user
        d = u.domain
        pid = PasswordIdentity(password=u.password, user_id=u.id, user_name=u.name,
                               domain_id=d.id if d else None, domain_name=d.name if d else None)
        attempt = await run_in_threadpool(_find_login, rt, pid)
        # Every attempt counts, right or wrong, before the password is checked: a refused one costs no
        # hashing and is not a failed login (the lockout counter is left alone). A user that does not
        # exist is counted by the name it was asked by.
        who = attempt.user_id or (f"id:{pid.user_id}" if pid.user_id else
                                  f"name:{pid.domain_id or ''}:{pid.domain_name or ''}:{pid.user_name}")
        await _limited(rt, [(Limit.LOGIN_USER, who), (Limit.LOGIN_SOURCE, source)])
        ok = await anyio.to_thread.run_sync(rt.authenticator.verify, attempt, pid.password,
                                            limiter=hashing_limiter())
        if not ok:
            # Counted even though the request fails: its own transaction.
            await run_in_threadpool(_record_failure, rt, attempt)
            raise IamUnauthorized(WRONG_PASSWORD)
        await _limited(rt, [(Limit.TOKEN_USER, attempt.user_id)])
        token, body = await run_in_threadpool(_password_token, rt, attempt, scope, with_catalog)
    elif "token" in methods:
        if ident.token is None:
            raise IamBadRequest("'token' is listed in methods but no token is given.")
        old = rt.codec.verify(ident.token.id)
        if rt.revocations.is_revoked(old):
            raise IamUnauthorized("The token has been revoked.")
        await _limited(rt, [(Limit.TOKEN_USER, old.user_id)])
        token, body = await run_in_threadpool(_rescoped_token, rt, old, scope, with_catalog)
    else:
        raise IamBadRequest(f"Unsupported authentication method(s): {', '.join(methods)}.")
    return token, body


def _subject(request: Request, rt: Runtime) -> TokenData:
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise IamBadRequest("X-Subject-Token is missing.")
    try:
        data = rt.codec.verify(subject.strip())
    except IamUnauthorized as exc:
        raise IamNotFound("The token in X-Subject-Token is invalid or has expired.") from exc
    if rt.revocations.is_revoked(data):
        raise IamNotFound("The token in X-Subject-Token has been revoked.")
    return data


def _may_inspect(session: Session, caller: Caller, subject: TokenData) -> None:
    # Users validate their own tokens; account administrators validate any in their account.
    if caller.user_id != subject.user_id and not (
        caller.domain_id == subject.user_domain_id and is_account_admin(session, caller)
    ):
        raise IamNotFound("The token in X-Subject-Token could not be found.")


@router.get("/v3/auth/tokens", summary="Validate a token and return its body",
            responses={200: json_response("The token in X-Subject-Token", _TOKEN),
                       400: {"description": "X-Subject-Token is missing"},
                       401: {"description": "Missing or invalid token"},
                       404: {"description": "The subject token is invalid, revoked or not yours to see"}},
            openapi_extra=_SUBJECT)
def validate_token(request: Request, caller: CallerDep, session: SessionDep, rt: RuntimeDep,
                   nocatalog: str | None = Query(default=None, max_length=16)) -> JSONResponse:
    data = _subject(request, rt)
    _may_inspect(session, caller, data)
    body = {"token": token_body(session, rt, data, with_catalog=not _truthy(nocatalog))}
    return JSONResponse(body, headers={"X-Subject-Token": request.headers["x-subject-token"]})


@router.head("/v3/auth/tokens", status_code=200, summary="Check a token", response_class=Response,
             responses={400: {"description": "X-Subject-Token is missing"},
                        401: {"description": "Missing or invalid token"},
                        404: {"description": "The subject token is invalid, revoked or not yours to see"}},
            openapi_extra=_SUBJECT)
def check_token(request: Request, caller: CallerDep, session: SessionDep, rt: RuntimeDep) -> Response:
    # 200 as the IAM status table and Keystone's code answer (the prose of both says 204).
    data = _subject(request, rt)
    _may_inspect(session, caller, data)
    return Response(status_code=200, headers={"X-Subject-Token": request.headers["x-subject-token"]})


@router.delete("/v3/auth/tokens", status_code=204, summary="Revoke a token", openapi_extra=_SUBJECT)
def revoke_token(request: Request, caller: CallerDep, session: SessionDep, rt: RuntimeDep) -> Response:
    data = _subject(request, rt)
    _may_inspect(session, caller, data)
    rt.revocations.revoke_token(session, data)
    return Response(status_code=204)

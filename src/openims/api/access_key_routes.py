"""IAM access keys (``/v3.0/OS-CREDENTIAL/…``) and the STS caller identity: wire ↔ ``iam.access_keys``.

Shapes follow ``reference/iam/api-ref/source/apis/access_key_management``. The secret appears in
the creating response only; every other answer carries the access key and its metadata.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from openims.api.auth import Caller, CallerDep, OptionalCallerDep, RuntimeDep, caller_from_token
from openims.api.deps import SessionDep, api_router
from openims.api.iam_wire import iso
from openims.api.openapi_docs import STRING, Schema, json_response, model_rules, obj
from openims.db.models import AccessKey, User
from openims.errors import IamBadRequest, IamUnauthorized
from openims.iam import access_keys
from openims.iam.admin import Actor, actor_for
from openims.iam.roles import Permission

router = api_router(tags=["iam-access-keys"])


class _Body(BaseModel):
    # Unknown attributes are ignored, as IAM ignores extras it does not store.
    model_config = ConfigDict(extra="ignore")


# What iam.access_keys checks by hand (Keystone's 400), for the document: a description of at most 255
# characters without control characters; a status active or inactive; a temporary key's duration.
DESCRIPTION_RULE: Schema = {"maxLength": access_keys.MAX_DESCRIPTION, "pattern": r"^[^\x00-\x1f]*$"}
DURATION_RULE: Schema = {"minimum": access_keys.TEMPORARY_MIN_SECONDS, "maximum": access_keys.TEMPORARY_MAX_SECONDS}
# The only method: this deployment has no agencies (assume_role).
STS_METHODS = ("token",)


class CredentialCreate(_Body):
    model_config = ConfigDict(json_schema_extra=model_rules(description=DESCRIPTION_RULE))

    user_id: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=1024)


class CredentialCreateRequest(_Body):
    credential: CredentialCreate


class CredentialUpdate(_Body):
    model_config = ConfigDict(json_schema_extra=model_rules(description=DESCRIPTION_RULE,
                                                            status={"enum": list(access_keys.STATUSES)}))

    status: str | None = Field(default=None, max_length=16)
    description: str | None = Field(default=None, max_length=1024)


class CredentialUpdateRequest(_Body):
    credential: CredentialUpdate


class TokenIdentity(_Body):
    model_config = ConfigDict(json_schema_extra=model_rules(duration_seconds=DURATION_RULE))

    id: str | None = Field(default=None, max_length=4096)
    duration_seconds: StrictInt | None = None


class SecurityTokenIdentity(_Body):
    model_config = ConfigDict(json_schema_extra=model_rules(
        duration_seconds=DURATION_RULE,
        methods={"maxItems": len(STS_METHODS), "items": {"type": "string", "enum": list(STS_METHODS)}}))

    methods: list[str] = Field(min_length=1, max_length=4)
    token: TokenIdentity | None = None
    # The reference shows duration_seconds both inside "token" and beside "methods".
    duration_seconds: StrictInt | None = None


class SecurityTokenAuth(_Body):
    identity: SecurityTokenIdentity


class SecurityTokenRequest(_Body):
    auth: SecurityTokenAuth


def _actor(caller: CallerDep, rt: RuntimeDep) -> Actor:
    # A read session of its own: the request's write transaction begins in the endpoint (api.deps).
    with rt.db.transaction(readonly=True) as s:
        return actor_for(s, caller.user_id, caller.domain_id, token_is_admin=caller.can(Permission.IAM_ADMIN),
                         token_is_operator=caller.can(Permission.OPERATOR))


ActorDep = Annotated[Actor, Depends(_actor)]


def _credential(key: AccessKey, *, secret: str | None = None, with_last_use: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": key.user_id,
        "access": key.access,
        "status": key.status,
        "create_time": iso(key.created_at),
        "description": key.description,
    }
    if with_last_use:
        # Documented: never used → the creation time.
        body["last_use_time"] = iso(key.last_used_at or key.created_at)
    if secret is not None:
        body["secret"] = secret
    return body


@router.post("/v3.0/OS-CREDENTIAL/credentials", status_code=201, summary="Create a permanent access key",
             responses={404: {"description": "No such user_id in the caller's account"}})
def create_credential(req: CredentialCreateRequest, actor: ActorDep, session: SessionDep,
                      rt: RuntimeDep) -> dict[str, Any]:
    issued = access_keys.create_permanent(session, rt.credential_cipher, actor, user_id=req.credential.user_id,
                                          description=req.credential.description, now=rt.clock())
    return {"credential": _credential(issued.key, secret=issued.secret)}


@router.get("/v3.0/OS-CREDENTIAL/credentials", summary="List permanent access keys",
            responses={404: {"description": "No such user_id in the caller's account"}})
def list_credentials(actor: ActorDep, session: SessionDep,
                     user_id: str | None = Query(default=None, max_length=64)) -> dict[str, Any]:
    keys = access_keys.list_permanent(session, actor, user_id)
    return {"credentials": [_credential(k) for k in keys]}


@router.get("/v3.0/OS-CREDENTIAL/credentials/{access_key}", summary="Show a permanent access key")
def show_credential(access_key: str, actor: ActorDep, session: SessionDep) -> dict[str, Any]:
    key = access_keys.get_permanent(session, actor, access_key)
    return {"credential": _credential(key, with_last_use=True)}


@router.put("/v3.0/OS-CREDENTIAL/credentials/{access_key}", summary="Enable, disable or describe an access key")
def update_credential(access_key: str, req: CredentialUpdateRequest, actor: ActorDep,
                      session: SessionDep) -> dict[str, Any]:
    change = req.credential
    if change.status is None and change.description is None:
        raise IamBadRequest("Nothing to change: give credential.status and/or credential.description.")
    key = access_keys.update_permanent(session, actor, access_key, status=change.status,
                                       description=change.description)
    return {"credential": _credential(key)}


@router.delete("/v3.0/OS-CREDENTIAL/credentials/{access_key}", status_code=204,
               summary="Delete a permanent access key")
def delete_credential(access_key: str, actor: ActorDep, session: SessionDep) -> Response:
    access_keys.delete_permanent(session, actor, access_key)
    return Response(status_code=204)


@router.post("/v3.0/OS-CREDENTIAL/securitytokens", status_code=201,
             summary="Obtain a temporary access key and security token",
             responses={201: json_response("The temporary access key", obj("credential", credential=obj(
                 "access", "secret", "expires_at", "securitytoken", access=STRING, secret=STRING, expires_at=STRING,
                 securitytoken=STRING))),
                 400: {"description": "Invalid request (Keystone's error shape)"},
                 401: {"description": "Missing or invalid token"}})
def create_security_token(req: SecurityTokenRequest, maybe_caller: OptionalCallerDep, session: SessionDep,
                          rt: RuntimeDep) -> JSONResponse:
    identity = req.auth.identity
    if "assume_role" in identity.methods:
        raise IamBadRequest("The assume_role method is not supported: this deployment has no agencies.")
    if identity.methods != list(STS_METHODS):
        raise IamBadRequest("auth.identity.methods must be [\"token\"].")
    # X-Auth-Token (or a signature) takes precedence over the token in the body, as documented;
    # the official SDK sends only the body.
    caller: Caller | None = maybe_caller
    if caller is None:
        if identity.token is None or not identity.token.id:
            raise IamUnauthorized("A token is required: X-Auth-Token, or auth.identity.token.id.")
        caller = caller_from_token(rt, identity.token.id)
    duration = identity.duration_seconds
    if identity.token is not None and identity.token.duration_seconds is not None:
        duration = identity.token.duration_seconds
    user = session.get(User, caller.user_id)
    if user is None or not user.enabled:
        raise IamUnauthorized("The user of this token is unknown or disabled.")
    # A temporary key never outlives the credential that asked for it.
    issued = access_keys.create_temporary(
        session, rt.credential_cipher, user_id=user.id, now=rt.clock(),
        duration=access_keys.TEMPORARY_DEFAULT_SECONDS if duration is None else duration,
        not_after=caller.token.expires_at)
    body = {"credential": {"access": issued.key.access, "secret": issued.secret,
                           "expires_at": iso(issued.key.expires_at), "securitytoken": issued.security_token}}
    return JSONResponse(body, status_code=201)


@router.get("/v5/caller-identity", summary="Who the caller is (STS GetCallerIdentity)")
def caller_identity(caller: CallerDep, session: SessionDep) -> dict[str, Any]:
    user = session.get(User, caller.user_id)
    if user is None:
        raise IamUnauthorized("The caller's user no longer exists.")
    return {
        "account_id": caller.domain_id,
        "principal_id": user.id,
        "principal_name": user.name,
        "principal_urn": f"iam::{caller.domain_id}:user:{user.name}",
    }

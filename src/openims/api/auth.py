"""Who is calling: token (or, later, signature) → Caller, and the permission checks routes declare."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from openims.errors import ImsForbidden, Unauthorized
from openims.iam.roles import Permission, permissions_of
from openims.iam.tokens import TokenData
from openims.runtime import Runtime


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
            raise ImsForbidden("This operation needs a project-scoped token.")
        return self.token.project_id

    def can(self, permission: Permission) -> bool:
        return permission in permissions_of(self.token.roles)


async def get_runtime(request: Request) -> Runtime:
    # async: a sync dependency costs a thread-pool hop per request.
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def authenticate(request: Request, rt: RuntimeDep) -> Caller:
    # async: verifying is CPU-only (the revocation view refreshes from the database at most once a second).
    token = request.headers.get("x-auth-token")
    if not token:
        raise Unauthorized("The request you have made requires authentication (X-Auth-Token).")
    data = rt.codec.verify(token.strip())
    if rt.revocations.is_revoked(data):
        raise Unauthorized("The token has been revoked.")
    return Caller(data)


CallerDep = Annotated[Caller, Depends(authenticate)]


def _project_checked(request: Request, caller: Caller) -> None:
    path_project = request.path_params.get("project_id")
    if path_project is not None and path_project != caller.token.project_id:
        raise ImsForbidden("The project in the path is not the project of the token.")


async def reader(request: Request, caller: CallerDep) -> Caller:
    _project_checked(request, caller)
    if not caller.can(Permission.READ):
        raise ImsForbidden("The role is invalid: no permission to read IMS resources.")
    return caller


async def writer(request: Request, caller: CallerDep) -> Caller:
    _project_checked(request, caller)
    if not caller.can(Permission.WRITE):
        raise ImsForbidden("The role is invalid: no permission to change IMS resources.")
    return caller


ReaderDep = Annotated[Caller, Depends(reader)]
WriterDep = Annotated[Caller, Depends(writer)]

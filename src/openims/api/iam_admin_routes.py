"""IAM administration routes (Keystone v3 and Huawei IAM shapes): wire ↔ ``iam.admin``.

Handlers parse and render only; every rule (who may, what is valid, tenancy) is in
``openims.iam.admin``. Changes that invalidate tokens commit first and revoke after, so a
failed change never revokes and a revocation never precedes the change it follows.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from sqlalchemy.orm import Session

from openims.api.auth import CallerDep, RuntimeDep
from openims.api.deps import SessionDep, api_router
from openims.api.iam_wire import domain_body, group_body, project_body, role_body, user_body
from openims.api.openapi_docs import Responses, rule
from openims.db.session import after_commit
from openims.errors import IamBadRequest
from openims.iam import accounts, admin, grants
from openims.iam.admin import Actor, Outcome
from openims.iam.grants import Assignment
from openims.iam.passwords import NewPassword
from openims.iam.roles import Permission
from openims.runtime import Runtime

router = api_router(tags=["iam-admin"])



# The name rules iam.admin and iam.accounts check by hand, declared for the document (json_schema_extra: not
# validated here, so a bad name keeps its own message).
_USER_NAME = rule(admin.USER_NAME, admin.USER_NAME_LENGTH)
_GROUP_NAME = rule(r"\S")  # anything but blank (admin._check_group_name), at most MAX_NAME
_DOMAIN_NAME = rule(accounts.DOMAIN_NAME)
_PROJECT_NAME = rule(admin.PROJECT_NAME)  # '<region>_' + the suffix (admin._check_project_name)


def _id() -> Any:
    return Field(default=None, max_length=64)


class _Body(BaseModel):
    # Unknown attributes are ignored, as Keystone ignores extras it does not store.
    model_config = ConfigDict(extra="ignore")


class ProjectCreate(_Body):
    name: str = Field(min_length=1, max_length=64, json_schema_extra=_PROJECT_NAME)
    description: str | None = Field(default=None, max_length=255)
    domain_id: str | None = _id()
    parent_id: str | None = _id()
    enabled: StrictBool = True


class ProjectCreateRequest(_Body):
    project: ProjectCreate


class ProjectUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=64, json_schema_extra=_PROJECT_NAME)
    description: str | None = Field(default=None, max_length=255)
    enabled: StrictBool | None = None


class ProjectUpdateRequest(_Body):
    project: ProjectUpdate


class ProjectStatus(_Body):
    status: str = Field(max_length=16)


class ProjectStatusRequest(_Body):
    project: ProjectStatus


class UserCreate(_Body):
    name: str = Field(min_length=1, max_length=64, json_schema_extra=_USER_NAME)
    password: str | None = Field(default=None, max_length=1024)
    enabled: StrictBool = True
    description: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=255)
    domain_id: str | None = _id()
    default_project_id: str | None = _id()


class UserCreateRequest(_Body):
    user: UserCreate


class UserUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=64, json_schema_extra=_USER_NAME)
    password: str | None = Field(default=None, max_length=1024)
    enabled: StrictBool | None = None
    description: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=255)
    domain_id: str | None = _id()
    default_project_id: str | None = _id()


class UserUpdateRequest(_Body):
    user: UserUpdate


class PasswordChange(_Body):
    password: str = Field(min_length=1, max_length=1024)
    original_password: str = Field(min_length=1, max_length=1024)


class PasswordChangeRequest(_Body):
    user: PasswordChange


class GroupCreate(_Body):
    name: str = Field(min_length=1, max_length=64, json_schema_extra=_GROUP_NAME)
    description: str | None = Field(default=None, max_length=255)
    domain_id: str | None = _id()


class GroupCreateRequest(_Body):
    group: GroupCreate


class GroupUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=64, json_schema_extra=_GROUP_NAME)
    description: str | None = Field(default=None, max_length=255)
    domain_id: str | None = _id()


class GroupUpdateRequest(_Body):
    group: GroupUpdate


class DomainCreate(_Body):
    name: str = Field(min_length=1, max_length=64, json_schema_extra=_DOMAIN_NAME)
    description: str | None = Field(default=None, max_length=255)
    enabled: StrictBool = True


class DomainCreateRequest(_Body):
    domain: DomainCreate


class DomainUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=64, json_schema_extra=_DOMAIN_NAME)
    description: str | None = Field(default=None, max_length=255)
    enabled: StrictBool | None = None


class DomainUpdateRequest(_Body):
    domain: DomainUpdate


# ---------------------------------------------------------------- helpers


def _actor(caller: CallerDep, rt: RuntimeDep) -> Actor:
    # A read session of its own: the request's write transaction begins in the endpoint (api.deps).
    with rt.db.transaction(readonly=True) as s:
        return admin.actor_for(s, caller.user_id, caller.domain_id, token_is_admin=caller.can(Permission.IAM_ADMIN),
                               token_is_operator=caller.can(Permission.OPERATOR))


# The caller as ``iam.admin`` sees it.
ActorDep = Annotated[Actor, Depends(_actor)]


def _links(rt: Runtime, request: Request) -> dict[str, Any]:
    query = f"?{request.url.query}" if request.url.query else ""
    return {"self": f"{rt.settings.base_url}{request.url.path}{query}", "previous": None, "next": None}


def _revoke(session: Session, rt: Runtime, outcome: Outcome) -> None:
    # In the request's transaction: the change and the end of the users' tokens commit together.
    for user_id in sorted(outcome.revoke_users):
        rt.revocations.revoke_user(session, user_id, rt.settings.token_ttl)


def _forget_project_after_commit(session: Session, rt: Runtime, project_id: str) -> None:
    # Tokens scoped to a disabled or deleted project stop working: drop the cached status here
    # (other processes see the change within their cache's second).
    after_commit(session, lambda: rt.revocations.forget_project(project_id))


def _no_content() -> Response:
    return Response(status_code=204)


def _forget_domain_after_commit(session: Session, rt: Runtime, domain_id: str) -> None:
    # Tokens of a disabled or deleted account stop working: drop the cached status here (other
    # processes see the change within their cache's second, as for projects).
    after_commit(session, lambda: rt.revocations.forget_domain(domain_id))


# Route-specific errors for the OpenAPI document (api.openapi_docs adds 400/401/403/404/503 everywhere).
_TAKEN: Responses = {409: {"description": "The name is taken"}}
_CREATE: Responses = {404: {"description": "No such domain_id (or not one the caller may name)"}, **_TAKEN}
_HOLDS: Responses = {409: {"description": "It still holds data (images, buckets, ...): delete them first"}}
_LAST_ADMIN: Responses = {409: {"description": "It would leave the account without an enabled administrator"}}
_TAKEN_OR_LAST: Responses = {409: {"description": "The name is taken, or disabling would leave the account "
                                   "without an enabled administrator"}}


# ---------------------------------------------------------------- domains (accounts; the operator's)


@router.post("/v3/domains", responses=_TAKEN, status_code=201,
             summary="Create an account (domain) with its project <region> (operator)")
def create_domain(req: DomainCreateRequest, actor: ActorDep, session: SessionDep,
                  rt: RuntimeDep) -> dict[str, Any]:
    d = req.domain
    made = accounts.create_account(session, actor, rt.clock, rt.settings.region, name=d.name,
                                   description=d.description, enabled=d.enabled)
    return {"domain": domain_body(made.domain, rt.settings)}


@router.get("/v3/domains", summary="List accounts (domains) (operator)")
def list_domains(request: Request, actor: ActorDep, session: SessionDep, rt: RuntimeDep,
                 name: str | None = Query(default=None, max_length=64),
                 enabled: bool | None = None) -> dict[str, Any]:
    found = accounts.list_accounts(session, actor, name=name, enabled=enabled)
    return {"domains": [domain_body(d, rt.settings) for d in found], "links": _links(rt, request)}


@router.get("/v3/domains/{domain_id}", summary="Show an account (domain) (operator)")
def show_domain(domain_id: str, actor: ActorDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    return {"domain": domain_body(accounts.get_account(session, actor, domain_id), rt.settings)}


@router.patch("/v3/domains/{domain_id}", responses=_TAKEN,
              summary="Rename, describe, disable or enable an account (domain) (operator)")
def update_domain(domain_id: str, req: DomainUpdateRequest, actor: ActorDep, session: SessionDep,
                  rt: RuntimeDep) -> dict[str, Any]:
    d = req.domain
    domain = accounts.update_account(session, actor, domain_id, name=d.name, description=d.description,
                                     enabled=d.enabled)
    _forget_domain_after_commit(session, rt, domain_id)
    return {"domain": domain_body(domain, rt.settings)}


@router.delete("/v3/domains/{domain_id}", responses=_HOLDS, status_code=204,
               summary="Delete a disabled account (domain) that holds no data (operator)")
def delete_domain(domain_id: str, actor: ActorDep, session: SessionDep, rt: RuntimeDep) -> Response:
    accounts.delete_account(session, actor, domain_id)
    _forget_domain_after_commit(session, rt, domain_id)
    return _no_content()


# ---------------------------------------------------------------- projects


@router.post("/v3/projects", responses=_CREATE, status_code=201, summary="Create a project (<region>_<suffix>)")
def create_project(req: ProjectCreateRequest, actor: ActorDep, session: SessionDep,
                   rt: RuntimeDep) -> dict[str, Any]:
    p = req.project
    project = admin.create_project(session, actor, rt.clock, rt.settings.region, name=p.name,
                                   description=p.description, domain_id=p.domain_id, parent_id=p.parent_id,
                                   enabled=p.enabled)
    return {"project": project_body(project, rt.settings)}


@router.patch("/v3/projects/{project_id}", responses=_TAKEN, summary="Modify a project")
def update_project(project_id: str, req: ProjectUpdateRequest, actor: ActorDep, session: SessionDep,
                   rt: RuntimeDep) -> dict[str, Any]:
    p = req.project
    project = admin.update_project(session, actor, rt.settings.region, project_id, name=p.name,
                                   description=p.description, enabled=p.enabled)
    _forget_project_after_commit(session, rt, project_id)
    return {"project": project_body(project, rt.settings)}


@router.delete("/v3/projects/{project_id}", responses=_HOLDS, status_code=204, summary="Delete a project")
def delete_project(project_id: str, actor: ActorDep, session: SessionDep, rt: RuntimeDep) -> Response:
    admin.delete_project(session, actor, rt.settings.region, project_id)
    _forget_project_after_commit(session, rt, project_id)
    return _no_content()


@router.get("/v3-ext/projects/{project_id}", summary="Show a project with its Huawei status")
def show_project_status(project_id: str, actor: ActorDep, session: SessionDep,
                        rt: RuntimeDep) -> dict[str, Any]:
    admin.require_admin(actor)
    project = admin.get_project(session, actor, project_id)
    return {"project": {**project_body(project, rt.settings), "status": project.status}}


@router.put("/v3-ext/projects/{project_id}", status_code=204, summary="Set a project's status")
def set_project_status(project_id: str, actor: ActorDep, session: SessionDep, rt: RuntimeDep,
                       body: Any = Body(default=None)) -> Response:
    # Parsed here rather than by FastAPI so errors on /v3-ext keep the Keystone shape.
    try:
        req = ProjectStatusRequest.model_validate(body)
    except ValidationError as exc:
        raise IamBadRequest("Invalid request: expected {\"project\": {\"status\": "
                            "\"normal\" | \"suspended\"}}.") from exc
    admin.set_project_status(session, actor, rt.settings.region, project_id, req.project.status)
    _forget_project_after_commit(session, rt, project_id)
    return _no_content()


# ---------------------------------------------------------------- users


@router.post("/v3/users", responses=_CREATE, status_code=201, summary="Create a user")
def create_user(req: UserCreateRequest, actor: ActorDep, session: SessionDep,
                rt: RuntimeDep) -> dict[str, Any]:
    u = req.user
    # Hashed before the request's transaction begins (api.deps: slow work holds no write lane).
    password = admin.admin_password(actor, rt.hashing, u.password)
    user = admin.create_user(session, actor, rt.clock, name=u.name, password=password,
                             enabled=u.enabled, description=u.description, email=u.email,
                             domain_id=u.domain_id, default_project_id=u.default_project_id)
    return {"user": user_body(user, rt.settings)}


@router.get("/v3/users", summary="List users of the caller's account")
def list_users(request: Request, actor: ActorDep, session: SessionDep, rt: RuntimeDep,
               name: str | None = Query(default=None, max_length=64),
               domain_id: str | None = Query(default=None, max_length=64),
               enabled: bool | None = None) -> dict[str, Any]:
    users = admin.list_users(session, actor, name=name, domain_id=domain_id, enabled=enabled)
    return {"users": [user_body(u, rt.settings) for u in users], "links": _links(rt, request)}


@router.patch("/v3/users/{user_id}", responses=_TAKEN_OR_LAST, summary="Modify a user")
def update_user(user_id: str, req: UserUpdateRequest, actor: ActorDep, session: SessionDep,
                rt: RuntimeDep) -> dict[str, Any]:
    u = req.user
    password = admin.admin_password(actor, rt.hashing, u.password)
    user, outcome = admin.update_user(session, actor, rt.clock, rt.settings.region,
                                      user_id, name=u.name, password=password, enabled=u.enabled,
                                      description=u.description, email=u.email, domain_id=u.domain_id,
                                      default_project_id=u.default_project_id)
    _revoke(session, rt, outcome)
    return {"user": user_body(user, rt.settings)}


@router.delete("/v3/users/{user_id}", responses=_LAST_ADMIN, status_code=204, summary="Delete a user")
def delete_user(user_id: str, actor: ActorDep, session: SessionDep, rt: RuntimeDep) -> Response:
    outcome = admin.delete_user(session, actor, rt.settings.region, user_id)
    _revoke(session, rt, outcome)
    return _no_content()


@router.post("/v3/users/{user_id}/password", status_code=204, summary="Change one's own password")
def change_password(user_id: str, req: PasswordChangeRequest, actor: ActorDep, session: SessionDep,
                    rt: RuntimeDep) -> Response:
    # The two slow steps (verify the old password, hash the new one) before the write transaction.
    with rt.db.transaction(readonly=True) as s:
        verified = admin.verify_own_password(s, actor, rt.hashing, user_id, req.user.original_password)
    password = NewPassword.prepare(rt.hashing, req.user.password)
    outcome = admin.change_own_password(session, actor, rt.clock, user_id, verified_hash=verified,
                                        original_password=req.user.original_password, password=password)
    _revoke(session, rt, outcome)
    return _no_content()


@router.get("/v3/users/{user_id}/groups", summary="Groups a user belongs to")
def list_user_groups(user_id: str, request: Request, actor: ActorDep, session: SessionDep,
                     rt: RuntimeDep) -> dict[str, Any]:
    groups = admin.user_groups(session, actor, user_id)
    return {"groups": [group_body(g, rt.settings) for g in groups], "links": _links(rt, request)}


# ---------------------------------------------------------------- groups


@router.post("/v3/groups", responses=_CREATE, status_code=201, summary="Create a user group")
def create_group(req: GroupCreateRequest, actor: ActorDep, session: SessionDep,
                 rt: RuntimeDep) -> dict[str, Any]:
    g = req.group
    group = admin.create_group(session, actor, rt.clock, name=g.name, description=g.description,
                               domain_id=g.domain_id)
    return {"group": group_body(group, rt.settings)}


@router.get("/v3/groups", summary="List user groups")
def list_groups(request: Request, actor: ActorDep, session: SessionDep, rt: RuntimeDep,
                name: str | None = Query(default=None, max_length=64),
                domain_id: str | None = Query(default=None, max_length=64)) -> dict[str, Any]:
    groups = admin.list_groups(session, actor, name=name, domain_id=domain_id)
    return {"groups": [group_body(g, rt.settings) for g in groups], "links": _links(rt, request)}


@router.get("/v3/groups/{group_id}", summary="Show a user group")
def show_group(group_id: str, actor: ActorDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    admin.require_admin(actor)
    return {"group": group_body(admin.get_group(session, actor, group_id), rt.settings)}


@router.patch("/v3/groups/{group_id}", responses=_TAKEN, summary="Update a user group")
def update_group(group_id: str, req: GroupUpdateRequest, actor: ActorDep, session: SessionDep,
                 rt: RuntimeDep) -> dict[str, Any]:
    g = req.group
    group = admin.update_group(session, actor, group_id, name=g.name, description=g.description,
                               domain_id=g.domain_id)
    return {"group": group_body(group, rt.settings)}


@router.delete("/v3/groups/{group_id}", responses=_LAST_ADMIN, status_code=204, summary="Delete a user group")
def delete_group(group_id: str, actor: ActorDep, session: SessionDep, rt: RuntimeDep) -> Response:
    outcome = admin.delete_group(session, actor, rt.settings.region, group_id)
    _revoke(session, rt, outcome)
    return _no_content()


@router.get("/v3/groups/{group_id}/users", summary="Users in a user group")
def list_group_users(group_id: str, request: Request, actor: ActorDep, session: SessionDep, rt: RuntimeDep,
                     name: str | None = Query(default=None, max_length=64),
                     domain_id: str | None = Query(default=None, max_length=64),
                     enabled: bool | None = None) -> dict[str, Any]:
    users = admin.group_users(session, actor, group_id, name=name, enabled=enabled)
    if domain_id is not None and domain_id != actor.domain_id:
        users = []
    return {"users": [user_body(u, rt.settings) for u in users], "links": _links(rt, request)}


@router.put("/v3/groups/{group_id}/users/{user_id}", status_code=204, summary="Add a user to a group")
def add_group_user(group_id: str, user_id: str, actor: ActorDep, session: SessionDep) -> Response:
    admin.add_member(session, actor, group_id, user_id)
    return _no_content()


@router.head("/v3/groups/{group_id}/users/{user_id}", status_code=204, summary="Is the user in the group")
def check_group_user(group_id: str, user_id: str, actor: ActorDep, session: SessionDep) -> Response:
    if not admin.is_member(session, actor, group_id, user_id):
        return Response(status_code=404)
    return _no_content()


@router.delete("/v3/groups/{group_id}/users/{user_id}", responses=_LAST_ADMIN, status_code=204,
               summary="Remove a user from a group")
def remove_group_user(group_id: str, user_id: str, actor: ActorDep, session: SessionDep,
                      rt: RuntimeDep) -> Response:
    outcome = admin.remove_member(session, actor, rt.settings.region, group_id, user_id)
    _revoke(session, rt, outcome)
    return _no_content()


# ---------------------------------------------------------------- roles


@router.get("/v3/roles", summary="List roles")
def list_roles(request: Request, actor: ActorDep, session: SessionDep, rt: RuntimeDep,
               name: str | None = Query(default=None, max_length=64),
               display_name: str | None = Query(default=None, max_length=128),
               domain_id: str | None = Query(default=None, max_length=64)) -> dict[str, Any]:
    roles = grants.list_roles(session, actor, name=name, display_name=display_name,
                             domain_id=domain_id)
    return {"roles": [role_body(r, rt.settings) for r in roles], "links": _links(rt, request),
            "total_number": len(roles)}


@router.get("/v3/roles/{role_id}", summary="Show a role")
def show_role(role_id: str, actor: ActorDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    return {"role": role_body(grants.show_role(session, actor, role_id), rt.settings)}


# ---------------------------------------------------------------- grants

_GRANT_PATHS = (
    (admin.PROJECT, "/v3/projects/{target_id}/{holders}/{holder_id}/roles", ""),
    (admin.DOMAIN, "/v3/domains/{target_id}/{holders}/{holder_id}/roles", ""),
    (admin.ALL_PROJECTS, "/v3/OS-INHERIT/domains/{target_id}/{holders}/{holder_id}/roles",
     "/inherited_to_projects"),
)


def _grant_routes(target_type: str, holder: str, base: str, suffix: str) -> None:
    """Register list/put/head/delete for one kind of grant target and holder; they differ only in path."""
    word = {admin.PROJECT: "a project", admin.DOMAIN: "the domain", admin.ALL_PROJECTS: "all projects"}
    where = word[target_type]
    # FastAPI names path parameters after the path; these keep the documented names in the schema.
    key = "project_id" if target_type == admin.PROJECT else "domain_id"
    holder_key = f"{holder}_id"
    base = base.replace("{target_id}", "{" + key + "}").replace("{holders}", f"{holder}s") \
        .replace("{holder_id}", "{" + holder_key + "}")
    one = f"{base}/{{role_id}}{suffix}"
    listing = f"{base}{suffix}" if suffix else base

    def target(request: Request) -> str:
        return str(request.path_params[key])

    def holder_id(request: Request) -> str:
        return str(request.path_params[holder_key])

    def list_grants(request: Request, actor: ActorDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
        roles = grants.grant_roles(session, actor, target_type, target(request), holder, holder_id(request))
        return {"roles": [role_body(r, rt.settings) for r in roles], "links": _links(rt, request)}

    def put_grant(request: Request, role_id: str, actor: ActorDep, session: SessionDep) -> Response:
        grants.add_grant(session, actor, target_type, target(request), holder, holder_id(request), role_id)
        return _no_content()

    def head_grant(request: Request, role_id: str, actor: ActorDep, session: SessionDep) -> Response:
        found = grants.has_grant(session, actor, target_type, target(request), holder, holder_id(request),
                                 role_id)
        return _no_content() if found else Response(status_code=404)

    def delete_grant(request: Request, role_id: str, actor: ActorDep, session: SessionDep,
                     rt: RuntimeDep) -> Response:
        outcome = grants.remove_grant(session, actor, rt.settings.region, target_type,
                                     target(request), holder, holder_id(request), role_id)
        _revoke(session, rt, outcome)
        return _no_content()

    name = f"{target_type}_{holder}"
    # The two path parameters the handlers read from the request, described for the schema.
    params = {"parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                             for n in (key, holder_key)]}
    for path, handler, method, status, summary in (
            (listing, list_grants, "GET", 200, f"Roles a {holder} holds on {where}"),
            (one, put_grant, "PUT", 204, f"Grant a role to a {holder} on {where}"),
            (one, head_grant, "HEAD", 204, f"Does a {holder} hold a role on {where}"),
            (one, delete_grant, "DELETE", 204, f"Revoke a role from a {holder} on {where}")):
        verb = {"GET": "list", "PUT": "put", "HEAD": "head", "DELETE": "delete"}[method]
        router.add_api_route(path, handler, methods=[method], status_code=status, name=f"{verb}_grant_{name}",
                             summary=summary, openapi_extra=params,
                             responses=_LAST_ADMIN if method == "DELETE" else None)


for _holder in (grants.GROUP, grants.USER):
    for _type, _base, _suffix in _GRANT_PATHS:
        _grant_routes(_type, _holder, _base, _suffix)


def _assignment_body(a: Assignment, rt: Runtime,
                     names: dict[tuple[str, str], dict[str, Any]] | None = None) -> dict[str, Any]:
    base = rt.settings.base_url
    who = f"{a.holder}s/{a.holder_id}"
    if a.target_type == admin.PROJECT:
        scope: dict[str, Any] = {"project": {"id": a.target_id}}
        link = f"{base}/v3/projects/{a.target_id}/{who}/roles/{a.role_id}"
    elif a.target_type == admin.DOMAIN:
        scope = {"domain": {"id": a.target_id}}
        link = f"{base}/v3/domains/{a.target_id}/{who}/roles/{a.role_id}"
    else:
        scope = {"domain": {"id": a.target_id}, "OS-INHERIT:inherited_to": "projects"}
        link = f"{base}/v3/OS-INHERIT/domains/{a.target_id}/{who}/roles/{a.role_id}/inherited_to_projects"
    body = {"scope": scope, "role": {"id": a.role_id}, a.holder: {"id": a.holder_id}, "links": {"assignment": link}}
    if names is not None:
        body["role"] = names.get(("role", a.role_id), body["role"])
        body[a.holder] = names.get((a.holder, a.holder_id), body[a.holder])
        target = "project" if a.target_type == admin.PROJECT else "domain"
        scope[target] = names.get((admin.PROJECT if target == "project" else admin.DOMAIN, a.target_id),
                                  scope[target])
    return body


@router.get("/v3/role_assignments", summary="List role assignments (grants) of the account")
def list_role_assignments(
    request: Request, actor: ActorDep, session: SessionDep, rt: RuntimeDep,
    group_id: str | None = Query(default=None, alias="group.id", max_length=64),
    user_id: str | None = Query(default=None, alias="user.id", max_length=64),
    role_id: str | None = Query(default=None, alias="role.id", max_length=64),
    project_id: str | None = Query(default=None, alias="scope.project.id", max_length=64),
    domain_id: str | None = Query(default=None, alias="scope.domain.id", max_length=64),
    inherited_to: str | None = Query(default=None, alias="scope.OS-INHERIT:inherited_to", max_length=16),
    include_names: str | None = Query(default=None, max_length=8),
) -> dict[str, Any]:
    if inherited_to is not None and inherited_to != "projects":
        raise IamBadRequest("scope.OS-INHERIT:inherited_to only supports the value 'projects'.")
    found = grants.role_assignments(session, actor, group_id=group_id, user_id=user_id,
                                   role_id=role_id, project_id=project_id, domain_id=domain_id,
                                   inherited_only=inherited_to is not None)
    # Keystone's flag: present (any value but false/0) adds the names.
    names = (grants.assignment_names(session, actor, found)
             if include_names is not None and include_names.lower() not in ("false", "0") else None)
    return {"role_assignments": [_assignment_body(a, rt, names) for a in found], "links": _links(rt, request)}

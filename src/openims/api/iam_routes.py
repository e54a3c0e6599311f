"""IAM reads every caller needs: their projects and domains, project and user lookup."""

from __future__ import annotations

from typing import Any

from fastapi import Query
from sqlalchemy import select

from openims.api.auth import Caller, CallerDep, RuntimeDep
from openims.api.deps import SessionDep, api_router
from openims.api.iam_wire import domain_body, project_body, user_body
from openims.db.models import Domain, Project, User
from openims.errors import IamForbidden, IamNotFound
from openims.iam.admin import actor_for
from openims.iam.holdings import held
from openims.iam.roles import Permission

router = api_router(tags=["iam"])


def is_account_admin(session: SessionDep, caller: Caller) -> bool:
    """An administrator of the whole account: an admin role on the domain or on all its projects."""
    token_admin = caller.can(Permission.IAM_ADMIN)
    return token_admin and actor_for(session, caller.user_id, caller.domain_id, token_is_admin=True).is_admin


def _links(rt: RuntimeDep, path: str) -> dict[str, Any]:
    return {"self": f"{rt.settings.base_url}{path}", "previous": None, "next": None}


@router.get("/v3/projects", summary="List projects of the caller's account")
def list_projects(caller: CallerDep, session: SessionDep, rt: RuntimeDep,
                  name: str | None = Query(default=None, max_length=64),
                  domain_id: str | None = Query(default=None, max_length=64),
                  enabled: bool | None = None) -> dict[str, Any]:
    # Tenancy in the query: only the caller's own account is ever visible (the operator's: any account
    # it names by domain_id).
    operator = caller.can(Permission.OPERATOR)
    if domain_id is not None and domain_id != caller.domain_id and not operator:
        return {"projects": [], "links": _links(rt, "/v3/projects")}
    account = domain_id or caller.domain_id
    stmt = select(Project).where(Project.domain_id == account).order_by(Project.name)
    if name is not None:
        stmt = stmt.where(Project.name == name)
    if enabled is not None:
        stmt = stmt.where(Project.enabled == enabled)
    if not operator and not is_account_admin(session, caller):
        stmt = stmt.where(Project.id.in_(_accessible_project_ids(session, caller.user_id, caller.domain_id)))
    projects = session.scalars(stmt).all()
    return {"projects": [project_body(p, rt.settings) for p in projects], "links": _links(rt, "/v3/projects")}


def _accessible_project_ids(session: SessionDep, user_id: str, domain_id: str) -> list[str]:
    h = held()
    grants = session.execute(select(h.c.target_type, h.c.target_id).where(h.c.user_id == user_id)).all()
    if any(t == "all_projects" for t, _ in grants):
        return list(session.scalars(select(Project.id).where(Project.domain_id == domain_id)))
    return [i for t, i in grants if t == "project"]


@router.get("/v3/auth/projects", summary="Projects the caller can scope a token to")
def auth_projects(caller: CallerDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    ids = _accessible_project_ids(session, caller.user_id, caller.domain_id)
    projects = session.scalars(select(Project).where(Project.id.in_(ids)).order_by(Project.name)).all()
    return {"projects": [project_body(p, rt.settings) for p in projects],
            "links": _links(rt, "/v3/auth/projects")}


@router.get("/v3/auth/domains", summary="Domains the caller can scope a token to")
def auth_domains(caller: CallerDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    domain = session.get(Domain, caller.domain_id)
    domains = [domain_body(domain, rt.settings)] if domain else []
    return {"domains": domains, "links": _links(rt, "/v3/auth/domains")}


@router.get("/v3/projects/{project_id}", summary="Show a project")
def show_project(project_id: str, caller: CallerDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    project = session.get(Project, project_id)
    operator = caller.can(Permission.OPERATOR)
    if project is None or (project.domain_id != caller.domain_id and not operator):
        raise IamNotFound(f"Could not find project: {project_id}.")
    if not operator and not is_account_admin(session, caller) and project.id not in _accessible_project_ids(
        session, caller.user_id, caller.domain_id
    ):
        raise IamForbidden("You are not authorized to perform the requested action.")
    return {"project": project_body(project, rt.settings)}


@router.get("/v3/users/{user_id}", summary="Show a user")
def show_user(user_id: str, caller: CallerDep, session: SessionDep, rt: RuntimeDep) -> dict[str, Any]:
    user = session.get(User, user_id)
    operator = caller.can(Permission.OPERATOR)
    if user is None or (user.domain_id != caller.domain_id and not operator):
        raise IamNotFound(f"Could not find user: {user_id}.")
    if user.id != caller.user_id and not operator and not is_account_admin(session, caller):
        raise IamForbidden("You are not authorized to perform the requested action.")
    return {"user": user_body(user, rt.settings)}

"""Roles and grants: which roles exist, and which groups hold them on a project, the account or all projects.

The rules every administrator action follows (confined to the actor's account, the lock-out
guard) are in ``iam.admin``; this module builds on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openims.db.models import Grant, Group, GroupMember, Role
from openims.errors import IamBadRequest, IamNotFound
from openims.iam.admin import (
    ALL_PROJECTS,
    DOMAIN,
    PROJECT,
    Actor,
    LockoutGuard,
    Outcome,
    get_group,
    get_project,
    get_role,
    insert_if_absent,
    member_ids,
    path_domain,
    require_admin,
)
from openims.iam.roles import BY_NAME, Permission, SystemRole

# ---------------------------------------------------------------- roles


def list_roles(session: Session, actor: Actor, *, name: str | None = None,
               display_name: str | None = None, domain_id: str | None = None) -> Sequence[Role]:
    require_admin(actor)
    if domain_id is not None:
        # Huawei returns only the account's custom policies for domain_id; there are none here.
        return []
    stmt = select(Role).order_by(Role.name)
    if name is not None:
        stmt = stmt.where(Role.name == name)
    if display_name is not None:
        stmt = stmt.where(Role.display_name == display_name)
    return session.scalars(stmt).all()


def show_role(session: Session, actor: Actor, role_id: str) -> Role:
    require_admin(actor)
    return get_role(session, role_id)


def role_policy(role: Role) -> dict[str, Any]:
    """The Huawei policy document a system role stands for, derived from its permissions."""
    system: SystemRole | None = BY_NAME.get(role.name)
    perms = system.permissions if system else frozenset()
    statements: list[dict[str, Any]] = []
    if perms == frozenset(Permission):
        statements.append({"Action": ["*:*:*"], "Effect": "Allow"})
    else:
        if Permission.WRITE in perms:
            statements.append({"Action": ["ims:*:*"], "Effect": "Allow"})
        elif Permission.READ in perms:
            statements.append({"Action": ["ims:*:get*", "ims:*:list*"], "Effect": "Allow"})
        if Permission.IAM_ADMIN in perms:
            statements.append({"Action": ["iam:*:*"], "Effect": "Allow"})
        else:
            statements.append({"Action": ["iam:*:*"], "Effect": "Deny"})
    return {"Version": "1.0", "Statement": statements}


# ---------------------------------------------------------------- grants

# Huawei role display modes: which kind of target a role may be granted on.
_ALLOWED_TYPES = {PROJECT: ("XA", "AA"), ALL_PROJECTS: ("XA", "AA"), DOMAIN: ("AX", "AA")}
_TARGET_WORDS = {PROJECT: "a project", ALL_PROJECTS: "all projects", DOMAIN: "the account (domain)"}


def _grant_parts(session: Session, actor: Actor, target_type: str, target_id: str, group_id: str,
                 role_id: str) -> tuple[Group, Role]:
    require_admin(actor)
    if target_type == PROJECT:
        get_project(session, actor, target_id)
    elif target_type in (DOMAIN, ALL_PROJECTS):
        path_domain(session, actor, target_id)
    else:  # pragma: no cover - routes only pass known types
        raise IamBadRequest(f"Unknown grant target {target_type!r}.")
    return get_group(session, actor, group_id), get_role(session, role_id)


def add_grant(session: Session, actor: Actor, target_type: str, target_id: str, group_id: str,
              role_id: str) -> None:
    """Idempotent, as Keystone: granting twice is not an error."""
    group, role = _grant_parts(session, actor, target_type, target_id, group_id, role_id)
    if role.type not in _ALLOWED_TYPES[target_type]:
        level = {"AX": "account-level", "XA": "project-level"}.get(role.type, role.type)
        raise IamBadRequest(f"Role {role.name} is {level} and cannot be granted on "
                            f"{_TARGET_WORDS[target_type]}.")
    key = (group.id, role.id, target_type, target_id)
    if session.get(Grant, key) is None:
        insert_if_absent(session, Grant(group_id=group.id, role_id=role.id, target_type=target_type,
                                         target_id=target_id))


def has_grant(session: Session, actor: Actor, target_type: str, target_id: str, group_id: str,
              role_id: str) -> bool:
    group, role = _grant_parts(session, actor, target_type, target_id, group_id, role_id)
    return session.get(Grant, (group.id, role.id, target_type, target_id)) is not None


def remove_grant(session: Session, actor: Actor, region: str, target_type: str, target_id: str,
                 group_id: str, role_id: str) -> Outcome:
    group, role = _grant_parts(session, actor, target_type, target_id, group_id, role_id)
    grant = session.get(Grant, (group.id, role.id, target_type, target_id))
    if grant is None:
        raise IamNotFound(f"Could not find the grant of role {role.name} to group {group_id} on "
                          f"{_TARGET_WORDS[target_type]}.")
    guard = LockoutGuard(session, actor.domain_id, region)
    session.delete(grant)
    guard.check()
    # Members' tokens carry the role; they must log in again to drop it.
    return Outcome(revoke_users=member_ids(session, group.id))


def grant_roles(session: Session, actor: Actor, target_type: str, target_id: str,
                group_id: str) -> Sequence[Role]:
    require_admin(actor)
    if target_type == PROJECT:
        get_project(session, actor, target_id)
    else:
        path_domain(session, actor, target_id)
    group = get_group(session, actor, group_id)
    stmt = (select(Role).join(Grant, Grant.role_id == Role.id)
            .where(Grant.group_id == group.id, Grant.target_type == target_type, Grant.target_id == target_id)
            .order_by(Role.name))
    return session.scalars(stmt).all()


@dataclass(frozen=True)
class Assignment:
    group_id: str
    role_id: str
    target_type: str
    target_id: str


def role_assignments(session: Session, actor: Actor, *, group_id: str | None = None,
                     user_id: str | None = None, role_id: str | None = None,
                     project_id: str | None = None, domain_id: str | None = None,
                     inherited_only: bool = False) -> list[Assignment]:
    """Grants of the actor's account, filtered as Keystone's ``GET /v3/role_assignments``."""
    require_admin(actor)
    if group_id is not None and user_id is not None:
        raise IamBadRequest("Specify group.id or user.id, not both.")
    if project_id is not None and domain_id is not None:
        raise IamBadRequest("Specify scope.project.id or scope.domain.id, not both.")
    stmt = (select(Grant).join(Group, Group.id == Grant.group_id)
            .where(Group.domain_id == actor.domain_id)
            .order_by(Grant.target_type, Grant.target_id, Grant.group_id, Grant.role_id))
    if group_id is not None:
        stmt = stmt.where(Grant.group_id == group_id)
    if user_id is not None:
        groups_of_user = select(GroupMember.group_id).where(GroupMember.user_id == user_id)
        stmt = stmt.where(Grant.group_id.in_(groups_of_user))
    if role_id is not None:
        stmt = stmt.where(Grant.role_id == role_id)
    if project_id is not None:
        stmt = stmt.where(Grant.target_type == PROJECT, Grant.target_id == project_id)
    if domain_id is not None:
        types: Iterable[str] = (ALL_PROJECTS,) if inherited_only else (DOMAIN, ALL_PROJECTS)
        stmt = stmt.where(Grant.target_type.in_(tuple(types)), Grant.target_id == domain_id)
    elif inherited_only:
        stmt = stmt.where(Grant.target_type == ALL_PROJECTS)
    return [Assignment(g.group_id, g.role_id, g.target_type, g.target_id) for g in session.scalars(stmt)]

"""Roles and grants: which roles exist, and which groups or users hold them on a project, the account or all projects.

The rules every administrator action follows (confined to the actor's account, the lock-out
guard) are in ``iam.admin``; this module builds on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openims.db.models import Grant, Group, GroupMember, Project, Role, User, UserGrant
from openims.errors import IamBadRequest, IamForbidden, IamNotFound
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
    get_user,
    insert_if_absent,
    member_ids,
    path_domain,
    require_admin,
)
from openims.iam.roles import BY_NAME, OPERATOR_ROLE, TENANT_ALL, Permission, SystemRole

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
    if perms == TENANT_ALL:
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

# Who holds a grant: a group (Huawei's only kind) or a user directly (Keystone's too).
GROUP = "group"
USER = "user"
_HOLDER_MODELS: dict[str, type[Grant] | type[UserGrant]] = {GROUP: Grant, USER: UserGrant}

# Huawei role display modes: which kind of target a role may be granted on.
_ALLOWED_TYPES = {PROJECT: ("XA", "AA"), ALL_PROJECTS: ("XA", "AA"), DOMAIN: ("AX", "AA")}
_TARGET_WORDS = {PROJECT: "a project", ALL_PROJECTS: "all projects", DOMAIN: "the account (domain)"}


def _holder_column(holder: str) -> Any:
    model = _HOLDER_MODELS[holder]
    return model.group_id if model is Grant else model.user_id  # type: ignore[union-attr]


def _grant_parts(session: Session, actor: Actor, target_type: str, target_id: str, holder: str,
                 holder_id: str, role_id: str | None) -> tuple[str, Role | None]:
    """Check the target, the holder and the role are the actor's account's (an operator's: of one
    account); the holder's id and the role."""
    require_admin(actor)
    if target_type == PROJECT:
        account = get_project(session, actor, target_id).domain_id
    elif target_type in (DOMAIN, ALL_PROJECTS):
        account = path_domain(session, actor, target_id).id
    else:  # pragma: no cover - routes only pass known types
        raise IamBadRequest(f"Unknown grant target {target_type!r}.")
    who = get_group(session, actor, holder_id) if holder == GROUP else get_user(session, actor, holder_id)
    if who.domain_id != account:
        # Only an operator reaches two accounts; a grant never joins them.
        raise IamNotFound(f"Could not find {holder}: {holder_id}.")
    role = None if role_id is None else get_role(session, role_id)
    if role is not None and role.name == OPERATOR_ROLE:
        _operator_grant(actor, target_type, holder)
    return who.id, role


def _operator_grant(actor: Actor, target_type: str, holder: str) -> None:
    """The operator role changes hands only by an operator, to a user directly, on its account (issue 13):
    a tenant administrator can neither hand it out nor take it, nor pass it on through a group."""
    if not actor.is_operator:
        raise IamForbidden("You are not authorized to perform the requested action: only an operator grants or "
                           "revokes the operator role.")
    if holder != USER or target_type != DOMAIN:
        raise IamBadRequest("The operator role is granted to a user directly, on the user's account (domain).")


def _key(holder_id: str, role: Role, target_type: str, target_id: str) -> tuple[str, str, str, str]:
    return holder_id, role.id, target_type, target_id


def add_grant(session: Session, actor: Actor, target_type: str, target_id: str, holder: str, holder_id: str,
              role_id: str) -> None:
    """Idempotent, as Keystone: granting twice is not an error."""
    found, role = _grant_parts(session, actor, target_type, target_id, holder, holder_id, role_id)
    assert role is not None
    if role.type not in _ALLOWED_TYPES[target_type]:
        level = {"AX": "account-level", "XA": "project-level"}.get(role.type, role.type)
        raise IamBadRequest(f"Role {role.name} is {level} and cannot be granted on "
                            f"{_TARGET_WORDS[target_type]}.")
    model = _HOLDER_MODELS[holder]
    key = _key(found, role, target_type, target_id)
    if session.get(model, key) is None:
        row = (Grant(group_id=found, role_id=role.id, target_type=target_type, target_id=target_id)
               if holder == GROUP else
               UserGrant(user_id=found, role_id=role.id, target_type=target_type, target_id=target_id))
        insert_if_absent(session, row)


def has_grant(session: Session, actor: Actor, target_type: str, target_id: str, holder: str, holder_id: str,
              role_id: str) -> bool:
    found, role = _grant_parts(session, actor, target_type, target_id, holder, holder_id, role_id)
    assert role is not None
    return session.get(_HOLDER_MODELS[holder], _key(found, role, target_type, target_id)) is not None


def remove_grant(session: Session, actor: Actor, region: str, target_type: str, target_id: str,
                 holder: str, holder_id: str, role_id: str) -> Outcome:
    found, role = _grant_parts(session, actor, target_type, target_id, holder, holder_id, role_id)
    assert role is not None
    grant = session.get(_HOLDER_MODELS[holder], _key(found, role, target_type, target_id))
    if grant is None:
        raise IamNotFound(f"Could not find the grant of role {role.name} to {holder} {holder_id} on "
                          f"{_TARGET_WORDS[target_type]}.")
    owner: Group | User | None = session.get(Group, found) if holder == GROUP else session.get(User, found)
    assert owner is not None  # found by _grant_parts in this transaction
    guard = LockoutGuard(session, owner.domain_id, region)
    session.delete(grant)
    guard.check()
    # The holders' tokens carry the role; they must log in again to drop it.
    return Outcome(revoke_users=member_ids(session, found) if holder == GROUP else {found})


def grant_roles(session: Session, actor: Actor, target_type: str, target_id: str, holder: str,
                holder_id: str) -> Sequence[Role]:
    found, _ = _grant_parts(session, actor, target_type, target_id, holder, holder_id, None)
    model = _HOLDER_MODELS[holder]
    stmt = (select(Role).join(model, model.role_id == Role.id)
            .where(_holder_column(holder) == found, model.target_type == target_type,
                   model.target_id == target_id)
            .order_by(Role.name))
    return session.scalars(stmt).all()


@dataclass(frozen=True)
class Assignment:
    holder: str  # GROUP or USER
    holder_id: str
    role_id: str
    target_type: str
    target_id: str


def role_assignments(session: Session, actor: Actor, *, group_id: str | None = None,
                     user_id: str | None = None, role_id: str | None = None,
                     project_id: str | None = None, domain_id: str | None = None,
                     inherited_only: bool = False) -> list[Assignment]:
    """Grants of the actor's account, filtered as Keystone's ``GET /v3/role_assignments``.

    For ``user_id``, the user's own grants and those of its groups (each named by its holder).
    """
    require_admin(actor)
    if group_id is not None and user_id is not None:
        raise IamBadRequest("Specify group.id or user.id, not both.")
    if project_id is not None and domain_id is not None:
        raise IamBadRequest("Specify scope.project.id or scope.domain.id, not both.")
    found: list[Assignment] = []
    for holder, model in _HOLDER_MODELS.items():
        if holder == USER and group_id is not None:
            continue
        column = _holder_column(holder)
        owner = Group if holder == GROUP else User
        stmt = select(model).join(owner, owner.id == column).where(owner.domain_id == actor.domain_id)
        if group_id is not None:
            stmt = stmt.where(column == group_id)
        if user_id is not None:
            stmt = stmt.where(column.in_(select(GroupMember.group_id).where(GroupMember.user_id == user_id))
                              if holder == GROUP else column == user_id)
        if role_id is not None:
            stmt = stmt.where(model.role_id == role_id)
        if project_id is not None:
            stmt = stmt.where(model.target_type == PROJECT, model.target_id == project_id)
        if domain_id is not None:
            types: Iterable[str] = (ALL_PROJECTS,) if inherited_only else (DOMAIN, ALL_PROJECTS)
            stmt = stmt.where(model.target_type.in_(tuple(types)), model.target_id == domain_id)
        elif inherited_only:
            stmt = stmt.where(model.target_type == ALL_PROJECTS)
        for g in session.scalars(stmt):
            assert isinstance(g, Grant | UserGrant)
            found.append(Assignment(holder, g.group_id if isinstance(g, Grant) else g.user_id, g.role_id,
                                    g.target_type, g.target_id))
    return sorted(found, key=lambda a: (a.target_type, a.target_id, a.holder, a.holder_id, a.role_id))


def assignment_names(session: Session, actor: Actor, found: list[Assignment]) -> dict[tuple[str, str], dict[str, Any]]:
    """Keystone's ``include_names``: (kind, id) → ``{"id", "name"}`` (with the domain for users, groups
    and projects) of every role, holder and target ``found`` names. All are the actor's account's."""
    domain = path_domain(session, actor, actor.domain_id)
    in_domain = {"id": domain.id, "name": domain.name}
    wanted: dict[str, set[str]] = {"role": set(), GROUP: set(), USER: set(), PROJECT: set()}
    for a in found:
        wanted["role"].add(a.role_id)
        wanted[a.holder].add(a.holder_id)
        if a.target_type == PROJECT:
            wanted[PROJECT].add(a.target_id)
    out: dict[tuple[str, str], dict[str, Any]] = {(DOMAIN, domain.id): in_domain}
    models: dict[str, type[Role] | type[Group] | type[User] | type[Project]] = {
        "role": Role, GROUP: Group, USER: User, PROJECT: Project}
    for kind, model in models.items():
        if not wanted[kind]:
            continue
        for row_id, name in session.execute(select(model.id, model.name).where(model.id.in_(wanted[kind]))):
            entry: dict[str, Any] = {"id": row_id, "name": name}
            if kind != "role":
                entry["domain"] = in_domain
            out[(kind, row_id)] = entry
    return out

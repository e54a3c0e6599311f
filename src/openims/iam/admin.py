"""Identity administration: projects, users, groups, memberships, roles and grants.

Every function takes the caller as an ``Actor`` and confines itself to the actor's domain
(account): another account's user, project or group is reported as not found, never as
forbidden, so administrators cannot probe other accounts. The operator (``Actor.is_operator``,
issue 13) is the one exception: it acts in any account, naming it by ``domain_id``, and never
joins two accounts (a grant, a membership, stays within one account). Functions that change who may log
in, or with which roles, return the ids of users whose tokens must be revoked; the caller
revokes them only after its transaction commits, so a revocation never precedes the change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from openims.clock import Clock
from openims.db.models import Domain, Grant, Group, GroupMember, Image, Project, Role, User, UserGrant
from openims.errors import IamBadRequest, IamConflict, IamForbidden, IamNotFound, IamUnauthorized
from openims.iam.holdings import held
from openims.iam.ids import new_id
from openims.iam.passwords import NewPassword, PasswordHashing, password_problem
from openims.iam.roles import BY_NAME, OPERATOR_ROLE, Permission

# Grant targets as stored in ``grants.target_type``.
PROJECT = "project"
DOMAIN = "domain"
ALL_PROJECTS = "all_projects"
TARGET_TYPES = (PROJECT, DOMAIN, ALL_PROJECTS)

# Huawei IAM user names: 5-32 characters, letters, digits, '-', '_', '.'; no leading digit.
USER_NAME = re.compile(r"^[^\W\d][\w.\-]{4,31}$")
USER_NAME_LENGTH = (5, 32)
_PROJECT_SUFFIX = re.compile(r"^[A-Za-z0-9_\-]+$")
# A project name as the document can say it without the region: something, then '_' and the suffix.
PROJECT_NAME = r"^.+_[A-Za-z0-9_\-]+$"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_NAME = 64
MAX_DESCRIPTION = 255

_DENIED = "You are not authorized to perform the requested action."


@dataclass(frozen=True)
class Actor:
    """Who is asking: the token's user, its account, whether it may administer IAM, and whether it
    is the deployment's operator (which administers every account)."""

    user_id: str
    domain_id: str
    is_admin: bool
    is_operator: bool = False

    def reaches(self, domain_id: str) -> bool:
        """Whether this actor may see and administer things of account ``domain_id``."""
        return domain_id == self.domain_id or self.is_operator


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise IamForbidden(_DENIED + " (needs the Security Administrator or Tenant Administrator role)")


def holds_operator(session: Session, user_id: str) -> bool:
    """Whether the user holds the operator role (wherever granted: it is in all its tokens)."""
    h = held()
    stmt = (select(h.c.user_id).join(Role, Role.id == h.c.role_id)
            .where(h.c.user_id == user_id, Role.name == OPERATOR_ROLE).exists())
    return bool(session.scalar(select(stmt)))


def protect_operator(session: Session, actor: Actor, user_id: str) -> None:
    """An operator's password, state, name and access keys are changed by an operator (or itself) only:
    a tenant administrator of the operator's own account must not take the operator over."""
    if user_id != actor.user_id and not actor.is_operator and holds_operator(session, user_id):
        raise IamForbidden(_DENIED + " (the user is an operator: only an operator may change it)")


@dataclass
class Outcome:
    """The result of a change plus the users whose existing tokens are now stale."""

    revoke_users: set[str] = field(default_factory=set)


# ---------------------------------------------------------------- lookups, confined to the actor's domain


def get_project(session: Session, actor: Actor, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None or not actor.reaches(project.domain_id):
        raise IamNotFound(f"Could not find project: {project_id}.")
    return project


def get_user(session: Session, actor: Actor, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None or not actor.reaches(user.domain_id):
        raise IamNotFound(f"Could not find user: {user_id}.")
    return user


def get_group(session: Session, actor: Actor, group_id: str) -> Group:
    group = session.get(Group, group_id)
    if group is None or not actor.reaches(group.domain_id):
        raise IamNotFound(f"Could not find group: {group_id}.")
    return group


def get_role(session: Session, role_id: str) -> Role:
    role = session.get(Role, role_id)
    if role is None:
        raise IamNotFound(f"Could not find role: {role_id}.")
    return role


def _own_domain(actor: Actor, domain_id: str | None) -> None:
    """A body's ``domain_id`` may only name the caller's own account (an operator's: any account)."""
    if domain_id is not None and domain_id != actor.domain_id and not actor.is_operator:
        raise IamForbidden("You can only manage identities in your own account (domain_id).")


def _target_domain(session: Session, actor: Actor, domain_id: str | None) -> str:
    """The account a new project, user or group goes to: the caller's, or the one an operator names."""
    _own_domain(actor, domain_id)
    if domain_id is None or domain_id == actor.domain_id:
        return actor.domain_id
    return path_domain(session, actor, domain_id).id


def _same_account(domain_id: str | None, target: str) -> None:
    """An object's account cannot change (``domain_id`` in an update), not even by an operator."""
    if domain_id is not None and domain_id != target:
        raise IamForbidden("An identity cannot move to another account (domain_id).")


def path_domain(session: Session, actor: Actor, domain_id: str) -> Domain:
    domain = session.get(Domain, domain_id) if actor.reaches(domain_id) else None
    if domain is None:
        raise IamNotFound(f"Could not find domain: {domain_id}.")
    return domain


def _clean_description(value: str | None) -> str | None:
    if value is not None and len(value) > MAX_DESCRIPTION:
        raise IamBadRequest(f"Invalid description: at most {MAX_DESCRIPTION} characters.")
    return value


# ---------------------------------------------------------------- the lock-out guard


def _admin_role_ids(session: Session) -> list[str]:
    names = [r.name for r in BY_NAME.values() if Permission.IAM_ADMIN in r.permissions]
    return list(session.scalars(select(Role.id).where(Role.name.in_(names))))


def _holds_admin_role(user_id: Any, role_ids: list[str], targets: list[tuple[str, str]]) -> ColumnElement[bool]:
    """SQL: the user holds an administrator role (through a group or directly) on one of ``targets``."""
    h = held()
    on = or_(*(and_(h.c.target_type == t, h.c.target_id == i) for t, i in targets))
    return select(h.c.user_id).where(h.c.user_id == user_id, h.c.role_id.in_(role_ids), on).exists()


def _account_wide(domain_id: str) -> list[tuple[str, str]]:
    return [(DOMAIN, domain_id), (ALL_PROJECTS, domain_id)]


def actor_for(session: Session, user_id: str, domain_id: str, *, token_is_admin: bool,
              token_is_operator: bool = False) -> Actor:
    """The caller as these rules see it.

    IAM is account-wide, so administering it takes an administrator role granted on the account
    (domain) or on all its projects, not merely on one project: a group given te_admin on
    ``local-1_dev`` administers that project's images, not the account's users.
    """
    is_admin = False
    if token_is_operator:
        # The operator administers every account; the role leaves the token when it is revoked
        # (grants.remove_grant revokes its holder's tokens).
        return Actor(user_id=user_id, domain_id=domain_id, is_admin=True, is_operator=True)
    if token_is_admin:
        cond = _holds_admin_role(user_id, _admin_role_ids(session), _account_wide(domain_id))
        is_admin = bool(session.scalar(select(cond)))
    return Actor(user_id=user_id, domain_id=domain_id, is_admin=is_admin)


def count_admins(session: Session, domain_id: str, region: str) -> int:
    """Enabled users who could still administer the account after logging in as usual.

    An administrator holds an administrator role account-wide (see ``actor_for``) and, when the
    account has a default project (named after the region), can also get a token with that role
    scoped to it, which is how the CLI and SDKs log in.
    """
    session.flush()
    role_ids = _admin_role_ids(session)
    default_project = session.scalar(
        select(Project.id).where(Project.domain_id == domain_id, Project.name == region)
    )
    conds = [_holds_admin_role(User.id, role_ids, _account_wide(domain_id))]
    if default_project is not None:
        on_default = [(PROJECT, default_project), (ALL_PROJECTS, domain_id)]
        conds.append(_holds_admin_role(User.id, role_ids, on_default))
    stmt = select(func.count(User.id)).where(User.domain_id == domain_id, User.enabled.is_(True), *conds)
    return int(session.scalar(stmt) or 0)


class LockoutGuard:
    """Refuses a change that leaves an account which had an administrator without one."""

    def __init__(self, session: Session, domain_id: str, region: str) -> None:
        self._session = session
        self._domain_id = domain_id
        self._region = region
        self._before = count_admins(session, domain_id, region)

    def check(self) -> None:
        if self._before > 0 and count_admins(self._session, self._domain_id, self._region) == 0:
            raise IamConflict(
                "Refused: this change would leave the account without any enabled user holding an "
                "administrator role (te_admin or secu_admin) on its default project."
            )


def _flush_unique(session: Session, message: str) -> None:
    """Flush, turning a unique-constraint violation (a concurrent duplicate) into a 409.

    The error aborts the request's transaction, which is rolled back as the 409 propagates.
    """
    try:
        session.flush()
    except IntegrityError as exc:
        raise IamConflict(message) from exc


def insert_if_absent(session: Session, row: object) -> None:
    """Insert a row whose twin may have been inserted concurrently; either way it exists after."""
    try:
        # A savepoint, so losing the race does not abort the request's transaction.
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        pass


# ---------------------------------------------------------------- projects


def _check_project_name(name: str, region: str) -> None:
    prefix = f"{region}_"
    if len(name) > MAX_NAME or not name.startswith(prefix) or not _PROJECT_SUFFIX.fullmatch(name[len(prefix):]):
        raise IamBadRequest(
            f"Invalid project name {name!r}: it must be '{prefix}' followed by letters, digits, '_' or '-', "
            f"at most {MAX_NAME} characters in all (for example {prefix}dev)."
        )


# How a taken name is refused, per kind (project names form one namespace per region; the others, per account).
_TAKEN = {Project: "A project named {!r} already exists.", User: "A user named {!r} already exists in this account.",
          Group: "A group named {!r} already exists in this account."}


def _require_free_name(session: Session, model: type[Project | User | Group], domain_id: str, name: str,
                       exclude_id: str | None = None) -> None:
    """Refuse (409) a name the account already gives another project, user or group."""
    stmt = select(model.id).where(model.domain_id == domain_id, model.name == name)
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if session.scalar(stmt) is not None:
        raise IamConflict(_TAKEN[model].format(name))


def create_project(session: Session, actor: Actor, clock: Clock, region: str, *, name: str,
                   description: str | None = None, domain_id: str | None = None,
                   parent_id: str | None = None, enabled: bool = True) -> Project:
    require_admin(actor)
    account = _target_domain(session, actor, domain_id)
    _check_project_name(name, region)
    _clean_description(description)
    if parent_id is not None and parent_id != account:
        parent = session.get(Project, parent_id)
        # Huawei's parent is the region's project; Keystone's top level is the domain itself.
        if parent is None or parent.domain_id != account or parent.name != region:
            raise IamBadRequest(f"Invalid parent_id {parent_id!r}: it must be the project of region "
                                f"{region} or the account (domain) id.")
    # Names are unique across the deployment (a region's project names form one namespace).
    _require_free_name(session, Project, account, name)
    project = Project(id=new_id(), name=name, domain_id=account, description=description or "",
                      enabled=enabled, status="normal", created_at=clock())
    session.add(project)
    _flush_unique(session, f"A project named {name!r} already exists.")
    return project


def update_project(session: Session, actor: Actor, region: str, project_id: str, *,
                   name: str | None = None, description: str | None = None,
                   enabled: bool | None = None) -> Project:
    require_admin(actor)
    project = get_project(session, actor, project_id)
    if name is None and description is None and enabled is None:
        raise IamBadRequest("Nothing to change: give a name or a description.")
    _clean_description(description)
    is_default = project.name == region
    if name is not None and name != project.name:
        if is_default:
            raise IamBadRequest(f"The default project {region} of the region cannot be renamed.")
        _check_project_name(name, region)
        _require_free_name(session, Project, project.domain_id, name, exclude_id=project.id)
        project.name = name
    if description is not None:
        project.description = description
    if enabled is not None:
        if is_default and not enabled:
            raise IamBadRequest(f"The default project {region} of the region cannot be disabled.")
        project.enabled = enabled
    _flush_unique(session, f"A project named {name!r} already exists.")
    return project


def set_project_status(session: Session, actor: Actor, region: str, project_id: str, status: str) -> Project:
    """Huawei's freeze switch: ``suspended`` also disables the project so no token can be scoped to it."""
    require_admin(actor)
    project = get_project(session, actor, project_id)
    if status not in ("normal", "suspended"):
        raise IamBadRequest("Invalid status: it must be 'normal' or 'suspended'.")
    if status == "suspended" and project.name == region:
        raise IamBadRequest(f"The default project {region} of the region cannot be suspended.")
    project.status = status
    project.enabled = status == "normal"
    return project


def delete_project(session: Session, actor: Actor, region: str, project_id: str) -> None:
    require_admin(actor)
    project = get_project(session, actor, project_id)
    if project.name == region:
        raise IamBadRequest(f"The default project {region} of the region cannot be deleted.")
    images = session.scalar(select(func.count()).select_from(Image)
                            .where(Image.owner == project.id, Image.status != "deleted"))
    if images:
        raise IamConflict(f"The project still owns {images} image(s); delete them first.")
    # Grants point at their target by id without a foreign key; remove them with the project.
    session.execute(delete(Grant).where(Grant.target_type == PROJECT, Grant.target_id == project.id))
    session.execute(delete(UserGrant).where(UserGrant.target_type == PROJECT, UserGrant.target_id == project.id))
    session.delete(project)
    session.flush()


# ---------------------------------------------------------------- users


def _check_user_name(name: str) -> None:
    if not USER_NAME.fullmatch(name):
        raise IamBadRequest(
            f"Invalid user name {name!r}: 5 to 32 characters of letters, digits, '-', '_' or '.', "
            "not starting with a digit."
        )


def admin_password(actor: Actor, hashing: PasswordHashing, password: str | None) -> NewPassword | None:
    """The password an administrator sets on a user, hashed; only administrators get a hash computed."""
    if password is None:
        return None
    require_admin(actor)
    return NewPassword.prepare(hashing, password)


def _check_password(password: str, user_name: str) -> None:
    problem = password_problem(password, user_name)
    if problem is None and password.lower() == user_name.lower()[::-1]:
        problem = "the password must not be the user name spelled backwards"
    if problem is not None:
        raise IamBadRequest(f"Invalid password: {problem}.")


def _check_email(email: str | None) -> None:
    if email and (len(email) > 255 or not _EMAIL.fullmatch(email)):
        raise IamBadRequest(f"Invalid email address {email!r}.")


def _check_default_project(session: Session, actor: Actor, project_id: str | None) -> None:
    # Accepted for compatibility; validated so a typo is reported, though it is not stored.
    if project_id:
        get_project(session, actor, project_id)


def create_user(session: Session, actor: Actor, clock: Clock, *, name: str, password: NewPassword | None = None,
                enabled: bool = True, description: str | None = None,
                email: str | None = None, domain_id: str | None = None,
                default_project_id: str | None = None) -> User:
    require_admin(actor)
    account = _target_domain(session, actor, domain_id)
    _check_user_name(name)
    _clean_description(description)
    _check_email(email)
    _check_default_project(session, actor, default_project_id)
    if password is not None:
        _check_password(password.plain, name)
    _require_free_name(session, User, account, name)
    now = clock()
    user = User(id=new_id(), name=name, domain_id=account,
                password_hash=password.hash if password is not None else None,
                enabled=enabled, email=email or None, description=description or "", created_at=now,
                password_changed_at=now if password is not None else None, failed_logins=0)
    session.add(user)
    _flush_unique(session, f"A user named {name!r} already exists in this account.")
    return user


_Listed = TypeVar("_Listed", User, Group)


def _account_listing(actor: Actor, model: type[_Listed], *, name: str | None,
                     domain_id: str | None) -> Select[_Listed] | None:
    """An administrator's listing of the account's users or groups, by name; None when the filter names
    another account (nothing there is visible: an empty list, not an error)."""
    require_admin(actor)
    if domain_id is not None and not actor.reaches(domain_id):
        return None
    stmt = select(model).where(model.domain_id == (domain_id or actor.domain_id)).order_by(model.name)
    return stmt if name is None else stmt.where(model.name == name)


def list_users(session: Session, actor: Actor, *, name: str | None = None, domain_id: str | None = None,
               enabled: bool | None = None) -> Sequence[User]:
    stmt = _account_listing(actor, User, name=name, domain_id=domain_id)
    if stmt is None:
        return []
    if enabled is not None:
        stmt = stmt.where(User.enabled.is_(enabled))
    return session.scalars(stmt).all()


def update_user(session: Session, actor: Actor, clock: Clock, region: str,
                user_id: str, *, name: str | None = None, password: NewPassword | None = None,
                enabled: bool | None = None, description: str | None = None, email: str | None = None,
                domain_id: str | None = None, default_project_id: str | None = None) -> tuple[User, Outcome]:
    require_admin(actor)
    user = get_user(session, actor, user_id)
    protect_operator(session, actor, user.id)
    _own_domain(actor, domain_id)
    _same_account(domain_id, user.domain_id)
    _clean_description(description)
    _check_email(email)
    _check_default_project(session, actor, default_project_id)
    out = Outcome()
    guard = LockoutGuard(session, user.domain_id, region)
    if name is not None and name != user.name:
        _check_user_name(name)
        _require_free_name(session, User, user.domain_id, name, exclude_id=user.id)
        user.name = name
    if password is not None:
        _check_password(password.plain, user.name)
        user.password_hash = password.hash
        user.password_changed_at = clock()
        user.failed_logins = 0
        user.locked_until = None
        out.revoke_users.add(user.id)
    if enabled is not None and enabled != user.enabled:
        if not enabled and user.id == actor.user_id:
            raise IamBadRequest("You cannot disable yourself.")
        user.enabled = enabled
        if not enabled:
            out.revoke_users.add(user.id)
    if description is not None:
        user.description = description
    if email is not None:
        user.email = email or None
    _flush_unique(session, f"A user named {name!r} already exists in this account.")
    guard.check()
    return user, out


def delete_user(session: Session, actor: Actor, region: str, user_id: str) -> Outcome:
    require_admin(actor)
    user = get_user(session, actor, user_id)
    if user.id == actor.user_id:
        raise IamBadRequest("You cannot delete yourself.")
    protect_operator(session, actor, user.id)
    guard = LockoutGuard(session, user.domain_id, region)
    session.execute(delete(GroupMember).where(GroupMember.user_id == user.id))
    session.delete(user)
    guard.check()
    return Outcome(revoke_users={user.id})


def verify_own_password(session: Session, actor: Actor, hashing: PasswordHashing, user_id: str,
                        original_password: str) -> str:
    """Step one of a password change, outside the write transaction (slow): the hash it verified."""
    user = get_user(session, actor, user_id)
    if user.id != actor.user_id:
        raise IamForbidden("Users can only change their own password; administrators use PATCH /v3/users.")
    if not hashing.verify(user.password_hash, original_password):
        raise IamUnauthorized("The original password is wrong.")
    assert user.password_hash is not None
    return user.password_hash


def change_own_password(session: Session, actor: Actor, clock: Clock, user_id: str, *, verified_hash: str,
                        original_password: str, password: NewPassword) -> Outcome:
    """A user changes their own password, having proved they know the current one (``verify_own_password``)."""
    user = get_user(session, actor, user_id)
    if user.id != actor.user_id:
        raise IamForbidden("Users can only change their own password; administrators use PATCH /v3/users.")
    if user.password_hash != verified_hash:
        # Changed by someone else since it was verified: the proof is about a password that is gone.
        raise IamUnauthorized("The original password is wrong.")
    if password.plain == original_password:
        raise IamBadRequest("Invalid password: the new password must differ from the old one.")
    _check_password(password.plain, user.name)
    user.password_hash = password.hash
    user.password_changed_at = clock()
    session.flush()
    return Outcome(revoke_users={user.id})


# ---------------------------------------------------------------- groups and membership


def _check_group_name(name: str) -> None:
    if not name.strip() or len(name) > MAX_NAME:
        raise IamBadRequest(f"Invalid group name {name!r}: 1 to {MAX_NAME} characters.")


def create_group(session: Session, actor: Actor, clock: Clock, *, name: str, description: str | None = None,
                 domain_id: str | None = None) -> Group:
    require_admin(actor)
    account = _target_domain(session, actor, domain_id)
    _check_group_name(name)
    _clean_description(description)
    _require_free_name(session, Group, account, name)
    group = Group(id=new_id(), name=name, domain_id=account, description=description or "",
                  created_at=clock())
    session.add(group)
    _flush_unique(session, f"A group named {name!r} already exists in this account.")
    return group


def list_groups(session: Session, actor: Actor, *, name: str | None = None,
                domain_id: str | None = None) -> Sequence[Group]:
    stmt = _account_listing(actor, Group, name=name, domain_id=domain_id)
    return [] if stmt is None else session.scalars(stmt).all()


def update_group(session: Session, actor: Actor, group_id: str, *, name: str | None = None,
                 description: str | None = None, domain_id: str | None = None) -> Group:
    require_admin(actor)
    group = get_group(session, actor, group_id)
    _own_domain(actor, domain_id)
    _same_account(domain_id, group.domain_id)
    _clean_description(description)
    if name is not None and name != group.name:
        _check_group_name(name)
        _require_free_name(session, Group, group.domain_id, name, exclude_id=group.id)
        group.name = name
    if description is not None:
        group.description = description
    _flush_unique(session, f"A group named {name!r} already exists in this account.")
    return group


def member_ids(session: Session, group_id: str) -> set[str]:
    return set(session.scalars(select(GroupMember.user_id).where(GroupMember.group_id == group_id)))


def delete_group(session: Session, actor: Actor, region: str, group_id: str) -> Outcome:
    require_admin(actor)
    group = get_group(session, actor, group_id)
    guard = LockoutGuard(session, group.domain_id, region)
    members = member_ids(session, group.id)
    session.execute(delete(Grant).where(Grant.group_id == group.id))
    session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    session.delete(group)
    guard.check()
    return Outcome(revoke_users=members)


def group_users(session: Session, actor: Actor, group_id: str, *, name: str | None = None,
                enabled: bool | None = None) -> Sequence[User]:
    require_admin(actor)
    group = get_group(session, actor, group_id)
    stmt = (select(User).join(GroupMember, GroupMember.user_id == User.id)
            .where(GroupMember.group_id == group.id).order_by(User.name))
    if name is not None:
        stmt = stmt.where(User.name == name)
    if enabled is not None:
        stmt = stmt.where(User.enabled.is_(enabled))
    return session.scalars(stmt).all()


def user_groups(session: Session, actor: Actor, user_id: str) -> Sequence[Group]:
    """A user's groups: visible to administrators and to the user themself."""
    user = get_user(session, actor, user_id)
    if user.id != actor.user_id:
        require_admin(actor)
    stmt = (select(Group).join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.user_id == user.id).order_by(Group.name))
    return session.scalars(stmt).all()


def add_member(session: Session, actor: Actor, group_id: str, user_id: str) -> None:
    """Idempotent, as Keystone: adding a member twice is not an error."""
    require_admin(actor)
    group = get_group(session, actor, group_id)
    user = get_user(session, actor, user_id)
    if group.domain_id != user.domain_id:
        # Only an operator reaches both; a group holds users of its own account only.
        raise IamBadRequest("A group's members are users of the group's own account.")
    if session.get(GroupMember, (group.id, user.id)) is None:
        insert_if_absent(session, GroupMember(group_id=group.id, user_id=user.id))


def is_member(session: Session, actor: Actor, group_id: str, user_id: str) -> bool:
    require_admin(actor)
    group = get_group(session, actor, group_id)
    user = get_user(session, actor, user_id)
    return session.get(GroupMember, (group.id, user.id)) is not None


def remove_member(session: Session, actor: Actor, region: str, group_id: str, user_id: str) -> Outcome:
    require_admin(actor)
    group = get_group(session, actor, group_id)
    user = get_user(session, actor, user_id)
    membership = session.get(GroupMember, (group.id, user.id))
    if membership is None:
        raise IamNotFound(f"User {user_id} is not a member of group {group_id}.")
    guard = LockoutGuard(session, group.domain_id, region)
    session.delete(membership)
    guard.check()
    # Tokens carry roles; ones issued through this group must not outlive the membership.
    return Outcome(revoke_users={user.id})

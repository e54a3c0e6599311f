"""Authentication and the identity rules every route relies on.

Administration (projects, users, groups, grants) lives in ``iam.admin``; this module holds
login, scoping, effective roles and the first-start bootstrap.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from openims.clock import Clock
from openims.config import Settings
from openims.db.models import Domain, Grant, Group, GroupMember, Project, Role, User, UserGrant
from openims.db.session import serialized
from openims.errors import IamBadRequest, IamNotFound, IamTooManyRequests, IamUnauthorized
from openims.iam.holdings import held
from openims.iam.ids import new_id
from openims.iam.passwords import PasswordHashing
from openims.iam.roles import OPERATOR_ROLE, SYSTEM_ROLES, with_implied
from openims.iam.tokens import TokenCodec, TokenData

ADMIN_NAME = "admin"
ADMIN_GROUP = "admin"


@dataclass(frozen=True)
class PasswordIdentity:
    password: str
    user_id: str | None = None
    user_name: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None


@dataclass(frozen=True)
class LoginAttempt:
    """The user a password login names (None: no such user) and the hash it was checked against."""

    user_id: str | None
    password_hash: str | None


# Same message whichever part was wrong: no hint about which users exist.
WRONG_PASSWORD = "The username or password is wrong."


@dataclass(frozen=True)
class ScopeRequest:
    project_id: str | None = None
    project_name: str | None = None
    # The domain a project name is looked up in, or the domain a domain-scoped token is for.
    domain_id: str | None = None
    domain_name: str | None = None
    kind: str = "unscoped"  # "project", "domain" or "unscoped"


def effective_roles(session: Session, user_id: str, *, project: Project | None = None,
                    domain_id: str | None = None) -> tuple[str, ...]:
    """Role names the user holds (through its groups or directly) on the project or the domain,
    with the roles they imply (Keystone puts those in tokens too)."""
    targets: list[tuple[str, str]] = []
    if project is not None:
        targets = [("project", project.id), ("all_projects", project.domain_id)]
    elif domain_id is not None:
        targets = [("domain", domain_id)]
    if not targets:
        return ()
    h = held()
    cond = or_(*(and_(h.c.target_type == t, h.c.target_id == i) for t, i in targets))
    # The operator role is the deployment's, not a project's: wherever it was granted, every token
    # of its holder carries it (issue 13).
    cond = or_(cond, Role.name == OPERATOR_ROLE)
    stmt = select(Role.name).join(h, h.c.role_id == Role.id).where(h.c.user_id == user_id, cond).distinct()
    return tuple(sorted(with_implied(session.scalars(stmt))))


class Authenticator:
    def __init__(self, settings: Settings, hashing: PasswordHashing, codec: TokenCodec, clock: Clock) -> None:
        self._settings = settings
        self._hashing = hashing
        self._codec = codec
        self._clock = clock

    def _find_user(self, session: Session, ident: PasswordIdentity) -> User | None:
        if ident.user_id:
            return session.get(User, ident.user_id)
        if not ident.user_name:
            raise IamBadRequest("Either user id or user name with its domain must be given.")
        domain = _find_domain(session, ident.domain_id, ident.domain_name, required=True)
        if domain is None:
            return None
        return session.scalar(select(User).where(User.domain_id == domain.id, User.name == ident.user_name))

    # A password login runs in three steps so that the slow one holds no transaction (issue 15):
    # find_login (a read), verify (argon2, no database), then record_failure or complete_login
    # (a short write that re-checks what may have changed in between).

    def find_login(self, session: Session, ident: PasswordIdentity) -> LoginAttempt:
        """Who is logging in, refused at once while the user is locked out."""
        user = self._find_user(session, ident)
        if user is None:
            return LoginAttempt(None, None)
        self._refuse_locked(user)
        return LoginAttempt(user.id, user.password_hash)

    def verify(self, attempt: LoginAttempt, password: str) -> bool:
        """The slow part: argon2 (against a dummy hash for unknown users, to time alike)."""
        return self._hashing.verify(attempt.password_hash, password) and attempt.user_id is not None

    def _refuse_locked(self, user: User) -> None:
        now = self._clock()
        if user.locked_until is not None and user.locked_until > now:
            wait = int((user.locked_until - now).total_seconds()) + 1
            raise IamTooManyRequests(f"Too many failed logins for this user; try again in {wait} s.")

    def _locked_row(self, session: Session, user_id: str) -> User | None:
        # FOR UPDATE on PostgreSQL: concurrent failures of one user count one by one.
        return session.get(User, user_id, with_for_update=True)

    def record_failure(self, session: Session, attempt: LoginAttempt) -> None:
        """Count a wrong password; enough of them in a row lock the user out for a while."""
        if attempt.user_id is None:
            return
        user = self._locked_row(session, attempt.user_id)
        if user is None:
            return
        user.failed_logins += 1
        if user.failed_logins >= self._settings.login_max_failures:
            user.locked_until = self._clock() + dt.timedelta(seconds=self._settings.login_lockout_seconds)
            user.failed_logins = 0

    def complete_login(self, session: Session, attempt: LoginAttempt) -> User:
        """The verified user, if nothing changed since the password was checked; resets the counter."""
        assert attempt.user_id is not None
        user = self._locked_row(session, attempt.user_id)
        if user is None or user.password_hash != attempt.password_hash:
            # Deleted, or its password changed while this one was being checked.
            raise IamUnauthorized(WRONG_PASSWORD)
        self._refuse_locked(user)
        if not user.enabled:
            raise IamUnauthorized("The user is disabled.")
        domain = session.get(Domain, user.domain_id)
        if domain is None or not domain.enabled:
            raise IamUnauthorized("The account is disabled.")
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = self._clock()
        return user

    def issue_for(self, session: Session, user: User, scope: ScopeRequest, methods: tuple[str, ...],
                  expires_at: dt.datetime | None = None) -> tuple[str, TokenData]:
        project: Project | None = None
        domain_id: str | None = None
        if scope.kind == "project":
            project = _find_project(session, scope, user.domain_id)
            roles = effective_roles(session, user.id, project=project)
        elif scope.kind == "domain":
            domain = _find_domain(session, scope.domain_id, scope.domain_name, required=True)
            if domain is None or domain.id != user.domain_id:
                raise IamUnauthorized("The user has no access to the requested domain.")
            domain_id = domain.id
            roles = effective_roles(session, user.id, domain_id=domain_id)
        else:
            roles = ()
        if project is not None and (project.domain_id != user.domain_id or not roles):
            raise IamUnauthorized("The user has no role on the requested project.")
        if project is not None and not project.enabled:
            raise IamUnauthorized("The requested project is disabled.")
        return self._codec.issue(
            user_id=user.id,
            user_domain_id=user.domain_id,
            methods=methods,
            roles=roles,
            ttl=self._settings.token_ttl,
            project_id=project.id if project else None,
            domain_id=domain_id,
            expires_at=expires_at,
        )


def _find_domain(session: Session, domain_id: str | None, domain_name: str | None, *,
                 required: bool) -> Domain | None:
    if domain_id:
        return session.get(Domain, domain_id)
    if domain_name:
        return session.scalar(select(Domain).where(Domain.name == domain_name))
    if required:
        raise IamBadRequest("A domain id or name is required with a user or project name.")
    return None


def _find_project(session: Session, scope: ScopeRequest, user_domain_id: str) -> Project:
    project: Project | None
    if scope.project_id:
        project = session.get(Project, scope.project_id)
    elif scope.project_name:
        # A project name without a domain means one in the user's own account.
        domain_id = user_domain_id
        if scope.domain_id or scope.domain_name:
            domain = _find_domain(session, scope.domain_id, scope.domain_name, required=False)
            if domain is None:
                raise IamUnauthorized("The requested project does not exist or is not accessible.")
            domain_id = domain.id
        project = session.scalar(
            select(Project).where(Project.domain_id == domain_id, Project.name == scope.project_name))
    else:
        raise IamBadRequest("A project id or name is required in the scope.")
    if project is None:
        raise IamUnauthorized("The requested project does not exist or is not accessible.")
    return project


# ---------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    domain_id: str
    project_id: str
    user_id: str
    password: str | None  # set only when this call created the admin user


def ensure_roles(session: Session) -> None:
    existing = set(session.scalars(select(Role.name)))
    for role in SYSTEM_ROLES:
        if role.name not in existing:
            session.add(Role(id=new_id(), name=role.name, display_name=role.display_name,
                             description=role.description, type=role.type, catalog=role.catalog))
    session.flush()


def bootstrap(session: Session, settings: Settings, hashing: PasswordHashing, clock: Clock) -> BootstrapResult:
    """Idempotent first start: account ``admin``, project ``<region>``, user ``admin`` administering both.

    Safe when several processes start at once on an empty database: they take turns, and every one
    after the first finds everything there."""
    serialized(session, "bootstrap")
    now = clock()
    ensure_roles(session)
    domain = session.scalar(select(Domain).where(Domain.name == ADMIN_NAME))
    if domain is None:
        domain = Domain(id=new_id(), name=ADMIN_NAME, enabled=True, created_at=now)
        session.add(domain)
        session.flush()
    project = session.scalar(
        select(Project).where(Project.domain_id == domain.id, Project.name == settings.region))
    if project is None:
        project = Project(id=new_id(), name=settings.region, domain_id=domain.id,
                          description=f"default project of region {settings.region}", created_at=now)
        session.add(project)
    group = session.scalar(select(Group).where(Group.domain_id == domain.id, Group.name == ADMIN_GROUP))
    if group is None:
        group = Group(id=new_id(), name=ADMIN_GROUP, domain_id=domain.id,
                      description="account administrators", created_at=now)
        session.add(group)
    user = session.scalar(select(User).where(User.domain_id == domain.id, User.name == ADMIN_NAME))
    password: str | None = None
    if user is None:
        password = settings.admin_password or secrets.token_urlsafe(18)
        user = User(id=new_id(), name=ADMIN_NAME, domain_id=domain.id, password_hash=hashing.hash(password),
                    enabled=True, created_at=now, password_changed_at=now)
        session.add(user)
    session.flush()
    if session.get(GroupMember, (group.id, user.id)) is None:
        session.add(GroupMember(group_id=group.id, user_id=user.id))
    te_admin = session.scalar(select(Role).where(Role.name == "te_admin"))
    secu_admin = session.scalar(select(Role).where(Role.name == "secu_admin"))
    assert te_admin is not None and secu_admin is not None
    wanted = [
        (te_admin.id, "domain", domain.id),
        (secu_admin.id, "domain", domain.id),
        (te_admin.id, "all_projects", domain.id),
        (te_admin.id, "project", project.id),
    ]
    for role_id, ttype, tid in wanted:
        if session.get(Grant, (group.id, role_id, ttype, tid)) is None:
            session.add(Grant(group_id=group.id, role_id=role_id, target_type=ttype, target_id=tid))
    # The operator role, to the bootstrap user itself (not its group: a tenant administrator of this
    # account could add users to the group). Granted at every start, so deployments made before the
    # role existed get it too.
    operator = session.scalar(select(Role).where(Role.name == OPERATOR_ROLE))
    assert operator is not None
    if session.get(UserGrant, (user.id, operator.id, "domain", domain.id)) is None:
        session.add(UserGrant(user_id=user.id, role_id=operator.id, target_type="domain", target_id=domain.id))
    session.flush()
    return BootstrapResult(domain.id, project.id, user.id, password)


def write_admin_credentials(path: Path, settings: Settings, password: str) -> None:
    """Write the generated admin password once, readable only by the service's user."""
    text = (
        f"OS_AUTH_URL={settings.base_url}/v3\n"
        f"OS_USERNAME={ADMIN_NAME}\nOS_USER_DOMAIN_NAME={ADMIN_NAME}\n"
        f"OS_PROJECT_NAME={settings.region}\nOS_PROJECT_DOMAIN_NAME={ADMIN_NAME}\n"
        f"OS_PASSWORD={password}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def get_project(session: Session, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise IamNotFound(f"Could not find project: {project_id}.")
    return project

"""Accounts, projects and users made straight in a database, for tests (accounts have no API yet).

The one way tests set up a second tenant: ``add_user`` gives a user one role on one project of an
account, creating the account and the project when they do not exist.
"""

from __future__ import annotations

import datetime as dt

from openims.db.models import Domain, Grant, Group, GroupMember, Project, Role, User
from openims.db.session import Database
from openims.iam.ids import new_id
from openims.iam.passwords import PasswordHashing

USER_PASSWORD = "User-Pass-1234"
# A hash made at the lowest cost still verifies under any server's settings (argon2 stores its parameters).
_HASHING = PasswordHashing(time_cost=1, memory_kib=8)


def add_user(db: Database, *, name: str, role: str, domain_name: str = "admin", project_name: str = "local-1",
             password: str = USER_PASSWORD, group_name: str | None = None, now: dt.datetime | None = None) -> None:
    """A user with one role on one project (through a group of its own), created in the database."""
    now = now or dt.datetime.now(dt.UTC)
    with db.transaction() as s:
        domain = s.query(Domain).filter_by(name=domain_name).one_or_none()
        if domain is None:
            domain = Domain(id=new_id(), name=domain_name, created_at=now)
            s.add(domain)
            s.flush()
        project = s.query(Project).filter_by(name=project_name, domain_id=domain.id).one_or_none()
        if project is None:
            project = Project(id=new_id(), name=project_name, domain_id=domain.id, created_at=now)
            s.add(project)
        user = User(id=new_id(), name=name, domain_id=domain.id, password_hash=_HASHING.hash(password),
                    created_at=now)
        group = Group(id=new_id(), name=group_name or f"{name}-group", domain_id=domain.id, created_at=now)
        s.add_all([user, group])
        s.flush()
        s.add(GroupMember(group_id=group.id, user_id=user.id))
        role_id = s.query(Role).filter_by(name=role).one().id
        s.add(Grant(group_id=group.id, role_id=role_id, target_type="project", target_id=project.id))

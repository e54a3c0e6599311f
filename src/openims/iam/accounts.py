"""Accounts (Keystone domains), administered by the deployment's operator only (issue 13).

An account is created with its first project, named after the region as the bootstrap account's
is, so its users can log in the way the CLI and the SDKs do. Disabling an account ends every way
in at once: password logins (``service.Authenticator.complete_login``), AK/SK signatures
(``access_keys.authenticate_signed``, which read the account in the request) and live tokens
(``tokens.RevocationList``, which checks the token's account; the process that disables forgets
its cached answer at commit, other processes see it within their cache's second). Re-enabling
restores all three.

Deletion follows Keystone: an enabled account is refused (403, disable it first). A disabled one is
deleted only when nothing of it holds data — no images, buckets, memberships in others' images or
metadata namespaces (409 otherwise, naming what remains); its projects, users, groups, grants,
access keys, quotas and finished jobs go with it. The operator's own account is neither disabled
nor deleted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from openims.clock import Clock
from openims.db.models import Bucket, Domain, Image, ImageMember, Job, MetadefNamespace, Project
from openims.errors import IamBadRequest, IamConflict, IamForbidden, IamNotFound
from openims.iam.admin import Actor
from openims.iam.ids import new_id

# Account names are what users type as their domain at login: a letter or digit first, then letters,
# digits, '-', '_' or '.', at most 64 in all (domains.name).
DOMAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

_DENIED = "You are not authorized to perform the requested action: accounts are managed by the operator."


def require_operator(actor: Actor) -> None:
    if not actor.is_operator:
        raise IamForbidden(_DENIED)


def _check_name(name: str) -> None:
    if not DOMAIN_NAME.fullmatch(name):
        raise IamBadRequest(f"Invalid domain name {name[:64]!r}: 1 to 64 letters, digits, '-', '_' or '.', "
                            "starting with a letter or digit.")


def get_account(session: Session, actor: Actor, domain_id: str) -> Domain:
    require_operator(actor)
    domain = session.get(Domain, domain_id)
    if domain is None:
        raise IamNotFound(f"Could not find domain: {domain_id}.")
    return domain


def list_accounts(session: Session, actor: Actor, *, name: str | None = None,
                  enabled: bool | None = None) -> Sequence[Domain]:
    require_operator(actor)
    stmt = select(Domain).order_by(Domain.name)
    if name is not None:
        stmt = stmt.where(Domain.name == name)
    if enabled is not None:
        stmt = stmt.where(Domain.enabled.is_(enabled))
    return session.scalars(stmt).all()


@dataclass(frozen=True)
class NewAccount:
    domain: Domain
    project: Project


def create_account(session: Session, actor: Actor, clock: Clock, region: str, *, name: str,
                   description: str | None = None, enabled: bool = True) -> NewAccount:
    """``POST /v3/domains``: the account and its first project, ``<region>``."""
    require_operator(actor)
    _check_name(name)
    if session.scalar(select(Domain.id).where(Domain.name == name)) is not None:
        raise IamConflict(f"A domain named {name!r} already exists.")
    now = clock()
    domain = Domain(id=new_id(), name=name, enabled=enabled, description=description or "", created_at=now)
    session.add(domain)
    session.flush()
    project = Project(id=new_id(), name=region, domain_id=domain.id,
                      description=f"default project of region {region}", created_at=now)
    session.add(project)
    session.flush()
    return NewAccount(domain, project)


def update_account(session: Session, actor: Actor, domain_id: str, *, name: str | None = None,
                   description: str | None = None, enabled: bool | None = None) -> Domain:
    """``PATCH /v3/domains/{id}``: rename, describe, disable or enable."""
    domain = get_account(session, actor, domain_id)
    if description is not None:
        domain.description = description
    if name is not None and name != domain.name:
        _check_name(name)
        if session.scalar(select(Domain.id).where(Domain.name == name, Domain.id != domain.id)) is not None:
            raise IamConflict(f"A domain named {name!r} already exists.")
        domain.name = name
    if enabled is not None and enabled != domain.enabled:
        if not enabled and domain.id == actor.domain_id:
            raise IamForbidden("The operator's own account cannot be disabled.")
        domain.enabled = enabled
    session.flush()
    return domain


def delete_account(session: Session, actor: Actor, domain_id: str) -> None:
    """``DELETE /v3/domains/{id}``: a disabled account holding no data (see the module's docstring)."""
    domain = get_account(session, actor, domain_id)
    if domain.id == actor.domain_id:
        raise IamForbidden("The operator's own account cannot be deleted.")
    if domain.enabled:
        # Keystone: "Cannot delete a domain that is enabled, please disable it first."
        raise IamForbidden(f"Cannot delete domain {domain.id}: it is enabled; disable it first.")
    projects = select(Project.id).where(Project.domain_id == domain.id).scalar_subquery()
    remaining = {
        "image(s)": select(func.count()).select_from(Image)
        .where(Image.owner.in_(projects), Image.status != "deleted"),
        "bucket(s)": select(func.count()).select_from(Bucket).where(Bucket.domain_id == domain.id),
        "membership(s) in other accounts' images": select(func.count()).select_from(ImageMember)
        .where(ImageMember.member_id.in_(projects)),
        "metadata namespace(s)": select(func.count()).select_from(MetadefNamespace)
        .where(MetadefNamespace.owner.in_(projects)),
    }
    left = [f"{n} {what}" for what, stmt in remaining.items() if (n := int(session.scalar(stmt) or 0))]
    if left:
        raise IamConflict(f"Cannot delete domain {domain.id}: it still holds {', '.join(left)}; delete them first.")
    # Rows that point at its projects without a foreign key; the rest cascades from the domain.
    session.execute(delete(Image).where(Image.owner.in_(projects)))
    session.execute(delete(Job).where(Job.project_id.in_(projects)))
    session.delete(domain)
    session.flush()

"""Who sees and who changes a metadata-definition namespace; the errors every metadefs rule shares.

Tenancy is in the query: a namespace is visible when it is public or the caller's project owns it;
anything else is 404, as if it did not exist (``readable``). A change needs Glance's
``metadef_admin`` — here an image administrator (``Permission.IMAGE_ADMIN``) of the owner project;
anyone else who can see the namespace gets 403 (``writable``). A change locks the namespace's row,
so a concurrent PUT of ``protected`` cannot slip between the check and a delete.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from openims.db.models import MetadefNamespace
from openims.errors import ImsConflict, ImsForbidden, ImsNotFound


@dataclass(frozen=True)
class Actor:
    """The caller as the metadefs rules see it."""

    project_id: str
    # Glance's metadef_admin: an image administrator of this project.
    admin: bool
    # The deployment's operator, who alone publishes (as for public images).
    operator: bool = False


@contextmanager
def unique(message: str) -> Iterator[None]:
    """A unique constraint another transaction won first is a conflict, not a 500."""
    try:
        yield
    except IntegrityError as exc:
        raise ImsConflict(message) from exc


def not_found(namespace: str) -> ImsNotFound:
    return ImsNotFound(f"Metadata definition namespace={namespace} was not found.")


def protected(kind: str, name: str) -> ImsForbidden:
    return ImsForbidden(f"Metadata definition {kind} {name} is protected and cannot be deleted.")


def visible(project_id: str) -> ColumnElement[bool]:
    return or_(MetadefNamespace.visibility == "public", MetadefNamespace.owner == project_id)


def readable(session: Session, actor: Actor, namespace: str) -> MetadefNamespace:
    row = session.scalar(select(MetadefNamespace).where(MetadefNamespace.namespace == namespace,
                                                        visible(actor.project_id)))
    if row is None:
        raise not_found(namespace)
    return row


def may_change(actor: Actor) -> None:
    if not actor.admin:
        raise ImsForbidden("Only image administrators may change metadata definitions.")


def writable(session: Session, actor: Actor, namespace: str) -> MetadefNamespace:
    """The namespace the caller may change, locked until the transaction ends (404, then 403)."""
    row = session.scalar(select(MetadefNamespace).where(MetadefNamespace.namespace == namespace,
                                                        visible(actor.project_id)).with_for_update())
    if row is None:
        raise not_found(namespace)
    may_change(actor)
    if row.owner != actor.project_id:
        raise ImsForbidden(f"Metadata definition namespace {namespace} belongs to another project.")
    return row


def deletable(session: Session, actor: Actor, namespace: str) -> MetadefNamespace:
    """A namespace whose contents (or itself) may be deleted: writable and not protected."""
    row = writable(session, actor, namespace)
    if row.protected:
        raise protected("namespace", namespace)
    return row

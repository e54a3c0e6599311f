"""Metadata-definition namespaces: who sees and changes them, and their lifecycle.

Glance's rules (glance ``api/v2/metadef_namespaces.py``, ``db/sqlalchemy/metadef_api/namespace.py``,
``policies/metadef.py``), with this deployment's notion of "admin":

- Tenancy is in the query: a namespace is visible when it is public or the caller's project owns
  it. Anything else is 404, as if it did not exist (``access.readable``).
- Every change is Glance's ``metadef_admin``: an image administrator (``Permission.IMAGE_ADMIN``:
  te_admin, ims_adm, Keystone admin) of the owner project. Anyone else who can see the namespace
  gets 403 (``access.writable``); a project administrator cannot change another project's namespace.
- Glance's admin is cloud-wide; here it is a project's. So, as for public images, only the
  deployment's operator publishes: a tenant creating or making a namespace public gets 403.
- ``protected`` keeps the namespace and everything in it from being deleted (403) until a PUT sets
  it false; creating and changing contents is allowed meanwhile, as in Glance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, exists, select, tuple_
from sqlalchemy.orm import Session

from openims.catalog.metadefs import contents, resource_types
from openims.catalog.metadefs.access import Actor, deletable, may_change, readable, unique, visible, writable
from openims.catalog.metadefs.definitions import NamespaceSpec
from openims.db.models import (
    MetadefAssociation,
    MetadefNamespace,
    MetadefObject,
    MetadefProperty,
    MetadefResourceType,
    MetadefTag,
)
from openims.errors import ImsConflict, ImsForbidden

SORT_KEYS = ("created_at", "updated_at", "namespace")
SORT_DIRS = ("asc", "desc")


@dataclass(frozen=True)
class NamespaceQuery:
    limit: int
    marker: str | None = None
    visibility: str | None = None
    resource_types: tuple[str, ...] = ()
    sort_key: str = "created_at"
    sort_dir: str = "desc"


def _owner_and_visibility(session: Session, actor: Actor, spec: NamespaceSpec) -> str:
    if spec.owner is not None and spec.owner != actor.project_id:
        raise ImsForbidden("A namespace is owned by the project that creates it; 'owner' cannot name another.")
    if spec.visibility == "public" and not actor.operator:
        raise ImsForbidden("Only the service's operators publish public namespaces; use private.")
    return actor.project_id


def _taken(session: Session, namespace: str) -> None:
    if session.scalar(select(MetadefNamespace.id).where(MetadefNamespace.namespace == namespace)) is not None:
        # Glance says so even when the namespace is another project's private one.
        raise ImsConflict(f"Metadata definition namespace={namespace} already exists.")


def create(session: Session, actor: Actor, spec: NamespaceSpec, now: dt.datetime) -> MetadefNamespace:
    """A namespace with the contents the request gives (properties, objects, tags, associations)."""
    may_change(actor)
    owner = _owner_and_visibility(session, actor, spec)
    return insert(session, spec, owner, now)


def insert(session: Session, spec: NamespaceSpec, owner: str, now: dt.datetime) -> MetadefNamespace:
    """Store a checked namespace and its contents (also what seeding does)."""
    _taken(session, spec.namespace)
    row = MetadefNamespace(namespace=spec.namespace, display_name=spec.display_name, description=spec.description,
                           visibility=spec.visibility, protected=spec.protected, owner=owner, created_at=now,
                           updated_at=now)
    session.add(row)
    with unique(f"Metadata definition namespace={spec.namespace} already exists."):
        session.flush()
    for prop in spec.properties:
        contents.add_property(session, row, prop, now)
    for obj in spec.objects:
        contents.add_object(session, row, obj, now)
    contents.add_tags(session, row, spec.tags, now, append=True)
    for association in spec.associations:
        resource_types.associate(session, row, association, now)
    return row


def update(session: Session, actor: Actor, namespace: str, spec: NamespaceSpec, now: dt.datetime) -> MetadefNamespace:
    """Glance's PUT: the fields are replaced (omitted ones back to their defaults); contents are kept."""
    row = writable(session, actor, namespace)
    _owner_and_visibility(session, actor, spec)
    if spec.namespace != row.namespace:
        _taken(session, spec.namespace)
    row.namespace = spec.namespace
    row.display_name = spec.display_name
    row.description = spec.description
    row.visibility = spec.visibility
    row.protected = spec.protected
    row.updated_at = now
    with unique(f"Metadata definition namespace={spec.namespace} already exists."):
        session.flush()
    return row


def delete_namespace(session: Session, actor: Actor, namespace: str) -> None:
    row = deletable(session, actor, namespace)
    # Contents and associations go with it (ON DELETE CASCADE).
    session.execute(delete(MetadefNamespace).where(MetadefNamespace.id == row.id))


def list_namespaces(session: Session, actor: Actor, q: NamespaceQuery) -> list[MetadefNamespace]:
    stmt = select(MetadefNamespace).where(visible(actor.project_id))
    if q.visibility is not None:
        stmt = stmt.where(MetadefNamespace.visibility == q.visibility)
    if q.resource_types:
        stmt = stmt.where(exists().where(
            MetadefAssociation.namespace_id == MetadefNamespace.id,
            MetadefAssociation.resource_type_id == MetadefResourceType.id,
            MetadefResourceType.name.in_(q.resource_types)))
    column = getattr(MetadefNamespace, q.sort_key)
    cols = (column, MetadefNamespace.id)
    if q.marker:
        # Keyset pagination after the marker (a namespace the caller can see; 404 otherwise, as Glance).
        marker = readable(session, actor, q.marker)
        values = (getattr(marker, q.sort_key), marker.id)
        stmt = stmt.where(tuple_(*cols) > values if q.sort_dir == "asc" else tuple_(*cols) < values)
    order = [c.asc() if q.sort_dir == "asc" else c.desc() for c in cols]
    return list(session.scalars(stmt.order_by(*order).limit(q.limit)))


@dataclass(frozen=True)
class NamespaceDetail:
    """A namespace with what it holds, as ``GET /v2/metadefs/namespaces/{ns}`` shows it."""

    namespace: MetadefNamespace
    associations: list[resource_types.Association]
    properties: list[MetadefProperty]
    objects: list[MetadefObject]
    tags: list[MetadefTag]
    # With ``?resource_type=``: that association's prefix, which the shown property names carry (Glance).
    prefix: str | None = None


def detail(session: Session, row: MetadefNamespace, resource_type: str | None = None) -> NamespaceDetail:
    associations = resource_types.associations_of(session, [row.id])[row.id]
    prefix = next((a.prefix for a in associations if a.name == resource_type), None) if resource_type else None
    return NamespaceDetail(row, associations, contents.properties_of(session, row), contents.objects_of(session, row),
                           contents.tags_of(session, row), prefix)


def show(session: Session, actor: Actor, namespace: str, resource_type: str | None = None) -> NamespaceDetail:
    return detail(session, readable(session, actor, namespace), resource_type)

"""Resource types and the namespaces associated with them (Glance ``api/v2/metadef_resource_types.py``).

Resource types are global names (``OS::Glance::Image``, ``OS::Nova::Flavor``, …): the shipped ones
are seeded and protected, and, as in Glance, associating a namespace with a name not known yet
creates that type. There is no route creating or deleting a type on its own (POST is 405).

An association says a namespace's definitions apply to a resource type, where their names carry
``prefix`` (``hw_`` on images, ``hw:`` on flavors) and, for some types, live in
``properties_target``. Associating twice is 409; removing an association is a delete, so it is
403 while the namespace is protected.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from openims.catalog.metadefs.access import Actor, protected, readable, unique, writable
from openims.catalog.metadefs.definitions import AssociationSpec
from openims.db.models import MetadefAssociation, MetadefNamespace, MetadefResourceType
from openims.errors import ImsConflict, ImsNotFound


@dataclass(frozen=True)
class Association:
    """An association as it is shown: the resource type's name and the association's own fields."""

    name: str
    prefix: str | None
    properties_target: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


def list_resource_types(session: Session) -> list[MetadefResourceType]:
    return list(session.scalars(select(MetadefResourceType).order_by(MetadefResourceType.name)))


def ensure_resource_type(session: Session, name: str, now: dt.datetime, *, protected: bool = False
                         ) -> MetadefResourceType:
    row = session.scalar(select(MetadefResourceType).where(MetadefResourceType.name == name))
    if row is None:
        row = MetadefResourceType(name=name, protected=protected, created_at=now, updated_at=now)
        session.add(row)
        with unique(f"The metadata definition resource-type {name} was created at the same time; try again."):
            session.flush()
    return row


def associations_of(session: Session, namespace_ids: Iterable[int]) -> dict[int, list[Association]]:
    """Each namespace's associations, by resource type name (one query for a whole page)."""
    ids = list(namespace_ids)
    out: dict[int, list[Association]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = session.execute(
        select(MetadefAssociation, MetadefResourceType.name)
        .join(MetadefResourceType, MetadefResourceType.id == MetadefAssociation.resource_type_id)
        .where(MetadefAssociation.namespace_id.in_(ids)).order_by(MetadefResourceType.name))
    for assoc, name in rows:
        out[assoc.namespace_id].append(Association(name, assoc.prefix, assoc.properties_target, assoc.created_at,
                                                   assoc.updated_at))
    return out


def _missing(namespace: MetadefNamespace, resource_type: str) -> ImsNotFound:
    return ImsNotFound(f"The metadata definition resource-type association of resource-type={resource_type} to "
                       f"namespace={namespace.namespace}, was not found.")


def association_of(session: Session, namespace: MetadefNamespace, resource_type: str) -> MetadefAssociation:
    row = session.scalar(
        select(MetadefAssociation)
        .join(MetadefResourceType, MetadefResourceType.id == MetadefAssociation.resource_type_id)
        .where(MetadefAssociation.namespace_id == namespace.id, MetadefResourceType.name == resource_type))
    if row is None:
        raise _missing(namespace, resource_type)
    return row


def associate(session: Session, namespace: MetadefNamespace, spec: AssociationSpec, now: dt.datetime) -> Association:
    rtype = ensure_resource_type(session, spec.name, now)
    taken = (f"The metadata definition resource-type association of resource-type={spec.name} to "
             f"namespace={namespace.namespace} already exists.")
    if session.get(MetadefAssociation, (namespace.id, rtype.id)) is not None:
        raise ImsConflict(taken)
    row = MetadefAssociation(namespace_id=namespace.id, resource_type_id=rtype.id, prefix=spec.prefix,
                             properties_target=spec.properties_target, created_at=now, updated_at=now)
    session.add(row)
    with unique(taken):
        session.flush()
    return Association(spec.name, spec.prefix, spec.properties_target, now, now)


def list_associations(session: Session, actor: Actor, namespace: str) -> list[Association]:
    row = readable(session, actor, namespace)
    return associations_of(session, [row.id])[row.id]


def create_association(session: Session, actor: Actor, namespace: str, spec: AssociationSpec,
                       now: dt.datetime) -> Association:
    return associate(session, writable(session, actor, namespace), spec, now)


def delete_association(session: Session, actor: Actor, namespace: str, resource_type: str) -> None:
    row = writable(session, actor, namespace)
    assoc = association_of(session, row, resource_type)
    if row.protected:
        raise protected("resource-type-association", resource_type)
    session.execute(delete(MetadefAssociation).where(MetadefAssociation.namespace_id == assoc.namespace_id,
                                                     MetadefAssociation.resource_type_id == assoc.resource_type_id))

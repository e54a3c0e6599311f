"""What a namespace holds: objects, properties and tags (Glance ``api/v2/metadef_{objects,properties,tags}.py``).

Reading needs only the namespace to be visible (``access.readable``); every change needs it
writable (``access.writable``: 404 when invisible, then 403 for a non-administrator or another
project). A missing item is 404; a name already taken in the namespace 409. Deleting an item, or
all items of a kind at once, is 403 while the namespace is protected: the single delete names the
item, the bulk delete the namespace, as Glance's messages do.

PUT replaces an item as a whole and may rename it (409 when the new name is taken).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from openims.catalog.metadefs import definitions, resource_types
from openims.catalog.metadefs.access import Actor, deletable, protected, readable, unique, writable
from openims.catalog.metadefs.definitions import ObjectSpec, PropertySpec
from openims.db.models import MetadefNamespace, MetadefObject, MetadefProperty, MetadefTag
from openims.errors import ImsConflict, ImsNotFound

# ---------------------------------------------------------------- every kind of item

_Item = TypeVar("_Item", MetadefProperty, MetadefObject, MetadefTag)
# What Glance's messages call each kind: (in "…already exists", in "…not found" and "…is protected").
_NAMES: dict[type[Any], tuple[str, str]] = {
    MetadefProperty: ("A metadata definition property", "property"),
    MetadefObject: ("A metadata definition object", "object"),
    MetadefTag: ("A metadata tag", "tag"),
}


def _taken(model: type[_Item], namespace: MetadefNamespace, name: str) -> str:
    return f"{_NAMES[model][0]} with name={name} already exists in namespace={namespace.namespace}."


def _find(session: Session, model: type[_Item], namespace: MetadefNamespace, name: str) -> _Item:
    row = session.scalar(select(model).where(model.namespace_id == namespace.id, model.name == name))
    if row is None:
        raise ImsNotFound(f"Metadata definition {_NAMES[model][1]} with name={name} not found in "
                          f"namespace={namespace.namespace}.")
    return row


def _free(session: Session, model: type[_Item], namespace: MetadefNamespace, names: list[str]) -> None:
    """409 when one of the names is already an item of this kind in the namespace."""
    taken = session.scalar(select(model.name).where(model.namespace_id == namespace.id,
                                                    model.name.in_(names)).limit(1))
    if taken is not None:
        raise ImsConflict(_taken(model, namespace, taken))


def _delete_one(session: Session, actor: Actor, model: type[_Item], namespace: str, name: str) -> None:
    row = writable(session, actor, namespace)
    item = _find(session, model, row, name)
    if row.protected:
        raise protected(_NAMES[model][1], name)
    session.execute(delete(model).where(model.id == item.id))


def _delete_all(session: Session, actor: Actor, model: type[_Item], namespace: str) -> None:
    row = deletable(session, actor, namespace)
    session.execute(delete(model).where(model.namespace_id == row.id))


# ---------------------------------------------------------------- properties


def add_property(session: Session, namespace: MetadefNamespace, spec: PropertySpec,
                 now: dt.datetime) -> MetadefProperty:
    _free(session, MetadefProperty, namespace, [spec.name])
    row = MetadefProperty(namespace_id=namespace.id, name=spec.name, definition=spec.definition, created_at=now,
                          updated_at=now)
    session.add(row)
    with unique(_taken(MetadefProperty, namespace, spec.name)):
        session.flush()
    return row


def properties_of(session: Session, namespace: MetadefNamespace) -> list[MetadefProperty]:
    return list(session.scalars(select(MetadefProperty).where(MetadefProperty.namespace_id == namespace.id)
                                .order_by(MetadefProperty.name)))


def list_properties(session: Session, actor: Actor, namespace: str) -> list[MetadefProperty]:
    return properties_of(session, readable(session, actor, namespace))


def get_property(session: Session, actor: Actor, namespace: str, name: str,
                 resource_type: str | None = None) -> MetadefProperty:
    """One property; with a resource type, ``name`` carries that association's prefix (Glance)."""
    row = readable(session, actor, namespace)
    if resource_type:
        prefix = resource_types.association_of(session, row, resource_type).prefix
        if not prefix or not name.startswith(prefix):
            raise ImsNotFound(f"Property {name} does not start with the expected resource type association "
                              f"prefix of '{prefix}'.")
        name = name[len(prefix):]
    return _find(session, MetadefProperty, row, name)


def create_property(session: Session, actor: Actor, namespace: str, spec: PropertySpec,
                    now: dt.datetime) -> MetadefProperty:
    return add_property(session, writable(session, actor, namespace), spec, now)


def update_property(session: Session, actor: Actor, namespace: str, name: str, spec: PropertySpec,
                    now: dt.datetime) -> MetadefProperty:
    row = writable(session, actor, namespace)
    prop = _find(session, MetadefProperty, row, name)
    if spec.name != prop.name:
        _free(session, MetadefProperty, row, [spec.name])
    prop.name, prop.definition, prop.updated_at = spec.name, spec.definition, now
    with unique(_taken(MetadefProperty, row, spec.name)):
        session.flush()
    return prop


def delete_property(session: Session, actor: Actor, namespace: str, name: str) -> None:
    _delete_one(session, actor, MetadefProperty, namespace, name)


def delete_properties(session: Session, actor: Actor, namespace: str) -> None:
    _delete_all(session, actor, MetadefProperty, namespace)


# ---------------------------------------------------------------- objects


def add_object(session: Session, namespace: MetadefNamespace, spec: ObjectSpec, now: dt.datetime) -> MetadefObject:
    _free(session, MetadefObject, namespace, [spec.name])
    row = MetadefObject(namespace_id=namespace.id, name=spec.name, description=spec.description,
                        required=spec.required, properties=spec.properties, created_at=now, updated_at=now)
    session.add(row)
    with unique(_taken(MetadefObject, namespace, spec.name)):
        session.flush()
    return row


def objects_of(session: Session, namespace: MetadefNamespace) -> list[MetadefObject]:
    return list(session.scalars(select(MetadefObject).where(MetadefObject.namespace_id == namespace.id)
                                .order_by(MetadefObject.name)))


def list_objects(session: Session, actor: Actor, namespace: str) -> tuple[MetadefNamespace, list[MetadefObject]]:
    row = readable(session, actor, namespace)
    return row, objects_of(session, row)


def get_object(session: Session, actor: Actor, namespace: str, name: str) -> tuple[MetadefNamespace, MetadefObject]:
    row = readable(session, actor, namespace)
    return row, _find(session, MetadefObject, row, name)


def create_object(session: Session, actor: Actor, namespace: str, spec: ObjectSpec,
                  now: dt.datetime) -> tuple[MetadefNamespace, MetadefObject]:
    row = writable(session, actor, namespace)
    return row, add_object(session, row, spec, now)


def update_object(session: Session, actor: Actor, namespace: str, name: str, spec: ObjectSpec,
                  now: dt.datetime) -> tuple[MetadefNamespace, MetadefObject]:
    row = writable(session, actor, namespace)
    obj = _find(session, MetadefObject, row, name)
    if spec.name != obj.name:
        _free(session, MetadefObject, row, [spec.name])
    obj.name, obj.description, obj.required, obj.properties = spec.name, spec.description, spec.required, \
        spec.properties
    obj.updated_at = now
    with unique(_taken(MetadefObject, row, spec.name)):
        session.flush()
    return row, obj


def delete_object(session: Session, actor: Actor, namespace: str, name: str) -> None:
    _delete_one(session, actor, MetadefObject, namespace, name)


def delete_objects(session: Session, actor: Actor, namespace: str) -> None:
    _delete_all(session, actor, MetadefObject, namespace)


# ---------------------------------------------------------------- tags


def add_tags(session: Session, namespace: MetadefNamespace, names: list[str], now: dt.datetime, *,
             append: bool) -> list[MetadefTag]:
    """Store tags; without ``append`` they replace the namespace's tags. An empty list changes nothing
    (Glance: replacing with no tags is not a way to delete them)."""
    if not names:
        return []
    if not append:
        session.execute(delete(MetadefTag).where(MetadefTag.namespace_id == namespace.id))
    else:
        _free(session, MetadefTag, namespace, names)
    rows = [MetadefTag(namespace_id=namespace.id, name=n, created_at=now, updated_at=now) for n in names]
    session.add_all(rows)
    with unique(_taken(MetadefTag, namespace, names[0] if len(names) == 1 else ", ".join(names))):
        session.flush()
    return rows


def tags_of(session: Session, namespace: MetadefNamespace) -> list[MetadefTag]:
    return list(session.scalars(select(MetadefTag).where(MetadefTag.namespace_id == namespace.id)
                                .order_by(MetadefTag.id)))


def list_tags(session: Session, actor: Actor, namespace: str) -> list[MetadefTag]:
    return tags_of(session, readable(session, actor, namespace))


def get_tag(session: Session, actor: Actor, namespace: str, name: str) -> MetadefTag:
    return _find(session, MetadefTag, readable(session, actor, namespace), name)


def create_tag(session: Session, actor: Actor, namespace: str, name: str, now: dt.datetime) -> MetadefTag:
    """``POST …/tags/{name}``: the name comes from the path, so it is checked here."""
    (row,) = add_tags(session, writable(session, actor, namespace), [definitions.name(name, "tag name")], now,
                      append=True)
    return row


def create_tags(session: Session, actor: Actor, namespace: str, names: list[str], now: dt.datetime, *,
                append: bool) -> list[MetadefTag]:
    return add_tags(session, writable(session, actor, namespace), names, now, append=append)


def update_tag(session: Session, actor: Actor, namespace: str, name: str, new_name: str,
               now: dt.datetime) -> MetadefTag:
    row = writable(session, actor, namespace)
    tag = _find(session, MetadefTag, row, name)
    if new_name != tag.name:
        _free(session, MetadefTag, row, [new_name])
    tag.name, tag.updated_at = new_name, now
    with unique(_taken(MetadefTag, row, new_name)):
        session.flush()
    return tag


def delete_tag(session: Session, actor: Actor, namespace: str, name: str) -> None:
    _delete_one(session, actor, MetadefTag, namespace, name)


def delete_tags(session: Session, actor: Actor, namespace: str) -> None:
    _delete_all(session, actor, MetadefTag, namespace)

"""Metadata definitions (Glance metadefs) on the wire: views of namespaces, objects, properties,
tags, resource types and associations, and the namespace list's query and links.

Shapes as Glance renders them (glance ``api/v2/metadef_*.py``, api-ref ``metadefs-*.inc``): times
as ``YYYY-MM-DDThh:mm:ssZ``; attributes without a value are left out rather than sent as null (the
schemas type them as strings, and glanceclient validates what it gets against them); a namespace
lists its associations, properties, objects and tags only when it has some. ``self`` links name
the resource as it is called, unescaped, as Glance writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from openims.api.glance_wire import DEFAULT_LIMIT, MAX_LIMIT, list_links
from openims.api.ims_wire import ts
from openims.api.params import INT64_MAX, parse_int
from openims.catalog.metadefs.definitions import VISIBILITIES
from openims.catalog.metadefs.namespaces import SORT_DIRS, SORT_KEYS, NamespaceDetail, NamespaceQuery
from openims.catalog.metadefs.resource_types import Association
from openims.db.models import MetadefNamespace, MetadefObject, MetadefProperty, MetadefResourceType, MetadefTag
from openims.errors import ImsBadRequest

NAMESPACES = "/v2/metadefs/namespaces"
SCHEMAS = "/v2/schemas/metadefs"
_TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})


def _present(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def namespace_path(namespace: str) -> str:
    return f"{NAMESPACES}/{namespace}"


def location(namespace: str) -> str:
    """The created namespace's path for the Location header: escaped, since a header carries no raw spaces
    or non-Latin-1 text."""
    return f"{NAMESPACES}/{quote(namespace, safe=':')}"


def association_view(a: Association) -> dict[str, Any]:
    return _present({"name": a.name, "prefix": a.prefix, "properties_target": a.properties_target,
                     "created_at": ts(a.created_at), "updated_at": ts(a.updated_at)})


def namespace_view(row: MetadefNamespace, associations: Sequence[Association]) -> dict[str, Any]:
    body = _present({
        "namespace": row.namespace, "display_name": row.display_name, "description": row.description,
        "visibility": row.visibility, "protected": row.protected, "owner": row.owner,
        "created_at": ts(row.created_at), "updated_at": ts(row.updated_at),
        "schema": f"{SCHEMAS}/namespace", "self": namespace_path(row.namespace)})
    if associations:
        body["resource_type_associations"] = [association_view(a) for a in associations]
    return body


def _prefixed(properties: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {prefix + key: value for key, value in properties.items()}


def namespace_detail_view(d: NamespaceDetail) -> dict[str, Any]:
    """A namespace with its contents; with ``?resource_type=`` the names carry that type's prefix."""
    body = namespace_view(d.namespace, d.associations)
    prefix = d.prefix or ""
    if d.properties:
        body["properties"] = _prefixed({p.name: p.definition for p in d.properties}, prefix)
    if d.objects:
        body["objects"] = [_present({
            "name": o.name, "description": o.description, "required": [prefix + r for r in o.required],
            "properties": _prefixed(o.properties, prefix), "created_at": ts(o.created_at),
            "updated_at": ts(o.updated_at)}) for o in d.objects]
    if d.tags:
        body["tags"] = [{"name": t.name} for t in d.tags]
    return body


def object_view(namespace: MetadefNamespace, obj: MetadefObject) -> dict[str, Any]:
    return _present({
        "name": obj.name, "description": obj.description, "required": obj.required, "properties": obj.properties,
        "schema": f"{SCHEMAS}/object", "self": f"{namespace_path(namespace.namespace)}/objects/{obj.name}",
        "created_at": ts(obj.created_at), "updated_at": ts(obj.updated_at)})


def property_view(prop: MetadefProperty) -> dict[str, Any]:
    return {"name": prop.name, **prop.definition}


def properties_view(props: Sequence[MetadefProperty]) -> dict[str, Any]:
    return {"properties": {p.name: p.definition for p in props}, "schema": f"{SCHEMAS}/properties"}


def tag_view(tag: MetadefTag) -> dict[str, Any]:
    return {"name": tag.name, "created_at": ts(tag.created_at), "updated_at": ts(tag.updated_at)}


def resource_type_view(rtype: MetadefResourceType) -> dict[str, Any]:
    return {"name": rtype.name, "created_at": ts(rtype.created_at), "updated_at": ts(rtype.updated_at)}


def appends(header: str | None) -> bool:
    """``X-Openstack-Append``, read as oslo's ``bool_from_string`` reads it (anything else is false)."""
    return header is not None and header.strip().lower() in _TRUE


# ---------------------------------------------------------------- the namespace list


def namespace_query(params: Sequence[tuple[str, str]]) -> NamespaceQuery:
    """``limit``, ``marker``, ``visibility``, ``resource_types``, ``sort_key``, ``sort_dir``; others are ignored."""
    single = dict(params)
    # Any limit is accepted and capped, as Glance does; only nonsense is refused.
    limit = min(parse_int("limit", single["limit"], high=INT64_MAX) if "limit" in single else DEFAULT_LIMIT,
                MAX_LIMIT)
    visibility = single.get("visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise ImsBadRequest(f"Invalid visibility {visibility[:64]!r}: it must be one of {', '.join(VISIBILITIES)}.")
    sort_key = single.get("sort_key", "created_at")
    if sort_key not in SORT_KEYS:
        raise ImsBadRequest(f"Invalid sort key {sort_key[:64]!r}: it must be one of {', '.join(SORT_KEYS)}.")
    sort_dir = single.get("sort_dir", "desc")
    if sort_dir not in SORT_DIRS:
        raise ImsBadRequest(f"Invalid sort direction: {sort_dir[:64]}")
    types = tuple(t.strip() for t in single.get("resource_types", "").split(",") if t.strip())
    return NamespaceQuery(limit=limit, marker=single.get("marker") or None, visibility=visibility,
                          resource_types=types, sort_key=sort_key, sort_dir=sort_dir)


def namespace_list(params: Sequence[tuple[str, str]], q: NamespaceQuery, rows: Sequence[MetadefNamespace],
                   associations: dict[int, list[Association]]) -> dict[str, Any]:
    # As Glance: a full page may be followed by more, so it links the next one.
    last = rows[-1].namespace if rows and len(rows) == q.limit else None
    first, following = list_links(params, limit=q.limit, last_id=last, path=NAMESPACES)
    body: dict[str, Any] = {"namespaces": [namespace_view(r, associations[r.id]) for r in rows], "first": first,
                            "schema": f"{SCHEMAS}/namespaces"}
    if following is not None:
        body["next"] = following
    return body

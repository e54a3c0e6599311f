"""What a metadata definition document may hold: pure checks, no database.

Namespaces, objects, properties, tags and resource-type associations arrive as JSON documents in
the shape Glance takes (glance ``api/v2/metadef_*.py`` and their schemas), from a request body or
from a data file shipped with the service (``seed``). Each is checked here and turned into a
frozen spec the services store. What Glance refuses we refuse with the same status:

- an attribute the schema does not know → 400; a read-only one (``self``, ``schema``,
  ``created_at``, ``updated_at``) → 403 "Attribute '…' is read-only.";
- a property definition is JSON-schema-like: ``type`` and ``title`` are required, ``type`` is one of
  the JSON types, and only the keywords of Glance's property schema are taken.

Names are at most 80 characters (Glance's columns) and never contain ``/``: every one of them is
addressed by a path segment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from openims.errors import ImsBadRequest, ImsConflict, ImsForbidden

NAME_MAX = 80
DESCRIPTION_MAX = 500
OWNER_MAX = 255
VISIBILITIES = ("public", "private")
PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string")
READ_ONLY = frozenset({"self", "schema", "created_at", "updated_at"})

# The keywords of a property definition and how each is checked (Glance's property schema).
_STRING_KEYS = frozenset({"title", "description", "pattern"})
_NUMBER_KEYS = frozenset({"minimum", "maximum"})
_COUNT_KEYS = frozenset({"minLength", "maxLength", "minItems", "maxItems"})
_FLAG_KEYS = frozenset({"readonly", "uniqueItems", "additionalItems"})
_LIST_KEYS = frozenset({"operators", "required"})
PROPERTY_KEYS = _STRING_KEYS | _NUMBER_KEYS | _COUNT_KEYS | _FLAG_KEYS | _LIST_KEYS | {"type", "enum", "default",
                                                                                         "items"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class PropertySpec:
    name: str
    definition: dict[str, Any]


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    description: str | None
    required: list[str]
    properties: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class AssociationSpec:
    name: str
    prefix: str | None = None
    properties_target: str | None = None


@dataclass(frozen=True)
class NamespaceSpec:
    namespace: str
    display_name: str | None = None
    description: str | None = None
    visibility: str = "private"
    protected: bool = False
    owner: str | None = None
    # Contents given at creation (PUT ignores them, as Glance does).
    properties: list[PropertySpec] = field(default_factory=list)
    objects: list[ObjectSpec] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    associations: list[AssociationSpec] = field(default_factory=list)


def _document(body: Any, what: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise ImsBadRequest(f"The {what} must be a JSON object.")
    for key in body:
        if key in READ_ONLY:
            raise ImsForbidden(f"Attribute '{key}' is read-only.")
        if key not in allowed:
            raise ImsBadRequest(f"Additional properties are not allowed in the {what} ('{str(key)[:64]}' was "
                                "unexpected).")
    return body


def name(value: Any, what: str) -> str:
    """A name addressed by a path segment: 1..80 characters, no '/', no control characters."""
    if not isinstance(value, str) or not value.strip():
        raise ImsBadRequest(f"The {what} must be a non-empty string.")
    if len(value) > NAME_MAX:
        raise ImsBadRequest(f"The {what} {value[:64]!r} is longer than {NAME_MAX} characters.")
    if "/" in value or _CONTROL.search(value):
        raise ImsBadRequest(f"The {what} {value[:64]!r} must not contain '/' or control characters.")
    return value


def _text(body: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ImsBadRequest(f"'{key}' must be a string.")
    if len(value) > limit:
        raise ImsBadRequest(f"'{key}' is longer than {limit} characters.")
    return value


def _flag(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ImsBadRequest(f"'{key}' must be true or false.")
    return value


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImsBadRequest(f"'{what}' must be a list of strings.")
    return list(value)


def _given(body: Mapping[str, Any], key: str, empty: Any) -> Any:
    """A content field: absent or null is ``empty``; any other value is checked for its type by the caller
    (a false-like 0, false or "" is a wrong type, a 400, as Glance's schema answers it)."""
    value = body.get(key)
    return empty if value is None else value


def visibility(value: Any) -> str:
    if value is None:
        return "private"
    if value not in VISIBILITIES:
        raise ImsBadRequest(f"Invalid visibility {str(value)[:64]!r}: it must be one of {', '.join(VISIBILITIES)}.")
    return str(value)


# ---------------------------------------------------------------- properties


def _type(value: Any, where: str) -> str:
    if value not in PROPERTY_TYPES:
        raise ImsBadRequest(f"{where}: 'type' must be one of {', '.join(PROPERTY_TYPES)}.")
    return str(value)


def definition(body: Any, where: str) -> dict[str, Any]:
    """One property definition without its name, checked keyword by keyword."""
    doc = _document(body, f"definition of {where}", PROPERTY_KEYS)
    for required in ("type", "title"):
        if required not in doc:
            raise ImsBadRequest(f"{where}: '{required}' is a required property.")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "type":
            out[key] = _type(value, where)
        elif key in _STRING_KEYS:
            if not isinstance(value, str):
                raise ImsBadRequest(f"{where}: '{key}' must be a string.")
            if key == "pattern":
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ImsBadRequest(f"{where}: 'pattern' is not a valid regular expression ({exc}).") from None
            out[key] = value
        elif key in _NUMBER_KEYS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ImsBadRequest(f"{where}: '{key}' must be a number.")
            out[key] = value
        elif key in _COUNT_KEYS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ImsBadRequest(f"{where}: '{key}' must be an integer of at least 0.")
            out[key] = value
        elif key in _FLAG_KEYS:
            if not isinstance(value, bool):
                raise ImsBadRequest(f"{where}: '{key}' must be true or false.")
            out[key] = value
        elif key in _LIST_KEYS:
            out[key] = _strings(value, f"{where}: {key}")
        elif key == "enum":
            if not isinstance(value, list):
                raise ImsBadRequest(f"{where}: 'enum' must be a list.")
            out[key] = value
        elif key == "items":
            items = _document(value, f"items of {where}", frozenset({"type", "enum"}))
            if "type" in items:
                _type(items["type"], f"{where} items")
            if "enum" in items and not isinstance(items["enum"], list):
                raise ImsBadRequest(f"{where}: 'items.enum' must be a list.")
            out[key] = dict(items)
        else:  # default: any JSON value
            out[key] = value
    return out


def property_spec(body: Any) -> PropertySpec:
    doc = _document(body, "property", PROPERTY_KEYS | {"name"})
    if "name" not in doc:
        raise ImsBadRequest("'name' is a required property.")
    prop = name(doc["name"], "property name")
    return PropertySpec(prop, definition({k: v for k, v in doc.items() if k != "name"}, f"property {prop!r}"))


def property_map(value: Any, where: str) -> dict[str, dict[str, Any]]:
    """``{"name": definition, …}``, as namespaces and objects hold their properties."""
    if not isinstance(value, dict):
        raise ImsBadRequest(f"The properties of {where} must be a JSON object of definitions.")
    return {name(key, "property name"): definition(body, f"property {key!r}") for key, body in value.items()}


# ---------------------------------------------------------------- objects, tags, associations


def object_spec(body: Any) -> ObjectSpec:
    doc = _document(body, "object", frozenset({"name", "description", "required", "properties"}))
    if "name" not in doc:
        raise ImsBadRequest("'name' is a required property.")
    obj = name(doc["name"], "object name")
    required = _strings(_given(doc, "required", []), "required")
    if len(set(required)) != len(required):
        raise ImsBadRequest(f"The required properties of object {obj!r} must be unique.")
    return ObjectSpec(obj, _text(doc, "description", DESCRIPTION_MAX), required,
                      property_map(_given(doc, "properties", {}), f"object {obj!r}"))


def tag_name(body: Any) -> str:
    doc = _document(body, "tag", frozenset({"name"}))
    if "name" not in doc:
        raise ImsBadRequest("'name' is a required property.")
    return name(doc["name"], "tag name")


def tag_names(body: Any) -> list[str]:
    """``{"tags": [{"name": …}, …]}``; a name twice is a conflict, as Glance answers."""
    doc = _document(body, "tag list", frozenset({"tags"}))
    items = doc.get("tags")
    if not isinstance(items, list):
        raise ImsBadRequest("'tags' must be a list of {\"name\": …} objects.")
    names = [tag_name(item) for item in items]
    unique(names, "tag")
    return names


def unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ImsConflict(f"Duplicate {what} name {n!r} in the request.")
        seen.add(n)


def association_spec(body: Any) -> AssociationSpec:
    doc = _document(body, "resource type association", frozenset({"name", "prefix", "properties_target"}))
    if "name" not in doc:
        raise ImsBadRequest("'name' is a required property.")
    return AssociationSpec(name(doc["name"], "resource type name"), _text(doc, "prefix", NAME_MAX),
                           _text(doc, "properties_target", NAME_MAX))


# ---------------------------------------------------------------- namespaces

_NAMESPACE_KEYS = frozenset({"namespace", "display_name", "description", "visibility", "protected", "owner",
                             "properties", "objects", "tags", "resource_type_associations"})


def _nested(item: Any) -> Any:
    """An object, tag or association inside a namespace document: what a GET shows of it (times,
    links) is dropped rather than refused, so a shown namespace can be sent back (as Glance takes it)."""
    return {k: v for k, v in item.items() if k not in READ_ONLY} if isinstance(item, dict) else item


def namespace_spec(body: Any, *, contents: bool = True) -> NamespaceSpec:
    """A namespace to create with any contents, or (``contents=False``) the replacement a PUT sends.

    Omitted fields take their defaults in both cases: Glance's PUT replaces the namespace's fields
    (visibility back to private, protected back to false) and ignores the contents, which
    glanceclient sends back as it got them.
    """
    doc = _document(body, "namespace", _NAMESPACE_KEYS)
    if "namespace" not in doc:
        raise ImsBadRequest("'namespace' is a required property.")
    ns = name(doc["namespace"], "namespace")
    fields = NamespaceSpec(
        namespace=ns, display_name=_text(doc, "display_name", NAME_MAX),
        description=_text(doc, "description", DESCRIPTION_MAX), visibility=visibility(doc.get("visibility")),
        protected=_flag(doc, "protected", False), owner=_text(doc, "owner", OWNER_MAX))
    if not contents:
        return fields
    objects = _given(doc, "objects", [])
    tags = _given(doc, "tags", [])
    associations = _given(doc, "resource_type_associations", [])
    if not isinstance(objects, list) or not isinstance(tags, list) or not isinstance(associations, list):
        raise ImsBadRequest("'objects', 'tags' and 'resource_type_associations' must be lists.")
    properties = property_map(_given(doc, "properties", {}), f"namespace {ns!r}")
    spec = replace(fields, properties=[PropertySpec(k, v) for k, v in properties.items()],
                   objects=[object_spec(_nested(o)) for o in objects], tags=[tag_name(_nested(t)) for t in tags],
                   associations=[association_spec(_nested(a)) for a in associations])
    unique([o.name for o in spec.objects], "object")
    unique(spec.tags, "tag")
    unique([a.name for a in spec.associations], "resource type")
    return spec

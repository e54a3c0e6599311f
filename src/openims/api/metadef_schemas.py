"""JSON Schema documents of the metadata definitions (``GET /v2/schemas/metadefs/…``) and of tasks.

Shaped as Glance serves them (glance ``api/v2/metadef_*.py`` ``get_schema``/``get_collection_schema``,
``api/v2/tasks.py``): an item schema refuses attributes it does not name
(``additionalProperties: false``), a collection schema lists its items and the ``first``/``next``/
``schema`` links. python-glanceclient builds its metadefs models from these documents and checks
what the server sends against them, so they describe exactly the views of ``api.metadef_wire`` and
the task body of ``api.glance_import_routes``.
"""

from __future__ import annotations

import copy
from typing import Any

from openims.catalog.glance_import import TASK_TYPE
from openims.catalog.metadefs.definitions import DESCRIPTION_MAX, NAME_MAX, OWNER_MAX, PROPERTY_TYPES, VISIBILITIES

_TIME = {"type": "string", "readOnly": True, "format": "date-time"}


def _times(what: str) -> dict[str, Any]:
    return {"created_at": {**_TIME, "description": f"When the {what} was created."},
            "updated_at": {**_TIME, "description": f"When the {what} was last changed."}}


_LINKS: dict[str, Any] = {"schema": {"type": "string", "readOnly": True},
                          "self": {"type": "string", "readOnly": True}}

_DEFINITIONS: dict[str, Any] = {
    "positiveInteger": {"type": "integer", "minimum": 0},
    "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]},
    "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
}


def _property_keywords() -> dict[str, Any]:
    """What a property definition may say (catalog.metadefs.definitions checks the same keywords)."""
    types = [*PROPERTY_TYPES, None]
    return {
        "title": {"type": "string", "description": "A short human name of the property."},
        "description": {"type": "string", "description": "What the property means and how it is used."},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": types},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {"type": "object", "properties": {"type": {"type": "string", "enum": types},
                                                   "enum": {"type": "array"}}},
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": False},
        "additionalItems": {"type": "boolean"},
    }


def _property_map() -> dict[str, Any]:
    """``{"name": definition, …}`` as namespaces and objects hold their properties."""
    return {"type": "object", "additionalProperties": {
        "type": "object", "required": ["title", "type"], "properties": _property_keywords(),
        "additionalProperties": False}}


def _collection(name: str, item: dict[str, Any], *, as_map: bool = False) -> dict[str, Any]:
    """A list (or a name → item map) of ``item``; its ``definitions`` move to the root, where the
    items' ``$ref``s resolve (as Glance's CollectionSchema does)."""
    item = dict(item)
    definitions = item.pop("definitions", None)
    items = ({"type": "object", "additionalProperties": item} if as_map else {"type": "array", "items": item})
    schema: dict[str, Any] = {
        "name": name,
        "properties": {name: items, "first": {"type": "string"}, "next": {"type": "string"},
                       "schema": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }
    if definitions:
        schema["definitions"] = definitions
    return schema


ASSOCIATION_SCHEMA: dict[str, Any] = {
    "name": "resource_type_association",
    "properties": {
        "name": {"type": "string", "maxLength": NAME_MAX,
                 "description": "The resource type, e.g. OS::Glance::Image or OS::Nova::Flavor."},
        "prefix": {"type": "string", "maxLength": NAME_MAX,
                   "description": "What the namespace's property names carry on this resource type (hw_, hw:)."},
        "properties_target": {"type": "string", "maxLength": NAME_MAX,
                              "description": "Where on the resource the properties live, for types that "
                                             "keep several sets (a volume's image metadata: image)."},
        **_times("association"),
    },
    "required": ["name"],
    "additionalProperties": False,
}

PROPERTY_SCHEMA: dict[str, Any] = {
    "name": "property",
    "properties": {"name": {"type": "string", "maxLength": NAME_MAX}, **_property_keywords()},
    "required": ["type", "title", "name"],
    "definitions": _DEFINITIONS,
    "additionalProperties": False,
}

OBJECT_SCHEMA: dict[str, Any] = {
    "name": "object",
    "properties": {
        "name": {"type": "string", "maxLength": NAME_MAX},
        "description": {"type": "string", "maxLength": DESCRIPTION_MAX},
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": _property_map(),
        **_times("object"),
        **_LINKS,
    },
    "required": ["name"],
    "definitions": _DEFINITIONS,
    "additionalProperties": False,
}

TAG_SCHEMA: dict[str, Any] = {
    "name": "tag",
    "properties": {"name": {"type": "string", "maxLength": NAME_MAX}, **_times("tag")},
    "required": ["name"],
    "additionalProperties": False,
}

NAMESPACE_SCHEMA: dict[str, Any] = {
    "name": "namespace",
    "properties": {
        "namespace": {"type": "string", "maxLength": NAME_MAX, "description": "The namespace's unique name."},
        "display_name": {"type": "string", "maxLength": NAME_MAX, "description": "A name for people to read."},
        "description": {"type": "string", "maxLength": DESCRIPTION_MAX,
                        "description": "What the definitions of the namespace are for."},
        "visibility": {"type": "string", "enum": list(VISIBILITIES),
                       "description": "public: every project sees it; private: its owner project only."},
        "protected": {"type": "boolean", "description": "While true, the namespace and its contents cannot be "
                                                        "deleted."},
        "owner": {"type": "string", "maxLength": OWNER_MAX, "description": "The project that owns the namespace."},
        **_times("namespace"),
        **_LINKS,
        "resource_type_associations": {"type": "array", "items": {
            "type": "object", "properties": copy.deepcopy(ASSOCIATION_SCHEMA["properties"])}},
        "properties": _property_map(),
        "objects": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "required": {"$ref": "#/definitions/stringArray"}, "properties": _property_map()}}},
        "tags": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
    },
    "required": ["namespace"],
    "definitions": _DEFINITIONS,
    "additionalProperties": False,
}

RESOURCE_TYPES_SCHEMA = _collection("resource_type_associations", ASSOCIATION_SCHEMA)

METADEF_SCHEMAS: dict[str, dict[str, Any]] = {
    "metadefs/namespace": NAMESPACE_SCHEMA,
    "metadefs/namespaces": _collection("namespaces", NAMESPACE_SCHEMA),
    "metadefs/object": OBJECT_SCHEMA,
    "metadefs/objects": _collection("objects", OBJECT_SCHEMA),
    "metadefs/property": PROPERTY_SCHEMA,
    # Keyed by name, so the items have none.
    "metadefs/properties": _collection("properties", {
        "properties": _property_keywords(), "required": ["type", "title"], "definitions": _DEFINITIONS,
        "additionalProperties": False}, as_map=True),
    "metadefs/tag": TAG_SCHEMA,
    "metadefs/tags": _collection("tags", TAG_SCHEMA),
    "metadefs/resource_type": ASSOCIATION_SCHEMA,
    "metadefs/resource_types": RESOURCE_TYPES_SCHEMA,
}

# ---------------------------------------------------------------- tasks (the image import tasks)

TASK_SCHEMA: dict[str, Any] = {
    "name": "task",
    "properties": {
        "id": {"type": "string", "description": "The task's identifier."},
        "type": {"type": "string", "enum": [TASK_TYPE], "description": "What the task does."},
        "status": {"type": "string", "enum": ["pending", "processing", "success", "failure"],
                   "description": "Where the task is."},
        "input": {"type": "object", "description": "What the task was asked to do."},
        "result": {"type": ["null", "object"], "description": "What the task produced, once it succeeded."},
        "owner": {"type": "string", "description": "The project the task belongs to."},
        "message": {"type": "string", "description": "Why the task failed, when it did."},
        "image_id": {"type": "string", "description": "The image the task works on."},
        "request_id": {"type": "string", "description": "The request that started the task."},
        "user_id": {"type": "string", "description": "The user who started the task."},
        "expires_at": {"type": ["null", "string"], "description": "When the finished task is forgotten."},
        "created_at": {"type": "string", "description": "When the task was created."},
        "updated_at": {"type": "string", "description": "When the task last changed."},
        "deleted_at": {"type": ["null", "string"]},
        "deleted": {"type": "boolean"},
        "self": {"type": "string"},
        "schema": {"type": "string"},
    },
    "links": [{"rel": "self", "href": "{self}"}, {"rel": "describedby", "href": "{schema}"}],
}

TASKS_SCHEMA: dict[str, Any] = _collection("tasks", TASK_SCHEMA)

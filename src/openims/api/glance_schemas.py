"""The JSON Schema documents of the native image API (``GET /v2/schemas/…``).

Shaped as Glance serves them (glance ``api/v2/images.py`` ``get_base_properties``/``get_schema``,
``image_members.py``), but describing what this service returns and accepts: the enums list the
formats the import pipeline reads and the statuses and visibilities an image can have here, and
nullable fields are ``["null", …]``. python-glanceclient validates the image it gets back from
``POST /v2/images`` and builds its CLI options from these documents, so they must match the wire.
Every other attribute (the IMS ``__…`` ones, custom properties) is a string:
``additionalProperties: {"type": "string"}``. The task and metadefs documents are in
``metadef_schemas``; all are served from ``SCHEMAS``.
"""

from __future__ import annotations

from typing import Any

from openims.api.metadef_schemas import METADEF_SCHEMAS, TASK_SCHEMA, TASKS_SCHEMA
from openims.catalog.images import ALL_STATUSES, ImageStatus
from openims.catalog.native import CONTAINER_FORMATS, DISK_FORMATS, VISIBILITIES
from openims.catalog.tags import NATIVE_TAG_MAX

UUID_PATTERN = ("^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                "-([0-9a-fA-F]){12}$")


def _read_only(type_: str | list[str], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "readOnly": True, "description": description, **extra}


def _image_properties() -> dict[str, Any]:
    return {
        "id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
        "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
        "status": _read_only("string", "Status of the image", enum=[s.value for s in ImageStatus]),
        "visibility": {"type": "string", "description": "Scope of image accessibility", "enum": list(VISIBILITIES)},
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list "
                      "response."},
        "checksum": _read_only(["null", "string"], "md5 hash of image contents.", maxLength=32),
        "os_hash_algo": _read_only(["null", "string"], "Algorithm to calculate the os_hash_value", maxLength=64),
        "os_hash_value": _read_only(["null", "string"], "Hexdigest of the image contents using the algorithm "
                                    "specified by the os_hash_algo", maxLength=128),
        "stores": _read_only("string", "Comma-separated ids of the stores holding the image's data (present only "
                             "when several stores are configured)"),
        "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
        "size": _read_only(["null", "integer"], "Size of image file in bytes"),
        "virtual_size": _read_only(["null", "integer"], "Virtual size of image in bytes"),
        "container_format": {"type": ["null", "string"], "description": "Format of the container",
                             "enum": [None, *CONTAINER_FORMATS]},
        "disk_format": {"type": ["null", "string"], "description": "Format of the disk",
                        "enum": [None, *DISK_FORMATS]},
        "created_at": _read_only("string", "Date and time of image registration"),
        "updated_at": _read_only("string", "Date and time of the last image modification"),
        "tags": {"type": "array", "description": "List of strings related to the image",
                 "items": {"type": "string", "maxLength": NATIVE_TAG_MAX}},
        "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
        "self": _read_only("string", "An image self url"),
        "file": _read_only("string", "An image file url"),
        "schema": _read_only("string", "An image schema url"),
    }


def _links(**rels: str) -> list[dict[str, str]]:
    """JSON-schema link descriptions: relation -> the name of the member holding its URL."""
    return [{"rel": rel, "href": "{" + member + "}"} for rel, member in rels.items()]


IMAGE_SCHEMA: dict[str, Any] = {
    "name": "image",
    "properties": _image_properties(),
    "additionalProperties": {"type": "string"},
    "links": _links(self="self", enclosure="file", describedby="schema"),
}

IMAGES_SCHEMA: dict[str, Any] = {
    "name": "images",
    "properties": {
        "images": {"type": "array", "items": IMAGE_SCHEMA},
        "schema": {"type": "string"},
        "first": {"type": "string"},
        "next": {"type": "string"},
    },
    "links": _links(first="first", next="next", describedby="schema"),
}

MEMBER_SCHEMA: dict[str, Any] = {
    "name": "member",
    "properties": {
        "created_at": {"type": "string", "description": "Date and time of image member creation"},
        "image_id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
        "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
        "status": {"type": "string", "description": "The status of this image member",
                   "enum": list(ALL_STATUSES)},
        "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
        "schema": {"type": "string", "readOnly": True},
    },
}

MEMBERS_SCHEMA: dict[str, Any] = {
    "name": "members",
    "properties": {
        "members": {"type": "array", "items": MEMBER_SCHEMA},
        "schema": {"type": "string"},
    },
    "links": _links(describedby="schema"),
}

# Served by ``GET /v2/schemas/{name}``; the metadefs ones are named by their path ("metadefs/namespace").
SCHEMAS: dict[str, dict[str, Any]] = {
    "image": IMAGE_SCHEMA,
    "images": IMAGES_SCHEMA,
    "member": MEMBER_SCHEMA,
    "members": MEMBERS_SCHEMA,
    "task": TASK_SCHEMA,
    "tasks": TASKS_SCHEMA,
    **METADEF_SCHEMAS,
}

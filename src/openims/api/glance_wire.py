"""Native image API (Glance v2) wire shapes: image views, list queries and links, JSON patches, ranges."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlencode

from openims.api.glance_schemas import IMAGE_SCHEMA
from openims.api.ims_wire import (
    DESCRIPTION_RULE,
    IMAGE_TYPES,
    MEMBER_FILTERS,
    NAME_RULE,
    OS_VERSION_RULE,
    SORT_DIRS,
    TAG_KEY_RULE,
    TAG_STRING_RULE,
    TAG_VALUE_RULE,
    any_case,
    as_string,
    image_body,
    int_text,
    time_filter,
)
from openims.api.openapi_docs import Schema
from openims.api.params import INT32_MAX, INT64_MAX, parse_int
from openims.catalog import native as native_rules
from openims.catalog import tags as tag_rules
from openims.catalog.images import SORT_KEYS, TIME_OPS, ImageQuery, parse_time_filter
from openims.catalog.native import (
    CORE,
    KEPT_ON_REMOVE,
    MAX_CUSTOM_PROPERTIES,
    MAX_MIN_DISK,
    MAX_VALUE,
    READ_ONLY,
    RESERVED,
    SYSTEM_WRITABLE,
)
from openims.catalog.patch import PatchOp
from openims.catalog.tags import MAX_TAGS, NATIVE_TAG_MAX
from openims.catalog.validation import ARCHITECTURES, FIRMWARE_TYPES
from openims.db.models import Image
from openims.errors import ImsBadRequest

# Glance's defaults (limit_param_default, api_limit_max).
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000

PATCH_MEDIA_TYPES = {
    "application/openstack-images-v2.1-json-patch": 10,  # RFC 6902 operations: {"op", "path", "value"}
    "application/openstack-images-v2.0-json-patch": 4,  # older draft: {"replace": "/name", "value"}
}

# IMS-only fields of image_body that Glance does not have (and its image schema would refuse).
_NOT_NATIVE = ("deleted", "deleted_at")
# Glance's core fields keep their JSON types; everything else is a string property.
_TYPED = frozenset({"id", "name", "status", "visibility", "protected", "os_hidden", "tags", "container_format",
                    "disk_format",
                    "min_disk", "min_ram", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
                    "owner", "created_at", "updated_at", "self", "file", "schema"})


def naive_time(t: dt.datetime | None) -> str | None:
    """Glance's task and v1 times: naive ISO 8601 (UTC) with microseconds, no zone."""
    return t.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") if t else None


def image_view(image: Image, tags: list[str], stores: str | None = None) -> dict[str, Any]:
    """One image as Glance renders it: core fields typed, every other property a string.

    ``stores``: with several stores, the comma-joined ids of those holding the image's data (Glance
    leaves the field out when there are none, and without several stores).
    """
    body = image_body(image, tags)
    if stores:
        body["stores"] = stores
    body["os_hidden"] = image.os_hidden
    for key in _NOT_NATIVE:
        body.pop(key, None)
    for key in [k for k in body if k not in _TYPED]:
        if body[key] is None:
            del body[key]
        else:
            body[key] = as_string(body[key])
    return body


# ---------------------------------------------------------------- GET /v2/images

# Parameters that are not filters.
_PAGING = frozenset({"limit", "marker", "sort", "sort_key", "sort_dir", "member_status", "tag"})
# Filters on columns; "in:a,b" lists are accepted for these as Glance does.
_IN_CAPABLE = ("id", "name", "status", "disk_format", "container_format")
_EQUAL_COLUMNS = ("owner", "checksum", "os_hash_value", "os_hash_algo")
_INT_COLUMNS = ("min_disk", "min_ram")
_VISIBILITIES = ("public", "private", "shared", "community", "all")
# Glance's filter operators (glance.common.utils.split_filter_op).
_OPERATORS = ("in", "eq", "neq", "gt", "gte", "lt", "lte")



# ---- the same rules, for the document (glance_routes declares the parameters)
_SORT_KEYS = "|".join(re.escape(k) for k in SORT_KEYS)
# _sorting, then images.list_images: a sort key and a direction, trimmed.
SORT_KEY_RULE: Schema = {"type": "string", "pattern": rf"^\s*(?:{_SORT_KEYS})\s*$"}
SORT_DIR_RULE: Schema = {"type": "string", "pattern": rf"^\s*(?:{'|'.join(SORT_DIRS)})\s*$"}
_SORT_ITEM = rf"\s*(?:{_SORT_KEYS})\s*(?::\s*(?:{'|'.join(SORT_DIRS)})?\s*)?"
SORT_RULE: Schema = {"type": "string", "pattern": rf"^{_SORT_ITEM}(?:,{_SORT_ITEM})*$"}
# _in_capable: a plain value, eq:<value> or in:<a>,<b>; another operator is a 400.
_REFUSED_OPERATORS = "|".join(op for op in _OPERATORS if op not in ("in", "eq"))
IN_CAPABLE_RULE: Schema = {"type": "string", "pattern": rf"^(?!(?:{_REFUSED_OPERATORS}):)"}
# _boolean: true or false in any case.
BOOLEAN_RULE: Schema = {"type": "string", "pattern": f"^(?:{any_case('true')}|{any_case('false')})$"}
# What GET /v2/images reads; any other parameter is a property the image must have with that value.
LIST_PARAMETERS: tuple[tuple[str, Schema, str], ...] = (
    ("limit", int_text(), f"Page size, 0 to {INT64_MAX} (more than {MAX_LIMIT} is {MAX_LIMIT}; "
                          f"default {DEFAULT_LIMIT})"),
    ("marker", {"type": "string"}, "The id of the last image of the previous page (one the caller can see)"),
    ("sort_key", {"type": "array", "items": SORT_KEY_RULE}, "Sort keys (repeated), created_at by default"),
    ("sort_dir", {"type": "array", "items": SORT_DIR_RULE},
     "One direction for every sort key, or one per key (default desc)"),
    ("sort", SORT_RULE, "key[:asc|desc],… (the newer syntax; not combined with sort_key/sort_dir)"),
    *((name, IN_CAPABLE_RULE, f"{name}: a value, eq:<value> or in:<a>,\"<b,c>\",…") for name in _IN_CAPABLE),
    ("visibility", {"type": "string", "enum": list(_VISIBILITIES)}, "Visibility (all: any)"),
    ("member_status", {"type": "string", "enum": list(MEMBER_FILTERS)}, "For shared images (default accepted)"),
    ("tag", {"type": "array", "items": {"type": "string"}}, "Tags the image must have (repeated)"),
    *((name, {"type": "string"}, f"{name} equals") for name in _EQUAL_COLUMNS),
    *((name, int_text(), f"{name} equals, 0 to {INT32_MAX}") for name in _INT_COLUMNS),
    ("protected", BOOLEAN_RULE, "true or false (any case)"),
    ("os_hidden", BOOLEAN_RULE, "true or false (any case); hidden images are listed only with true"),
    ("size_min", int_text(), f"Smallest size in bytes, 0 to {INT64_MAX}"),
    ("size_max", int_text(), f"Largest size in bytes, 0 to {INT64_MAX}"),
    ("created_at", time_filter(), f"{'|'.join(TIME_OPS)}:<ISO 8601 time>"),
    ("updated_at", time_filter(), f"{'|'.join(TIME_OPS)}:<ISO 8601 time>"),
    ("__imagetype", {"type": "string", "enum": list(IMAGE_TYPES)}, "gold (public), private or shared"),
)


def _in_capable(q: ImageQuery, name: str, raw: str) -> None:
    """``in:a,"b,c"`` (quoted values may hold commas), ``eq:a`` or a plain value; other operators 400.

    A prefix that is no operator is part of the value (names may contain colons).
    """
    op, sep, rest = raw.partition(":")
    if not sep or op not in _OPERATORS:
        q.equals[name] = raw
    elif op == "in":
        q.in_filters[name] = [v.strip() for v in next(csv.reader([rest], skipinitialspace=True), []) if v.strip()]
    elif op == "eq":
        q.equals[name] = rest
    else:
        raise ImsBadRequest(f"Unable to filter {name} with the {op} operator: it takes in: or eq: only.",
                            code="IMG.0001")


def _boolean(name: str, raw: str) -> bool:
    # Case-insensitive as Glance reads os_hidden: openstacksdk sends "True".
    value = raw.lower()
    if value not in ("true", "false"):
        raise ImsBadRequest(f"Invalid value {raw[:32]!r} for {name}: use true or false.", code="IMG.0001")
    return value == "true"


def _sorting(params: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``sort=name:asc,created_at`` or repeated ``sort_key``/``sort_dir`` (Glance's two syntaxes)."""
    sorts = [v for k, v in params if k == "sort"]
    keys = [v.strip() for k, v in params if k == "sort_key"]
    dirs = [v.strip() for k, v in params if k == "sort_dir"]
    if sorts:
        if keys or dirs:
            raise ImsBadRequest("Old and new sorting syntax cannot be combined.", code="IMG.0001")
        out = []
        for item in sorts[-1].split(","):
            key, _, direction = item.partition(":")
            out.append((key.strip(), direction.strip() or "desc"))
        return out
    if len(dirs) > 1 and len(dirs) != len(keys):
        raise ImsBadRequest("Number of sort dirs does not match the number of sort keys.", code="IMG.0001")
    keys = keys or ["created_at"]
    if not dirs:
        dirs = ["desc"] * len(keys)
    elif len(dirs) == 1:
        dirs = dirs * len(keys)
    return list(zip(keys, dirs, strict=True))


def tag_spellings(tag: str) -> list[str]:
    """The stored forms a tag filter matches: itself, IMS ``key.value`` for ``key=value`` (as
    querying_images_native_openstack_api.rst tells), and ``key.`` for a bare key (imports' form)."""
    spellings = {tag}
    key, sep, value = tag.partition("=")
    if sep:
        spellings.add(f"{key}.{value}" if value else key)
    elif "." not in tag:
        spellings.add(f"{tag}.")
    return sorted(spellings)


def list_query(params: Sequence[tuple[str, str]], project_id: str) -> ImageQuery:
    """The query string of ``GET /v2/images`` → an ImageQuery; bad values are 400 as Glance answers."""
    single = dict(params)  # the last value of a repeated parameter wins, as in Glance
    # Any limit is accepted and capped, as Glance does; only nonsense is refused.
    limit = min(parse_int("limit", single["limit"], high=INT64_MAX) if "limit" in single else DEFAULT_LIMIT,
                MAX_LIMIT)
    member_status = single.get("member_status", "accepted")
    if member_status not in MEMBER_FILTERS:
        raise ImsBadRequest(f"Invalid member_status {member_status[:32]!r}: use accepted, pending, rejected or all.",
                            code="IMG.0001")
    q = ImageQuery(project_id=project_id, limit=limit, marker=single.get("marker") or None,
                   member_status=member_status, sort=_sorting(params))
    q.tags = [tag_spellings(v.strip()) for k, v in params if k == "tag"]
    # Hidden images only when asked for (os_hidden=true), as Glance lists.
    q.equals["os_hidden"] = False
    for name, raw in single.items():
        if name in _PAGING:
            continue
        if name == "visibility":
            if raw not in _VISIBILITIES:
                raise ImsBadRequest(f"Invalid visibility value {raw[:32]!r}.", code="IMG.0001")
            if raw != "all":
                q.equals["visibility"] = raw
        elif name in _IN_CAPABLE:
            _in_capable(q, name, raw)
        elif name in _EQUAL_COLUMNS:
            q.equals[name] = raw
        elif name in _INT_COLUMNS:
            q.equals[name] = parse_int(name, raw)
        elif name == "protected":
            q.equals["protected"] = _boolean(name, raw)
        elif name == "os_hidden":
            q.equals["os_hidden"] = _boolean(name, raw)
        elif name in ("size_min", "size_max"):
            setattr(q, name, parse_int(name, raw, high=INT64_MAX))
        elif name in ("created_at", "updated_at"):
            q.time_filters.append(parse_time_filter(name, raw))
        elif name == "__imagetype":
            q.image_type = raw
        elif name == "changes-since":
            raise ImsBadRequest('The "changes-since" filter is no longer available on v2.', code="IMG.0001")
        else:
            # Any other parameter is a property that must equal the value (Glance's rule).
            q.properties[name] = raw
    return q


def list_links(params: Sequence[tuple[str, str]], *, limit: int, last_id: str | None,
               path: str = "/v2/images") -> tuple[str, str | None]:
    """``first`` (this query without its marker) and ``next`` (continuing after ``last_id``) of the
    collection at ``path`` (images; metadefs namespaces page the same way)."""
    kept = [(k, v) for k, v in params if k != "marker"]
    first = path + (f"?{urlencode(kept)}" if kept else "")
    if last_id is None:
        return first, None
    following = [(k, v) for k, v in kept if k != "limit"] + [("marker", last_id), ("limit", str(limit))]
    return first, f"{path}?{urlencode(following)}"


# ---------------------------------------------------------------- PATCH /v2/images/{id}


# ---- the bodies, for the document (native.create_queued and native.update check them by hand)

_ESCAPED = frozenset({*READ_ONLY, *RESERVED})
# check_writable_name: a core or system attribute, or a custom one (lower case, 1-255 characters, neither
# read-only, reserved, Glance's os_glance* nor a "__" system attribute).
_WRITABLE = (rf"(?:{'|'.join(re.escape(n) for n in sorted({*CORE, *SYSTEM_WRITABLE}))})"
             rf"|(?!(?:{'|'.join(re.escape(n) for n in sorted(_ESCAPED))})\s*$)"
             rf"(?!{'|'.join(native_rules._RESERVED_PREFIXES)})(?!__)" + native_rules._CUSTOM_NAME.pattern.strip("^$"))
# native.stored_tags: a native tag, "key=value" (each part trimmed) or "key.value".
_TAG_PARTS = TAG_KEY_RULE["pattern"].strip("^$") + "=" + TAG_VALUE_RULE["pattern"].strip("^$")
TAG_ITEM: Schema = {"type": "string", "anyOf": [
    {"pattern": tag_rules._NATIVE_TAG.pattern, "minLength": 1, "maxLength": NATIVE_TAG_MAX},
    {"pattern": f"^{_TAG_PARTS}$"}, TAG_STRING_RULE]}
_SERVED = IMAGE_SCHEMA["properties"]
# native._os_version: the default, as it is, or one of the listed versions (never empty).
_DEFAULT_OS_VERSION = re.escape(native_rules.DEFAULT_OS_VERSION).replace("\\ ", " ")
# What each writable attribute takes: the served image schema's, narrowed to what the checks take.
VALUES: dict[str, Schema] = {
    "name": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 0}, {"type": "string", **NAME_RULE}]},
    "min_disk": {"type": "integer", "minimum": 0, "maximum": MAX_MIN_DISK},
    "min_ram": {"type": "integer", "minimum": 0, "maximum": INT32_MAX},
    "protected": _SERVED["protected"], "os_hidden": _SERVED["os_hidden"],
    "visibility": {**_SERVED["visibility"], "description": "public: the operator's alone"},
    "tags": {"type": "array", "items": TAG_ITEM,
             "description": f"At most {MAX_TAGS} keys: a native tag, key=value or key.value"},
    "container_format": _SERVED["container_format"], "disk_format": _SERVED["disk_format"],
    "__description": {"anyOf": [{"type": "null"}, {"type": "string", **DESCRIPTION_RULE}]},
    "__os_version": {"type": "string", "maxLength": MAX_VALUE,
                     "pattern": OS_VERSION_RULE["pattern"].replace("^(?:|", f"^(?:{_DEFAULT_OS_VERSION}|", 1),
                     "description": OS_VERSION_RULE["description"]},
    # Custom properties with an IMS meaning (native._custom); hw_firmware_type is uefi on arm.
    "max_ram": {"type": "string", "pattern": r"^\d{1,9}$", "description": "MB, at least min_ram"},
    "architecture": {"type": "string", "enum": list(ARCHITECTURES)},
    "hw_firmware_type": {"type": "string", "enum": list(FIRMWARE_TYPES)},
    "virtual_env_type": {"type": "string", "enum": list(native_rules._ENV_TYPES)},
    "enterprise_project_id": {"type": "string", "maxLength": MAX_VALUE, "description": "0 or a UUID"},
}
_CUSTOM_VALUE: Schema = {"type": "string", "maxLength": MAX_VALUE}
CREATE_BODY: Schema = {
    "type": "object",
    "description": "The image's writable attributes (GET /v2/schemas/image); any other is a custom string "
                   f"property (at most {MAX_CUSTOM_PROPERTIES})",
    "properties": {"id": _SERVED["id"], "owner": {"type": "string", "description": "The operator's alone"},
                   **VALUES},
    "propertyNames": {"pattern": f"^(?:id|owner|{_WRITABLE})$"},
    "additionalProperties": _CUSTOM_VALUE,
}

# _pointer: "/" and one token (~0 and ~1 its only escapes), trimmed; check_writable_name: a writable attribute,
# and for a remove also what every image keeps (KEPT_ON_REMOVE and the "__" ones, whose removal is ignored).
PATCH_OPS = ("add", "replace", "remove")
WRITE_PATH = rf"^/\s*(?:{_WRITABLE})\s*$"
REMOVE_PATH = (rf"^/\s*(?:{_WRITABLE}|{'|'.join(re.escape(n) for n in sorted(KEPT_ON_REMOVE))}"
               rf"|__(?:[^/~]|~[01])*)\s*$")


def _values_by_path(op_key: str | None) -> list[Schema]:
    """The value an add or a replace gives to each path: what VALUES says, a string for the others."""
    def when(path: Schema) -> Schema:
        if op_key is None:  # the older draft: the path is the member named after the operation
            return {"anyOf": [{"required": [k], "properties": {k: path}} for k in ("add", "replace")]}
        return {"required": ["op", "path"], "properties": {"op": {"enum": ["add", "replace"]}, "path": path}}

    listed = "|".join(re.escape(n) for n in VALUES)
    rules = [{"if": when({"pattern": rf"^/\s*{re.escape(name)}\s*$"}), "then": {"properties": {"value": value}}}
             for name, value in VALUES.items()]
    rules.append({"if": when({"pattern": rf"^/\s*(?!(?:{listed})\s*$)"}),
                  "then": {"properties": {"value": _CUSTOM_VALUE}}})
    return rules


PATCH_ITEM: Schema = {
    "type": "object", "required": ["op", "path"],
    "properties": {"op": {"type": "string", "enum": list(PATCH_OPS)}, "path": {"type": "string"}, "value": {}},
    "allOf": [
        {"if": {"properties": {"op": {"const": "remove"}}}, "then": {"properties": {"path": {"pattern": REMOVE_PATH}}},
         "else": {"required": ["value"], "properties": {"path": {"pattern": WRITE_PATH}}}},
        *_values_by_path("op")],
}
# application/openstack-images-v2.0-json-patch: {"add"|"replace"|"remove": <path>, "value": …}.
PATCH_ITEM_V20: Schema = {
    "type": "object",
    "properties": {"add": {"type": "string", "pattern": WRITE_PATH},
                   "replace": {"type": "string", "pattern": WRITE_PATH},
                   "remove": {"type": "string", "pattern": REMOVE_PATH}, "value": {}},
    "oneOf": [{"required": [op]} for op in PATCH_OPS],
    "allOf": [{"if": {"required": ["remove"]}, "else": {"required": ["value"]}}, *_values_by_path(None)],
}

def _pointer(pointer: Any) -> str:
    """A JSON pointer to one top-level attribute (RFC 6901 escapes), as Glance accepts them."""
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise ImsBadRequest(f"Pointer {str(pointer)[:64]!r} does not start with \"/\".", code="IMG.0001")
    parts = pointer[1:].split("/")
    if len(parts) != 1 or not parts[0].strip():
        raise ImsBadRequest(f"Invalid JSON pointer for this resource: {pointer[:64]!r}.", code="IMG.0001")
    token = parts[0]
    if "~" in token.replace("~0", "").replace("~1", ""):
        raise ImsBadRequest(f"Pointer {pointer[:64]!r} contains '~' not part of a recognized escape sequence.",
                            code="IMG.0001")
    return token.replace("~1", "/").replace("~0", "~").strip()


def parse_patch(body: Any, draft: int) -> list[PatchOp]:
    """A JSON-patch document in either Glance media type → operations."""
    if not isinstance(body, list):
        raise ImsBadRequest("Request body must be a JSON array of operation objects.", code="IMG.0001")
    ops: list[PatchOp] = []
    for raw in body:
        if not isinstance(raw, dict):
            raise ImsBadRequest("Operations must be JSON objects.", code="IMG.0001")
        if draft == 10:
            op = raw.get("op")
            if op not in ("add", "replace", "remove"):
                raise ImsBadRequest(f"Invalid operation {str(op)[:32]!r}: it must be add, remove or replace.",
                                    code="IMG.0001")
            if "path" not in raw:
                raise ImsBadRequest("Unable to find 'path' in JSON Schema change.", code="IMG.0001")
            pointer = raw["path"]
        else:
            present = [k for k in ("add", "remove", "replace") if k in raw]
            if len(present) != 1:
                raise ImsBadRequest('Operation objects must contain exactly one member named "add", "remove", '
                                    'or "replace".', code="IMG.0001")
            op = present[0]
            pointer = raw[op]
        name = _pointer(pointer)
        if op != "remove" and "value" not in raw:
            raise ImsBadRequest(f'Operation "{op}" requires a member named "value".', code="IMG.0001")
        ops.append(PatchOp(cast(Literal["add", "replace", "remove"], op), name, raw.get("value")))
    return ops


# ---------------------------------------------------------------- GET /v2/images/{id}/file


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str, size: int) -> ByteRange:
    """One ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range (RFC 9110); several ranges are not served."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise RangeNotSatisfiable
    first, sep, last = spec.strip().partition("-")
    try:
        if not sep:
            raise ValueError(spec)
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                raise RangeNotSatisfiable
            return ByteRange(max(0, size - suffix), size - 1)
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError as exc:
        raise RangeNotSatisfiable from exc
    if start < 0 or start >= size or end < start:
        raise RangeNotSatisfiable
    return ByteRange(start, min(end, size - 1))

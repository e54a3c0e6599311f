"""Image tags: the IMS tag APIs (``/v2/{project_id}/images/…``, ``/v1/cloudimages/tags``) and the native ones."""

from __future__ import annotations

from typing import Any

from fastapi import Path, Request
from fastapi.responses import Response
from pydantic import ConfigDict, Field

from openims.api.auth import ReaderDep, RuntimeDep, WriterDep
from openims.api.deps import SessionDep, api_router
from openims.api.ims_wire import (
    IMAGE_ERRORS,
    IMAGE_TYPES,
    MEMBER_FILTERS,
    SORT_DIRS,
    TAG_KEY_RULE,
    TAG_STRING_RULE,
    TAG_VALUE_RULE,
    Wire,
    choice,
    int_text,
    time_filter,
)
from openims.api.openapi_docs import STRING, Schema, model_rules, query, rule
from openims.api.params import INT32_MAX, parse_int
from openims.catalog import images as image_rules
from openims.catalog import tags
from openims.catalog.tags import ResourceQuery, TagCondition
from openims.errors import ImsBadRequest

router = api_router(tags=["tags"])

_NO_CONTENT = 204


# The rules catalog.tags checks by hand (IMG.0115, IMG.0001), for the document: a {key, value} tag as at import
# (ims_wire.TAG_KEY_RULE, TAG_VALUE_RULE); the "key.value" form is not trimmed (ims_wire.TAG_STRING_RULE).
# Batch deletion checks lengths only (tags written under older rules can still be removed).
_DELETE_ITEM: Schema = {"properties": {"key": {"type": "string", "minLength": 1, "maxLength": tags.DELETE_KEY_MAX},
                                       "value": {"anyOf": [{"type": "string", "maxLength": tags.DELETE_VALUE_MAX},
                                                           {"type": "null"}]}}}
_CREATE_ITEM: Schema = {"required": ["key", "value"],
                        "properties": {"key": {"type": "string", **TAG_KEY_RULE},
                                       "value": {"type": "string", **TAG_VALUE_RULE}}}
BATCH_ACTIONS = ("create", "delete")
QUERY_ACTIONS = ("filter", "count")
MATCH_KEYS = ("resource_name", "resource_id")
QUERY_LIMIT = (1, 1000)  # tags.check_resource_query
_DIGITS: Schema = {"pattern": int_text()["pattern"], "description": "A decimal integer"}


def _batch_rules(schema: Schema) -> None:
    """A create needs every tag's value and the tag rules; a delete checks lengths only."""
    model_rules(action={"enum": list(BATCH_ACTIONS)})(schema)
    schema["if"] = {"properties": {"action": {"const": "create"}}}
    schema["then"] = {"properties": {"tags": {"items": _CREATE_ITEM}}}
    schema["else"] = {"properties": {"tags": {"items": _DELETE_ITEM}}}


def _condition_list(schema: Schema) -> None:
    for name in ("tags", "tags_any", "not_tags", "not_tags_any"):
        model_rules(**{name: {"maxItems": tags.QUERY_MAX_KEYS}})(schema)


class TagWire(Wire):
    model_config = ConfigDict(json_schema_extra=model_rules(key=TAG_KEY_RULE, value=TAG_VALUE_RULE))

    key: str = Field(max_length=255)
    value: str = Field(max_length=255)


class AddTagWire(Wire):
    tag: TagWire


class BatchTagWire(Wire):
    key: str = Field(max_length=255)
    # Mandatory for create; optional for delete (a key alone deletes whatever value it has).
    value: str | None = Field(default=None, max_length=255)


class BatchTagsWire(Wire):
    model_config = ConfigDict(json_schema_extra=_batch_rules)

    tags: list[BatchTagWire] = Field(max_length=100)
    action: str


class TagListWire(Wire):
    model_config = ConfigDict(json_schema_extra=model_rules(
        tags={"items": {"type": "object", "required": ["key"], **_DELETE_ITEM}}))

    tags: list[BatchTagWire] = Field(max_length=100)


class PutTagWire(Wire):
    # Exactly one of tag and image_tag (IMG.0115).
    model_config = ConfigDict(json_schema_extra=model_rules(tag=TAG_STRING_RULE))

    image_id: str = Field(max_length=64)
    tag: str | None = Field(default=None, max_length=255)
    image_tag: TagWire | None = None


class ConditionWire(Wire):
    model_config = ConfigDict(json_schema_extra=model_rules(
        key={"minLength": 1, "maxLength": tags.QUERY_KEY_MAX},
        values={"maxItems": tags.QUERY_MAX_VALUES, "uniqueItems": True,
                "items": {"type": "string", "maxLength": tags.QUERY_VALUE_MAX}}))

    key: str = Field(max_length=255)
    values: list[str] = Field(default_factory=list, max_length=100)


class MatchWire(Wire):
    model_config = ConfigDict(json_schema_extra=model_rules(
        key={"enum": list(MATCH_KEYS)}, value={"minLength": 1, "maxLength": tags.QUERY_VALUE_MAX}))

    key: str = Field(max_length=64)
    value: str = Field(max_length=1024)


def _resource_query_rules(schema: Schema) -> None:
    _condition_list(schema)
    model_rules(action={"enum": list(QUERY_ACTIONS)})(schema)
    for name, (low, high) in (("limit", QUERY_LIMIT), ("offset", (0, INT32_MAX))):
        for branch in schema["properties"][name]["anyOf"]:
            branch.update({"string": _DIGITS, "integer": {"minimum": low, "maximum": high}}.get(branch["type"], {}))


class ResourceQueryWire(Wire):
    model_config = ConfigDict(json_schema_extra=_resource_query_rules)

    action: str
    tags: list[ConditionWire] | None = Field(default=None, max_length=100)
    tags_any: list[ConditionWire] | None = Field(default=None, max_length=100)
    not_tags: list[ConditionWire] | None = Field(default=None, max_length=100)
    not_tags_any: list[ConditionWire] | None = Field(default=None, max_length=100)
    without_any_tag: bool = False
    # Documented as strings; numbers are accepted too.
    limit: str | int | None = None
    offset: str | int | None = None
    matches: list[MatchWire] | None = Field(default=None, max_length=10)


def _int(name: str, raw: str | int | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    return parse_int(name, raw, low=-INT32_MAX)


def _check_deletions(items: list[BatchTagWire]) -> None:
    for t in items:
        # Deletion checks lengths only, so tags written under older rules can still be removed.
        if not t.key or len(t.key) > tags.DELETE_KEY_MAX or len(t.value or "") > tags.DELETE_VALUE_MAX:
            raise ImsBadRequest(f"The image tag is invalid: a key has 1 to {tags.DELETE_KEY_MAX} characters, "
                                f"a value at most {tags.DELETE_VALUE_MAX}.", code="IMG.0115")


def _conditions(items: list[ConditionWire] | None) -> list[TagCondition]:
    return [TagCondition(c.key, tuple(c.values)) for c in items or []]


# ---------------------------------------------------------------- IMS, family 1 (/v2/{project_id}/images/…)


@router.post("/v2/{project_id}/images/{image_id}/tags", status_code=_NO_CONTENT,
             responses=IMAGE_ERRORS, summary="Add or update one tag of an image")
def add_tag(project_id: str, image_id: str, body: AddTagWire, caller: WriterDep, session: SessionDep,
            rt: RuntimeDep) -> Response:
    key, value = tags.checked_pair(body.tag.key, body.tag.value)
    tags.set_pairs(session, caller.project_id, image_id, {key: value}, rt.clock())
    return Response(status_code=_NO_CONTENT)


@router.get("/v2/{project_id}/images/tags",
            responses=IMAGE_ERRORS, summary="Query the tags of all the project's images")
def project_tags(project_id: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    found = tags.project_tags(session, caller.project_id)
    return {"tags": [{"key": k, "values": v} for k, v in found.items()]}


@router.get("/v2/{project_id}/images/{image_id}/tags", responses=IMAGE_ERRORS, summary="Query the tags of an image")
def image_tags(project_id: str, image_id: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    return {"tags": [{"key": k, "value": v} for k, v in tags.pairs_of(session, caller.project_id, image_id)]}


@router.delete("/v2/{project_id}/images/{image_id}/tags/{key}", status_code=_NO_CONTENT,
               responses=IMAGE_ERRORS, summary="Delete a tag of an image by key")
def delete_tag(project_id: str, image_id: str, key: str, caller: WriterDep, session: SessionDep,
               rt: RuntimeDep) -> Response:
    tags.delete_key(session, caller.project_id, image_id, key, rt.clock())
    return Response(status_code=_NO_CONTENT)


@router.post("/v2/{project_id}/images/{image_id}/tags/action", status_code=_NO_CONTENT,
             responses=IMAGE_ERRORS, summary="Add or delete tags of an image in a batch")
def batch_tags(project_id: str, image_id: str, body: BatchTagsWire, caller: WriterDep, session: SessionDep,
               rt: RuntimeDep) -> Response:
    keys = [t.key for t in body.tags]
    if len(set(keys)) != len(keys):
        raise ImsBadRequest("The keys of the tags in one request must be unique.", code="IMG.0115")
    if body.action == "create":
        pairs: dict[str, str] = {}
        for t in body.tags:
            if t.value is None:
                raise ImsBadRequest(f"The image tag is invalid: tag {t.key!r} has no value (it may be empty).",
                                    code="IMG.0115")
            key, value = tags.checked_pair(t.key, t.value)
            pairs[key] = value
        tags.set_pairs(session, caller.project_id, image_id, pairs, rt.clock())
    elif body.action == "delete":
        _check_deletions(body.tags)
        tags.delete_pairs(session, caller.project_id, image_id, [(t.key, t.value) for t in body.tags], rt.clock())
    else:
        raise ImsBadRequest("action must be create or delete.", code="IMG.0001")
    return Response(status_code=_NO_CONTENT)


@router.delete("/v1/{project_id}/cloudimages/{image_id}/tags/delete", status_code=_NO_CONTENT,
               responses=IMAGE_ERRORS, summary="Delete tags of an image in a batch (SDK BatchDeleteTags)")
def batch_delete_tags(project_id: str, image_id: str, body: TagListWire, caller: WriterDep, session: SessionDep,
                      rt: RuntimeDep) -> Response:
    _check_deletions(body.tags)
    tags.delete_pairs(session, caller.project_id, image_id, [(t.key, t.value) for t in body.tags], rt.clock())
    return Response(status_code=_NO_CONTENT)


@router.post("/v2/{project_id}/images/resource_instances/action",
             responses=IMAGE_ERRORS, summary="Query images by tags")
def images_by_tags(project_id: str, body: ResourceQueryWire, caller: ReaderDep,
                   session: SessionDep) -> dict[str, Any]:
    if body.action not in ("filter", "count"):
        raise ImsBadRequest("action must be filter or count.", code="IMG.0001")
    q = ResourceQuery(
        action="filter" if body.action == "filter" else "count",
        tags=_conditions(body.tags), tags_any=_conditions(body.tags_any), not_tags=_conditions(body.not_tags),
        not_tags_any=_conditions(body.not_tags_any), without_any_tag=body.without_any_tag,
        matches=[(m.key, m.value) for m in body.matches or []],
        limit=_int("limit", body.limit, 10), offset=_int("offset", body.offset, 0))
    total, found = tags.query_resources(session, caller.project_id, q)
    if q.action == "count":
        return {"total_count": total}
    by_image = image_rules.tags_of(session, [i.id for i in found])
    resources = [{
        "resource_id": i.id,
        "resource_detail": {"status": i.status},
        "tags": [{"key": k, "value": v} for k, v in map(tags.split, by_image[i.id])],
        "resource_name": i.name,
    } for i in found]
    return {"resources": resources, "total_count": total}


# ---------------------------------------------------------------- IMS, family 2 (/v1/cloudimages/tags)


@router.put("/v1/cloudimages/tags", status_code=_NO_CONTENT,
            responses=IMAGE_ERRORS, summary="Add or modify a tag of an image")
def put_tag(body: PutTagWire, caller: WriterDep, session: SessionDep, rt: RuntimeDep) -> Response:
    if body.tag is not None and body.image_tag is not None:
        raise ImsBadRequest("Use either tag or image_tag, not both.", code="IMG.0115")
    if body.tag is not None:
        key, value = tags.checked_tag_string(body.tag)
    elif body.image_tag is not None:
        key, value = tags.checked_pair(body.image_tag.key, body.image_tag.value)
    else:
        raise ImsBadRequest("Give the tag to set: tag (\"key.value\") or image_tag ({key, value}).", code="IMG.0115")
    tags.set_pairs(session, caller.project_id, body.image_id, {key: value}, rt.clock())
    return Response(status_code=_NO_CONTENT)


_EQUALS = ("name", "status", "disk_format", "container_format", "visibility", "owner")
# Every parameter is read when not empty (an empty one is left out).
_TAGS_QUERY: dict[str, Any] = {"parameters": query(
    *((name, STRING, f"Filter on {name}") for name in (*_EQUALS, "tag", *image_rules.PROPERTY_FILTERS)),
    ("__imagetype", choice("", *IMAGE_TYPES), "gold (public), private or shared"),
    ("member_status", choice("", *MEMBER_FILTERS), "For shared images (default accepted)"),
    ("sort_key", choice(*image_rules.SORT_KEYS), "Sort key"),
    ("sort_dir", choice(*SORT_DIRS), "asc or desc"),
    ("id", STRING, "Image ids, comma-separated"),
    ("min_disk", int_text(empty=True), f"Minimum disk (GB), -{INT32_MAX} to {INT32_MAX}"),
    ("min_ram", int_text(empty=True), f"Minimum memory (MB), -{INT32_MAX} to {INT32_MAX}"),
    ("protected", STRING, "true (any case) for protected images; any other value for unprotected ones"),
    ("created_at", time_filter(empty=True), "gt:|gte:|lt:|lte:|eq:|neq:<ISO 8601 time>"),
    ("updated_at", time_filter(empty=True), "gt:|gte:|lt:|lte:|eq:|neq:<ISO 8601 time>"),
    ("page", int_text(empty=True), f"Page number, 1 to {INT32_MAX} (default 1)"),
    ("limit", int_text(empty=True), f"Tags per page, 1 to {INT32_MAX} (default: all)"))}


@router.get("/v1/cloudimages/tags", openapi_extra=_TAGS_QUERY,
            responses=IMAGE_ERRORS, summary="Query the tags of the images matching the criteria")
def query_tags(request: Request, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    p = request.query_params
    q = image_rules.ImageQuery(project_id=caller.project_id, image_type=p.get("__imagetype") or None,
                               tag=p.get("tag"), member_status=p.get("member_status") or None,
                               sort_key=p.get("sort_key", "created_at"), sort_dir=p.get("sort_dir", "desc"))
    for name in _EQUALS:
        if p.get(name):
            q.equals[name] = p[name]
    for name in ("min_disk", "min_ram"):
        if p.get(name):
            q.equals[name] = _int(name, p[name], 0)
    if p.get("protected"):
        q.equals["protected"] = p["protected"].lower() == "true"
    if p.get("id"):
        q.ids = [i for i in p["id"].split(",") if i]
    for key in image_rules.PROPERTY_FILTERS:
        if p.get(key):
            q.properties[key] = p[key]
    for column in ("created_at", "updated_at"):
        if p.get(column):
            q.time_filters.append(image_rules.parse_time_filter(column, p[column]))
    found = tags.tags_for_query(session, q)
    # limit/page page through the tags (all of them by default, as the SDK documents).
    page = _int("page", p.get("page"), 1)
    limit = _int("limit", p.get("limit"), len(found) or 1)
    if page < 1 or limit < 1:
        raise ImsBadRequest("page and limit must be positive.", code="IMG.0001")
    return {"tags": found[(page - 1) * limit:page * limit]}


# ---------------------------------------------------------------- native (Glance v2)


@router.put("/v2/images/{image_id}/tags/{tag}", status_code=_NO_CONTENT,
            responses=IMAGE_ERRORS, summary="Add a tag (native)")
def native_add_tag(image_id: str, caller: WriterDep, session: SessionDep, rt: RuntimeDep,
                   tag: str = Path(json_schema_extra=rule(tags._NATIVE_TAG, (1, tags.NATIVE_TAG_MAX)))) -> Response:
    tags.add_native(session, caller.project_id, image_id, tag, rt.clock())
    return Response(status_code=_NO_CONTENT)


@router.delete("/v2/images/{image_id}/tags/{tag}", status_code=_NO_CONTENT,
               responses=IMAGE_ERRORS, summary="Delete a tag (native)")
def native_delete_tag(image_id: str, tag: str, caller: WriterDep, session: SessionDep, rt: RuntimeDep) -> Response:
    tags.delete_native(session, caller.project_id, image_id, tag, rt.clock())
    return Response(status_code=_NO_CONTENT)

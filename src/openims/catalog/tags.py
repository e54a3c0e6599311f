"""Image tags: IMS key/value tags, native (Glance) tags, and queries by tag.

Storage is one string per tag in ``image_tags``, as imports write it (``validation.tags``):
``key.value``; a tag without a value is stored as the bare key — which is also what a native tag
is (Glance clients expect ``PUT …/tags/foo`` to show ``"foo"`` in the image's ``tags``). Readers
accept ``key.`` as well, the form imports give a key with an empty value. Keys are unique per image:
setting an existing key replaces its value (image_tag_format.rst: "If a key is added, a tag is
added. In other cases, the tag is updated").

Only the owner changes tags (``members.require_owner``: an image shared with you is 403, another
project's is 404). At most ``MAX_TAGS`` per image (IMG.0116); malformed tags are IMG.0115.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import and_, delete, func, not_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from openims.catalog import validation
from openims.catalog.images import ImageQuery, list_images
from openims.catalog.members import require_owner, visible_to
from openims.db.models import Image, ImageTag
from openims.errors import ImsBadRequest, ImsNotFound

MAX_TAGS = validation.MAX_TAGS
# image_tag_format.rst, native form: a key of at most 255 letters, digits, underscores or hyphens.
NATIVE_TAG_MAX = 255
_NATIVE_TAG = re.compile(r"^[\w-]+$")
# adding_or_deleting_image_tags_in_a_batch.rst: deletion checks lengths only.
DELETE_KEY_MAX = 127
DELETE_VALUE_MAX = 255
# querying_images_by_tag.rst limits.
QUERY_KEY_MAX = 128
QUERY_VALUE_MAX = 255
QUERY_MAX_KEYS = 10
QUERY_MAX_VALUES = 10


def split(tag: str) -> tuple[str, str]:
    """A stored tag → (key, value); ``key`` and ``key.`` both mean an empty value."""
    key, _, value = tag.partition(".")
    return key, value


def join(key: str, value: str) -> str:
    return f"{key}.{value}" if value else key


def checked_pair(key: object, value: object) -> tuple[str, str]:
    """One IMS key/value tag, validated (and trimmed) by the same rules as tags given at import."""
    if not isinstance(key, str) or not isinstance(value, str):
        raise ImsBadRequest("The image tag is invalid: key and value must be strings.", code="IMG.0115")
    (stored,) = validation.tags(None, [{"key": key, "value": value}])
    return split(stored)


def checked_tag_string(tag: object) -> tuple[str, str]:
    """The ``key.value`` form of ``PUT /v1/cloudimages/tags``."""
    (stored,) = validation.tags([tag], None)  # type: ignore[list-item]  # validation rejects non-strings
    key, value = split(stored)
    if not key:
        raise ImsBadRequest("The image tag is invalid: the key is empty.", code="IMG.0115")
    return key, value


def checked_native(tag: str) -> str:
    if not tag or len(tag) > NATIVE_TAG_MAX or not _NATIVE_TAG.fullmatch(tag):
        raise ImsBadRequest(f"The image tag is invalid: a tag has 1 to {NATIVE_TAG_MAX} letters, digits, underscores "
                            "or hyphens.", code="IMG.0115")
    return tag


# ---------------------------------------------------------------- one image


def _rows(session: Session, image_id: str) -> list[str]:
    return list(session.scalars(select(ImageTag.tag).where(ImageTag.image_id == image_id).order_by(ImageTag.tag)))


def pairs_of(session: Session, project_id: str, image_id: str) -> list[tuple[str, str]]:
    """The tags of an image the project can see, as (key, value)."""
    image = visible_to(session, project_id, image_id)
    return [split(t) for t in _rows(session, image.id)]


def _remove_keys(session: Session, image_id: str, stored: Iterable[str], keys: set[str]) -> None:
    doomed = [t for t in stored if split(t)[0] in keys]
    if doomed:
        session.execute(delete(ImageTag).where(ImageTag.image_id == image_id, ImageTag.tag.in_(doomed)))


def _touch(image: Image, now: dt.datetime) -> None:
    image.updated_at = now


def set_pairs(session: Session, project_id: str, image_id: str, pairs: dict[str, str], now: dt.datetime) -> None:
    """Add or update tags (already validated) on the owner's image; idempotent."""
    image = require_owner(session, project_id, image_id, for_update=True)
    stored = _rows(session, image.id)
    current = dict(split(t) for t in stored)
    merged = {**current, **pairs}
    if len(merged) > MAX_TAGS:
        raise ImsBadRequest(f"The number of image tags exceeds the quota: an image has at most {MAX_TAGS} tags "
                            f"({len(current)} now, {len(merged)} requested).", code="IMG.0116")
    changed = {k for k, v in pairs.items() if k not in current or current[k] != v}
    if not changed:
        return
    # Drop every stored form of the keys that change ("k", "k.", "k.old"), then write the new ones.
    _remove_keys(session, image.id, stored, changed)
    session.add_all(ImageTag(image_id=image.id, tag=join(k, pairs[k])) for k in sorted(changed))
    _touch(image, now)
    session.flush()


def delete_key(session: Session, project_id: str, image_id: str, key: str, now: dt.datetime) -> None:
    """Delete the tag with this key; 404 when there is none (the API is documented non-idempotent)."""
    image = require_owner(session, project_id, image_id, for_update=True)
    stored = _rows(session, image.id)
    if not any(split(t)[0] == key for t in stored):
        raise ImsNotFound(f"Image {image_id} has no tag with key {key!r}.", code="IMG.0115")
    _remove_keys(session, image.id, stored, {key})
    _touch(image, now)


def delete_pairs(session: Session, project_id: str, image_id: str, items: list[tuple[str, str | None]],
                 now: dt.datetime) -> None:
    """Batch delete: a key alone removes the tag; a key with a value only if the value matches.

    Missing tags are not an error (adding_or_deleting_image_tags_in_a_batch.rst).
    """
    image = require_owner(session, project_id, image_id, for_update=True)
    stored = _rows(session, image.id)
    doomed = []
    for tag in stored:
        key, value = split(tag)
        if any(key == k and (v is None or v == value) for k, v in items):
            doomed.append(tag)
    if doomed:
        session.execute(delete(ImageTag).where(ImageTag.image_id == image.id, ImageTag.tag.in_(doomed)))
        _touch(image, now)


def add_native(session: Session, project_id: str, image_id: str, tag: str, now: dt.datetime) -> None:
    """``PUT /v2/images/{id}/tags/{tag}``: a key without a value."""
    set_pairs(session, project_id, image_id, {checked_native(tag): ""}, now)


def delete_native(session: Session, project_id: str, image_id: str, tag: str, now: dt.datetime) -> None:
    """``DELETE /v2/images/{id}/tags/{tag}``: the exact tag, or the tag whose key it is; 404 if absent."""
    image = require_owner(session, project_id, image_id, for_update=True)
    doomed = [t for t in _rows(session, image.id) if t == tag or split(t)[0] == tag]
    if not doomed:
        raise ImsNotFound(f"Image {image_id} has no tag {tag!r}.", code="IMG.0115")
    session.execute(delete(ImageTag).where(ImageTag.image_id == image.id, ImageTag.tag.in_(doomed)))
    _touch(image, now)


# ---------------------------------------------------------------- the project's tags


def project_tags(session: Session, project_id: str) -> dict[str, list[str]]:
    """Every tag of the project's own images, as key → distinct values (sorted)."""
    rows = session.scalars(
        select(ImageTag.tag).join(Image, Image.id == ImageTag.image_id).where(Image.owner == project_id).distinct()
    )
    out: dict[str, set[str]] = {}
    for tag in rows:
        key, value = split(tag)
        out.setdefault(key, set()).add(value)
    return {k: sorted(out[k]) for k in sorted(out)}


def tags_for_query(session: Session, q: ImageQuery) -> list[str]:
    """The distinct tags of every image an IMS image query selects (``GET /v1/cloudimages/tags``)."""
    q.limit = 1000
    q.marker = None
    found: set[str] = set()
    while True:
        page = list_images(session, q)
        if page:
            found.update(session.scalars(select(ImageTag.tag).where(ImageTag.image_id.in_([i.id for i in page]))))
        if len(page) < q.limit:
            return sorted(found)
        q.marker = page[-1].id


# ---------------------------------------------------------------- query by tags


@dataclass(frozen=True)
class TagCondition:
    key: str
    values: tuple[str, ...] = ()


@dataclass
class ResourceQuery:
    """``POST /v2/{project_id}/images/resource_instances/action``, fields as documented."""

    action: Literal["filter", "count"]
    tags: list[TagCondition] = field(default_factory=list)
    tags_any: list[TagCondition] = field(default_factory=list)
    not_tags: list[TagCondition] = field(default_factory=list)
    not_tags_any: list[TagCondition] = field(default_factory=list)
    without_any_tag: bool = False
    matches: list[tuple[str, str]] = field(default_factory=list)
    limit: int = 10
    offset: int = 0


def check_conditions(name: str, conditions: list[TagCondition]) -> None:
    # Character sets are not checked ("to be compatible with remaining tags"), only the documented limits.
    if len(conditions) > QUERY_MAX_KEYS:
        raise ImsBadRequest(f"{name}: at most {QUERY_MAX_KEYS} tag keys per query.", code="IMG.0115")
    keys = [c.key for c in conditions]
    if len(set(keys)) != len(keys):
        raise ImsBadRequest(f"{name}: tag keys must be unique.", code="IMG.0115")
    for c in conditions:
        if not c.key or len(c.key) > QUERY_KEY_MAX:
            raise ImsBadRequest(f"{name}: a tag key has 1 to {QUERY_KEY_MAX} characters.", code="IMG.0115")
        if len(c.values) > QUERY_MAX_VALUES:
            raise ImsBadRequest(f"{name}: at most {QUERY_MAX_VALUES} values per tag key.", code="IMG.0115")
        if len(set(c.values)) != len(c.values):
            raise ImsBadRequest(f"{name}: the values of tag key {c.key!r} must be unique.", code="IMG.0115")
        if any(len(v) > QUERY_VALUE_MAX for v in c.values):
            raise ImsBadRequest(f"{name}: a tag value has at most {QUERY_VALUE_MAX} characters.", code="IMG.0115")


def check_resource_query(q: ResourceQuery) -> None:
    for name in ("tags", "tags_any", "not_tags", "not_tags_any"):
        check_conditions(name, getattr(q, name))
    keys = [k for k, _ in q.matches]
    if len(set(keys)) != len(keys):
        raise ImsBadRequest("matches: keys must be unique.", code="IMG.0001")
    for key, value in q.matches:
        if key not in ("resource_name", "resource_id"):
            raise ImsBadRequest(f"matches: unknown key {key!r}; use resource_name or resource_id.", code="IMG.0001")
        if not value or len(value) > QUERY_VALUE_MAX:
            raise ImsBadRequest(f"matches: the value of {key} has 1 to {QUERY_VALUE_MAX} characters.", code="IMG.0001")
    if not 1 <= q.limit <= 1000:
        raise ImsBadRequest("limit must be between 1 and 1000.", code="IMG.0001")
    if q.offset < 0:
        raise ImsBadRequest("offset must not be negative.", code="IMG.0001")


def _has(c: TagCondition) -> ColumnElement[bool]:
    """The image carries a tag with this key and (when values are given) one of these values."""
    if c.values:
        stored: set[str] = set()
        for v in c.values:
            stored |= {f"{c.key}.{v}"} if v else {c.key, f"{c.key}."}
        cond: ColumnElement[bool] = ImageTag.tag.in_(sorted(stored))
    else:
        cond = or_(ImageTag.tag == c.key, ImageTag.tag.startswith(f"{c.key}.", autoescape=True))
    return select(ImageTag.image_id).where(ImageTag.image_id == Image.id, cond).exists()


def query_resources(session: Session, project_id: str, q: ResourceQuery) -> tuple[int, list[Image]]:
    """(total matching, the requested page) among the project's own images, newest first."""
    check_resource_query(q)
    conds: list[ColumnElement[bool]] = [Image.owner == project_id]
    if q.without_any_tag:
        conds.append(not_(select(ImageTag.image_id).where(ImageTag.image_id == Image.id).exists()))
    else:
        if q.tags:
            conds.append(and_(*(_has(c) for c in q.tags)))
        if q.tags_any:
            conds.append(or_(*(_has(c) for c in q.tags_any)))
        if q.not_tags:
            conds.append(not_(and_(*(_has(c) for c in q.not_tags))))
        if q.not_tags_any:
            conds.append(not_(or_(*(_has(c) for c in q.not_tags_any))))
    for key, value in q.matches:
        if key == "resource_id":
            conds.append(Image.id == value)
        else:
            conds.append(Image.name.contains(value, autoescape=True))
    total = session.scalar(select(func.count()).select_from(Image).where(*conds)) or 0
    if q.action == "count":
        return total, []
    stmt = (select(Image).where(*conds).order_by(Image.created_at.desc(), Image.id.desc())
            .offset(q.offset).limit(q.limit))
    return total, list(session.scalars(stmt))

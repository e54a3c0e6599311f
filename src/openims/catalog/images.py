"""Images: the state machine, tenancy-scoped reads, keyset-paginated listing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, Update, and_, bindparam, exists, func, or_, select, tuple_, union_all, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from openims.db.models import Image, ImageCopy, ImageMember, ImageTag
from openims.errors import ImsBadRequest, ImsNotFound


class ImageStatus(StrEnum):
    QUEUED = "queued"  # metadata exists, no data yet
    SAVING = "saving"  # data being imported or uploaded
    UPLOADING = "uploading"  # Glance's interoperable import: data being staged, or staged and not yet imported
    IMPORTING = "importing"  # Glance's interoperable import: its task is checking and storing the data
    ACTIVE = "active"  # data stored and checksummed: usable
    KILLED = "killed"  # the import failed
    DEACTIVATED = "deactivated"  # data kept, but no one except an image administrator may download it
    DELETED = "deleted"  # gone (rows are removed; the value exists for filters)


# Allowed transitions, as glance's domain model: anything else is a bug.
VALID_TRANSITIONS: dict[ImageStatus, frozenset[ImageStatus]] = {
    ImageStatus.QUEUED: frozenset({ImageStatus.SAVING, ImageStatus.UPLOADING, ImageStatus.IMPORTING,
                                   ImageStatus.KILLED, ImageStatus.DELETED}),
    # Back to queued: a failed stage or import (Glance's revert).
    ImageStatus.UPLOADING: frozenset({ImageStatus.IMPORTING, ImageStatus.QUEUED, ImageStatus.DELETED}),
    ImageStatus.IMPORTING: frozenset({ImageStatus.ACTIVE, ImageStatus.QUEUED, ImageStatus.DELETED}),
    # saving → queued: a retried job starts the data over.
    ImageStatus.SAVING: frozenset({ImageStatus.ACTIVE, ImageStatus.KILLED, ImageStatus.QUEUED,
                                   ImageStatus.SAVING, ImageStatus.DELETED}),
    ImageStatus.ACTIVE: frozenset({ImageStatus.DELETED, ImageStatus.DEACTIVATED}),
    ImageStatus.DEACTIVATED: frozenset({ImageStatus.ACTIVE, ImageStatus.DELETED}),
    ImageStatus.KILLED: frozenset({ImageStatus.DELETED}),
    ImageStatus.DELETED: frozenset(),
}


# Membership statuses live here because listing filters on them; the sharing rules are in
# ``catalog.members``.
class MemberStatus(StrEnum):
    PENDING = "pending"  # shared; the member has not answered yet
    ACCEPTED = "accepted"  # the member uses it: the image shows in its lists
    REJECTED = "rejected"  # the member declined: hidden from its lists (still usable, as IMS documents)


ALL_STATUSES: tuple[str, ...] = tuple(s.value for s in MemberStatus)


def statuses_for_filter(member_status: str | None) -> tuple[str, ...]:
    """Glance's ``member_status`` filter → the membership statuses it selects (default accepted)."""
    if member_status is None or member_status == "":
        return (MemberStatus.ACCEPTED.value,)
    if member_status == "all":
        return ALL_STATUSES
    if member_status not in ALL_STATUSES:
        raise ImsBadRequest("member_status must be accepted, pending, rejected or all.", code="IMG.0001")
    return (member_status,)



class InvalidTransition(RuntimeError):
    pass


def transition(image: Image, target: ImageStatus, now: dt.datetime) -> None:
    current = ImageStatus(image.status)
    if target not in VALID_TRANSITIONS[current]:
        raise InvalidTransition(f"image {image.id}: {current} → {target} is not allowed")
    image.status = target.value
    image.updated_at = now


def transition_where(target: ImageStatus, *conditions: ColumnElement[bool],
                     sources: tuple[ImageStatus, ...] | None = None) -> Update:
    """A conditional bulk transition: ``UPDATE images SET status = target WHERE status IN (…) AND …``.

    The ``IN (…)`` list is derived from VALID_TRANSITIONS — every status ``target`` may follow, or
    the narrower ``sources`` (each of which must allow it) — so a statement cannot move an image
    past the state machine. Callers add their own ``.values(...)``; the row count says who won.
    """
    allowed = tuple(s for s in ImageStatus if target in VALID_TRANSITIONS[s])
    chosen = allowed if sources is None else sources
    if not set(chosen) <= set(allowed):
        raise InvalidTransition(f"{', '.join(sorted(chosen))} → {target} is not allowed")
    return (update(Image).where(Image.status.in_([s.value for s in chosen]), *conditions)
            .values(status=target.value))


def new_image_id() -> str:
    return str(uuid.uuid4())


# Statements of the hot read paths, built once: constructing a select costs more than running it.
_IS_MEMBER = (
    select(ImageMember.status)
    .where(ImageMember.image_id == bindparam("image_id"), ImageMember.member_id == bindparam("project_id"))
)
_TAGS = (
    select(ImageTag.image_id, ImageTag.tag)
    .where(ImageTag.image_id.in_(bindparam("ids", expanding=True)))
    .order_by(ImageTag.tag)
)


_OTHER_SOURCES = select(
    exists().where(Image.visibility == "public", Image.owner != bindparam("project_id")),
    exists().where(ImageMember.member_id == bindparam("project_id"),
                   ImageMember.status.in_(bindparam("statuses", expanding=True))),
)


def find_readable(session: Session, project_id: str, image_id: str, member_statuses: tuple[str, ...] = ("accepted",),
                  *, for_update: bool = False) -> Image | None:
    """The image by primary key if the project may see it, else None.

    Visible means: the project owns it, it is public, or the project is a member whose status is
    in ``member_statuses`` — the rule ``list_images`` applies to whole catalogues. A primary-key
    fetch plus, only for images the project does not own, one membership lookup.
    """
    image = session.get(Image, image_id, with_for_update=for_update or None)
    if image is None:
        return None
    if image.owner == project_id or image.visibility == "public":
        return image
    status = session.scalar(_IS_MEMBER, {"image_id": image_id, "project_id": project_id})
    return image if status in member_statuses else None


def get_readable(session: Session, project_id: str, image_id: str) -> Image:
    image = find_readable(session, project_id, image_id)
    if image is None:
        raise ImsNotFound(f"Image {image_id} does not exist.", code="IMG.0144")
    return image


def tags_of(session: Session, image_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in image_ids}
    if image_ids:
        for image_id, tag in session.execute(_TAGS, {"ids": list(image_ids)}):
            out[image_id].append(tag)
    return out


# ---------------------------------------------------------------- listing

# Columns a client may sort by, as querying_images.rst lists them — as functions of a column
# namespace, so the same order applies to the images table and to the union of list branches.
SORT_KEYS: dict[str, Callable[[Any], Any]] = {
    "created_at": lambda t: t.created_at,
    "updated_at": lambda t: t.updated_at,
    "name": lambda t: t.name,
    "id": lambda t: t.id,
    "status": lambda t: t.status,
    # Nullable columns sort as if empty/zero, so keyset comparisons never meet NULL.
    "container_format": lambda t: func.coalesce(t.container_format, ""),
    "disk_format": lambda t: func.coalesce(t.disk_format, ""),
    "size": lambda t: func.coalesce(t.size, 0),
    "min_disk": lambda t: t.min_disk,
}

# What SORT_KEYS' coalesce() turns NULL into, for keys whose column is nullable.
_NULL_SORTS: dict[str, Any] = {"container_format": "", "disk_format": "", "size": 0}

# IMS "__x" filters stored as properties: only equality.
PROPERTY_FILTERS = ("__os_type", "__platform", "__os_bit", "__os_version", "__isregistered",
                    "__whole_image", "__support_kvm", "__support_xen", "virtual_env_type",
                    "enterprise_project_id", "architecture", "hw_firmware_type")

TIME_OPS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__", "eq": "__eq__", "neq": "__ne__"}


@dataclass
class ImageQuery:
    project_id: str
    limit: int = 500
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    equals: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    tag: str | None = None
    ids: list[str] | None = None
    image_type: str | None = None
    time_filters: list[tuple[str, str, dt.datetime]] = field(default_factory=list)
    # Glance/IMS member_status (accepted by default, pending, rejected, all): which shared images count.
    member_status: str | None = None
    # Native list (GET /v2/images): several (key, dir) sorts instead of sort_key/sort_dir, every tag
    # of ``tags`` (each given as its accepted spellings), ``column IN (…)`` filters, size bounds.
    sort: list[tuple[str, str]] | None = None
    tags: list[list[str]] = field(default_factory=list)
    in_filters: dict[str, list[str]] = field(default_factory=dict)
    size_min: int | None = None
    size_max: int | None = None
    # The deployment's operator (issue 13): with an ``owner`` filter naming another project it lists
    # that project's images, whatever their visibility.
    operator: bool = False


def parse_time_filter(column: str, value: str) -> tuple[str, str, dt.datetime]:
    """``gt:2018-10-28T10:00:00Z`` → (column, op, time), as the created_at/updated_at filters document."""
    op, sep, rest = value.partition(":")
    if not sep or op not in TIME_OPS:
        raise ImsBadRequest(f"{column} must be <operator>:<UTC time> with operator one of {', '.join(TIME_OPS)}.")
    try:
        t = dt.datetime.fromisoformat(rest.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ImsBadRequest(f"{column}: {rest!r} is not an ISO 8601 time.") from exc
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return column, op, t


def list_images(session: Session, q: ImageQuery) -> list[Image]:
    sorts = q.sort or [(q.sort_key, q.sort_dir)]
    for key, direction in sorts:
        if key not in SORT_KEYS:
            raise ImsBadRequest(f"sort_key must be one of {', '.join(SORT_KEYS)}.")
        if direction not in ("asc", "desc"):
            raise ImsBadRequest("sort_dir must be asc or desc.")
    if not 0 <= q.limit <= 1000:
        raise ImsBadRequest("limit must be between 0 and 1000.")
    statuses = statuses_for_filter(q.member_status)
    filters: list[ColumnElement[bool]] = []
    # Which of the three sources of visible images can contribute (see _branches).
    own, public, shared = True, True, True
    owner = q.equals.get("owner")
    any_owner = q.operator and owner is not None and owner != q.project_id
    if q.image_type == "private":
        filters.append(Image.image_type == "private")
        public = shared = False
    elif q.image_type == "gold":
        filters.append(Image.visibility == "public")
        own = shared = False
    elif q.image_type == "shared":
        # IMS: "shared" is both what you share (owner = you) and what others share with you and
        # you accepted.
        filters += [Image.image_type == "shared", Image.visibility != "public"]
        public = False
        if q.member_status in ("pending", "rejected"):
            # Only a member has such a status: the images others share with you, not the ones you share.
            own = False
    elif q.image_type is not None:
        raise ImsBadRequest("__imagetype must be gold, private or shared.", code="IMG.0024")
    for column, value in q.equals.items():
        filters.append(getattr(Image, column) == value)
    for key, value in q.properties.items():
        filters.append(Image.properties[key].as_string() == value)
    if q.ids is not None:
        filters.append(Image.id.in_(q.ids))
    if q.tag is not None:
        filters.append(Image.id.in_(select(ImageTag.image_id).where(ImageTag.tag == q.tag)))
    for spellings in q.tags:
        filters.append(Image.id.in_(select(ImageTag.image_id).where(ImageTag.tag.in_(spellings))))
    for column, values in q.in_filters.items():
        filters.append(getattr(Image, column).in_(values))
    if q.size_min is not None:
        filters.append(Image.size >= q.size_min)
    if q.size_max is not None:
        filters.append(Image.size <= q.size_max)
    for column, op, t in q.time_filters:
        filters.append(getattr(getattr(Image, column), TIME_OPS[op])(t))
    # The id breaks ties, so equal sort values still page in one fixed order.
    order = [(key, direction == "desc") for key, direction in sorts]
    if all(key != "id" for key, _ in sorts):
        order.append(("id", order[-1][1]))
    if q.marker:
        # Keyset pagination: continue strictly after the marker row in the sort order.
        marker = (session.get(Image, q.marker) if any_owner
                  else find_readable(session, q.project_id, q.marker, statuses))
        if marker is None:
            raise ImsBadRequest(f"marker {q.marker} is not an image you can see.")
        cols = [SORT_KEYS[k](Image) for k, _ in order]
        # The marker's sort values, as the SQL expressions see them (NULL as the coalesced default).
        mvals = tuple(_NULL_SORTS.get(k) if getattr(marker, k) is None else getattr(marker, k) for k, _ in order)
        directions = {desc for _, desc in order}
        if len(directions) == 1:
            # One direction: a row-value comparison, which both databases answer from the index.
            filters.append(tuple_(*cols) < mvals if directions == {True} else tuple_(*cols) > mvals)
        else:
            after = []
            for i, (col, (_, desc)) in enumerate(zip(cols, order, strict=True)):
                ties = [c == v for c, v in zip(cols[:i], mvals[:i], strict=True)]
                after.append(and_(*ties, col < mvals[i] if desc else col > mvals[i]))
            filters.append(or_(*after))

    def ordered(t: Any) -> list[Any]:
        return [SORT_KEYS[k](t).desc() if desc else SORT_KEYS[k](t).asc() for k, desc in order]

    # The visible images come from three sources: the project's own, public ones, and those shared
    # with it. One OR over them defeats the (owner, created_at, id) index and sorts the whole
    # catalogue; instead each source is its own ordered, limited query that its index serves, and
    # the union of at most 3 x limit rows is sorted once.
    if any_owner:
        # The operator's view of another project: its images alone (owner = … is among the filters).
        return list(session.scalars(select(Image).where(*filters).order_by(*ordered(Image)).limit(q.limit)))
    if public or shared:
        # Most projects see only their own images: two index probes spare them the union.
        has_public, has_shared = session.execute(
            _OTHER_SOURCES, {"project_id": q.project_id, "statuses": list(statuses)}).one()
        public, shared = public and bool(has_public), shared and bool(has_shared)
    branches: list[Select[Any]] = []
    if own:
        branches.append(select(Image).where(Image.owner == q.project_id, *filters))
    if public:
        branches.append(select(Image).where(Image.visibility == "public", Image.owner != q.project_id, *filters))
    if shared:
        members = select(ImageMember.image_id).where(ImageMember.member_id == q.project_id,
                                                     ImageMember.status.in_(statuses))
        branches.append(select(Image).where(Image.id.in_(members), Image.owner != q.project_id,
                                            Image.visibility != "public", *filters))
    if not branches:
        return []
    if len(branches) == 1:
        return list(session.scalars(branches[0].order_by(*ordered(Image)).limit(q.limit)))
    parts = [select(b.order_by(*ordered(Image)).limit(q.limit).subquery()) for b in branches]
    union = union_all(*parts).subquery()
    row = aliased(Image, union)
    return list(session.scalars(select(row).order_by(*ordered(union.c)).limit(q.limit)))


def count_owned(session: Session, project_id: str) -> int:
    return session.scalar(select(func.count()).select_from(Image).where(Image.owner == project_id)) or 0


def stored_locations(session: Session) -> set[str]:
    """Every location an image row points to (its data and its copies in further stores): what the orphan
    sweep of the image store must keep."""
    found = {loc for loc in session.scalars(select(Image.location).where(Image.location.is_not(None))) if loc}
    return found | set(session.scalars(select(ImageCopy.location)))


def images_stored_at(session: Session, *, bare: bool, limit: int) -> list[tuple[str, str]]:
    """(id, location) of images whose data is in the file store (``bare``: locations without a scheme)."""
    stmt = select(Image.id, Image.location).where(Image.location.is_not(None))
    if bare:
        stmt = stmt.where(~Image.location.like("%://%"))
    return [(i, loc) for i, loc in session.execute(stmt.order_by(Image.id).limit(limit)) if loc]


def move_data(session: Session, image_id: str, old: str, new: str) -> bool:
    """Point the image at a copy of its data; only if it still points where the copy came from."""
    result = session.execute(update(Image).where(Image.id == image_id, Image.location == old).values(location=new))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_data(image: Image, *, location: str, size: int, virtual_size: int | None, disk_format: str, checksum: str,
                os_hash_value: str, os_hash_algo: str = "sha512") -> None:
    """The facts of an image's stored data, as an import and a direct upload both record them."""
    image.location = location
    image.size = size
    image.virtual_size = virtual_size
    # What is stored (and downloaded): the store format for imports, the format as uploaded otherwise.
    image.disk_format = disk_format
    image.checksum = checksum
    image.os_hash_algo = os_hash_algo
    image.os_hash_value = os_hash_value
    image.properties = {**image.properties, "__image_size": str(size)}

"""Image sharing: members, their state machine, and who may do what to a shared image.

An owner shares one of its private images with another project (of any account: sharing crosses
accounts) by adding that project as a member. The member decides: ``pending → accepted | rejected``,
and may change its mind later. Only accepted members see the image in their lists
(``images.list_images``); none of them may change, tag, delete or re-share it.

While an image has members its ``visibility`` and ``image_type`` (``__imagetype``) are ``shared``
— for the owner and the members alike, as the IMS query docs describe ("the __imagetype of images
you share with other tenants or those other tenants share with you and you have accepted is
shared") and as Glance stores member-bearing images. The last member leaving makes it private
again. Keeping this on the row, not computing it per viewer, lets every list filter
(``visibility=``, ``__imagetype=``) stay a plain column comparison.

Rules from restrictions_on_image_sharing.rst and the error-code table: public images (IMG.0089),
full-ECS images (IMG.0135) and encrypted images (IMG.0098) cannot be shared; not with yourself
(IMG.0076); at most 256 members per image (IMG.0088); the image must be usable (IMG.0046).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openims.catalog import jobs
from openims.catalog.images import ALL_STATUSES, ImageStatus, MemberStatus, find_readable
from openims.catalog.jobs import JobPayload, JobType
from openims.db.models import Image, ImageMember, Job, Project
from openims.errors import ImsBadRequest, ImsConflict, ImsForbidden, ImsNotFound, ServiceError

# restrictions_on_image_sharing.rst: a system or data disk image is shared with at most 256 tenants
# (full-ECS images, limited to 10, cannot be made here).
MAX_MEMBERS = 256


# A member answers once asked and may change its answer; nobody puts an image back to pending.
VALID_TRANSITIONS: dict[MemberStatus, frozenset[MemberStatus]] = {
    MemberStatus.PENDING: frozenset({MemberStatus.ACCEPTED, MemberStatus.REJECTED}),
    MemberStatus.ACCEPTED: frozenset({MemberStatus.ACCEPTED, MemberStatus.REJECTED}),
    MemberStatus.REJECTED: frozenset({MemberStatus.ACCEPTED, MemberStatus.REJECTED}),
}


def answer(value: object, *, glance: bool = False) -> MemberStatus:
    """The status a member may set: ``accepted`` or ``rejected`` (Glance: ``pending`` too)."""
    allowed = [MemberStatus.ACCEPTED.value, MemberStatus.REJECTED.value] + ([MemberStatus.PENDING.value] * glance)
    if value not in allowed:
        raise ImsBadRequest(f"Invalid member status {str(value)[:32]!r}: use {', '.join(allowed)}.", code="IMG.0001")
    return MemberStatus(str(value))


# ---------------------------------------------------------------- reading


def visible_to(session: Session, project_id: str, image_id: str, *, for_update: bool = False) -> Image:
    """The image if the project owns it or is a member of it in any status; else 404.

    Members who have not accepted still know the image (they were asked about it), so they get
    403 rather than 404 when they try to change it.
    """
    image = find_readable(session, project_id, image_id, ALL_STATUSES, for_update=for_update)
    if image is None:
        raise ImsNotFound(f"Image {image_id} does not exist.", code="IMG.0144")
    return image


def require_owner(session: Session, project_id: str, image_id: str, *, for_update: bool = False) -> Image:
    """The image, for a change only its owner may make: shared with you → 403, unknown → 404."""
    image = visible_to(session, project_id, image_id, for_update=for_update)
    if image.owner != project_id:
        how = "public" if image.visibility == "public" else "shared with you"
        raise ImsForbidden(f"Image {image_id} is {how}; only its owner may change it.", code="IMG.0047")
    return image


def list_members(session: Session, project_id: str, image_id: str, *, glance: bool = False) -> list[ImageMember]:
    """The owner sees every member; a member sees only its own membership (as Glance does).

    ``glance``: an image that is not ``shared`` has no member list (403), as on Glance.
    """
    image = visible_to(session, project_id, image_id)
    if glance and image.visibility != "shared":
        raise ImsForbidden(f"Only shared images have members; image {image_id} is {image.visibility}.",
                           code="IMG.0089")
    stmt = select(ImageMember).where(ImageMember.image_id == image.id)
    if image.owner != project_id:
        stmt = stmt.where(ImageMember.member_id == project_id)
    return list(session.scalars(stmt.order_by(ImageMember.created_at, ImageMember.member_id)))


def get_member(session: Session, project_id: str, image_id: str, member_id: str, *,
               glance: bool = False) -> ImageMember:
    image = visible_to(session, project_id, image_id)
    if (glance and image.visibility != "shared") or (image.owner != project_id and member_id != project_id):
        # Members do not learn who else the image is shared with.
        raise ImsNotFound(f"Project {member_id} is not a member of image {image_id}.", code="IMG.0114")
    member = session.get(ImageMember, (image.id, member_id))
    if member is None:
        raise ImsNotFound(f"Project {member_id} is not a member of image {image_id}.", code="IMG.0114")
    return member


def page(members: Sequence[ImageMember], *, limit: int, marker: str | None) -> list[ImageMember]:
    """A page of an (ordered) member list after the member id ``marker``."""
    if limit < 1 or limit > 1000:
        raise ImsBadRequest("limit must be between 1 and 1000.", code="IMG.0001")
    start = 0
    if marker:
        ids = [m.member_id for m in members]
        if marker not in ids:
            raise ImsBadRequest(f"marker {marker} is not a member of this image.", code="IMG.0001")
        start = ids.index(marker) + 1
    return list(members[start:start + limit])


# ---------------------------------------------------------------- changing


def _check_shareable(image: Image, glance: bool) -> None:
    """IMS shares active images, turning them shared; Glance (native routes) takes any status, but
    only an image whose visibility already is ``shared``."""
    if glance and image.visibility != "shared":
        raise ImsForbidden(f"Not allowed to create members for image {image.id}: its visibility is "
                           f"{image.visibility}, not shared.", code="IMG.0089")
    props = image.properties or {}
    if image.visibility == "public" or image.image_type == "gold":
        raise ImsBadRequest(f"Image {image.id} is a public image; public images cannot be shared.", code="IMG.0089")
    if str(props.get("__whole_image", "")).lower() == "true":
        raise ImsBadRequest(f"Image {image.id} is a full-ECS image; it cannot be shared.", code="IMG.0135")
    if props.get("__system__cmkid") or str(props.get("__system_encrypted", "")) == "1":
        raise ImsBadRequest(f"Image {image.id} is encrypted; encrypted images cannot be shared.", code="IMG.0098")
    if not glance and image.status != ImageStatus.ACTIVE.value:
        raise ImsBadRequest(f"Image {image.id} is {image.status}; only active images can be shared.", code="IMG.0046")


def _mark_shared(image: Image, now: dt.datetime) -> None:
    if image.image_type != "shared" or image.visibility != "shared":
        image.image_type = "shared"
        image.visibility = "shared"
        image.updated_at = now


def _member_count(session: Session, image_id: str) -> int:
    return session.scalar(select(func.count()).select_from(ImageMember).where(ImageMember.image_id == image_id)) or 0


def add_member(session: Session, owner_project: str, image_id: str, member_project: str, now: dt.datetime, *,
               exists_ok: bool = False, glance: bool = False) -> ImageMember:
    """Share the owner's image with ``member_project`` (status pending).

    Every check happens before the first write, so a refused member leaves the transaction as it
    was (the batch job relies on that to go on with the next item). ``exists_ok``: an existing
    membership is returned unchanged (the batch API is idempotent; Glance's POST answers 409).
    ``glance``: the native route's rules (``_check_shareable``; the member limit is 413).
    """
    # The image row is locked: concurrent adds cannot overshoot the member limit.
    image = require_owner(session, owner_project, image_id, for_update=True)
    _check_shareable(image, glance)
    if member_project == owner_project:
        raise ImsBadRequest("You cannot share an image with yourself.", code="IMG.0076")
    existing = session.get(ImageMember, (image.id, member_project))
    if existing is not None:
        if exists_ok:
            return existing
        raise ImsConflict(f"Image {image_id} is already shared with project {member_project}.", code="IMG.0112")
    project = session.get(Project, member_project)
    if project is None or not project.enabled:
        raise ImsBadRequest(f"Project {member_project} does not exist in this region.", code="IMG.0108")
    if _member_count(session, image.id) >= MAX_MEMBERS:
        raise ImsBadRequest(f"Image {image_id} is already shared with the maximum of {MAX_MEMBERS} projects.",
                            code="IMG.0088", status=413 if glance else None)
    member = ImageMember(image_id=image.id, member_id=member_project, status=MemberStatus.PENDING.value,
                         created_at=now, updated_at=now)
    session.add(member)
    _mark_shared(image, now)
    session.flush()
    return member


def remove_member(session: Session, owner_project: str, image_id: str, member_project: str, now: dt.datetime, *,
                  glance: bool = False) -> None:
    """Stop sharing with one project. With no member left the image is no longer of the shared IMS
    type, and (IMS rules) private again; Glance leaves its visibility ``shared``."""
    image = require_owner(session, owner_project, image_id, for_update=True)
    member = session.get(ImageMember, (image.id, member_project))
    if member is None:
        raise ImsNotFound(f"Project {member_project} is not a member of image {image_id}.", code="IMG.0113")
    session.delete(member)
    session.flush()
    if _member_count(session, image.id) == 0 and image.image_type == "shared":
        image.image_type = "private"
        if not glance:
            image.visibility = "private"
        image.updated_at = now


def set_status(session: Session, caller_project: str, image_id: str, member_id: str, status: MemberStatus,
               now: dt.datetime, *, glance: bool = False) -> ImageMember:
    """The member project accepts or rejects an image shared with it (Glance: any status to any)."""
    image = visible_to(session, caller_project, image_id)
    if member_id != caller_project:
        if image.owner == caller_project:
            raise ImsForbidden("Only the member project itself can accept or reject a shared image.")
        raise ImsNotFound(f"Project {member_id} is not a member of image {image_id}.", code="IMG.0114")
    member = session.scalar(select(ImageMember).where(ImageMember.image_id == image.id,
                                                      ImageMember.member_id == member_id).with_for_update())
    if member is None:
        # The owner of an image is not one of its members.
        raise ImsNotFound(f"Project {member_id} is not a member of image {image_id}.", code="IMG.0114")
    current = MemberStatus(member.status)
    if not glance and status not in VALID_TRANSITIONS[current]:
        raise ImsBadRequest(f"A member cannot go from {current} to {status}.", code="IMG.0001")
    if member.status != status.value:
        member.status = status.value
        member.updated_at = now
    return member


# ---------------------------------------------------------------- batch jobs (/v1/cloudimages/members)

# Not documented; generous bounds so one request cannot become an unbounded job.
MAX_BATCH_IMAGES = 100
_ID_MAX = 64


class MemberBatch(JobPayload):
    """The typed payload of imsAdd/Del/UpdateImageMembersJob."""

    images: tuple[str, ...]
    # Add/delete: the projects to (un)share with. Update: the caller's own project, once.
    projects: tuple[str, ...]
    # Update only: the answer to record.
    status: str | None = None


def _ids(name: str, values: object, limit: int) -> tuple[str, ...]:
    if not isinstance(values, list) or not values:
        raise ImsBadRequest(f"{name} must be a non-empty list of ids.", code="IMG.0001")
    if len(values) > limit:
        raise ImsBadRequest(f"{name} may list at most {limit} ids.", code="IMG.0001")
    out: dict[str, None] = {}
    for v in values:
        if not isinstance(v, str) or not v or len(v) > _ID_MAX:
            raise ImsBadRequest(f"{name}: every id is a non-empty string of at most {_ID_MAX} characters.",
                                code="IMG.0001")
        out[v] = None
    return tuple(out)  # duplicates dropped, order kept


def submit_batch(session: Session, job_type: JobType, *, project_id: str, images: object, projects: object = None,
                 member_project: object = None, status: object = None, now: dt.datetime) -> Job:
    """Check a batch request's shape and queue its job; each (image, project) pair is judged when it runs."""
    image_ids = _ids("images", images, MAX_BATCH_IMAGES)
    if job_type is JobType.UPDATE_IMAGE_MEMBERS:
        if member_project != project_id:
            # Only the member itself answers, and a token speaks for one project.
            raise ImsBadRequest("project_id must be the project of the token: a member answers for itself.",
                                code="IMG.0067")
        batch = MemberBatch(images=image_ids, projects=(project_id,), status=answer(status).value)
    else:
        batch = MemberBatch(images=image_ids, projects=_ids("projects", projects, MAX_MEMBERS))
    return jobs.submit(session, project_id=project_id, job_type=job_type, payload=batch.to_json(),
                       entities={}, now=now)


@dataclass
class BatchOutcome:
    results: list[dict[str, Any]]
    failures: list[dict[str, Any]]

    @property
    def all_failed(self) -> bool:
        return bool(self.failures) and len(self.failures) == len(self.results)


def run_batch(session: Session, job_type: str, project_id: str, batch: MemberBatch, now: dt.datetime) -> BatchOutcome:
    """Apply every (image, project) pair of a batch job in one transaction, recording each outcome.

    Each rule raises before its first write (see ``add_member``), so a refused item changes nothing
    and the others go on: partial success is reported per item, as ``entities.results``.
    """
    results: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for image_id in batch.images:
        for member in batch.projects:
            item: dict[str, Any] = {"image_id": image_id, "project_id": member}
            try:
                if job_type == JobType.ADD_IMAGE_MEMBERS.value:
                    add_member(session, project_id, image_id, member, now, exists_ok=True)
                elif job_type == JobType.DEL_IMAGE_MEMBERS.value:
                    remove_member(session, project_id, image_id, member, now)
                else:
                    set_status(session, project_id, image_id, member, answer(batch.status), now)
                item["status"] = "success"
            except ServiceError as exc:
                item.update(status="fail", error_code=exc.code, fail_reason=exc.message)
                failures.append(item)
            results.append(item)
    return BatchOutcome(results, failures)

"""Direct uploads (``PUT /v2/images/{id}/file``) and staging (``PUT /v2/images/{id}/stage``): the rules and
state of an image receiving data.

Staging is the first step of Glance's interoperable import (``catalog.glance_import``): the same
transfer under the same lease, but the image goes ``queued → uploading`` and stays ``uploading``
with its data stored as it came (no inspection, no checksums yet: the import does that).

The transfer itself — spooling the body, the import pipeline, the heartbeat — is ``worker.uploads``;
this module only decides who holds an image and what each step may change.

``queued → saving`` is one conditional statement, so of two concurrent uploads to an image one wins
and the other gets 409. The body is spooled to a temp file in the image store's temp directory (a
bounded buffer, never the whole image in memory), then inspected and checksummed by
``imaging.keep_image`` with the image's ``disk_format`` as the declared format, published verbatim, and the
image made ``active`` in one transaction. Glance answers 204 only once the data is stored; so do we.

Any failure — refused content, too large, client gone — puts the image back to ``queued`` with no
data and no temp files left (Glance's ``_restore``). An image deleted during its upload makes the
upload 410 Gone.

A crash cannot run that clean-up, so the upload holds the image with a lease: ``begin`` records a
holder (the upload's id, which also names its temp files) and an expiry, renewed as data arrives
(at most every few seconds) and while the data is processed. The job worker's sweep
(``recover_abandoned``) gives images whose lease lapsed back to ``queued`` and removes their temp
files. Every later write of the upload is conditional on still being the holder, so an upload that
stalled past its lease and then woke up can neither renew, nor restore, nor publish over a newer
upload of the same image. Images filled by jobs never carry an upload lease, so the sweep leaves
them alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from openims.catalog.images import ImageStatus, record_data, transition, transition_where
from openims.catalog.members import require_owner
from openims.db.models import Image
from openims.db.session import Database
from openims.errors import (
    ImsBadRequest,
    ImsConflict,
    ImsUploadGone,
    ImsUploadLeaseLost,
    ServiceError,
)
from openims.objects.image_store import ImageStore

log = logging.getLogger("openims.uploads")

# Written to disk in pieces of this size: memory stays bounded whatever the image size.
SPOOL_BUFFER = 1024 * 1024
# The lease of an upload that does not say otherwise (Settings.upload_lease_seconds has the same default).
DEFAULT_LEASE_SECONDS = 60
# A live upload renews at most this often — one indexed UPDATE — and at least four times per lease.
MAX_RENEW_INTERVAL = 5.0
# Rows one sweep recovers at most; the next sweep takes the rest.
SWEEP_BATCH = 100


@dataclass(frozen=True)
class UploadTarget:
    image_id: str
    # The formats the image declares its data to be in (checked against the content when bare).
    disk_format: str
    container_format: str
    # GB; 0 means "not set", so only the service-wide virtual size limit applies.
    min_disk: int
    # Who holds the image in saving: the upload's id (it also names the upload's temp files).
    holder: str
    # A stage (``PUT /stage``): kept as it came, the image left ``uploading``.
    stage: bool = False


# The status an image has while it receives data, for an upload and for a stage.
_RECEIVING = (ImageStatus.SAVING, ImageStatus.UPLOADING)


def renew_interval(lease_seconds: float) -> float:
    return min(MAX_RENEW_INTERVAL, lease_seconds / 4)


# ---------------------------------------------------------------- state changes


def begin(session: Session, project_id: str, image_id: str, now: dt.datetime, *, holder: str | None = None,
          lease_seconds: int = DEFAULT_LEASE_SECONDS, stage: bool = False) -> UploadTarget:
    """Take the owner's queued image to ``saving`` (a stage: ``uploading``) under a lease; 404 / 403 /
    409 / 400 as Glance answers. A stage needs no formats (Glance checks them at import)."""
    image = require_owner(session, project_id, image_id)
    target = ImageStatus.UPLOADING if stage else ImageStatus.SAVING
    if image.status != ImageStatus.QUEUED.value:
        raise ImsConflict(f"Image {image_id} is {image.status}: data can only be "
                          f"{'staged' if stage else 'uploaded'} to a queued image (transition from "
                          f"{image.status} to {target} is not allowed).", code="IMG.0035")
    if "__data_origin" in image.properties:
        # An import or copy job fills this image; an upload would race with it.
        raise ImsConflict(f"Image {image_id} is being created by an asynchronous job; its data cannot be uploaded.",
                          code="IMG.0035")
    if not stage and (not image.disk_format or not image.container_format):
        raise ImsBadRequest("disk_format and container_format must be set before uploading data.", code="IMG.0072")
    holder = holder or uuid.uuid4().hex
    result = session.execute(
        transition_where(target, Image.id == image.id, sources=(ImageStatus.QUEUED,))
        .values(updated_at=now, upload_holder=holder, upload_lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ImsConflict(f"Image {image_id} is already receiving data.", code="IMG.0035")
    return UploadTarget(image.id, image.disk_format or "", image.container_format or "", image.min_disk, holder,
                        stage)


def _held(image_id: str, holder: str, *, status: bool = True) -> tuple[ColumnElement[bool], ...]:
    held = (Image.id == image_id, Image.upload_holder == holder)
    return (*held, Image.status.in_([s.value for s in _RECEIVING])) if status else held


def _lost(session: Session, image_id: str) -> ServiceError:
    """Why an upload no longer holds its image: the image was deleted, or its lease lapsed and was taken."""
    if session.get(Image, image_id) is None:
        return ImsUploadGone(f"Image {image_id} was deleted during the upload; the data was discarded.")
    return ImsUploadLeaseLost(f"The upload to image {image_id} was abandoned: it received no data for longer than "
                              "its lease, and the image was returned to queued. Upload the data again.")


def renew(session: Session, image_id: str, holder: str, now: dt.datetime, lease_seconds: int) -> None:
    """Extend the upload's lease; raises UploadGone / UploadLeaseLost when it is no longer the holder."""
    result = session.execute(
        update(Image).where(*_held(image_id, holder))
        .values(upload_lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise _lost(session, image_id)


def restore(session: Session, image_id: str, holder: str, now: dt.datetime) -> ServiceError | None:
    """A failed upload leaves the image queued, ready for another attempt.

    Only while it still holds the image; otherwise nothing changes and the reason it lost the
    image is returned (that, not whatever broke afterwards, is what the client should hear).
    """
    result = session.execute(
        transition_where(ImageStatus.QUEUED, *_held(image_id, holder, status=False), sources=_RECEIVING)
        .values(updated_at=now, upload_holder=None, upload_lease_expires_at=None)
    )
    return None if result.rowcount == 1 else _lost(session, image_id)  # type: ignore[attr-defined]


def finish(session: Session, image_id: str, holder: str, publish: Callable[[], str], now: dt.datetime, *,
           size: int, virtual_size: int | None, disk_format: str, checksum: str, os_hash_value: str,
           os_hash_algo: str) -> None:
    """Publish the stored data and make the image active, both only while the upload still holds the image.

    ``publish`` runs under the image's row lock: a sweep or a newer upload cannot take the image
    between the check and the rename, so a stale upload never replaces a newer upload's data.
    """
    image = session.scalar(select(Image).where(*_held(image_id, holder)).with_for_update())
    if image is None:
        raise _lost(session, image_id)
    record_data(image, location=publish(), size=size, virtual_size=virtual_size, disk_format=disk_format,
                checksum=checksum, os_hash_value=os_hash_value, os_hash_algo=os_hash_algo)
    image.upload_holder = None
    image.upload_lease_expires_at = None
    transition(image, ImageStatus.ACTIVE, now)


def finish_stage(session: Session, image_id: str, holder: str, publish: Callable[[], str], now: dt.datetime, *,
                 size: int) -> None:
    """Publish staged data: the image stays ``uploading`` with ``size`` = the staged bytes (as Glance),
    its data waiting for ``POST /import``. Only while the stage still holds the image (as ``finish``)."""
    image = session.scalar(select(Image).where(*_held(image_id, holder)).with_for_update())
    if image is None:
        raise _lost(session, image_id)
    image.location = publish()
    image.size = size
    image.upload_holder = None
    image.upload_lease_expires_at = None
    image.updated_at = now


@dataclass(frozen=True)
class Abandoned:
    image_id: str
    holder: str


def sweep_expired(session: Session, now: dt.datetime, *, limit: int = SWEEP_BATCH) -> list[Abandoned]:
    """Give images whose upload lease lapsed back to ``queued``; returns them (their temp files are the caller's).

    One indexed range query finds them (the column is NULL except during uploads). Each is taken
    with a statement conditional on the same holder and a still-lapsed lease, so concurrent sweeps
    (several worker processes) and an upload renewing at that moment each win or lose cleanly.
    """
    rows = session.execute(
        select(Image.id, Image.upload_holder, Image.status)
        .where(Image.upload_lease_expires_at < now)
        .order_by(Image.upload_lease_expires_at)
        .limit(limit)
    ).all()
    taken: list[Abandoned] = []
    for image_id, holder, status in rows:
        lapsed = (Image.id == image_id, Image.upload_holder.is_not_distinct_from(holder),
                  Image.upload_lease_expires_at < now)
        cleared = {"upload_holder": None, "upload_lease_expires_at": None}
        if status in _RECEIVING:
            stmt = transition_where(ImageStatus.QUEUED, *lapsed, sources=_RECEIVING).values(
                updated_at=now, **cleared)
        else:
            # A lease left on an image in another state (nothing should leave one) is only cleared.
            stmt = update(Image).where(*lapsed).values(**cleared)
        result = session.execute(stmt)
        if result.rowcount == 1 and holder:  # type: ignore[attr-defined]
            taken.append(Abandoned(image_id, holder))
    return taken


def recover_abandoned(db: Database, images: ImageStore, now: dt.datetime) -> list[Abandoned]:
    """The sweep: abandoned uploads back to ``queued``, then their temp files removed (after the commit)."""
    with db.transaction() as s:
        taken = sweep_expired(s, now)
    for abandoned in taken:
        log.warning("upload %s to image %s was abandoned (lease expired); the image is queued again",
                    abandoned.holder, abandoned.image_id)
        images.clear_temp(abandoned.holder)
    return taken

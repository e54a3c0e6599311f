"""Direct uploads (``PUT /v2/images/{id}/file``) through the same pipeline as imports.

``queued → saving`` is one conditional statement, so of two concurrent uploads to an image one wins
and the other gets 409. The body is spooled to a temp file in the image store's temp directory (a
bounded buffer, never the whole image in memory), then inspected, converted and checksummed by
``imaging.import_image`` with the image's ``disk_format`` as the declared format, published, and the
image made ``active`` in one transaction. Glance answers 204 only once the data is stored; so do we.

Any failure — refused content, too large, client gone — puts the image back to ``queued`` with no
data and no temp files left (Glance's ``_restore``). An image deleted during its upload makes the
upload 410 Gone, after removing the data it had just published.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from openims.catalog.images import ImageStatus, transition
from openims.catalog.members import require_owner
from openims.clock import Clock
from openims.db.models import Image
from openims.db.session import Database
from openims.errors import BadRequest, Conflict, ImsError, ServiceError
from openims.imaging import ConversionFailed, ImageFormat, ImageRejected, StoredImage, StoreFormat, import_image
from openims.objects.image_store import ImageStore

# Written to disk in pieces of this size: memory stays bounded whatever the image size.
SPOOL_BUFFER = 1024 * 1024


class UploadTooLarge(ImsError):
    status = 413
    code = "IMG.0059"
    title = "Request Entity Too Large"


class UploadGone(ImsError):
    status = 410
    code = "IMG.0144"
    title = "Gone"


class UploadFailed(ImsError):
    """A failure on our side (qemu-img crashed or timed out), not in the uploaded data."""

    status = 500
    code = "IMG.0061"
    title = "Internal Server Error"


@dataclass(frozen=True)
class UploadTarget:
    image_id: str
    declared: ImageFormat
    # GB; 0 means "not set", so only the service-wide virtual size limit applies.
    min_disk: int


@dataclass(frozen=True)
class UploadLimits:
    max_file_size: int
    store_format: StoreFormat
    timeout: float


# ---------------------------------------------------------------- state changes


def begin(session: Session, project_id: str, image_id: str, now: dt.datetime) -> UploadTarget:
    """Take the owner's queued image to ``saving``; 404 / 403 / 409 / 400 as Glance answers."""
    image = require_owner(session, project_id, image_id)
    if image.status != ImageStatus.QUEUED.value:
        raise Conflict(f"Image {image_id} is {image.status}: data can only be uploaded to a queued image.",
                       code="IMG.0035")
    if "__data_origin" in image.properties:
        # An import or copy job fills this image; an upload would race with it.
        raise Conflict(f"Image {image_id} is being created by an asynchronous job; its data cannot be uploaded.",
                       code="IMG.0035")
    if not image.disk_format or not image.container_format:
        raise BadRequest("disk_format and container_format must be set before uploading data.", code="IMG.0072")
    result = session.execute(
        update(Image).where(Image.id == image.id, Image.status == ImageStatus.QUEUED.value)
        .values(status=ImageStatus.SAVING.value, updated_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"Image {image_id} is already receiving data.", code="IMG.0035")
    return UploadTarget(image.id, ImageFormat(image.disk_format), image.min_disk)


def restore(session: Session, image_id: str, now: dt.datetime) -> None:
    """A failed upload leaves the image queued, ready for another attempt."""
    session.execute(
        update(Image).where(Image.id == image_id, Image.status == ImageStatus.SAVING.value)
        .values(status=ImageStatus.QUEUED.value, updated_at=now)
    )


def finish(session: Session, image_id: str, stored: StoredImage, location: str, now: dt.datetime) -> bool:
    """Record the stored data and make the image active; False if it was deleted meanwhile."""
    image = session.scalar(select(Image).where(Image.id == image_id).with_for_update())
    if image is None or image.status != ImageStatus.SAVING.value:
        return False
    image.location = location
    image.size = stored.size
    image.virtual_size = stored.virtual_size
    # What is stored (and downloaded) is the store format, whatever was uploaded.
    image.disk_format = stored.disk_format
    image.checksum = stored.checksum
    image.os_hash_algo = stored.os_hash_algo
    image.os_hash_value = stored.os_hash_value
    image.properties = {**image.properties, "__image_size": str(stored.size)}
    transition(image, ImageStatus.ACTIVE, now)
    return True


# ---------------------------------------------------------------- the upload


_MISMATCH = re.compile(r"says (\w+) but the content is (\w+)")


def _refused(exc: ImageRejected) -> ServiceError:
    if isinstance(exc, ConversionFailed):
        return UploadFailed(f"The uploaded data could not be processed: {exc.reason}.", code=exc.code)
    if exc.code == UploadTooLarge.code:
        return UploadTooLarge(f"The uploaded data was refused: {exc.reason}.")
    # The pipeline words a disagreeing declared format for file names; here it is the disk_format.
    mismatch = _MISMATCH.search(exc.reason)
    if mismatch:
        return BadRequest(f"The uploaded data was refused: the image's disk_format is {mismatch.group(1)} but the "
                          f"data is {mismatch.group(2)}.", code=exc.code)
    return BadRequest(f"The uploaded data was refused: {exc.reason}.", code=exc.code)


async def _spool(stream: AsyncIterator[bytes], path: Path, limit: int) -> int:
    total = 0
    buffer = bytearray()
    with open(path, "wb") as f:
        async for chunk in stream:
            total += len(chunk)
            if total > limit:
                raise UploadTooLarge(f"The uploaded data exceeds the limit of {limit} bytes.")
            buffer += chunk
            if len(buffer) >= SPOOL_BUFFER:
                data = bytes(buffer)
                buffer.clear()
                await anyio.to_thread.run_sync(f.write, data)
        if buffer:
            await anyio.to_thread.run_sync(f.write, bytes(buffer))
        await anyio.to_thread.run_sync(f.flush)
    return total


def _store(db: Database, images: ImageStore, target: UploadTarget, spool: Path, temp: Path,
           limits: UploadLimits, clock: Clock) -> None:
    try:
        stored = import_image(spool, temp, min_disk_gb=target.min_disk or None, declared=target.declared,
                              store_format=limits.store_format, max_file_size=limits.max_file_size,
                              timeout=limits.timeout)
    except ImageRejected as exc:
        raise _refused(exc) from exc
    finally:
        spool.unlink(missing_ok=True)
    location = images.publish(stored.path, target.image_id)
    with db.transaction() as s:
        recorded = finish(s, target.image_id, stored, location, clock())
    if not recorded:
        images.delete(location)
        raise UploadGone(f"Image {target.image_id} was deleted during the upload; the data was discarded.")


async def upload(db: Database, images: ImageStore, *, project_id: str, image_id: str,
                 stream: AsyncIterator[bytes], limits: UploadLimits, clock: Clock,
                 upload_id: str) -> None:
    """Receive, check and store an image's data; the image is active when this returns."""

    def start() -> UploadTarget:
        with db.transaction() as s:
            return begin(s, project_id, image_id, clock())

    def undo() -> None:
        with db.transaction() as s:
            restore(s, image_id, clock())

    target = await anyio.to_thread.run_sync(start)
    # Named by this upload, so nothing of another attempt is touched; clear_temp removes both.
    temp = images.temp_path(upload_id, target.image_id)
    spool = temp.with_name(temp.name + ".upload")
    try:
        await _spool(stream, spool, limits.max_file_size)
        await anyio.to_thread.run_sync(_store, db, images, target, spool, temp, limits, clock)
    except UploadGone:
        raise
    except BaseException:
        # Shielded: a client that went away must not leave the image stuck in saving.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(undo)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(images.clear_temp, upload_id)

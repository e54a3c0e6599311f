"""The transfer of a direct upload (``PUT /v2/images/{id}/file``) or a stage (``PUT …/stage``): spool,
inspect, publish verbatim.

The same inspection as the worker's jobs (``imaging.keep_image``, then ``Staging.seal``/``publish``),
with the image held under an upload lease (``catalog.uploads`` holds its rules and state): renewed
as data arrives, and by the shared ``Heartbeat`` while qemu-img works and nothing arrives.
Any failure puts the image back to ``queued`` with no temp files left; a crash leaves that to the
worker's sweep (``catalog.uploads.recover_abandoned``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from openims import metrics
from openims.catalog import uploads
from openims.catalog.uploads import DEFAULT_LEASE_SECONDS, UploadTarget
from openims.clock import Clock
from openims.concurrency import transfer_limiter
from openims.db.session import Database
from openims.errors import (
    ImsBadRequest,
    ImsUnsupportedMediaType,
    ImsUploadFailed,
    ImsUploadGone,
    ImsUploadLeaseLost,
    ImsUploadTooLarge,
    ServiceError,
)
from openims.imaging import ConversionFailed, FormatMismatch, ImageRejected, keep_image
from openims.imaging.errors import IMG_DISK_SIZE
from openims.objects.image_store import ImageStore, Staging
from openims.worker.lease import Heartbeat
from openims.worker.outcomes import count_qemu_failure

log = logging.getLogger("openims.uploads")

# Written to disk in pieces of this size: memory stays bounded whatever the image size.
SPOOL_BUFFER = 1024 * 1024


@dataclass(frozen=True)
class UploadLimits:
    max_file_size: int
    timeout: float
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    # The size the client announced (X-Openstack-Image-Size): other data is refused (400).
    expected_size: int | None = None


class UploadLease:
    """The upload's hold on its image, renewed on the runtime clock at most every ``interval`` seconds."""

    def __init__(self, db: Database, target: UploadTarget, lease_seconds: int, clock: Clock) -> None:
        self.db, self.target, self.lease_seconds, self.clock = db, target, lease_seconds, clock
        self.interval = uploads.renew_interval(lease_seconds)
        self._next = clock() + dt.timedelta(seconds=self.interval)

    def due(self) -> bool:
        return self.clock() >= self._next

    def renew(self) -> None:
        now = self.clock()
        with self.db.transaction() as s:
            uploads.renew(s, self.target.image_id, self.target.holder, now, self.lease_seconds)
        self._next = now + dt.timedelta(seconds=self.interval)

    def heartbeat(self) -> Heartbeat:
        """While the data is processed no bytes arrive, so renew on a timer (a thread beside qemu-img).

        A lost lease just ends the heartbeat: ``finish`` then says why the upload lost its image.
        """
        return Heartbeat(self.renew, interval=self.interval, lost=(ImsUploadGone, ImsUploadLeaseLost),
                         max_backoff=self.lease_seconds / 4, name=f"openims-upload-lease-{self.target.holder[:8]}")


def _refused(exc: ImageRejected) -> ServiceError:
    """Glance's answers (image_data.py): a format lie or unsafe content is 415, too big 413."""
    if isinstance(exc, ConversionFailed):
        return ImsUploadFailed(f"The uploaded data could not be processed: {exc.reason}.", code=exc.code)
    if exc.code == ImsUploadTooLarge.code:
        return ImsUploadTooLarge(f"The uploaded data was refused: {exc.reason}.")
    if exc.code == IMG_DISK_SIZE:  # the disk does not fit the image's min_disk: the metadata is at fault
        return ImsBadRequest(f"The uploaded data was refused: {exc.reason}.", code=exc.code)
    if isinstance(exc, FormatMismatch):
        return ImsUnsupportedMediaType(f"Image disk_format {exc.declared} does not match stream data {exc.actual}.",
                                       code=exc.code)
    return ImsUnsupportedMediaType(f"Image failed safety checks: {exc.reason}.", code=exc.code)


async def _spool(stream: AsyncIterator[bytes], path: Path, limit: int, lease: UploadLease, kind: str) -> int:
    total = 0
    buffer = bytearray()
    received = metrics.UPLOADED_BYTES.labels(kind)
    with open(path, "wb") as f:
        async for chunk in stream:
            total += len(chunk)
            received.inc(len(chunk))
            if total > limit:
                raise ImsUploadTooLarge(f"The uploaded data exceeds the limit of {limit} bytes.")
            if lease.due():
                await anyio.to_thread.run_sync(lease.renew, limiter=transfer_limiter())
            buffer += chunk
            if len(buffer) >= SPOOL_BUFFER:
                data = bytes(buffer)
                buffer.clear()
                await anyio.to_thread.run_sync(f.write, data, limiter=transfer_limiter())
        if buffer:
            await anyio.to_thread.run_sync(f.write, bytes(buffer), limiter=transfer_limiter())
        await anyio.to_thread.run_sync(f.flush, limiter=transfer_limiter())
    return total


def _store(db: Database, staging: Staging, target: UploadTarget, spool: Path, limits: UploadLimits,
           clock: Clock, lease: UploadLease) -> None:
    try:
        with lease.heartbeat():
            try:
                # Stored verbatim, as Glance does: the client's own checksum of the file holds. A
                # stage is kept opaque (no formats): its import inspects it.
                stored = keep_image(spool, staging.path, disk_format="" if target.stage else target.disk_format,
                                    container_format="" if target.stage else target.container_format,
                                    min_disk_gb=target.min_disk or None,
                                    max_file_size=limits.max_file_size, timeout=limits.timeout, tee=staging.tee)
            except ImageRejected as exc:
                count_qemu_failure(exc)
                raise _refused(exc) from exc
            finally:
                spool.unlink(missing_ok=True)
            # The slow part of publishing (flushing the data, completing an S3 upload) outside the
            # transaction; the publish itself (a rename, or nothing) inside.
            staging.seal()
        with db.transaction() as s:
            if target.stage:
                uploads.finish_stage(s, target.image_id, target.holder, staging.publish, clock(), size=stored.size)
                return
            uploads.finish(s, target.image_id, target.holder, staging.publish, clock(), size=stored.size,
                           virtual_size=stored.virtual_size, disk_format=stored.disk_format,
                           checksum=stored.checksum, os_hash_value=stored.os_hash_value,
                           os_hash_algo=stored.os_hash_algo)
    except BaseException:
        staging.discard()
        raise


async def upload(db: Database, images: ImageStore, *, project_id: str, image_id: str,
                 stream: AsyncIterator[bytes], limits: UploadLimits, clock: Clock,
                 upload_id: str, stage: bool = False) -> None:
    """Receive, check and store an image's data; the image is active when this returns (a stage:
    ``uploading``, its data stored as it came)."""

    def start() -> UploadTarget:
        with db.transaction() as s:
            return uploads.begin(s, project_id, image_id, clock(), holder=upload_id,
                                 lease_seconds=limits.lease_seconds, stage=stage)

    def undo() -> ServiceError | None:
        # Temp files first: if we die in between, the lease is still there for the sweep to finish the job.
        images.clear_temp(upload_id)
        with db.transaction() as s:
            return uploads.restore(s, image_id, upload_id, clock())

    target = await anyio.to_thread.run_sync(start, limiter=transfer_limiter())
    lease = UploadLease(db, target, limits.lease_seconds, clock)
    # Named by this upload, so nothing of another attempt is touched; clear_temp removes both.
    staging = images.staging(upload_id, target.image_id)
    spool = images.temp_path(upload_id, target.image_id, ".upload")
    try:
        received = await _spool(stream, spool, limits.max_file_size, lease, "stage" if stage else "file")
        if limits.expected_size is not None and received != limits.expected_size:
            raise ImsBadRequest(f"The data is {received} bytes, not the {limits.expected_size} bytes that "
                                "X-Openstack-Image-Size announced.", code="IMG.0001")
        await anyio.to_thread.run_sync(_store, db, staging, target, spool, limits, clock, lease,
                                       limiter=transfer_limiter())
    except (ImsUploadGone, ImsUploadLeaseLost):
        raise  # the image is not ours any more: nothing to restore
    except BaseException as exc:
        # Shielded: a client that went away must not leave the image stuck in saving.
        with anyio.CancelScope(shield=True):
            lost = await anyio.to_thread.run_sync(undo, limiter=transfer_limiter())
        # A sweep that took the image also removed our temp files, so what failed next (a missing
        # file) is only a symptom.
        if lost is not None and isinstance(exc, Exception):
            raise lost from exc
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(images.clear_temp, upload_id, limiter=transfer_limiter())

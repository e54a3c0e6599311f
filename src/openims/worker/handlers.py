"""Job handlers by job type. Each knows how to run its job and how to undo it (``revert``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from openims.catalog import buckets, imports
from openims.catalog.imports import DiskTask, ImportPayload
from openims.catalog.jobs import JobStatus, JobType, fenced, finish
from openims.errors import ServiceError, ServiceUnavailable
from openims.imaging import (
    PROBE_HEAD,
    PROBE_TAIL,
    ImageFormat,
    ImageRejected,
    SparseWriter,
    StoredImage,
    format_from_extension,
    import_image,
    quick_import_stream,
)
from openims.objects.base import InvalidObjectName, ObjectNotFound, check_key
from openims.objects.image_store import Staging
from openims.objects.image_stores import is_local
from openims.worker.context import JobContext
from openims.worker.outcomes import JobFailed

log = logging.getLogger("openims.worker")


class Handler(Protocol):
    def run(self, ctx: JobContext) -> None: ...

    def revert(self, ctx: JobContext, session: Session) -> None: ...


@dataclass
class _Done:
    task: DiskTask
    stored: StoredImage
    staging: Staging


def scratch_needed(ctx: JobContext, domain_id: str, disks: Sequence[DiskTask]) -> int:
    """Scratch bytes the job's disks need at once: S3 objects are downloaded for qemu-img, and a
    conversion bound for an S3 image store is written locally first (about the file's size; estimated).

    Objects that cannot be read count nothing: the import itself then fails with the precise error.
    """
    rt = ctx.rt
    remote_store = not is_local(rt.images)
    if not rt.buckets.needs_local_copy and not remote_store:
        return 0
    total = 0
    with rt.db.session() as s:
        for task in disks:
            try:
                buckets.require_own(s, rt.buckets, domain_id, task.bucket)
                size = rt.buckets.stat(task.bucket, check_key(task.key)).size
            except (ServiceError, ObjectNotFound, InvalidObjectName):
                continue
            if rt.buckets.needs_local_copy:
                # A quick import streams: only its probe (head and tail) is local.
                total += min(size, PROBE_HEAD + PROBE_TAIL) if task.quick else size
            total += size if remote_store and not task.quick else 0
    return total


class ImportHandler:
    """imsImportImageJob / imsImportDataImageJob: every disk converted and stored, then all active at once."""

    def run(self, ctx: JobContext) -> None:
        payload = ImportPayload.from_json(ctx.job.payload)
        rt = ctx.rt
        rt.images.clear_temp(ctx.job.id)  # leftovers of an interrupted attempt
        with ctx.scratch(scratch_needed(ctx, payload.domain_id, payload.disks)) as scratch:
            with ctx.fenced() as (s, job):
                for task in payload.disks:
                    if imports.start_disk(s, task.image_id, rt.clock()) is None:
                        raise JobFailed("IMG.0144", f"image {task.image_id} was deleted while it was being created")
                imports.set_children(s, job, JobStatus.RUNNING, rt.clock())
            done: list[_Done] = []
            try:
                self._store_all(ctx, payload, scratch, done)
            except BaseException:
                for d in done:
                    d.staging.discard()
                raise

    def _store_all(self, ctx: JobContext, payload: ImportPayload, scratch: Path | None, done: list[_Done]) -> None:
        rt = ctx.rt
        total = len(payload.disks)
        for index, task in enumerate(payload.disks):
            started = time.monotonic()
            stored, staging = import_disk(ctx, payload.domain_id, task, index, total, scratch)
            done.append(_Done(task, stored, staging))
            staging.seal()
            log.info("job %s: %s:%s (%s, %d bytes) stored as %s in %.2f s (%s)", ctx.job.id, task.bucket,
                     task.key, stored.source_format or stored.disk_format, stored.size, stored.disk_format,
                     time.monotonic() - started, ", ".join(f"{k} {v:.2f} s" for k, v in stored.stages.items()))
        ctx.confirm_lease()  # publish nothing for a job another worker has taken over
        locations = [d.staging.publish() for d in done]
        # One transaction: every image active and the job SUCCESS, or nothing.
        with ctx.fenced() as (s, job):
            now = rt.clock()
            for d, location in zip(done, locations, strict=True):
                ok = imports.finish_disk(
                    s, d.task.image_id, location=location, size=d.stored.size,
                    virtual_size=d.stored.virtual_size, disk_format=d.stored.disk_format,
                    checksum=d.stored.checksum, sha512=d.stored.os_hash_value, now=now)
                if not ok:
                    raise JobFailed("IMG.0144", f"image {d.task.image_id} was deleted while it was being created")
            imports.set_children(s, job, JobStatus.SUCCESS, now)
            job.entities = {**job.entities, "process_percent": 100.0}
            finish(job, JobStatus.SUCCESS, now)
            ctx.count_imported(s, sum(d.stored.size for d in done))

    def revert(self, ctx: JobContext, session: Session) -> None:
        """Remove every image of the job, its stored data and temp files; fail the sub-jobs."""
        payload = ImportPayload.from_json(ctx.job.payload)
        ids = [t.image_id for t in payload.disks]
        imports.remove_images(session, ids)
        ctx.remove_data_after_commit(session, ids)
        code, reason = ctx.failure or ("IMG.0061", "unknown error")
        job = fenced(session, ctx.job.id, ctx.worker_id)
        # Every disk of the job fails with the cause: the images are created together or not at all.
        imports.set_children(session, job, JobStatus.FAIL, ctx.rt.clock(), error_code=code,
                             fail_reason=f"no image was created: {reason}")


def import_disk(ctx: JobContext, domain_id: str, task: DiskTask, index: int, total: int,
                scratch: Path | None) -> tuple[StoredImage, Staging]:
    """Disk ``index`` of ``total`` from the account's bucket into a checked staging of the image store.

    Shared by file imports and image registration. ``task.min_disk`` 0 means "no minimum disk
    given" (a registered image may have none): only the service-wide size limit applies then.
    ``scratch`` is the job's reserved directory, where an S3 object is downloaded for qemu-img.
    The staging is the caller's to seal and publish, or discard.
    """
    rt = ctx.rt
    url = f"{task.bucket}:{task.key}"
    which = "the data disk file" if task.data_disk and total > 1 else "the image file"
    staging = rt.images.staging(ctx.attempt_key, task.image_id)
    try:
        check_key(task.key)
        with rt.db.session() as s:
            buckets.require_own(s, rt.buckets, domain_id, task.bucket)
        info = rt.buckets.stat(task.bucket, task.key)
        limit = rt.settings.max_quick_import_size if task.quick else rt.settings.max_image_file_size
        if info.size > limit:
            raise JobFailed("IMG.0059", f"{which} {url} is {info.size} bytes, more than the {limit} "
                                        "bytes allowed")
        declared = format_from_extension(task.key)
        progress = lambda p: ctx.progress((index * 100 + p) / total)  # noqa: E731
        if task.quick:
            stored = _quick_import(ctx, task, staging, scratch, declared, limit, progress)
        else:
            with rt.buckets.local_copy(task.bucket, task.key, scratch) as src:
                stored = import_image(
                    src, staging.path, min_disk_gb=task.min_disk or None, declared=declared,
                    store_format=rt.settings.store_format, max_file_size=limit,
                    timeout=rt.settings.convert_timeout, progress=progress, tee=staging.tee,
                )
        if stored.source_format is ImageFormat.ISO and not task.data_disk and not task.has_os_version:
            raise JobFailed("IMG.0166", f"{which} {url} is an ISO file: give os_version when creating "
                                        "an image from an ISO file")
        return stored, staging
    except BaseException as exc:
        staging.discard()
        if isinstance(exc, InvalidObjectName):
            raise JobFailed("IMG.0057", f"{which} {url} is not a valid object name: {exc}") from exc
        if isinstance(exc, ServiceUnavailable):
            raise  # the database, not the file: the job is retried
        if isinstance(exc, ObjectNotFound | ServiceError):
            raise JobFailed("IMG.0057", f"{which} {url} does not exist or is not accessible") from exc
        if isinstance(exc, ImageRejected):
            raise JobFailed(exc.code, f"{which} {url} was refused: {exc.reason}") from exc
        raise


def _quick_import(ctx: JobContext, task: DiskTask, staging: Staging, scratch: Path | None,
                  declared: ImageFormat | None, limit: int, progress: Callable[[int], None]) -> StoredImage:
    """IMS fast import of raw: the object is read once, from its start to its end, straight into the store
    (hashed on the way); only a probe of its head and tail is kept locally for the inspection."""
    rt = ctx.rt
    with rt.buckets.streamed(task.bucket, task.key, scratch, PROBE_HEAD, PROBE_TAIL) as obj:
        if staging.tee is not None:
            return quick_import_stream(obj.probe, obj.stream, tee=staging.tee, declared=declared,
                                       max_file_size=limit, min_disk_gb=task.min_disk or None,
                                       timeout=rt.settings.convert_timeout, progress=progress)
        # A file store takes a (sparse) file.
        with SparseWriter(staging.path) as writer:
            return quick_import_stream(obj.probe, obj.stream, tee=writer.write, declared=declared,
                                       max_file_size=limit, min_disk_gb=task.min_disk or None,
                                       timeout=rt.settings.convert_timeout, progress=progress)


HANDLERS: dict[str, Handler] = {
    JobType.IMPORT_IMAGE.value: ImportHandler(),
    JobType.IMPORT_DATA_IMAGE.value: ImportHandler(),
}

"""Job handlers by job type. Each knows how to run its job and how to undo it (``revert``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from openims.catalog import buckets, imports
from openims.catalog.imports import DiskTask, ImportPayload
from openims.catalog.jobs import JobStatus, JobType, fenced, finish
from openims.errors import ServiceError, ServiceUnavailable
from openims.imaging import ImageFormat, ImageRejected, StoredImage, format_from_extension, import_image
from openims.objects.base import InvalidObjectName, ObjectNotFound, check_key
from openims.worker.context import JobContext

log = logging.getLogger("openims.worker")


class JobFailed(Exception):
    """The job cannot succeed; ``code`` and ``reason`` go to the job's error_code / fail_reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class Handler(Protocol):
    def run(self, ctx: JobContext) -> None: ...

    def revert(self, ctx: JobContext, session: Session) -> None: ...


@dataclass
class _Done:
    task: DiskTask
    stored: StoredImage
    location: str


class ImportHandler:
    """imsImportImageJob / imsImportDataImageJob: every disk converted and stored, then all active at once."""

    def run(self, ctx: JobContext) -> None:
        payload = ImportPayload.from_json(ctx.job.payload)
        rt = ctx.rt
        rt.images.clear_temp(ctx.job.id)  # leftovers of an interrupted attempt
        with ctx.fenced() as (s, job):
            for task in payload.disks:
                if imports.start_disk(s, task.image_id, rt.clock()) is None:
                    raise JobFailed("IMG.0144", f"image {task.image_id} was deleted while it was being created")
            imports.set_children(s, job, JobStatus.RUNNING, rt.clock())
        done: list[_Done] = []
        total = len(payload.disks)
        for index, task in enumerate(payload.disks):
            started = time.monotonic()
            stored = import_disk(ctx, payload.domain_id, task, index, total)
            location = rt.images.publish(stored.path, task.image_id)
            done.append(_Done(task, stored, location))
            log.info("job %s: %s:%s (%s, %d bytes) stored as %s in %.2f s (%s)", ctx.job.id, task.bucket,
                     task.key, stored.source_format.value, stored.size, stored.disk_format,
                     time.monotonic() - started, ", ".join(f"{k} {v:.2f} s" for k, v in stored.stages.items()))
        # One transaction: every image active and the job SUCCESS, or nothing.
        with ctx.fenced() as (s, job):
            now = rt.clock()
            for d in done:
                ok = imports.finish_disk(
                    s, d.task.image_id, location=d.location, size=d.stored.size,
                    virtual_size=d.stored.virtual_size, disk_format=d.stored.disk_format,
                    checksum=d.stored.checksum, sha512=d.stored.os_hash_value, now=now)
                if not ok:
                    raise JobFailed("IMG.0144", f"image {d.task.image_id} was deleted while it was being created")
            imports.set_children(s, job, JobStatus.SUCCESS, now)
            job.entities = {**job.entities, "process_percent": 100.0}
            finish(job, JobStatus.SUCCESS, now)

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


def import_disk(ctx: JobContext, domain_id: str, task: DiskTask, index: int, total: int) -> StoredImage:
    """Disk ``index`` of ``total`` from the account's bucket into a checked temp file of the store.

    Shared by file imports and image registration. ``task.min_disk`` 0 means "no minimum disk
    given" (a registered image may have none): only the service-wide size limit applies then.
    """
    rt = ctx.rt
    url = f"{task.bucket}:{task.key}"
    which = "the data disk file" if task.data_disk and total > 1 else "the image file"
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
        temp = rt.images.temp_path(ctx.job.id, task.image_id)
        with rt.buckets.local_copy(task.bucket, task.key) as src:
            stored = import_image(
                src, temp, min_disk_gb=task.min_disk or None, declared=declared,
                store_format="raw" if task.quick else rt.settings.store_format, quick=task.quick,
                max_file_size=limit, timeout=rt.settings.convert_timeout,
                progress=lambda p: ctx.progress((index * 100 + p) / total),
            )
        if stored.source_format is ImageFormat.ISO and not task.data_disk and not task.has_os_version:
            stored.path.unlink(missing_ok=True)
            raise JobFailed("IMG.0166", f"{which} {url} is an ISO file: give os_version when creating "
                                        "an image from an ISO file")
        return stored
    except InvalidObjectName as exc:
        raise JobFailed("IMG.0057", f"{which} {url} is not a valid object name: {exc}") from exc
    except ServiceUnavailable:
        raise  # the database, not the file: the job is retried
    except (ObjectNotFound, ServiceError) as exc:
        raise JobFailed("IMG.0057", f"{which} {url} does not exist or is not accessible") from exc
    except ImageRejected as exc:
        raise JobFailed(exc.code, f"{which} {url} was refused: {exc.reason}") from exc


HANDLERS: dict[str, Handler] = {
    JobType.IMPORT_IMAGE.value: ImportHandler(),
    JobType.IMPORT_DATA_IMAGE.value: ImportHandler(),
}

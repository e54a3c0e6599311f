"""Handlers for registration, export and in-region copy jobs (``catalog.lifecycle`` submits them)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sqlalchemy.orm import Session

from openims import metrics
from openims.catalog import buckets, imports
from openims.catalog.images import ImageStatus, transition
from openims.catalog.imports import DiskTask
from openims.catalog.jobs import JobStatus, JobType, finish
from openims.catalog.lifecycle import CopyPayload, ExportPayload
from openims.db.models import Image
from openims.errors import ServiceError, ServiceUnavailable
from openims.imaging import ImageFormat, ImageRejected, StoredImage
from openims.imaging.qemu import INFO_TIMEOUT, ExportFormat, qemu_img_export, qemu_img_info, qemu_img_same_disk
from openims.objects.base import InvalidObjectName, ObjectExists, ObjectNotFound, check_key
from openims.objects.image_store import Staging
from openims.objects.image_stores import is_local
from openims.runtime import Runtime
from openims.worker.context import JobContext
from openims.worker.handlers import Handler, import_disk, scratch_needed
from openims.worker.outcomes import JobFailed

log = logging.getLogger("openims.worker")

_DELETED = "the image was deleted while the job was running"


class RegisterHandler:
    """imsNativeImportImageJob: a queued image's data from ``bucket:file``, through the import pipeline.

    The image row belongs to the user (native ``POST /v2/images``), so a failure gives it back as
    ``queued`` — registration or upload can be tried again — instead of removing it as imports do.
    """

    def run(self, ctx: JobContext) -> None:
        payload = imports.ImportPayload.from_json(ctx.job.payload)
        declared = payload.declared_format
        task = payload.disks[0]
        rt = ctx.rt
        rt.images.clear_temp(ctx.job.id)  # leftovers of an interrupted attempt
        with ctx.scratch(scratch_needed(ctx, payload.domain_id, [task])) as scratch:
            with ctx.fenced() as (s, _job):
                if imports.start_disk(s, task.image_id, rt.clock()) is None:
                    raise JobFailed("IMG.0144", _DELETED)
            started = time.monotonic()
            stored, staging = import_disk(ctx, payload.domain_id, task, 0, 1, scratch)
            try:
                self._record(ctx, task, declared, stored, staging)
            except BaseException:
                staging.discard()
                raise
        log.info("job %s: registered %s:%s as image %s in %.2f s", ctx.job.id, task.bucket, task.key,
                 task.image_id, time.monotonic() - started)

    def _record(self, ctx: JobContext, task: DiskTask, declared: str | None, stored: StoredImage,
                staging: Staging) -> None:
        rt = ctx.rt
        known = {f.value for f in ImageFormat}
        found = stored.source_format or stored.disk_format
        if declared in known and declared != found:
            raise JobFailed("IMG.0057", f"the image file {task.bucket}:{task.key} is {found}, "
                                        f"but the image's disk_format is {declared}")
        staging.seal()
        ctx.confirm_lease()
        location = staging.publish()
        with ctx.fenced() as (s, job):
            now = rt.clock()
            if not imports.finish_disk(s, task.image_id, location=location, size=stored.size,
                                       virtual_size=stored.virtual_size, disk_format=stored.disk_format,
                                       checksum=stored.checksum, sha512=stored.os_hash_value, now=now):
                raise JobFailed("IMG.0144", _DELETED)
            image = s.get(Image, task.image_id)
            assert image is not None
            image.properties = {**image.properties, "__isregistered": "true", "__image_source_type": "uds",
                                "__data_origin": f"file,{task.bucket}:{task.key}"}
            job.entities = {**job.entities, "process_percent": 100.0}
            finish(job, JobStatus.SUCCESS, now)
            ctx.count_imported(s, stored.size)

    def revert(self, ctx: JobContext, session: Session) -> None:
        task = imports.ImportPayload.from_json(ctx.job.payload).disks[0]
        image = session.get(Image, task.image_id)
        if image is not None and image.status == ImageStatus.SAVING.value:
            transition(image, ImageStatus.QUEUED, ctx.rt.clock())
        if image is None or image.location is None:
            # Data published by this job before it failed; a queued image has none of its own.
            ctx.remove_data_after_commit(session, [task.image_id])
        else:
            ctx.remove_data_after_commit(session, [])


def _export_scratch(rt: Runtime, p: ExportPayload) -> int:
    """Scratch for an export: the stored image downloaded (S3 store) and the exported file (estimated at
    the stored size plus format overhead) when the bucket is on S3 too."""
    if is_local(rt.images, p.location):
        return 0
    try:
        return rt.images.size(p.location)
    except FileNotFoundError:
        return 0  # the export then reports the image gone


def _exists(rt: Runtime, bucket: str, key: str) -> bool:
    try:
        rt.buckets.stat(bucket, key)
    except ObjectNotFound:
        return False
    return True


def _same_disk(rt: Runtime, bucket: str, key: str, path: Path, fmt: str) -> bool:
    """Whether the object holds the same disk as ``path`` (checked only on a retried export)."""
    try:
        # An S3 object is fetched beside the export's own temp file (the job's scratch is released by then).
        with rt.buckets.local_copy(bucket, key, path.parent) as existing:
            return qemu_img_same_disk(existing, path, fmt, timeout=rt.settings.convert_timeout)
    except (ObjectNotFound, ImageRejected, OSError):
        return False


class ExportHandler:
    """imsNativeExportImageJob: convert the stored image with qemu-img and publish it into the bucket."""

    def run(self, ctx: JobContext) -> None:
        p = ExportPayload.from_json(ctx.job.payload)
        rt = ctx.rt
        url = f"{p.bucket}:{p.key}"
        rt.images.clear_temp(ctx.job.id)
        try:
            check_key(p.key)
            with rt.db.session() as s:
                buckets.require_own(s, rt.buckets, p.domain_id, p.bucket)
                image = s.get(Image, p.image_id)
                if image is None or image.location != p.location:
                    raise JobFailed("IMG.0144", _DELETED)
        except ServiceUnavailable:
            raise  # the database, not the bucket: the job is retried
        except (ServiceError, InvalidObjectName) as exc:
            raise JobFailed("IMG.0069", f"the bucket {p.bucket} does not exist or cannot be accessed") from exc
        # A retried job may find the file its previous attempt published just before dying: it is
        # compared after converting, below, rather than refused here.
        retry = ctx.job.attempts > 1
        if not retry and _exists(rt, p.bucket, p.key):
            raise JobFailed("IMG.0070", f"the file {url} already exists; export to a new file name")
        temp = rt.images.temp_path(ctx.attempt_key, p.image_id)
        fmt: ExportFormat = p.file_format  # type: ignore[assignment]  # checked at submission
        started = time.monotonic()
        with ctx.scratch(_export_scratch(rt, p)) as scratch:
            try:
                with rt.images.local_path(p.location, scratch or temp.parent) as stored:
                    qemu_img_export(
                        stored, ImageFormat(p.source_format), temp, fmt,
                        timeout=rt.settings.convert_timeout, progress=lambda pct: ctx.progress(pct * 0.95),
                        # The disk plus room for the format's metadata: more would be a bug, not an image.
                        max_output_size=p.virtual_size + p.virtual_size // 8 + (64 << 20))
                info = qemu_img_info(temp, ImageFormat(fmt), timeout=INFO_TIMEOUT)
            except FileNotFoundError as exc:
                temp.unlink(missing_ok=True)
                raise JobFailed("IMG.0144", _DELETED) from exc
            except ImageRejected as exc:
                temp.unlink(missing_ok=True)
                if not rt.images.exists(p.location):
                    raise JobFailed("IMG.0144", _DELETED) from exc
                raise JobFailed("IMG.0061", f"the image could not be converted to {fmt}: {exc.reason}") from exc
        if info.get("virtual-size") != p.virtual_size:
            temp.unlink(missing_ok=True)
            raise JobFailed("IMG.0061", f"the exported {fmt} file does not hold the image's disk "
                                        f"({info.get('virtual-size')} bytes instead of {p.virtual_size})")
        ctx.confirm_lease()  # do not publish for a job another worker has taken over
        try:
            # Compared before publishing: the publish consumes the temp file, even when it finds the key taken.
            published_before = retry and _exists(rt, p.bucket, p.key)
            if published_before:
                same = _same_disk(rt, p.bucket, p.key, temp, fmt)
                temp.unlink(missing_ok=True)
                if not same:
                    raise JobFailed("IMG.0070", f"the file {url} already exists; export to a new file name")
                # The previous attempt published this disk, then died before recording success.
                obj = rt.buckets.stat(p.bucket, p.key)
            else:
                obj = rt.buckets.put_file(p.bucket, p.key, temp)
        except ObjectExists as exc:
            temp.unlink(missing_ok=True)
            raise JobFailed("IMG.0070", f"the file {url} already exists; export to a new file name") from exc
        except ObjectNotFound as exc:
            raise JobFailed("IMG.0069", f"the bucket {p.bucket} does not exist or cannot be accessed") from exc
        with ctx.fenced() as (_s, job):
            job.entities = {**job.entities, "process_percent": 100.0}
            finish(job, JobStatus.SUCCESS, rt.clock())
        metrics.EXPORTED_BYTES.inc(obj.size)
        log.info("job %s: exported image %s as %s (%s, %d bytes) in %.2f s", ctx.job.id, p.image_id, url, fmt,
                 obj.size, time.monotonic() - started)

    def revert(self, ctx: JobContext, session: Session) -> None:
        ctx.rt.images.clear_temp(ctx.job.id)


class CopyHandler:
    """imsCopyImageInRegionJob: the source's stored data copied (reflinked where possible) for the new image."""

    def run(self, ctx: JobContext) -> None:
        p = CopyPayload.from_json(ctx.job.payload)
        rt = ctx.rt
        rt.images.clear_temp(ctx.job.id)
        with ctx.fenced() as (s, _job):
            if imports.start_disk(s, p.image_id, rt.clock()) is None:
                raise JobFailed("IMG.0144", _DELETED)
            source = s.get(Image, p.source_image_id)
            if source is None or source.location is None or source.status != ImageStatus.ACTIVE.value:
                raise JobFailed("IMG.0144", f"the source image {p.source_image_id} was deleted")
            s.expunge(source)
        ctx.progress(5)
        try:
            staging = rt.images.copy_staging(source.location, ctx.attempt_key, p.image_id)
        except FileNotFoundError as exc:
            raise JobFailed("IMG.0144", f"the source image {p.source_image_id} was deleted") from exc
        try:
            self._record(ctx, p, source, staging)
        except BaseException:
            staging.discard()
            raise

    def _record(self, ctx: JobContext, p: CopyPayload, source: Image, staging: Staging) -> None:
        rt = ctx.rt
        copied = staging.stored_size()
        if copied != source.size:
            raise JobFailed("IMG.0061", f"the copy has {copied} bytes, the source image {source.size}")
        ctx.progress(90)
        staging.seal()
        ctx.confirm_lease()
        location = staging.publish()
        with ctx.fenced() as (s, job):
            now = rt.clock()
            # Same bytes, so the source's checksums hold for the copy.
            ok = imports.finish_disk(s, p.image_id, location=location, size=copied,
                                     virtual_size=source.virtual_size or 0, disk_format=source.disk_format or "raw",
                                     checksum=source.checksum or "", sha512=source.os_hash_value or "", now=now)
            if not ok:
                raise JobFailed("IMG.0144", _DELETED)
            job.entities = {**job.entities, "process_percent": 100.0}
            finish(job, JobStatus.SUCCESS, now)

    def revert(self, ctx: JobContext, session: Session) -> None:
        """The new image and any data published for it go; the source is never touched."""
        p = CopyPayload.from_json(ctx.job.payload)
        imports.remove_images(session, [p.image_id])
        ctx.remove_data_after_commit(session, [p.image_id])


HANDLERS: dict[str, Handler] = {
    JobType.NATIVE_IMPORT_IMAGE.value: RegisterHandler(),
    JobType.NATIVE_EXPORT_IMAGE.value: ExportHandler(),
    JobType.COPY_IMAGE_IN_REGION.value: CopyHandler(),
}

"""The handler of Glance's interoperable import (``catalog.glance_import`` submits it)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from openims.catalog import glance_import
from openims.catalog.glance_import import ImportPayload
from openims.catalog.images import record_data
from openims.catalog.jobs import JobStatus, JobType, finish
from openims.db.session import after_commit
from openims.imaging import INSPECTABLE, ImageFormat, ImageRejected, StoredImage, import_image, keep_image
from openims.objects import web_download
from openims.objects.image_store import FileImageStore, Staging
from openims.worker.context import JobContext
from openims.worker.handlers import Handler
from openims.worker.outcomes import JobFailed

log = logging.getLogger("openims.worker")

_GONE = "the image was deleted, or its import was cancelled, while the import was running"


@dataclass(frozen=True)
class _Staged:
    location: str
    size: int
    disk_format: str
    container_format: str
    min_disk: int


class GlanceImportHandler:
    """glance-direct / web-download: the staged or downloaded data inspected as every import is,
    stored, and the image made active.

    The staged data is the image's own (Glance keeps it in a staging store): a failure gives the
    image back as ``queued`` without data, as Glance's revert does.
    """

    def run(self, ctx: JobContext) -> None:
        payload = ImportPayload.from_json(ctx.job.payload)
        rt = ctx.rt
        rt.images.clear_temp(ctx.job.id)  # leftovers of an interrupted attempt
        web = payload.method == glance_import.WEB_DOWNLOAD
        with ctx.fenced() as (s, _job):
            image = glance_import.held_by(s, payload.image_id, ctx.job.id)
            if image is None or (not web and (image.location is None or image.size is None)):
                raise JobFailed("IMG.0144", _GONE)
            staged = _Staged(image.location or "", image.size or 0, image.disk_format or "",
                             image.container_format or "", image.min_disk)
        # An S3 store: the staged object is downloaded for qemu-img, and the result written locally first.
        need = 0 if isinstance(rt.images, FileImageStore) else (1 if web else 2) * staged.size
        started = time.monotonic()
        with ctx.scratch(need) as scratch:
            staging = rt.images.staging(ctx.attempt_key, payload.image_id)
            try:
                with self._source(ctx, payload, staged, scratch) as src:
                    stored = self._store(ctx, src, staging, staged)
                staging.seal()
                self._record(ctx, payload, stored, staging)
            except BaseException:
                staging.discard()
                raise
            finally:
                rt.images.clear_temp(ctx.job.id)
        log.info("job %s: imported image %s by %s (%s, %d bytes) in %.2f s", ctx.job.id, payload.image_id,
                 payload.method, stored.disk_format, stored.size, time.monotonic() - started)

    @contextmanager
    def _source(self, ctx: JobContext, payload: ImportPayload, staged: _Staged,
                scratch: Path | None) -> Iterator[Path]:
        """A local path to the data to import: the staged data, or web-download's file fetched now."""
        rt = ctx.rt
        temp = rt.images.temp_path(ctx.job.id, payload.image_id, ".download")
        if payload.method != glance_import.WEB_DOWNLOAD:
            # Without scratch (a file store) the data is read where it is stored.
            with rt.images.local_path(staged.location, scratch or temp.parent) as src:
                yield src
            return
        uri = str(payload.import_req["method"]["uri"])
        try:
            # Progress is unknown until the end; reporting 0 still stops the download on a lost lease.
            web_download.download(uri, temp, web_download.UriFilter.from_settings(rt.settings),
                                  max_size=rt.settings.max_image_file_size, timeout=rt.settings.web_download_timeout,
                                  progress=lambda _n: ctx.progress(0))
        except web_download.RefusedUri as exc:
            raise JobFailed("IMG.0057", f"web-download of {uri[:256]} was refused: {exc}") from exc
        except web_download.DownloadFailed as exc:
            raise JobFailed("IMG.0057", f"web-download of {uri[:256]} failed: {exc}") from exc
        yield temp

    def _store(self, ctx: JobContext, src: Path, staging: Staging, staged: _Staged) -> StoredImage:
        rt = ctx.rt
        convert_to = rt.settings.import_convert_to
        try:
            if convert_to and staged.container_format == "bare" and staged.disk_format in INSPECTABLE:
                declared = None if staged.disk_format == ImageFormat.RAW.value else ImageFormat(staged.disk_format)
                return import_image(src, staging.path, min_disk_gb=staged.min_disk or None, declared=declared,
                                    store_format=convert_to, max_file_size=rt.settings.max_image_file_size,
                                    timeout=rt.settings.convert_timeout, progress=ctx.progress, tee=staging.tee)
            return keep_image(src, staging.path, disk_format=staged.disk_format,
                              container_format=staged.container_format, min_disk_gb=staged.min_disk or None,
                              max_file_size=rt.settings.max_image_file_size, timeout=rt.settings.convert_timeout,
                              progress=ctx.progress, tee=staging.tee)
        except ImageRejected as exc:
            raise JobFailed(exc.code, f"the staged data was refused: {exc.reason}") from exc

    def _record(self, ctx: JobContext, payload: ImportPayload, stored: StoredImage, staging: Staging) -> None:
        ctx.confirm_lease()
        with ctx.fenced() as (s, job):
            now = ctx.rt.clock()
            image = glance_import.held_by(s, payload.image_id, ctx.job.id)
            if image is None:
                raise JobFailed("IMG.0144", _GONE)
            # Under the row lock: the data replaces the staged data only while the import holds the image.
            staged_at = image.location
            location = staging.publish()
            record_data(image, location=location, size=stored.size, virtual_size=stored.virtual_size,
                        disk_format=stored.disk_format, checksum=stored.checksum,
                        os_hash_value=stored.os_hash_value)
            if staged_at is not None and staged_at != location:
                # A store that keeps each staging apart (S3): the staged object goes once this commits.
                after_commit(s, lambda: ctx.rt.images.delete(staged_at))
            glance_import.release(image, now, failed=False)
            job.entities = {**job.entities, "process_percent": 100.0}
            finish(job, JobStatus.SUCCESS, now)

    def revert(self, ctx: JobContext, session: Session) -> None:
        payload = ImportPayload.from_json(ctx.job.payload)
        image = glance_import.held_by(session, payload.image_id, ctx.job.id)
        if image is not None:
            glance_import.release(image, ctx.rt.clock(), failed=True)
            ctx.remove_data_after_commit(session, [payload.image_id])
        else:
            ctx.remove_data_after_commit(session, [])


HANDLERS: dict[str, Handler] = {JobType.GLANCE_IMPORT.value: GlanceImportHandler()}

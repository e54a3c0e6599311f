"""The handler of Glance's interoperable import and of copy-image (``catalog.glance_import`` submits both).

One job: the import into the first of the job's stores (glance-direct, web-download), then a copy
into each other store still to do (an import into several stores, copy-image). Which step is next is
read from the database, so an attempt that takes over after a crash goes on where the last one was:
an import whose checksums are recorded is done; the stores still to do are the job's stores that
neither hold the data (``catalog.stores``) nor failed.

A copy streams the image's stored bytes from a store holding them into a ``Staging`` of the target
(the engine copies instead when both are buckets of the one S3 engine), compares size and checksums
with the image's, seals, and publishes under the image's row lock, only while the lease and the
image's import lock are still this job's: an interrupted copy leaves no location, at most an object
no row points to, which the orphan sweep removes.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from openims.catalog import glance_import
from openims.catalog.glance_import import ImportPayload
from openims.catalog.images import ImageStatus, record_data
from openims.catalog.jobs import JobStatus, JobType, finish
from openims.catalog.stores import add_copy, copies_of, held_by, locations_of
from openims.db.models import Image, Job
from openims.db.session import after_commit
from openims.imaging import INSPECTABLE, ImageFormat, ImageRejected, StoredImage, import_image, keep_image
from openims.objects import web_download
from openims.objects.base import ObjectNotFound
from openims.objects.image_store import ImageStore, Staging
from openims.objects.image_stores import CopiedData, ImageStores, is_local
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


@dataclass(frozen=True)
class _Source:
    """Where a copy reads the image's data, and what the copy must come out as."""

    location: str
    size: int
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None


class _StoreFailed(Exception):
    """One store could not take its copy (the others may)."""


class GlanceImportHandler:
    """glance-direct / web-download: the staged or downloaded data inspected as every import is,
    stored, and the image made active; copy-image and the further stores of an import: copies.

    The staged data is the image's own (Glance keeps it in a staging store): a failed import gives the
    image back as ``queued`` without data, as Glance's revert does. A failed copy-image leaves the
    image active with the copies it made.
    """

    def run(self, ctx: JobContext) -> None:
        payload = ImportPayload.from_json(ctx.job.payload)
        ctx.rt.images.clear_temp(ctx.job.id)  # leftovers of an interrupted attempt
        with ctx.fenced() as (s, _job):
            image = glance_import.held(s, payload.image_id, ctx.job.id)
            copying = payload.method == glance_import.COPY_IMAGE
            if image is None or (not copying and image.status != ImageStatus.IMPORTING.value):
                raise JobFailed("IMG.0144", _GONE)
            to_import = not copying and not glance_import.imported(image)
            web = payload.method == glance_import.WEB_DOWNLOAD
            if to_import and not web and (image.location is None or image.size is None):
                raise JobFailed("IMG.0144", _GONE)
            staged = _Staged(image.location or "", image.size or 0, image.disk_format or "",
                             image.container_format or "", image.min_disk)
        if to_import and self._import(ctx, payload, staged):
            return
        self._copies(ctx, payload)

    # ------------------------------------------------------------ the import

    def _import(self, ctx: JobContext, payload: ImportPayload, staged: _Staged) -> bool:
        """The data imported into the job's first store (the default with one store); True when the job is done."""
        rt = ctx.rt
        web = payload.method == glance_import.WEB_DOWNLOAD
        target: ImageStore = rt.images
        if rt.stores is not None and payload.stores:
            target = rt.stores.store(payload.stores[0])
        # An S3 store: the staged object is downloaded for qemu-img, and the result written locally first.
        local = is_local(target) and (web or is_local(rt.images, staged.location))
        need = 0 if local else (1 if web else 2) * staged.size
        started = time.monotonic()
        share = 1 / max(1, len(payload.stores))  # of the job's progress: each store gets its part
        with ctx.scratch(need) as scratch:
            staging = target.staging(ctx.attempt_key, payload.image_id)
            try:
                with self._source(ctx, payload, staged, scratch) as src:
                    stored = self._store(ctx, src, staging, staged, lambda p: ctx.progress(p * share))
                staging.seal()
                done = self._record(ctx, payload, stored, staging)
            except BaseException:
                staging.discard()
                raise
            finally:
                rt.images.clear_temp(ctx.job.id)
        log.info("job %s: imported image %s by %s (%s, %d bytes) in %.2f s", ctx.job.id, payload.image_id,
                 payload.method, stored.disk_format, stored.size, time.monotonic() - started)
        return done

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

    def _store(self, ctx: JobContext, src: Path, staging: Staging, staged: _Staged,
               progress: Callable[[float], None]) -> StoredImage:
        rt = ctx.rt
        convert_to = rt.settings.import_convert_to
        try:
            if convert_to and staged.container_format == "bare" and staged.disk_format in INSPECTABLE:
                declared = None if staged.disk_format == ImageFormat.RAW.value else ImageFormat(staged.disk_format)
                return import_image(src, staging.path, min_disk_gb=staged.min_disk or None, declared=declared,
                                    store_format=convert_to, max_file_size=rt.settings.max_image_file_size,
                                    timeout=rt.settings.convert_timeout, progress=progress, tee=staging.tee)
            return keep_image(src, staging.path, disk_format=staged.disk_format,
                              container_format=staged.container_format, min_disk_gb=staged.min_disk or None,
                              max_file_size=rt.settings.max_image_file_size, timeout=rt.settings.convert_timeout,
                              progress=progress, tee=staging.tee)
        except ImageRejected as exc:
            raise JobFailed(exc.code, f"the staged data was refused: {exc.reason}") from exc

    def _record(self, ctx: JobContext, payload: ImportPayload, stored: StoredImage, staging: Staging) -> bool:
        """The imported data becomes the image's; with no further store the image is active and the job done."""
        ctx.confirm_lease()
        with ctx.fenced() as (s, job):
            now = ctx.rt.clock()
            image = glance_import.held(s, payload.image_id, ctx.job.id)
            if image is None or image.status != ImageStatus.IMPORTING.value:
                raise JobFailed("IMG.0144", _GONE)
            # Under the row lock: the data replaces the staged data only while the import holds the image.
            staged_at = image.location
            location = staging.publish()
            record_data(image, location=location, size=stored.size, virtual_size=stored.virtual_size,
                        disk_format=stored.disk_format, checksum=stored.checksum,
                        os_hash_value=stored.os_hash_value)
            ctx.count_imported(s, stored.size)
            if staged_at is not None and staged_at != location:
                # A store that keeps each staging apart (S3), or another store: the staged data goes once
                # this commits.
                after_commit(s, lambda: ctx.rt.images.delete(staged_at))
            if payload.stores[1:]:
                glance_import.show_pending(image, payload.stores[1:])
                return False
            self._finish(s, job, image, payload, now)
            return True

    # ------------------------------------------------------------ copies into further stores

    def _copies(self, ctx: JobContext, payload: ImportPayload) -> None:
        """A copy into each store still to do, one at a time; then the job ends."""
        stores = ctx.rt.stores
        total = max(1, len(payload.stores))
        while True:
            with ctx.fenced() as (s, job):
                image = glance_import.held(s, payload.image_id, ctx.job.id)
                if image is None:
                    raise JobFailed("IMG.0144", _GONE)
                copies = copies_of(s, [image.id])[image.id]
                held = held_by(stores, image, copies) if stores is not None else []
                todo = glance_import.pending(image, payload, held)
                if not todo or stores is None:
                    self._finish(s, job, image, payload, ctx.rt.clock())
                    return
                glance_import.show_pending(image, todo)
                source = _Source(_source_for(stores, locations_of(image, copies), todo[0]), image.size or 0,
                                 image.checksum, image.os_hash_algo, image.os_hash_value)
            store_id, done = todo[0], total - len(todo)
            try:
                self._copy(ctx, payload, stores, store_id, source, todo[1:], functools.partial(
                    _progress, ctx, done=done, total=total, size=source.size))
            except _StoreFailed as exc:
                log.warning("job %s: image %s could not be copied to store %s: %s", ctx.job.id, payload.image_id,
                            store_id, exc)
                with ctx.fenced() as (s, _job):
                    image = glance_import.held(s, payload.image_id, ctx.job.id)
                    if image is None:
                        raise JobFailed("IMG.0144", _GONE) from exc
                    glance_import.store_failed(image, store_id, todo[1:])
                if payload.all_stores_must_succeed:
                    raise JobFailed("IMG.0061", f"the image data could not be copied to store {store_id}: {exc}; "
                                                "all_stores_must_succeed") from exc

    def _copy(self, ctx: JobContext, payload: ImportPayload, stores: ImageStores, store_id: str, source: _Source,
              still: list[str], progress: Callable[[int], None]) -> None:
        started = time.monotonic()
        try:
            staging, copied = stores.copy_into(source.location, store_id, ctx.attempt_key, payload.image_id,
                                               progress=progress)
        except (OSError, ObjectNotFound) as exc:
            raise _StoreFailed(str(exc) or type(exc).__name__) from exc
        try:
            _check(copied, source)
            try:
                staging.seal()
            except OSError as exc:
                raise _StoreFailed(str(exc)) from exc
            ctx.confirm_lease()  # publish nothing for a job another worker has taken over
            with ctx.fenced() as (s, _job):
                image = glance_import.held(s, payload.image_id, ctx.job.id)
                if image is None or image.checksum != source.checksum:
                    raise JobFailed("IMG.0144", _GONE)
                # Under the row lock, while this job holds the image: the copy becomes one of its locations.
                add_copy(s, image, store_id, staging.publish(), ctx.rt.clock())
                glance_import.show_pending(image, still)
        except BaseException:
            staging.discard()
            raise
        log.info("job %s: image %s copied to store %s %s (%d bytes) in %.2f s", ctx.job.id, payload.image_id,
                 store_id, "by the engine" if copied.md5 is None else "streamed, checksums verified", copied.size,
                 time.monotonic() - started)

    def _finish(self, s: Session, job: Job, image: Image, payload: ImportPayload, now: dt.datetime) -> None:
        glance_import.release(s, image, payload.method, now, failed=False)
        job.entities = {**job.entities, "process_percent": 100.0}
        finish(job, JobStatus.SUCCESS, now)

    def revert(self, ctx: JobContext, session: Session) -> None:
        payload = ImportPayload.from_json(ctx.job.payload)
        image = glance_import.held(session, payload.image_id, ctx.job.id)
        if image is None:
            ctx.remove_data_after_commit(session, [])
            return
        copying = payload.method == glance_import.COPY_IMAGE
        # The stores that did not get the data are failed ones (Glance lists them in os_glance_failed_import):
        # for a copy-image those still to do, for an import all of them (its data goes from every store).
        stores = ctx.rt.stores
        held = held_by(stores, image, copies_of(session, [image.id])[image.id]) if copying and stores else []
        for store_id in glance_import.pending(image, payload, held):
            glance_import.store_failed(image, store_id, [])
        glance_import.release(session, image, payload.method, ctx.rt.clock(), failed=True)
        # A copy-image leaves the image its data and the copies made; only this job's temp files go.
        ctx.remove_data_after_commit(session, [] if copying else [payload.image_id])


def _progress(ctx: JobContext, copied: int, *, done: int, total: int, size: int) -> None:
    """The job's progress while ``copied`` bytes of a copy are made, ``done`` of ``total`` stores done."""
    ctx.progress((done + copied / max(1, size)) * 100 / total)


def _source_for(stores: ImageStores, locations: list[str], target: str) -> str:
    """The copy to read for ``target``: for an S3 target, one in S3 (the engine copies it); else the
    default store's copy, else any."""
    candidates = stores.preferred(locations)
    if not candidates:
        raise JobFailed("IMG.0144", "the image has no stored data to copy")
    if not is_local(stores.store(target)):
        candidates.sort(key=lambda location: is_local(stores, location))
    return candidates[0]


def _check(copied: CopiedData, source: _Source) -> None:
    """The copy must be the image's data: its size, and its checksums when it went through this process."""
    if copied.size != source.size:
        raise _StoreFailed(f"the copy has {copied.size} bytes, the image {source.size}")
    if copied.md5 is not None and source.checksum and copied.md5 != source.checksum:
        raise _StoreFailed("the copy's md5 does not match the image's checksum")
    if (copied.sha512 is not None and source.os_hash_algo == "sha512" and source.os_hash_value
            and copied.sha512 != source.os_hash_value):
        raise _StoreFailed("the copy's sha512 does not match the image's os_hash_value")


HANDLERS: dict[str, Handler] = {JobType.GLANCE_IMPORT.value: GlanceImportHandler()}

"""Import one uploaded image file: inspect, size-check, convert, checksum."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from openims.durable import fsync_path
from openims.imaging.checksums import copy_with_digests, digest_file, digest_stream
from openims.imaging.errors import (
    IMG_DISK_SIZE,
    IMG_FORMAT,
    IMG_TOO_LARGE,
    IMG_UNSUPPORTED,
    ConversionFailed,
    ImageRejected,
)
from openims.imaging.formats import ImageFormat
from openims.imaging.inspect import Inspection, inspect_image
from openims.imaging.qemu import INFO_TIMEOUT, STORE_FORMATS, StoreFormat, qemu_img_convert, qemu_img_info
from openims.units import GiB, human_size

# Beyond this no image is accepted even without min_disk: converting to raw
# and hashing a bigger (mostly empty) disk would tie up a worker for hours.
DEFAULT_MAX_VIRTUAL_SIZE = 2048 * GiB

# The disk formats qemu-img reads, so an image in one is inspected (and can be converted).
INSPECTABLE = frozenset(f.value for f in ImageFormat)

# Share of the 0-100 progress scale that each stage ends at.
_INSPECTED = 5
_CONVERTED = 80


@dataclass(frozen=True, kw_only=True)
class StoredImage:
    # The image file; None when it was only streamed to ``tee`` (quick import into a remote store).
    path: Path | None
    size: int
    # None: a format nothing here can read (stored opaque, as its metadata says).
    virtual_size: int | None
    source_format: ImageFormat | None
    disk_format: str
    checksum: str
    os_hash_algo: str = "sha512"
    os_hash_value: str
    # Seconds spent per stage (inspect, convert, verify, checksum, fsync, copy), for the logs:
    # where an import's time went. fsync overlaps checksum.
    stages: dict[str, float] = field(default_factory=dict)


class _Stages(dict[str, float]):
    """Wall time per pipeline stage."""

    def __init__(self) -> None:
        super().__init__()
        self._mark = time.monotonic()

    def lap(self, stage: str) -> None:
        now = time.monotonic()
        self[stage] = round(now - self._mark, 3)
        self._mark = now


class _Progress:
    """Turns stage fractions into whole, never-decreasing percentages."""

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self._callback = callback
        self._last = -1

    def __call__(self, percent: float) -> None:
        value = min(100, max(0, int(percent)))
        if self._callback is not None and value > self._last:
            self._last = value
            self._callback(value)

    def span(self, start: int, end: int, total: float) -> Callable[[float], None]:
        """A callback mapping 0..total onto start..end."""
        width = end - start

        def report(done: float) -> None:
            self(start + width * (done / total if total > 0 else 1.0))

        return report


class _Flusher:
    """fsync a file in a background thread for the duration of a ``with`` block.

    ``seconds`` is how long the fsync took, for the stage timings.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._error: OSError | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="fsync", daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        try:
            fsync_path(self._path)
        except OSError as exc:
            self._error = exc
        self.seconds = round(time.monotonic() - started, 3)

    def __enter__(self) -> _Flusher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error


def _check_virtual_size(inspection: Inspection, min_disk_gb: int | None, max_virtual_size: int) -> None:
    size = inspection.virtual_size
    if size > max_virtual_size:
        raise ImageRejected(
            IMG_DISK_SIZE,
            f"the disk in the image is {human_size(size)}, more than the "
            f"{human_size(max_virtual_size)} this service accepts",
        )
    if min_disk_gb is not None and size > min_disk_gb * GiB:
        raise ImageRejected(
            IMG_DISK_SIZE,
            f"the disk in the image is {human_size(size)}, larger than the minimum disk size "
            f"of {min_disk_gb} GB; raise min_disk to at least {-(-size // GiB)} GB",
        )


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ConversionFailed("the image import timed out")
    return left


def import_image(
    source: Path,
    dest: Path,
    *,
    min_disk_gb: int | None,
    declared: ImageFormat | None,
    store_format: StoreFormat = "qcow2",
    quick: bool = False,
    max_file_size: int,
    timeout: float,
    progress: Callable[[int], None] | None = None,
    max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE,
    tee: Callable[[memoryview], None] | None = None,
) -> StoredImage:
    """Turn the uploaded file ``source`` into a stored image at ``dest``.

    ``dest`` is a path chosen by the caller (typically a temporary name next
    to the final location); it is created or overwritten, and removed again if
    anything fails. ``quick`` (IMS fast import) accepts raw content only and
    stores it as raw without conversion, whatever ``store_format`` says.
    ``timeout`` bounds the whole import. ``progress`` receives whole
    percentages, increasing, ending with 100.

    ``tee`` receives every byte of the stored image, in order, during the
    checksum pass (a store that uploads the image as it is hashed). With it,
    the file at ``dest`` is not flushed (the store keeps the data), and a quick
    import writes no file at all (``StoredImage.path`` is None).

    Raises ImageRejected (ConversionFailed for failures on our side).
    """
    if store_format not in STORE_FORMATS:
        raise ValueError(f"unsupported store format {store_format!r}")
    if os.path.abspath(dest) == os.path.abspath(source):
        # dest is deleted on failure: it must never be the upload itself.
        raise ValueError("dest must differ from source")
    deadline = time.monotonic() + timeout
    report = _Progress(progress)
    report(0)
    stages = _Stages()
    done = False
    try:
        inspection = inspect_image(
            source,
            declared=declared,
            max_file_size=max_file_size,
            timeout=min(INFO_TIMEOUT, _remaining(deadline)),
        )
        report(_INSPECTED)
        stages.lap("inspect")
        _check_virtual_size(inspection, min_disk_gb, max_virtual_size)
        if quick:
            stored = _quick_import(source, dest, inspection, deadline, report, stages, tee)
        else:
            stored = _convert_import(source, dest, inspection, store_format, deadline, report, stages, tee)
        report(100)
        done = True
        return stored
    except OSError as exc:
        raise ConversionFailed(
            f"the server could not process the image file ({exc.strerror or exc})"
        ) from exc
    finally:
        if not done:
            # Never leave a partial or unchecked image behind.
            dest.unlink(missing_ok=True)


def _quick_import(
    source: Path, dest: Path, inspection: Inspection, deadline: float, report: _Progress, stages: _Stages,
    tee: Callable[[memoryview], None] | None,
) -> StoredImage:
    if inspection.format is not ImageFormat.RAW:
        raise ImageRejected(
            IMG_UNSUPPORTED,
            f"quick import accepts only raw images; this file is {inspection.format.value}",
        )
    # Raw needs no conversion: copy (or stream to the store) and hash in the same read pass.
    return _copy_verbatim(source, dest, inspection.file_size, inspection.virtual_size, inspection.format, "raw",
                          deadline, report, stages, tee)


def _copy_verbatim(
    source: Path, dest: Path, file_size: int, virtual_size: int | None, source_format: ImageFormat | None,
    disk_format: str, deadline: float, report: _Progress, stages: _Stages, tee: Callable[[memoryview], None] | None,
) -> StoredImage:
    span = report.span(_INSPECTED, 100, file_size)
    if tee is None:
        digests = copy_with_digests(source, dest, progress=span, deadline=deadline)
    else:
        digests = digest_file(source, progress=span, deadline=deadline, tee=tee)
    stages.lap("copy")
    return StoredImage(
        path=None if tee is not None else dest,
        size=digests.size,
        virtual_size=virtual_size,
        source_format=source_format,
        disk_format=disk_format,
        checksum=digests.md5,
        os_hash_value=digests.sha512,
        stages=stages,
    )


def keep_image(
    source: Path,
    dest: Path,
    *,
    disk_format: str,
    container_format: str,
    min_disk_gb: int | None,
    max_file_size: int,
    timeout: float,
    progress: Callable[[int], None] | None = None,
    max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE,
    tee: Callable[[memoryview], None] | None = None,
) -> StoredImage:
    """Store ``source`` byte for byte as ``disk_format`` (Glance's direct upload and unconverted imports).

    A bare image in a format qemu-img reads is inspected as every import is: its content must be
    that format (raw takes any content) and pass every safety check of the format it really is,
    and its virtual size is read from it (raw: its size). Anything else (ami/aki/ari, ploop, zvhd2, or inside an OVF,
    OVA or docker container) is opaque here: stored as the metadata says, virtual size unknown.
    ``dest``, ``tee``, ``progress`` and the errors are as for ``import_image``.
    """
    if os.path.abspath(dest) == os.path.abspath(source):
        raise ValueError("dest must differ from source")
    deadline = time.monotonic() + timeout
    report = _Progress(progress)
    report(0)
    stages = _Stages()
    done = False
    try:
        fmt = ImageFormat(disk_format) if disk_format in INSPECTABLE and container_format == "bare" else None
        if fmt is None:
            inspection = Inspection(format=ImageFormat.RAW, virtual_size=0, file_size=_opaque_size(source,
                                                                                                max_file_size))
            virtual_size: int | None = None
        else:
            inspection = inspect_image(source, declared=None if fmt is ImageFormat.RAW else fmt,
                                       max_file_size=max_file_size, timeout=min(INFO_TIMEOUT, _remaining(deadline)))
            if fmt is ImageFormat.RAW:
                # As Glance: raw takes any content that passed the checks above, and a raw
                # disk is as large as its bytes.
                inspection = Inspection(format=ImageFormat.RAW, virtual_size=inspection.file_size,
                                        file_size=inspection.file_size)
            _check_virtual_size(inspection, min_disk_gb, max_virtual_size)
            virtual_size = inspection.virtual_size
        report(_INSPECTED)
        stages.lap("inspect")
        stored = _copy_verbatim(source, dest, inspection.file_size, virtual_size, fmt and inspection.format,
                                disk_format, deadline, report, stages, tee)
        report(100)
        done = True
        return stored
    except OSError as exc:
        raise ConversionFailed(f"the server could not process the image file ({exc.strerror or exc})") from exc
    finally:
        if not done:
            dest.unlink(missing_ok=True)


def _opaque_size(source: Path, max_file_size: int) -> int:
    size = os.stat(source).st_size
    if size > max_file_size:
        raise ImageRejected(IMG_TOO_LARGE, f"the image file ({human_size(size)}) exceeds the limit of "
                                           f"{human_size(max_file_size)}")
    return size


def _convert_import(
    source: Path,
    dest: Path,
    inspection: Inspection,
    store_format: StoreFormat,
    deadline: float,
    report: _Progress,
    stages: _Stages,
    tee: Callable[[memoryview], None] | None,
) -> StoredImage:
    # Even qcow2 -> qcow2 is rewritten: the stored file is then one qemu wrote.
    qemu_img_convert(
        source,
        inspection.format,
        dest,
        store_format,
        timeout=_remaining(deadline),
        progress=report.span(_INSPECTED, _CONVERTED, 100.0),
        # Data plus generous room for qcow2 metadata; anything bigger is an attack.
        max_output_size=inspection.virtual_size + inspection.virtual_size // 8 + (64 << 20),
    )
    report(_CONVERTED)
    stages.lap("convert")
    # Re-read what qemu wrote: it must be a plain image of the same disk.
    info = qemu_img_info(dest, ImageFormat(store_format), timeout=min(INFO_TIMEOUT, _remaining(deadline)))
    if info.get("virtual-size") != inspection.virtual_size or "backing-filename" in info:
        raise ConversionFailed("the converted image does not match the source disk")
    stages.lap("verify")
    # Flush the new file to disk while it is being hashed: the image is durable by the time it is
    # published, and the writeback (I/O) overlaps the hashing (CPU). Starting the writeback during
    # the conversion instead was measured too: it only moved the time from one stage to the other.
    span = report.span(_CONVERTED, 100, os.stat(dest).st_size)
    if tee is not None:
        # The store takes the bytes as they are hashed (an upload): the local file is scratch.
        digests = digest_file(dest, progress=span, deadline=deadline, tee=tee)
        stages.lap("checksum+upload")
    else:
        with _Flusher(dest) as flusher:
            digests = digest_file(dest, progress=span, deadline=deadline)
        stages.lap("checksum")
        stages["fsync"] = flusher.seconds
    return StoredImage(
        path=dest,
        size=digests.size,
        virtual_size=inspection.virtual_size,
        source_format=inspection.format,
        disk_format=store_format,
        checksum=digests.md5,
        os_hash_value=digests.sha512,
        stages=stages,
    )


def quick_import_stream(
    probe: Path,
    stream: io.RawIOBase,
    *,
    tee: Callable[[memoryview], None],
    declared: ImageFormat | None,
    max_file_size: int,
    min_disk_gb: int | None,
    timeout: float,
    progress: Callable[[int], None] | None = None,
    max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE,
) -> StoredImage:
    """A quick (raw) import read once from ``stream`` into ``tee``, hashed on the way: no copy of the disk.

    ``probe`` is a sparse file of the source's size holding its first and last bytes (see
    ``PROBE_HEAD``/``PROBE_TAIL``): every format signature and footer the inspection looks for is
    there, so it is inspected exactly as the whole file would be. Only raw content streams; the bytes
    streamed must be as many as the probe says (a source that changed in between is refused).
    """
    deadline = time.monotonic() + timeout
    report = _Progress(progress)
    report(0)
    stages = _Stages()
    inspection = inspect_image(probe, declared=declared, max_file_size=max_file_size,
                               timeout=min(INFO_TIMEOUT, _remaining(deadline)))
    stages.lap("inspect")
    report(_INSPECTED)
    _check_virtual_size(inspection, min_disk_gb, max_virtual_size)
    if inspection.format is not ImageFormat.RAW:
        raise ImageRejected(IMG_UNSUPPORTED, f"quick import accepts only raw images; this file is "
                                             f"{inspection.format.value}")
    try:
        digests = digest_stream(stream, progress=report.span(_INSPECTED, 100, inspection.file_size),
                                deadline=deadline, tee=tee)
    except OSError as exc:
        raise ConversionFailed(f"the image file could not be read ({exc.strerror or exc})") from exc
    if digests.size != inspection.file_size:
        raise ImageRejected(IMG_FORMAT, f"the image file changed while it was read ({digests.size} bytes "
                                        f"instead of {inspection.file_size})")
    stages.lap("copy")
    report(100)
    return StoredImage(path=None, size=digests.size, virtual_size=inspection.virtual_size,
                       source_format=inspection.format, disk_format="raw", checksum=digests.md5,
                       os_hash_value=digests.sha512, stages=stages)


# What a probe of a streamed source holds: every inspector decides within its first 16 MiB of small
# reads (plus some large ones), and a fixed VHD's footer is its last 512 bytes.
PROBE_HEAD = 32 << 20
PROBE_TAIL = 1 << 20

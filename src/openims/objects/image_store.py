"""The service's own image data: the store interface, and stored images as files (the embedded default).

An image's data goes into a store in two steps, so that no transaction ever waits for storage:
``Staging.seal()`` (slow: flush the file, or complete an S3 upload) outside any transaction, then
``Staging.publish()`` (fast: a rename, or nothing) where the image row is locked. A staging that is
not published is ``discard()``-ed; one lost to a crash is found by ``clear_temp`` (local files) or
the orphan sweep (objects no image row points to).
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Protocol

from openims.durable import fsync_path


class Staging(Protocol):
    """One image's data on its way into the store."""

    # Where qemu-img writes the image (a local file; for an S3 store, in the scratch area).
    path: Path
    # Every byte of the final image, in order, when the store takes the data as it is hashed (S3:
    # uploaded while the checksums are computed); None when the store takes the file at ``path``.
    tee: Callable[[memoryview], None] | None

    def seal(self) -> None:
        """Make the data durable in the store, not yet visible as the image's (outside transactions)."""
        ...

    def publish(self) -> str:
        """The image's data now; its location. Fast (a rename, or nothing): may run under a row lock."""
        ...

    def discard(self) -> None:
        """Remove everything of this staging (idempotent)."""
        ...

    def stored_size(self) -> int:
        """Bytes of the data (after ``seal``)."""
        ...


class ImageStore(Protocol):
    """Stored images. Locations are what ``Staging.publish`` returned; a bare image id names the image's
    data wherever it is (deleting by id removes any of it)."""

    def staging(self, job_id: str, image_id: str) -> Staging: ...

    def owns(self, location: str) -> bool:
        """Whether ``location`` names data of this store (several stores: each location says which)."""
        ...

    def temp_path(self, job_id: str, image_id: str, suffix: str = "") -> Path:
        """A local work file of the job (removed by ``clear_temp``), e.g. an export on its way out."""
        ...

    def copy_staging(self, location: str, job_id: str, image_id: str) -> Staging:
        """A sealed staging holding a private copy of the data at ``location`` (FileNotFoundError if gone)."""
        ...

    def clear_temp(self, job_id: str) -> None: ...

    def exists(self, location: str) -> bool: ...

    def size(self, location: str) -> int:
        """Bytes stored at ``location`` (FileNotFoundError if gone)."""
        ...

    def delete(self, location: str) -> None: ...

    def read(self, location: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The data's bytes (FileNotFoundError before the first one if the data is gone)."""
        ...

    def local_path(self, location: str, scratch: Path) -> AbstractContextManager[Path]:
        """A local random-access path to the data for the block (qemu-img); ``scratch`` is where a copy may go."""
        ...

    def orphans(self, known: Callable[[str], bool], older_than: dt.datetime) -> int:
        """Remove stored data nothing points to (``known(location)`` False) and older than ``older_than``."""
        ...

_KEY = re.compile(r"^[0-9a-f-]{8,64}$")
_SUFFIX = re.compile(r"^(\.[a-z]{1,16})?$")


def temp_suffix(suffix: str) -> str:
    """A temp file's suffix (".upload"): a dot and a few letters, never a path."""
    if not _SUFFIX.fullmatch(suffix):
        raise ValueError(f"invalid temp suffix {suffix!r}")
    return suffix
# ioctl(2) FICLONE from <linux/fs.h>: share the source's blocks copy-on-write.
_FICLONE = 0x40049409
_CHUNK = 64 * 1024 * 1024
_READ_CHUNK = 1024 * 1024


def _copy_sparse(src: int, dst: int) -> None:
    """Copy only the data extents (raw images are mostly holes) and keep the holes as holes."""
    size = os.fstat(src).st_size
    offset = 0
    while offset < size:
        try:
            start = os.lseek(src, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole remains
                break
            raise
        end = os.lseek(src, start, os.SEEK_HOLE)
        while start < end:
            count = min(_CHUNK, end - start)
            try:
                copied = os.copy_file_range(src, dst, count, start, start)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                data = os.pread(src, count, start)
                copied = os.pwrite(dst, data, start)
            if copied == 0:
                raise OSError(errno.EIO, "the stored image shrank while it was being copied")
            start += copied
        offset = end
    os.ftruncate(dst, size)


class _FileStaging:
    def __init__(self, store: FileImageStore, path: Path, image_id: str) -> None:
        self.store = store
        self.path = path
        self.image_id = image_id
        self.tee: Callable[[memoryview], None] | None = None

    def seal(self) -> None:
        fsync_path(self.path)

    def publish(self) -> str:
        return self.store.publish(self.path, self.image_id)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def stored_size(self) -> int:
        return self.path.stat().st_size


class FileImageStore:
    """Stored images as files ``<root>/<image id>``.

    Locations are the bare ids, or ``file://<name>/<image id>`` for a named store of several
    (``OPENIMS_STORES``), so that a location says which store holds it. A named store also takes the
    bare id as "this image's file here" (``delete`` by id removes the image's data from every store).
    """

    def __init__(self, root: Path, name: str | None = None) -> None:
        self.root = root
        self.name = name
        self.prefix = f"file://{name}/" if name else ""
        self.tmp = root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _check(key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"invalid image store key {key!r}")
        return key

    def _key(self, location: str) -> str:
        """The file name of one of this store's locations."""
        return self._check(location.removeprefix(self.prefix) if self.prefix else location)

    def owns(self, location: str) -> bool:
        """Whether ``location`` names data of this store (a named store: its own prefix only)."""
        if self.prefix:
            return location.startswith(self.prefix) and bool(_KEY.fullmatch(location.removeprefix(self.prefix)))
        return bool(_KEY.fullmatch(location))

    def location(self, image_id: str) -> str:
        return f"{self.prefix}{self._check(image_id)}"

    def temp_path(self, job_id: str, image_id: str, suffix: str = "") -> Path:
        """Deterministic per job and image, so a retried job finds and removes its leftovers."""
        return self.tmp / f"{self._check(job_id)}-{self._check(image_id)}{temp_suffix(suffix)}"

    def publish(self, temp: Path, image_id: str) -> str:
        key = self._check(image_id)
        fsync_path(temp)
        os.replace(temp, self.root / key)
        fsync_path(self.root)  # the rename itself must survive a crash too
        return self.location(key)

    def staging(self, job_id: str, image_id: str) -> _FileStaging:
        return _FileStaging(self, self.temp_path(job_id, image_id), image_id)

    def copy_staging(self, location: str, job_id: str, image_id: str) -> _FileStaging:
        return _FileStaging(self, self.copy_to_temp(location, job_id, image_id), image_id)

    def copy_to_temp(self, location: str, job_id: str, image_id: str) -> Path:
        """A private copy of stored data at the job's temp path, sharing blocks where the filesystem can.

        A reflink (FICLONE: btrfs, XFS) costs no space or time; elsewhere the kernel copies
        (copy_file_range via shutil). The copy is a new file either way, so later changes to one
        image's data can never show through in the other.
        """
        src = self.path(location)
        dest = self.temp_path(job_id, image_id)
        dest.unlink(missing_ok=True)
        try:
            with open(src, "rb") as fin, open(dest, "wb") as fout:
                try:
                    fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
                except OSError:
                    _copy_sparse(fin.fileno(), fout.fileno())
            fsync_path(dest)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return dest

    def path(self, location: str) -> Path:
        return self.root / self._key(location)

    def exists(self, location: str) -> bool:
        return self.path(location).is_file()

    def size(self, location: str) -> int:
        return self.path(location).stat().st_size

    def delete(self, location: str) -> None:
        self.path(location).unlink(missing_ok=True)

    def read(self, location: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        f = open(self.path(location), "rb")  # noqa: SIM115 - FileNotFoundError now, not at the first next()
        return _read_file(f, start, length)

    @contextmanager
    def local_path(self, location: str, scratch: Path) -> Iterator[Path]:
        path = self.path(location)
        if not path.is_file():
            raise FileNotFoundError(path)
        yield path

    def orphans(self, known: Callable[[str], bool], older_than: dt.datetime) -> int:
        removed = 0
        for p in self.root.iterdir():
            if not _KEY.fullmatch(p.name) or not p.is_file() or known(self.location(p.name)):
                continue
            if dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC) < older_than:
                p.unlink(missing_ok=True)
                removed += 1
        return removed

    def clear_temp(self, job_id: str) -> None:
        for p in self.tmp.glob(f"{self._check(job_id)}-*"):
            p.unlink(missing_ok=True)


def _read_file(f: IO[bytes], start: int, length: int | None) -> Iterator[bytes]:
    with f:
        f.seek(start)
        left = length
        while left is None or left > 0:
            chunk = f.read(_READ_CHUNK if left is None else min(_READ_CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk

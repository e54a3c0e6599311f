"""The service's own image data: stored images by key, written via temp paths and published atomically."""

from __future__ import annotations

import errno
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

_KEY = re.compile(r"^[0-9a-f-]{8,64}$")
# ioctl(2) FICLONE from <linux/fs.h>: share the source's blocks copy-on-write.
_FICLONE = 0x40049409
_CHUNK = 64 * 1024 * 1024


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


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _check(key: str) -> str:
        if not _KEY.match(key):
            raise ValueError(f"invalid image store key {key!r}")
        return key

    def temp_path(self, job_id: str, image_id: str) -> Path:
        """Deterministic per job and image, so a retried job finds and removes its leftovers."""
        return self.tmp / f"{self._check(job_id)}-{self._check(image_id)}"

    def publish(self, temp: Path, image_id: str) -> str:
        key = self._check(image_id)
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temp, self.root / key)
        # The rename itself must survive a crash too.
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return key

    def copy_to_temp(self, key: str, job_id: str, image_id: str) -> Path:
        """A private copy of stored data at the job's temp path, sharing blocks where the filesystem can.

        A reflink (FICLONE: btrfs, XFS) costs no space or time; elsewhere the kernel copies
        (copy_file_range via shutil). The copy is a new file either way, so later changes to one
        image's data can never show through in the other.
        """
        src = self.path(key)
        dest = self.temp_path(job_id, image_id)
        dest.unlink(missing_ok=True)
        try:
            with open(src, "rb") as fin, open(dest, "wb") as fout:
                try:
                    fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
                except OSError:
                    _copy_sparse(fin.fileno(), fout.fileno())
                os.fsync(fout.fileno())
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return dest

    def path(self, key: str) -> Path:
        return self.root / self._check(key)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def open(self, key: str) -> Iterator[bytes]:
        with open(self.path(key), "rb") as f:
            while chunk := f.read(1024 * 1024):
                yield chunk

    def clear_temp(self, job_id: str) -> None:
        for p in self.tmp.glob(f"{self._check(job_id)}-*"):
            p.unlink(missing_ok=True)

"""The service's own image data: stored images by key, written via temp paths and published atomically."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

_KEY = re.compile(r"^[0-9a-f-]{8,64}$")


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

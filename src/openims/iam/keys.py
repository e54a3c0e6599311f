"""Fernet key repository, laid out as Keystone's: files named 0..N in one directory.

``0`` is the staged key (next primary), the highest number is the primary that encrypts new
tokens, every other key still decrypts. Rotation promotes the staged key and stages a new one,
so processes sharing the directory can pick up keys before they are used to sign.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

log = logging.getLogger("openims.keys")


class KeyRepository:
    def __init__(self, directory: Path, *, max_active_keys: int = 3) -> None:
        self.directory = directory
        self.max_active_keys = max_active_keys

    def _key_files(self) -> dict[int, Path]:
        if not self.directory.is_dir():
            return {}
        return {int(p.name): p for p in self.directory.iterdir() if p.name.isdigit()}

    def _write(self, index: int) -> None:
        path = self.directory / str(index)
        tmp = self.directory / f".{index}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
        os.replace(tmp, path)

    def ensure(self) -> None:
        """Create the repository with a staged and a primary key if it is empty."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = self._key_files()
        if 0 not in files:
            self._write(0)
        if len(self._key_files()) < 2:
            self.rotate()

    def rotate(self) -> None:
        files = self._key_files()
        new_primary = max(files) + 1
        os.replace(files[0], self.directory / str(new_primary))
        self._write(0)
        files = self._key_files()
        # Drop the oldest secondary keys beyond the limit (never 0 or the primary).
        secondaries = sorted(i for i in files if i not in (0, new_primary))
        while len(files) > self.max_active_keys and secondaries:
            files.pop(secondaries[0]).unlink()
            secondaries.pop(0)

    def load(self) -> MultiFernet:
        files = self._key_files()
        if len(files) < 2:
            raise RuntimeError(f"token key repository {self.directory} is not initialised")
        # Primary first: MultiFernet encrypts with the first key and tries all to decrypt.
        order = [*sorted((i for i in files if i != 0), reverse=True), 0]
        return MultiFernet([Fernet(files[i].read_bytes().strip()) for i in order])

    def signature(self) -> tuple[tuple[str, int, int], ...]:
        """What changes when the keys do (a rotation renames, writes and removes files)."""
        files = self._key_files()
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files.values()))


class KeyRing:
    """A repository's keys as this process uses them, reloaded within ``refresh`` seconds of a change on
    disk (``openims keys rotate`` on any host sharing the directory): no restart needed. Rotation stages
    keys before they sign, so a process that has not reloaded yet still verifies new tokens."""

    def __init__(self, repo: KeyRepository, *, refresh: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.repo = repo
        self.refresh = refresh
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._fernet = repo.load()
        self._signature = repo.signature()
        self._checked = monotonic()

    def fernet(self) -> MultiFernet:
        if self._monotonic() - self._checked >= self.refresh:
            self._reload()
        return self._fernet

    def _reload(self) -> None:
        with self._lock:
            if self._monotonic() - self._checked < self.refresh:
                return  # another thread just did
            self._checked = self._monotonic()
            try:
                signature = self.repo.signature()
                if signature != self._signature:
                    self._fernet, self._signature = self.repo.load(), signature
                    log.info("token keys reloaded from %s", self.repo.directory)
            except (OSError, ValueError, RuntimeError) as exc:
                # Caught mid-rotation (a file renamed or being written): the keys in use stay; next time.
                log.warning("token keys not reloaded (%s); retrying in %.0f s", exc, self.refresh)

"""Files across crashes and processes: the one fsync, and the one lock between processes (a leaf:
imports nothing of ours, so every layer, the client included, may use it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows, where the client may run
    fcntl = None  # type: ignore[assignment]


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a directory's entries (so that a new name in it survives a crash), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created, mode 0600) for the block, against every process of
    the host; it is released when the block ends or the process dies. A no-op where flock is missing."""
    if fcntl is None:
        yield
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

"""The scratch area: bounded local disk space for image files fetched from S3 and images on their way to it.

Every user of scratch space reserves what it needs first (``Scratch.reserve``) and gets a private
directory (``work/<owner>``) that is removed when the reservation ends. Reservations are files under ``.reservations``,
counted under an exclusive lock on ``.lock``, so every worker process on the host shares one limit.
A reservation records its process: one whose process is gone (a crash) is swept, with its
directory, by the next ``sweep()`` (at worker start) or by any reservation that needs its space.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from openims.durable import exclusive_lock
from openims.units import human_size

_OWNER = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class ScratchFull(Exception):
    """Not enough scratch space now; it may be later (other jobs hold it)."""

    def __init__(self, needed: int, available: int, limit: int) -> None:
        super().__init__(f"waiting for scratch space: needs {human_size(needed)}, {human_size(available)} "
                         f"of {human_size(limit)} free")
        self.needed = needed


class ScratchTooSmall(Exception):
    """More than the scratch area can ever hold."""

    def __init__(self, needed: int, limit: int) -> None:
        super().__init__(f"needs {human_size(needed)} of scratch space, more than the {human_size(limit)} "
                         "this service has (OPENIMS_SCRATCH_LIMIT)")
        self.needed = needed


@dataclass(frozen=True)
class Reservation:
    owner: str
    size: int
    path: Path  # the owner's private directory


def _alive(pid: int, started: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # Field 22 (start time) tells a reused pid from the process that made the reservation.
            return f.read().rsplit(")", 1)[1].split()[19] == started
    except (OSError, IndexError):
        return False


def _my_start_time() -> str:
    with open(f"/proc/{os.getpid()}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


class Scratch:
    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = limit
        self._reservations = root / ".reservations"
        self._reservations.mkdir(parents=True, exist_ok=True)
        # The reservations' directories; the rest of the root is others' (the S3 store's staging).
        self._work = root / "work"
        self._work.mkdir(exist_ok=True)
        self._started = _my_start_time()

    def _locked(self) -> AbstractContextManager[None]:
        return exclusive_lock(self.root / ".lock")

    def _entries(self) -> list[tuple[str, dict[str, int | str]]]:
        out = []
        for p in self._reservations.iterdir():
            if p.name.startswith("."):
                continue
            try:
                out.append((p.name, json.loads(p.read_text())))
            except (OSError, ValueError):
                continue
        return out

    def _used(self) -> int:
        return sum(int(e.get("size", 0)) for _, e in self._entries())

    def _sweep_locked(self) -> int:
        removed = 0
        for owner, entry in self._entries():
            pid, started = entry.get("pid"), entry.get("started")
            if isinstance(pid, int) and isinstance(started, str) and _alive(pid, started):
                continue
            self._remove(owner)
            removed += 1
        # Directories without a reservation: left by a crash between the two removals.
        reserved = {name for name, _ in self._entries()}
        for d in self._work.iterdir():
            if d.name not in reserved:
                shutil.rmtree(d, ignore_errors=True)
        return removed

    def sweep(self) -> int:
        """Remove the reservations (and directories) of processes that are gone; how many."""
        with self._locked():
            return self._sweep_locked()

    def used(self) -> int:
        with self._locked():
            return self._used()

    def _remove(self, owner: str) -> None:
        shutil.rmtree(self._work / owner, ignore_errors=True)
        (self._reservations / owner).unlink(missing_ok=True)

    def try_reserve(self, owner: str, size: int) -> Reservation:
        """Reserve ``size`` bytes for ``owner`` (replacing an earlier reservation of the same owner).

        ScratchTooSmall if it can never fit, ScratchFull if it cannot now.
        """
        if not _OWNER.fullmatch(owner):
            raise ValueError(f"invalid scratch owner {owner!r}")
        if size > self.limit:
            raise ScratchTooSmall(size, self.limit)
        with self._locked():
            self._remove(owner)
            used = self._used()
            if used + size > self.limit and self._sweep_locked():
                used = self._used()
            available = min(self.limit - used, shutil.disk_usage(self.root).free)
            if size > available:
                raise ScratchFull(size, max(0, available), self.limit)
            entry = {"pid": os.getpid(), "started": self._started, "size": size}
            tmp = self._reservations / f".{owner}.tmp"
            tmp.write_text(json.dumps(entry))
            os.replace(tmp, self._reservations / owner)
            path = self._work / owner
            path.mkdir(exist_ok=True)
            return Reservation(owner, size, path)

    def release(self, reservation: Reservation) -> None:
        with self._locked():
            self._remove(reservation.owner)

    @contextmanager
    def reserved(self, owner: str, size: int) -> Iterator[Reservation]:
        """``try_reserve`` for the block; the space and the directory are given back on every exit."""
        reservation = self.try_reserve(owner, size)
        try:
            yield reservation
        finally:
            self.release(reservation)

"""Fernet key repositories, laid out as Keystone's: keys numbered 0..N.

``0`` is the staged key (next primary), the highest number is the primary that encrypts new
tokens, every other key still decrypts. Rotation promotes the staged key and stages a new one,
so processes can pick up keys before they are used to sign.

Two stores hold them: a directory of files named by number (Keystone's own layout, shared by hosts
through a common mount) or rows of the database, each key sealed under a master key every process
is given (``OPENIMS_KEY_STORE=database``), for deployments without a shared filesystem.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from openims.clock import Clock
from openims.db.models import KeyMaterial
from openims.db.session import Database, serialized

log = logging.getLogger("openims.keys")

MAX_ACTIVE_KEYS = 3


class KeyStoreError(RuntimeError):
    """The keys cannot be read: an uninitialised store, or a master key that does not open them."""


class KeyStore(Protocol):
    """Where one set of keys (token or credential) lives. ``signature`` changes when the keys do."""

    @property
    def where(self) -> str: ...
    def ensure(self) -> None: ...
    def rotate(self) -> None: ...
    def load(self) -> MultiFernet: ...
    def signature(self) -> Hashable: ...


def _ordered(keys: dict[int, bytes]) -> MultiFernet:
    # Primary first: MultiFernet encrypts with the first key and tries all to decrypt.
    order = [*sorted((i for i in keys if i != 0), reverse=True), 0]
    return MultiFernet([Fernet(keys[i].strip()) for i in order])


def _promote(indexes: set[int], max_active_keys: int) -> tuple[int, list[int]]:
    """Rotation as index arithmetic: the staged key 0 becomes ``max + 1``; which secondaries to drop
    (the oldest beyond the limit, never the staged key or the new primary)."""
    new_primary = max(indexes) + 1
    remaining = (indexes - {0}) | {0, new_primary}
    secondaries = sorted(i for i in remaining if i not in (0, new_primary))
    excess = max(0, len(remaining) - max_active_keys)
    return new_primary, secondaries[:excess]


class KeyRepository:
    """Keys as files in one directory (Keystone's ``fernet-keys`` layout)."""

    def __init__(self, directory: Path, *, max_active_keys: int = MAX_ACTIVE_KEYS) -> None:
        self.directory = directory
        self.max_active_keys = max_active_keys

    @property
    def where(self) -> str:
        return str(self.directory)

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
        new_primary, dropped = _promote(set(files), self.max_active_keys)
        os.replace(files[0], self.directory / str(new_primary))
        self._write(0)
        for i in dropped:
            files[i].unlink()

    def load(self) -> MultiFernet:
        files = self._key_files()
        if len(files) < 2 or 0 not in files:
            raise KeyStoreError(f"key repository {self.directory} is not initialised")
        return _ordered({i: p.read_bytes() for i, p in files.items()})

    def signature(self) -> tuple[tuple[str, int, int], ...]:
        """What changes when the keys do (a rotation renames, writes and removes files)."""
        files = self._key_files()
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files.values()))


class DatabaseKeys:
    """Keys as rows of ``key_material`` (one ``purpose`` per set), each sealed under the master key.

    ``master`` may hold several master keys (the first seals): a rotation re-seals every row under the
    first, so a master key can be replaced by giving processes ``new,old`` and rotating once.
    Rotations of any process are serialised by a database lock.
    """

    def __init__(self, db: Database, purpose: str, master: MultiFernet, clock: Clock, *,
                 max_active_keys: int = MAX_ACTIVE_KEYS) -> None:
        self.db = db
        self.purpose = purpose
        self.master = master
        self.clock = clock
        self.max_active_keys = max_active_keys

    @property
    def where(self) -> str:
        return f"the database ({self.purpose} keys)"

    def _rows(self, s: Session) -> dict[int, KeyMaterial]:
        rows = s.scalars(select(KeyMaterial).where(KeyMaterial.purpose == self.purpose))
        return {row.idx: row for row in rows}

    def _add(self, s: Session, idx: int, key: bytes) -> None:
        s.add(KeyMaterial(purpose=self.purpose, idx=idx, sealed=self.master.encrypt(key).decode("ascii"),
                          created_at=self.clock()))

    def _open(self, row: KeyMaterial) -> bytes:
        try:
            return self.master.decrypt(row.sealed.encode("ascii"))
        except InvalidToken:
            raise KeyStoreError(f"the master key (OPENIMS_MASTER_KEY) does not open the {self.purpose} keys in the "
                                "database: every process must be given the same master key") from None

    def ensure(self) -> None:
        with self.db.transaction(retry_for=self.db.busy_timeout) as s:
            serialized(s, f"keys:{self.purpose}")  # processes starting at once create one set
            rows = self._rows(s)
            for row in rows.values():
                self._open(row)  # a wrong master key stops the start, before anything is signed
            if 0 not in rows:
                self._add(s, 0, Fernet.generate_key())
            if len(rows) < 2:
                self._rotate(s)

    def rotate(self) -> None:
        with self.db.transaction(retry_for=self.db.busy_timeout) as s:
            serialized(s, f"keys:{self.purpose}")
            self._rotate(s)

    def _rotate(self, s: Session) -> None:
        s.flush()
        rows = self._rows(s)
        new_primary, dropped = _promote(set(rows), self.max_active_keys)
        keys = {i: self._open(row) for i, row in rows.items() if i not in dropped}
        s.execute(delete(KeyMaterial).where(KeyMaterial.purpose == self.purpose))
        s.flush()
        keys[new_primary] = keys.pop(0)
        keys[0] = Fernet.generate_key()
        for idx, key in keys.items():
            self._add(s, idx, key)  # every row re-sealed under the first master key

    def load(self) -> MultiFernet:
        with self.db.transaction(readonly=True) as s:
            rows = self._rows(s)
            if len(rows) < 2 or 0 not in rows:
                raise KeyStoreError(f"{self.where} holds no keys yet")
            return _ordered({i: self._open(row) for i, row in rows.items()})

    def signature(self) -> Hashable:
        with self.db.transaction(readonly=True) as s:
            rows = self._rows(s)
            return tuple(sorted((i, hashlib.sha256(r.sealed.encode()).hexdigest()) for i, r in rows.items()))


class KeyRing:
    """A store's keys as this process uses them, reloaded within ``refresh`` seconds of a change
    (``openims keys rotate`` on any host): no restart needed. Rotation stages keys before they sign,
    so a process that has not reloaded yet still verifies new tokens and opens new secrets."""

    def __init__(self, repo: KeyStore, *, refresh: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.repo = repo
        self.refresh = refresh
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._fernet = repo.load()
        self._signature: Hashable = repo.signature()
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
                    log.info("keys reloaded from %s", self.repo.where)
            except Exception as exc:
                # Caught mid-rotation (a file renamed or being written), or the database away for a
                # moment: the keys in use stay; next time.
                log.warning("keys of %s not reloaded (%s); retrying in %.0f s", self.repo.where, exc, self.refresh)


def current(keys: MultiFernet | KeyRing) -> MultiFernet:
    """The keys to use now: a ring follows rotations, a fixed MultiFernet (tests) does not."""
    return keys.fernet() if isinstance(keys, KeyRing) else keys


def master_keys(keys: str) -> MultiFernet:
    """The master key(s) of the database key store: Fernet keys separated by commas, the first sealing."""
    parts = [k.strip() for k in keys.replace("\n", ",").split(",") if k.strip()]
    if not parts:
        raise KeyStoreError("the master key is empty")
    try:
        return MultiFernet([Fernet(k) for k in parts])
    except ValueError:
        raise KeyStoreError("the master key is not a Fernet key (32 url-safe base64-encoded bytes; "
                            "`openims keys new-master-key` makes one)") from None

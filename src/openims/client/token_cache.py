"""A small on-disk cache of IAM tokens, so scripts and CLI calls do not log in every time.

One JSON file (``~/.cache/openims/tokens.json`` unless ``OPENIMS_TOKEN_CACHE`` says otherwise),
readable only by its owner (0600, in a 0700 directory it creates), replaced atomically on every
write. Entries are keyed by (endpoint, domain, user, project); a token is handed out until
five minutes before it expires, so a request never starts with a token about to lapse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openims.clock import Clock, utcnow
from openims.durable import exclusive_lock  # POSIX only; elsewhere concurrent writers race (last one wins)

ENV_VAR = "OPENIMS_TOKEN_CACHE"
DEFAULT_MARGIN = dt.timedelta(minutes=5)
_FORMAT_VERSION = 1


def default_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "openims" / "tokens.json"


@dataclass(frozen=True)
class CacheKey:
    endpoint: str
    domain: str
    user: str
    project: str | None

    def encoded(self) -> str:
        # A JSON list is unambiguous whatever characters the parts hold.
        return json.dumps([self.endpoint.rstrip("/"), self.domain, self.user, self.project or ""])


@dataclass(frozen=True)
class CachedToken:
    token: str
    expires_at: dt.datetime
    project_id: str | None = None
    user_id: str | None = None
    domain_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "expires_at": self.expires_at.isoformat(), "project_id": self.project_id,
                "user_id": self.user_id, "domain_id": self.domain_id}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CachedToken:
        expires = dt.datetime.fromisoformat(str(raw["expires_at"]))
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        return cls(token=str(raw["token"]), expires_at=expires, project_id=raw.get("project_id"),
                   user_id=raw.get("user_id"), domain_id=raw.get("domain_id"))


class TokenCache:
    """Tokens on disk. ``TokenCache.in_memory()`` gives one that never touches the disk."""

    def __init__(self, path: Path | None = None, *, margin: dt.timedelta = DEFAULT_MARGIN,
                 clock: Clock = utcnow) -> None:
        self._path = path
        self._margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._memory: dict[str, CachedToken] = {}

    @classmethod
    def default(cls) -> TokenCache:
        return cls(default_path())

    @classmethod
    def in_memory(cls, *, margin: dt.timedelta = DEFAULT_MARGIN, clock: Clock = utcnow) -> TokenCache:
        return _MemoryTokenCache(None, margin=margin, clock=clock)

    @property
    def path(self) -> Path | None:
        return self._path

    def usable(self, entry: CachedToken) -> bool:
        return entry.expires_at - self._margin > self._clock()

    def get(self, key: CacheKey) -> CachedToken | None:
        """The cached token for ``key`` if it stays valid for at least the margin."""
        with self._lock:
            entry = self._read().get(key.encoded())
        return entry if entry is not None and self.usable(entry) else None

    def put(self, key: CacheKey, entry: CachedToken) -> None:
        with self._lock, self._locked():
            entries = self._read()
            entries[key.encoded()] = entry
            self._write(entries)

    def drop(self, key: CacheKey) -> None:
        with self._lock, self._locked():
            entries = self._read()
            if entries.pop(key.encoded(), None) is not None:
                self._write(entries)

    # -------------------------------------------------------- storage

    def _read(self) -> dict[str, CachedToken]:
        assert self._path is not None
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            # Missing or damaged: start afresh; it only costs a login.
            return {}
        out: dict[str, CachedToken] = {}
        if not isinstance(raw, dict) or raw.get("version") != _FORMAT_VERSION:
            return out
        for k, v in (raw.get("tokens") or {}).items():
            with contextlib.suppress(KeyError, TypeError, ValueError):
                out[str(k)] = CachedToken.from_json(v)
        return out

    def _write(self, entries: dict[str, CachedToken]) -> None:
        assert self._path is not None
        self._ensure_dir()
        now = self._clock()
        live = {k: v.to_json() for k, v in entries.items() if v.expires_at > now}
        data = json.dumps({"version": _FORMAT_VERSION, "tokens": live}, indent=1, sort_keys=True)
        # mkstemp creates the file 0600; os.replace makes the new content appear all at once.
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", suffix=".tmp", dir=self._path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _ensure_dir(self) -> None:
        assert self._path is not None
        parent = self._path.parent
        if not parent.exists():
            parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            # Only a directory we created is tightened; a shared one given by the user is theirs.
            os.chmod(parent, 0o700)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write across processes sharing the file."""
        assert self._path is not None
        self._ensure_dir()
        with exclusive_lock(self._path.with_name(self._path.name + ".lock")):
            yield


class _MemoryTokenCache(TokenCache):
    """Same rules, no file: for tests and for callers that must not write to disk."""

    def _read(self) -> dict[str, CachedToken]:
        return dict(self._memory)

    def _write(self, entries: dict[str, CachedToken]) -> None:
        self._memory = dict(entries)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        yield

"""Stateless tokens: a compact JSON payload encrypted and authenticated with Fernet.

Any API process holding the key repository verifies a token without reading the database;
revocation is checked against ``RevocationList``, refreshed incrementally at most once a second.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from openims.clock import Clock
from openims.db.models import Domain, Project, Revocation
from openims.db.session import Database, after_commit
from openims.errors import IamUnauthorized
from openims.iam.keys import KeyRing, current

TOKEN_VERSION = 1
# Fernet tokens are url-safe base64 of a multiple of 4 characters; the decoder would tolerate
# trailing garbage, so anything else is refused before decoding ("one token, one spelling").
_CANONICAL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


@dataclass(frozen=True)
class TokenData:
    user_id: str
    user_domain_id: str
    methods: tuple[str, ...]
    roles: tuple[str, ...]
    issued_at: dt.datetime
    expires_at: dt.datetime
    audit_id: str
    project_id: str | None = None
    domain_id: str | None = None
    # Extra claims carried by some tokens (e.g. the access key a request was signed with).
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        if self.project_id:
            return "project"
        return "domain" if self.domain_id else "unscoped"


def _epoch(t: dt.datetime) -> float:
    return t.timestamp()


def _from_epoch(x: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(x, dt.UTC)


class TokenCodec:
    def __init__(self, keys: MultiFernet | KeyRing, clock: Clock) -> None:
        self._keys = keys
        self._clock = clock

    @property
    def _fernet(self) -> MultiFernet:
        return current(self._keys)

    def check_keys(self) -> None:
        """Raise unless the keys in use can seal and open a token (readiness)."""
        fernet = self._fernet
        fernet.decrypt(fernet.encrypt(b"ready"))

    def issue(
        self,
        *,
        user_id: str,
        user_domain_id: str,
        methods: tuple[str, ...],
        roles: tuple[str, ...],
        ttl: int,
        project_id: str | None = None,
        domain_id: str | None = None,
        expires_at: dt.datetime | None = None,
    ) -> tuple[str, TokenData]:
        now = self._clock()
        expiry = now + dt.timedelta(seconds=ttl)
        if expires_at is not None:
            expiry = min(expiry, expires_at)
        data = TokenData(
            user_id=user_id,
            user_domain_id=user_domain_id,
            methods=methods,
            roles=roles,
            issued_at=now,
            expires_at=expiry,
            audit_id=secrets.token_urlsafe(16),
            project_id=project_id,
            domain_id=domain_id,
        )
        payload = {
            "v": TOKEN_VERSION,
            "u": data.user_id,
            "ud": data.user_domain_id,
            "m": list(data.methods),
            "r": list(data.roles),
            "i": _epoch(data.issued_at),
            "e": _epoch(data.expires_at),
            "a": data.audit_id,
            "p": data.project_id,
            "d": data.domain_id,
        }
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return self._fernet.encrypt(raw).decode("ascii"), data

    def verify(self, token: str) -> TokenData:
        """Decrypt and check expiry; raises Unauthorized for anything tampered, foreign or stale."""
        if not token or len(token) > 4096 or not _CANONICAL.fullmatch(token):
            raise IamUnauthorized("The token is invalid.")
        try:
            if len(token) % 4:
                raise ValueError("token length is not a multiple of 4")
            raw = self._fernet.decrypt(token.encode("ascii"))
            payload = json.loads(raw)
            if payload.get("v") != TOKEN_VERSION:
                raise ValueError("unknown token version")
            data = TokenData(
                user_id=str(payload["u"]),
                user_domain_id=str(payload["ud"]),
                methods=tuple(payload["m"]),
                roles=tuple(payload["r"]),
                issued_at=_from_epoch(float(payload["i"])),
                expires_at=_from_epoch(float(payload["e"])),
                audit_id=str(payload["a"]),
                project_id=payload.get("p"),
                domain_id=payload.get("d"),
            )
        except (InvalidToken, UnicodeEncodeError, ValueError, KeyError, TypeError) as exc:
            raise IamUnauthorized("The token is invalid.") from exc
        if self._clock() >= data.expires_at:
            raise IamUnauthorized("The token has expired.")
        return data


class RevocationList:
    """This process's view of the revocation table, refreshed incrementally."""

    def __init__(self, db: Database, clock: Clock, *, refresh_seconds: float = 1.0) -> None:
        self._db = db
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._last_id = 0
        self._last_refresh = float("-inf")
        self._audit_ids: set[str] = set()
        self._user_cutoffs: dict[str, dt.datetime] = {}
        self._projects: dict[str, tuple[bool, float]] = {}
        self._domains: dict[str, tuple[bool, float]] = {}

    def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_refresh < self._refresh_seconds:
            return
        with self._lock:
            if not force and now - self._last_refresh < self._refresh_seconds:
                return
            with self._db.session() as s:
                rows = s.scalars(
                    select(Revocation).where(Revocation.id > self._last_id).order_by(Revocation.id)
                ).all()
            for row in rows:
                self._last_id = max(self._last_id, row.id)
                if row.audit_id:
                    self._audit_ids.add(row.audit_id)
                if row.user_id and row.issued_before:
                    prev = self._user_cutoffs.get(row.user_id)
                    if prev is None or row.issued_before > prev:
                        self._user_cutoffs[row.user_id] = row.issued_before
            self._last_refresh = now

    def is_revoked(self, token: TokenData) -> bool:
        self._refresh()
        if token.audit_id in self._audit_ids:
            return True
        cutoff = self._user_cutoffs.get(token.user_id)
        if cutoff is not None and token.issued_at <= cutoff:
            return True
        if not self._domain_active(token.user_domain_id):
            return True
        return token.project_id is not None and not self._project_active(token.project_id)

    def _cached(self, cache: dict[str, tuple[bool, float]], key: str, read: Callable[[Session], bool]) -> bool:
        now = time.monotonic()
        cached = cache.get(key)
        if cached is not None and now - cached[1] < self._refresh_seconds:
            return cached[0]
        with self._db.session() as s:
            active = read(s)
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = (active, now)
        return active

    def _project_active(self, project_id: str) -> bool:
        """A deleted, disabled or suspended project ends its tokens (cached per process, briefly)."""
        def read(s: Session) -> bool:
            row = s.execute(select(Project.enabled, Project.status).where(Project.id == project_id)).first()
            return row is not None and bool(row[0]) and row[1] == "normal"
        return self._cached(self._projects, project_id, read)

    def _domain_active(self, domain_id: str) -> bool:
        """A deleted or disabled account ends its users' tokens, and re-enabling it restores them (cached
        per process as projects are; ``forget_domain`` drops the entry where the change was made)."""
        def read(s: Session) -> bool:
            return bool(s.scalar(select(Domain.enabled).where(Domain.id == domain_id)))
        return self._cached(self._domains, domain_id, read)

    def revoke_token(self, session: Session, token: TokenData) -> None:
        """Revoke one token, in the caller's transaction; this process sees it once that commits."""
        session.add(Revocation(audit_id=token.audit_id, expires_at=token.expires_at))
        session.execute(delete(Revocation).where(Revocation.expires_at < self._clock()))
        after_commit(session, self._forced_refresh)

    def _forced_refresh(self) -> None:
        self._refresh(force=True)

    def forget_project(self, project_id: str) -> None:
        """Drop this process's cached status of a project it just changed."""
        self._projects.pop(project_id, None)

    def forget_domain(self, domain_id: str) -> None:
        """Drop this process's cached status of an account it just changed."""
        self._domains.pop(domain_id, None)

    def revoke_user(self, session: Session, user_id: str, ttl: int) -> None:
        """Revoke every token of a user issued up to now (password change, disable, delete), in the
        caller's transaction: the change and the revocation commit together or not at all."""
        now = self._clock()
        session.add(Revocation(user_id=user_id, issued_before=now, expires_at=now + dt.timedelta(seconds=ttl)))
        after_commit(session, self._forced_refresh)

"""Rate limits on authentication (issue 16, item 4), shared by every process on the database.

One mechanism for every limit: fixed windows counted in ``rate_counters`` (kind, key, window start),
bumped by one atomic upsert-increment (``INSERT … ON CONFLICT DO UPDATE … RETURNING count``, the
same statement on SQLite and PostgreSQL), so API processes behind one balancer agree on every count.

- password logins per user (every attempt, right or wrong) and per source address: counted before
  the password is checked, so a refused attempt costs no argon2 time and never counts as a failed
  login for the lockout;
- signature failures per access key and per source address: read before the signature is checked,
  counted when it fails;
- tokens issued per user (password and token methods), counted once the caller is known.

The limiter never makes a request fail by itself: a counter that cannot be read or written (the
database busy or away) is logged and the request goes on as if under its limits. Each counting is
its own short write transaction (one statement per counted key), never inside the request's own
transaction, so it holds SQLite's write lane only for that statement. Windows that ended are pruned
at most once a minute per process.

Keys are stored as digests: the table holds no user names or addresses.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from openims import metrics
from openims.clock import Clock
from openims.config import Rate, Settings, parse_rate
from openims.db.models import RateCounter
from openims.db.session import Database

log = logging.getLogger("openims.ratelimit")

_PRUNE_EVERY = 60.0  # seconds between two prunings by one process


class Limit(StrEnum):
    LOGIN_USER = "login_user"  # password logins per user (its id, or the name given when no such user)
    LOGIN_SOURCE = "login_source"  # password logins per source address
    SIGNATURE_KEY = "signature_key"  # failed signatures per access key
    SIGNATURE_SOURCE = "signature_source"  # failed signatures per source address
    TOKEN_USER = "token_user"  # tokens issued per user


def rates_of(settings: Settings) -> dict[Limit, Rate | None]:
    return {
        Limit.LOGIN_USER: parse_rate(settings.rate_login_per_user),
        Limit.LOGIN_SOURCE: parse_rate(settings.rate_login_per_source),
        Limit.SIGNATURE_KEY: parse_rate(settings.rate_signature_failures_per_key),
        Limit.SIGNATURE_SOURCE: parse_rate(settings.rate_signature_failures_per_source),
        Limit.TOKEN_USER: parse_rate(settings.rate_tokens_per_user),
    }


@dataclass(frozen=True)
class Refusal:
    """A limit reached: which one, and the seconds until its window ends (Retry-After)."""

    limit: Limit
    retry_after: int

    @property
    def message(self) -> str:
        what = {
            Limit.LOGIN_USER: "Too many login attempts for this user",
            Limit.LOGIN_SOURCE: "Too many login attempts from this address",
            Limit.SIGNATURE_KEY: "Too many failed signatures with this access key",
            Limit.SIGNATURE_SOURCE: "Too many failed signatures from this address",
            Limit.TOKEN_USER: "Too many tokens issued for this user",
        }[self.limit]
        return f"{what}; try again in {self.retry_after} s."


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class RateLimiter:
    def __init__(self, db: Database, clock: Clock, rates: Mapping[Limit, Rate | None]) -> None:
        self.db = db
        self._clock = clock
        self._rates = dict(rates)
        self._last_prune = 0.0
        self._prune_lock = threading.Lock()

    def enabled(self, limit: Limit) -> bool:
        return self._rates.get(limit) is not None

    def _window(self, rate: Rate) -> tuple[int, int, float]:
        now = self._clock().timestamp()
        start = int(now // rate.seconds) * rate.seconds
        return start, start + rate.seconds, now

    def hit(self, counted: Sequence[tuple[Limit, str | None]]) -> Refusal | None:
        """Count one more for each (limit, key) and say whether any is now past its limit.

        Keys that are None and limits that are off are skipped; a store failure refuses nothing.
        """
        items = [(limit, key, rate) for limit, key in counted
                 if key is not None and (rate := self._rates.get(limit)) is not None]
        if not items:
            return None
        refusal: Refusal | None = None
        try:
            with self.db.transaction() as session:
                insert = sqlite.insert if self.db.is_sqlite else postgresql.insert
                for limit, key, rate in items:
                    start, end, now = self._window(rate)
                    stmt = (insert(RateCounter)
                            .values(kind=limit.value, key=digest(key), window_start=start, window_end=end, count=1)
                            .on_conflict_do_update(index_elements=["kind", "key", "window_start"],
                                                   set_={"count": RateCounter.count + 1})
                            .returning(RateCounter.count))
                    count = session.execute(stmt).scalar_one()
                    if count > rate.count:
                        refusal = _worse(refusal, Refusal(limit, _retry_after(end, now)))
        except Exception:  # the limiter must never fail the request it guards
            metrics.RATE_LIMIT_ERRORS.inc()
            log.warning("rate limits: counting %s failed; the request is let through",
                        ", ".join(limit.value for limit, _, _ in items), exc_info=True)
            return None
        self._maybe_prune()
        return refusal

    def over(self, checked: Sequence[tuple[Limit, str | None]]) -> Refusal | None:
        """Whether any (limit, key) already reached its limit (a read; counts nothing)."""
        items = [(limit, key, rate) for limit, key in checked
                 if key is not None and (rate := self._rates.get(limit)) is not None]
        if not items:
            return None
        windows = {(limit.value, digest(key)): (self._window(rate), rate, limit) for limit, key, rate in items}
        conditions = [and_(RateCounter.kind == kind, RateCounter.key == key, RateCounter.window_start == w[0])
                      for (kind, key), (w, _, _) in windows.items()]
        try:
            with self.db.transaction(readonly=True) as session:
                rows = session.execute(select(RateCounter.kind, RateCounter.key, RateCounter.count)
                                       .where(or_(*conditions))).all()
        except Exception:  # as in hit()
            metrics.RATE_LIMIT_ERRORS.inc()
            log.warning("rate limits: reading the counters failed; the request is let through", exc_info=True)
            return None
        refusal: Refusal | None = None
        for kind, key, count in rows:
            (_, end, now), rate, limit = windows[(kind, key)]
            if count >= rate.count:
                refusal = _worse(refusal, Refusal(limit, _retry_after(end, now)))
        return refusal

    def _maybe_prune(self) -> None:
        """Delete the windows that ended, at most once a minute per process (best effort)."""
        now = time.monotonic()
        if now - self._last_prune < _PRUNE_EVERY or not self._prune_lock.acquire(blocking=False):
            return
        try:
            self._last_prune = now
            cutoff = int(self._clock().timestamp())
            with self.db.transaction() as session:
                session.execute(delete(RateCounter).where(RateCounter.window_end <= cutoff))
        except Exception:  # pruning again in a minute is as good
            log.warning("rate limits: pruning ended windows failed", exc_info=True)
        finally:
            self._prune_lock.release()


def _retry_after(window_end: int, now: float) -> int:
    return max(1, math.ceil(window_end - now))


def _worse(a: Refusal | None, b: Refusal) -> Refusal:
    return b if a is None or b.retry_after > a.retry_after else a

"""Engine and session factory; one place decides how transactions begin and end, and how long
anything waits for the database.

Write transactions are short and never wait for anything but the database (docs/architecture.md,
"Transactions and the write lane"):

- On SQLite a database has one writer at a time. The process makes that explicit with a write
  engine whose pool holds a single connection — the *write lane*: a write transaction takes it at
  its first statement (then ``BEGIN IMMEDIATE``) and gives it back at commit or rollback, so writers
  of this process queue for it in order instead of spinning in SQLite's busy handler. Writers of
  other processes on the same file (an ``openims worker``, a CLI command) meet at SQLite's own lock,
  bounded by the same busy timeout. Reads go through their own engine and never wait for writers (WAL).
- On PostgreSQL a transaction holds a pooled connection; the pool waits at most as long.
- Whoever cannot get the database within ``busy_timeout`` seconds gets ``ServiceUnavailable``
  (a request: 503 with Retry-After), never an indefinite wait. Background work (the worker, the
  upload sweep) asks ``transaction(retry_for=…)`` to retry the *start* of a transaction with
  backoff: nothing has run yet at that point, so retrying it is always safe.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from openims.backoff import Backoff
from openims.errors import ServiceUnavailable

DEFAULT_BUSY_TIMEOUT = 10.0
_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary codes; extended codes carry them in the low byte)


class NestedWrite(RuntimeError):
    """A thread that holds the write lane asked for it again: it would wait for itself. A bug."""


class _WriteLane(QueuePool):
    """The SQLite write engine's pool: one connection, so one write transaction at a time per process.

    A thread that already holds it and opens a second write transaction would wait out the whole
    timeout for itself; it is refused at once instead, so tests find such code.
    """

    def __init__(self, creator: Any, **kw: Any) -> None:
        kw.update(pool_size=1, max_overflow=0)
        super().__init__(creator, **kw)
        self.holder: int | None = None
        event.listen(self, "checkout", self._taken)
        event.listen(self, "checkin", self._given_back)

    def connect(self) -> Any:
        if self.holder == threading.get_ident():
            raise NestedWrite("this thread already holds the write lane: a second write transaction inside "
                              "the first would wait for itself")
        return super().connect()

    def _taken(self, *_: Any) -> None:
        self.holder = threading.get_ident()

    def _given_back(self, *_: Any) -> None:
        self.holder = None


def unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """The error to answer when ``exc`` means "the database could not be had in time", else None.

    Busy or locked SQLite, an exhausted pool, an unreachable or restarting PostgreSQL (and its
    deadlock / serialisation aborts) are passing conditions: the caller may repeat the request.
    Anything else (a constraint, a bug in a statement) is not.
    """
    if isinstance(exc, ServiceUnavailable):
        return exc
    if isinstance(exc, sa_exc.TimeoutError):
        return ServiceUnavailable("The service is busy: the database could not be had in time. Try again shortly.")
    if isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig
        if isinstance(orig, sqlite3.OperationalError):
            code = getattr(orig, "sqlite_errorcode", None)
            if code is not None and code & 0xFF in _SQLITE_BUSY:
                return ServiceUnavailable("The service is busy: the database is locked by another process. "
                                          "Try again shortly.")
            return None
        if isinstance(exc, sa_exc.OperationalError) or exc.connection_invalidated:
            return ServiceUnavailable("The database is unavailable at the moment. Try again shortly.")
    return None


def after_commit(session: Session, action: Callable[[], object]) -> None:
    """Run ``action`` once ``session`` has committed, never if it rolls back.

    For side effects outside the database (deleting files, waking a worker, refreshing a cache):
    they happen only for what was committed, and after the write lane has been given back.
    """
    actions: list[Callable[[], object]] = session.info.setdefault("after_commit", [])
    if action not in actions:
        actions.append(action)


def serialized(session: Session, name: str) -> None:
    """Hold a database-wide lock named ``name`` until the session's transaction ends.

    For work that processes started at once must not do twice (first-start bootstrap). SQLite's write
    transactions are serial already (BEGIN IMMEDIATE); PostgreSQL takes an advisory transaction lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"openims:{name}"})


def _sqlite_pragmas(busy_ms: int) -> Any:
    def apply(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL lets readers proceed while a writer writes; the busy timeout bounds the wait for a
        # writer of another process (within this process, writers queue for the lane instead).
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.close()
    return apply


def _sqlite_begin(conn: Any) -> None:
    # pysqlite's implicit BEGIN is deferred; BEGIN IMMEDIATE takes the write lock up front so
    # read-then-write transactions (job claims, quota checks) serialise instead of failing with
    # SQLITE_BUSY_SNAPSHOT when another process wrote in between.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    def __init__(self, url: str, *, echo: bool = False, busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
                 pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.busy_timeout = busy_timeout
        kwargs: dict[str, Any] = {"echo": echo, "pool_timeout": busy_timeout}
        if self.is_sqlite:
            connect = {"check_same_thread": False, "timeout": busy_timeout, "isolation_level": None}
            self.engine: Engine = create_engine(url, poolclass=_WriteLane, connect_args=connect, **kwargs)
            # Readers: a deferred BEGIN — in fact none at all: each statement reads a consistent
            # snapshot on its own, and a request saves the BEGIN/COMMIT round trips. Connections are
            # cheap, so the pool is wide enough for every thread that may read at once.
            self.read_engine: Engine = create_engine(url, connect_args=connect, pool_size=8, max_overflow=72,
                                                     **kwargs)
            pragmas = _sqlite_pragmas(int(busy_timeout * 1000))
            event.listen(self.engine, "connect", pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
            event.listen(self.read_engine, "connect", pragmas)
        else:
            # A transaction holds its connection only while it runs, and never waits for a thread
            # while it does (api.deps), so the pool bounds concurrency without deadlock; past it, a
            # caller waits at most busy_timeout.
            # lock_timeout is PostgreSQL's busy timeout: a statement waiting for a row or table lock
            # gives up after it (an OperationalError, answered 503) instead of waiting forever.
            options = {"options": f"-c lock_timeout={int(busy_timeout * 1000)}"}
            self.engine = create_engine(url, pool_size=pool_size, max_overflow=2 * pool_size, pool_pre_ping=True,
                                        connect_args=options, **kwargs)
            self.read_engine = self.engine
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._read_factory = sessionmaker(self.read_engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._read_factory()

    def new_session(self, *, readonly: bool = False) -> Session:
        return self._read_factory() if readonly else self._factory()

    @staticmethod
    def finish(session: Session) -> None:
        """Commit, then run the after-commit actions; roll back if the commit fails."""
        try:
            session.commit()
        except BaseException:
            session.rollback()
            raise
        for action in session.info.pop("after_commit", []):
            action()

    def _begin(self, session: Session, retry_for: float) -> None:
        """Start the transaction now (the lane, BEGIN), retrying a busy database for ``retry_for`` s."""
        deadline = time.monotonic() + retry_for
        backoff = Backoff(first=0.05, cap=2.0)
        while True:
            try:
                session.connection()
                return
            except sa_exc.SQLAlchemyError as exc:
                busy = unavailable(exc)
                session.rollback()
                if busy is None:
                    raise
                delay = backoff.next_delay()
                if time.monotonic() + delay > deadline:
                    raise busy from exc
                time.sleep(delay)

    @contextmanager
    def transaction(self, *, readonly: bool = False, retry_for: float = 0.0) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception.

        ``retry_for`` > 0 (background work): the transaction is started before the body runs, and a
        database that is busy or unreachable at that moment is retried with backoff for that long.
        A passing database failure surfaces as ``ServiceUnavailable`` either way.
        """
        session = self._read_factory() if readonly else self._factory()
        try:
            if retry_for > 0:
                self._begin(session, retry_for)
            yield session
            session.commit()
            # Side effects that must only happen once the data is committed (e.g. deleting files).
            for action in session.info.pop("after_commit", []):
                action()
        except sa_exc.SQLAlchemyError as exc:
            session.rollback()
            busy = unavailable(exc)
            if busy is not None:
                raise busy from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()

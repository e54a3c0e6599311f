"""Engine and session factory; one place decides how transactions begin and end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers proceed while the worker writes; busy_timeout waits for the write lock
    # instead of failing at once.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # pysqlite's implicit BEGIN is deferred; BEGIN IMMEDIATE takes the write lock up front so
    # read-then-write transactions (job claims, quota checks) serialise instead of deadlocking.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30, "isolation_level": None}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: Engine = create_engine(url, **kwargs)
        # Readers get their own engine on SQLite: a deferred BEGIN, so reads never queue for the
        # write lock. On PostgreSQL one engine serves both.
        self.read_engine: Engine = self.engine
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
            self.read_engine = create_engine(url, **kwargs)
            event.listen(self.read_engine, "connect", _sqlite_pragmas)
            # No BEGIN at all for readers: each statement reads a consistent snapshot on its own, and
            # a request saves the BEGIN/COMMIT round trips.
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

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception."""
        session = self._read_factory() if readonly else self._factory()
        try:
            yield session
            session.commit()
            # Side effects that must only happen once the data is committed (e.g. deleting files).
            for action in session.info.pop("after_commit", []):
                action()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()

"""db.session: the SQLite write lane, bounded waits, the "database unavailable" rule, start-of-transaction retries."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from openims.backoff import Backoff
from openims.db import migrate
from openims.db.session import Database, NestedWrite, after_commit, unavailable
from openims.errors import ServiceUnavailable
from tests.conftest import PG


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    path = tmp_path / "openims.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def db(db_file: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{db_file}", busy_timeout=0.5)
    yield database
    database.dispose()


def _hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another process's writer, as far as this Database can tell: a raw sqlite3 connection."""
    started = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        started.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    started.wait(5)
    return t


class TestWriteLane:
    def test_one_write_transaction_at_a_time_in_order(self, db: Database) -> None:
        inside = 0
        overlap = []
        lock = threading.Lock()

        def write(i: int) -> None:
            nonlocal inside
            with db.transaction() as s:
                s.execute(text("select 1"))
                with lock:
                    inside += 1
                    overlap.append(inside)
                time.sleep(0.02)
                with lock:
                    inside -= 1

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert max(overlap) == 1 and len(overlap) == 8

    def test_reads_do_not_wait_for_a_writer(self, db: Database) -> None:
        with db.transaction() as w:
            w.execute(text("select 1"))  # holds the lane
            start = time.monotonic()
            with db.transaction(readonly=True) as r:
                assert r.execute(text("select 1")).scalar() == 1
            assert time.monotonic() - start < 0.3

    def test_a_nested_write_is_refused_at_once(self, db: Database) -> None:
        start = time.monotonic()
        with pytest.raises(NestedWrite), db.transaction() as outer:
            outer.execute(text("select 1"))
            with db.transaction() as inner:
                inner.execute(text("select 1"))
        assert time.monotonic() - start < 0.3  # not the whole busy timeout
        with db.transaction() as s:  # and the lane was given back
            s.execute(text("select 1"))

    def test_waiting_longer_than_the_busy_timeout_is_unavailable(self, db: Database) -> None:
        release = threading.Event()
        holding = threading.Event()

        def hold() -> None:
            with db.transaction() as s:
                s.execute(text("select 1"))
                holding.set()
                release.wait(5)

        t = threading.Thread(target=hold)
        t.start()
        holding.wait(5)
        start = time.monotonic()
        with pytest.raises(ServiceUnavailable), db.transaction() as s:
            s.execute(text("select 1"))
        assert 0.4 < time.monotonic() - start < 2
        release.set()
        t.join()

    def test_another_process_holding_the_lock_is_unavailable_then_fine(self, db: Database, db_file: Path) -> None:
        holder = _hold_write_lock(db_file, 1.2)
        with pytest.raises(ServiceUnavailable, match="locked"), db.transaction() as s:
            s.execute(text("select 1"))
        holder.join()
        with db.transaction() as s:
            s.execute(text("select 1"))

    def test_retry_for_waits_out_a_busy_database(self, db: Database, db_file: Path) -> None:
        holder = _hold_write_lock(db_file, 1.2)  # longer than one busy timeout (0.5 s)
        ran = []
        with db.transaction(retry_for=10) as s:
            s.execute(text("select 1"))
            ran.append(True)
        holder.join()
        assert ran == [True]

    def test_retry_for_gives_up_after_its_budget(self, db: Database, db_file: Path) -> None:
        holder = _hold_write_lock(db_file, 2.5)
        start = time.monotonic()
        with pytest.raises(ServiceUnavailable), db.transaction(retry_for=1.0):
            pytest.fail("the body must not run without the database")
        assert time.monotonic() - start < 2.5
        holder.join()


class TestAfterCommit:
    def test_runs_once_after_commit_and_never_after_rollback(self, db: Database) -> None:
        calls: list[str] = []
        with db.transaction() as s:
            after_commit(s, lambda: calls.append("a"))
            assert calls == []
        assert calls == ["a"]
        with pytest.raises(RuntimeError), db.transaction() as s:
            after_commit(s, lambda: calls.append("b"))
            raise RuntimeError("boom")
        assert calls == ["a"]

    def test_the_same_action_is_registered_once(self, db: Database) -> None:
        calls: list[int] = []

        def action() -> None:
            calls.append(1)

        with db.transaction() as s:
            after_commit(s, action)
            after_commit(s, action)
        assert calls == [1]


class TestUnavailable:
    def test_pool_timeout_and_locked_sqlite_are_passing(self) -> None:
        assert unavailable(sa_exc.TimeoutError("pool")) is not None
        locked = sqlite3.OperationalError("database is locked")
        locked.sqlite_errorcode = 5  # type: ignore[attr-defined]
        assert unavailable(sa_exc.OperationalError("BEGIN", {}, locked)) is not None

    def test_other_sqlite_errors_are_bugs(self) -> None:
        missing = sqlite3.OperationalError("no such table: x")
        missing.sqlite_errorcode = 1  # type: ignore[attr-defined]
        assert unavailable(sa_exc.OperationalError("select", {}, missing)) is None
        assert unavailable(sa_exc.IntegrityError("insert", {}, Exception("unique"))) is None
        assert unavailable(ValueError("x")) is None

    def test_an_answer_carries_retry_after(self) -> None:
        answer = unavailable(sa_exc.TimeoutError("pool"))
        assert answer is not None and answer.status == 503 and answer.retry_after == 1 and answer.code == "IMG.0060"


class TestBackoff:
    def test_grows_to_its_cap_with_jitter_and_resets(self) -> None:
        b = Backoff(first=0.1, cap=1.0)
        delays = [b.next_delay() for _ in range(8)]
        assert 0.05 <= delays[0] <= 0.1
        assert all(d <= 1.0 for d in delays) and delays[-1] >= 0.5
        b.reset()
        assert b.next_delay() <= 0.1


@pytest.mark.skipif(not PG, reason="PostgreSQL not reachable")
class TestPostgresWaits:
    @pytest.fixture
    def pg(self, pg_database: str) -> Iterator[Database]:
        database = Database(pg_database, busy_timeout=0.5, pool_size=1)  # at most 1 + 2 connections
        yield database
        database.dispose()

    def test_an_exhausted_pool_is_unavailable_not_a_hang(self, pg: Database) -> None:
        release = threading.Event()
        held = threading.Barrier(4)

        def hold() -> None:
            with pg.transaction() as s:
                s.execute(text("select 1"))
                held.wait(5)
                release.wait(5)

        threads = [threading.Thread(target=hold) for _ in range(3)]
        for t in threads:
            t.start()
        held.wait(5)
        start = time.monotonic()
        with pytest.raises(ServiceUnavailable), pg.transaction() as s:
            s.execute(text("select 1"))
        assert time.monotonic() - start < 2
        release.set()
        for t in threads:
            t.join()
        with pg.transaction() as s:  # and it recovers
            assert s.execute(text("select 1")).scalar() == 1

    def test_a_lock_held_too_long_is_unavailable(self, pg: Database, pg_database: str) -> None:
        other = Database(pg_database)
        try:
            with other.transaction() as holder:
                holder.execute(text("LOCK TABLE jobs IN EXCLUSIVE MODE"))
                start = time.monotonic()
                with pytest.raises(ServiceUnavailable), pg.transaction() as s:
                    s.execute(text("DELETE FROM jobs WHERE id = 'none'"))
                assert time.monotonic() - start < 2  # lock_timeout = the busy timeout
        finally:
            other.dispose()

    def test_serialization_failures_and_deadlocks_are_passing(self, pg_database: str) -> None:
        """Real aborts from PostgreSQL: a serialization failure and a deadlock are "try again" (503, and
        retried by workers); a unique violation is not."""
        one, two = Database(pg_database), Database(pg_database)
        try:
            with one.transaction() as s:
                s.execute(text("CREATE TABLE IF NOT EXISTS t_conflict (id int primary key, v int)"))
                s.execute(text("DELETE FROM t_conflict"))
                s.execute(text("INSERT INTO t_conflict VALUES (1, 0), (2, 0)"))
            a, b = one.new_session(), two.new_session()
            a.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            a.execute(text("SELECT v FROM t_conflict WHERE id = 1")).all()  # the snapshot is taken
            b.execute(text("UPDATE t_conflict SET v = 1 WHERE id = 1"))
            b.commit()
            with pytest.raises(sa_exc.OperationalError) as serialization:
                a.execute(text("UPDATE t_conflict SET v = 2 WHERE id = 1"))
            a.rollback()
            assert "could not serialize" in str(serialization.value)
            assert unavailable(serialization.value) is not None

            errors: list[BaseException] = []
            barrier = threading.Barrier(2)

            def lock(first: int, second: int, db: Database) -> None:
                try:
                    with db.transaction() as s:
                        s.execute(text("UPDATE t_conflict SET v = v + 1 WHERE id = :i"), {"i": first})
                        barrier.wait(5)
                        s.execute(text("UPDATE t_conflict SET v = v + 1 WHERE id = :i"), {"i": second})
                except ServiceUnavailable as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=lock, args=(1, 2, one)), threading.Thread(target=lock, args=(2, 1, two))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert len(errors) == 1 and "unavailable" in errors[0].message  # PostgreSQL broke the deadlock

            with pytest.raises(sa_exc.IntegrityError) as duplicate, one.transaction() as s:
                s.execute(text("INSERT INTO t_conflict VALUES (1, 0)"))
            assert unavailable(duplicate.value) is None
        finally:
            with one.transaction() as s:
                s.execute(text("DROP TABLE IF EXISTS t_conflict"))
            one.dispose()
            two.dispose()

"""worker.lease.Heartbeat: renews on a timer, rides out a busy database, stops when the lease is lost."""

from __future__ import annotations

import time

from sqlalchemy import exc as sa_exc

from openims.catalog.jobs import LeaseLost
from openims.worker.lease import Heartbeat


def _wait(predicate: object, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_renews_until_the_work_ends() -> None:
    beats: list[float] = []
    with Heartbeat(lambda: beats.append(time.monotonic()), interval=0.02, lost=(LeaseLost,), name="t"):
        _wait(lambda: len(beats) >= 3)
    count = len(beats)
    time.sleep(0.1)
    assert count >= 3 and len(beats) == count  # nothing after the block


def test_a_busy_database_does_not_end_it() -> None:
    calls = []

    def renew() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise sa_exc.TimeoutError("pool")  # passing: retried with backoff

    with Heartbeat(renew, interval=0.02, lost=(LeaseLost,), name="t", max_backoff=0.05) as beat:
        _wait(lambda: len(calls) >= 4)
        assert not beat.lost_event.is_set()
    assert len(calls) >= 4


def test_a_lost_lease_ends_it_and_says_so() -> None:
    calls = []

    def renew() -> None:
        calls.append(1)
        raise LeaseLost("job")

    with Heartbeat(renew, interval=0.02, lost=(LeaseLost,), name="t") as beat:
        _wait(beat.lost_event.is_set)
        time.sleep(0.1)
    assert beat.lost_event.is_set() and calls == [1]

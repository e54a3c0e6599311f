"""Failed-authentication traces per source address (openims.audit.throttle)."""

from __future__ import annotations

from openims.audit.throttle import MAX_SOURCES, Decision, FailureThrottle
from openims.config import Rate


def test_past_the_rate_failures_are_counted_and_told_with_the_next_window() -> None:
    throttle = FailureThrottle(Rate(3, 60))
    t = 6_000.0  # the start of a window
    assert [throttle.decide("10.0.0.1", t + i) for i in range(3)] == [Decision(True)] * 3
    assert throttle.decide("10.0.0.1", t + 3) == Decision(False, first_left_out=True)
    assert throttle.decide("10.0.0.1", t + 59) == Decision(False)
    assert throttle.decide("10.0.0.2", t + 59) == Decision(True)  # another source has its own count
    assert throttle.decide("10.0.0.1", t + 60) == Decision(True, left_out_before=2)
    assert throttle.decide("10.0.0.1", t + 61) == Decision(True)


def test_off_writes_every_one() -> None:
    throttle = FailureThrottle(None)
    assert all(throttle.decide("10.0.0.1", 1.0).write for _ in range(1000))


def test_a_flood_of_addresses_is_bounded() -> None:
    throttle = FailureThrottle(Rate(1, 60))
    for i in range(MAX_SOURCES * 3):
        throttle.decide(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 60.0 + i % 50)
    assert len(throttle._windows) <= MAX_SOURCES
    # A source seen in this window keeps its count while it is still remembered.
    throttle.decide("192.0.2.1", 100.0)
    assert throttle.decide("192.0.2.1", 100.5) == Decision(False, first_left_out=True)

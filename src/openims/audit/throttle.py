"""How many failed-authentication traces one source address gets written, per process.

Every failed authentication is traced (``api.auditing``), and each trace is a database write: a client
sending bad tokens as fast as it can would turn each of its requests into a write, and fill the trail
with copies of one fact. Past ``rate`` traces in a window, a source's further failures are only
counted: the caller logs the first one left out of a window, and how many were when that source's next
trace is written (``Decision``), and counts them in a metric.

Counted in memory: the bound is per process (N API processes write at most N times the rate), which is
what protects the database; sharing the count would itself cost a write per failure.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from openims.config import Rate

# Sources remembered at most; past it, the windows that ended are forgotten first (a spoofed flood of
# addresses cannot grow the table without bound).
MAX_SOURCES = 10_000


@dataclass(frozen=True)
class Decision:
    write: bool
    # Not written: the first failure of this source left out in this window.
    first_left_out: bool = False
    # Written: how many of this source's failures its previous window left out.
    left_out_before: int = 0


@dataclass
class _Window:
    start: float
    count: int = 0
    suppressed: int = 0


class FailureThrottle:
    def __init__(self, rate: Rate | None) -> None:
        self.rate = rate
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def decide(self, source: str | None, now: float) -> Decision:
        """Whether to write the trace of a failed authentication from ``source`` at ``now`` (seconds)."""
        if self.rate is None:
            return Decision(True)
        key = source or "-"
        start = now - now % self.rate.seconds
        with self._lock:
            window = self._windows.get(key)
            carried = 0
            if window is None or window.start != start:
                carried = window.suppressed if window is not None else 0
                if window is None and len(self._windows) >= MAX_SOURCES:
                    self._forget(start)
                window = self._windows[key] = _Window(start)
            if window.count >= self.rate.count:
                window.suppressed += 1
                return Decision(False, first_left_out=window.suppressed == 1)
            window.count += 1
            return Decision(True, left_out_before=carried)

    def _forget(self, current: float) -> None:
        ended = [k for k, w in self._windows.items() if w.start != current]
        for key in ended or list(self._windows)[: MAX_SOURCES // 10]:
            del self._windows[key]

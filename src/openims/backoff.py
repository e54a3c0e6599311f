"""Exponential backoff with jitter: the one retry schedule of the process.

Used wherever a background loop (job claims, heartbeats, the upload sweep) or the start of a
transaction waits out a busy or unreachable database. Jitter keeps several workers that failed
at the same moment from retrying in lockstep.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, *, first: float = 0.05, cap: float = 5.0, factor: float = 2.0) -> None:
        self.first, self.cap, self.factor = first, cap, factor
        self.failures = 0

    def next_delay(self) -> float:
        """The wait before the next attempt: uniform in [c/2, c], c = min(cap, first * factor**failures)."""
        ceiling = min(self.cap, self.first * self.factor ** self.failures)
        self.failures += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0

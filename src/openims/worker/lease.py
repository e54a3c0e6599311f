"""The one heartbeat: a thread that renews a lease on a timer while slow work runs.

Everything that holds work under a lease uses it — a job (``Worker.run_one``: the job row's
``lease_owner``/``lease_expires_at``) and a direct upload while its data is converted
(``worker.uploads``: the image's ``upload_holder``/``upload_lease_expires_at``). Only what
"renew" means differs, so that is what callers pass.

A renewal that fails because the database is busy or away is retried with backoff: the lease
outlasts a few missed beats, and a beat that comes too late finds the lease lost. A renewal that
finds the lease lost (``lost`` exceptions) ends the heartbeat and sets ``lost_event``; the work
notices at its next check and stops.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from openims.backoff import Backoff
from openims.db.session import unavailable

log = logging.getLogger("openims.worker")


def log_failure(what: str, exc: BaseException) -> None:
    """A failed background step: a warning when the database was busy or away, else with its traceback."""
    busy = unavailable(exc)
    if busy is not None:
        log.warning("%s failed, retrying: %s", what, busy.message)
    else:
        log.error("%s failed, retrying", what, exc_info=exc)


class Heartbeat:
    def __init__(self, renew: Callable[[], None], *, interval: float, lost: tuple[type[BaseException], ...],
                 name: str, max_backoff: float | None = None) -> None:
        self._renew = renew
        self._interval = interval
        self._lost = lost
        self._name = name
        self._backoff = Backoff(first=interval, cap=max_backoff or interval * 4)
        self._stop = threading.Event()
        self.lost_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        wait = self._interval
        while not self._stop.wait(wait):
            try:
                self._renew()
                self._backoff.reset()
                wait = self._interval
            except self._lost:
                self.lost_event.set()
                return
            except Exception as exc:
                log_failure(f"renewing the lease ({self._name})", exc)
                wait = self._backoff.next_delay()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)

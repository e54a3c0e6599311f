"""How a handler ends a job other than by finishing it: failed for good, or handed back to run later; and
the count of the qemu-img failures behind a failure."""

from __future__ import annotations

from openims import metrics
from openims.imaging import ImageRejected


class JobFailed(Exception):
    """The job cannot succeed; ``code`` and ``reason`` go to the job's error_code / fail_reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class JobDeferred(Exception):
    """The job cannot run yet (e.g. no scratch space): back to INIT, ``reason`` shown in its body,
    claimed again after ``delay`` seconds. Raised before the job changed anything; not an attempt."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class WorkerStopping(Exception):
    """The worker is shutting down and its grace period is over: the job is handed back to run elsewhere."""


def count_qemu_failure(exc: BaseException) -> None:
    """Count a failure of qemu-img (``ImageRejected.qemu``) found in ``exc`` or what it was raised from.

    Counted at the worker's boundary (``runner``, and ``uploads`` for direct uploads, which run the same
    pipeline in the API process) because ``imaging`` knows nothing of metrics.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ImageRejected):
            if seen.qemu is not None:
                metrics.QEMU_FAILURES.labels(seen.qemu.value).inc()
            return
        seen = seen.__cause__

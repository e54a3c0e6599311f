"""qemu-img failures are counted by cause where the worker turns them into job failures."""

from __future__ import annotations

from openims import metrics
from openims.imaging import ConversionFailed, ImageRejected, QemuCause
from openims.worker.outcomes import JobFailed, count_qemu_failure


def _count(cause: str) -> float:
    return metrics.QEMU_FAILURES.labels(cause)._value.get()


def _failed_from(exc: Exception) -> JobFailed:
    try:
        raise JobFailed("IMG.0057", "refused") from exc
    except JobFailed as failed:
        return failed


def test_counted_by_cause_through_the_job_failure() -> None:
    before = _count("timeout")
    count_qemu_failure(_failed_from(ConversionFailed("timed out", qemu=QemuCause.TIMEOUT)))
    assert _count("timeout") == before + 1


def test_our_own_refusals_are_not_qemu_failures() -> None:
    before = {c.value: _count(c.value) for c in QemuCause}
    count_qemu_failure(_failed_from(ImageRejected("IMG.0057", "the image file is empty")))
    count_qemu_failure(JobFailed("IMG.0144", "deleted"))
    assert {c.value: _count(c.value) for c in QemuCause} == before

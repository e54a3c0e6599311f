"""What a handler gets: the runtime, its job, fenced transactions and progress reporting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from openims import metrics
from openims.catalog import jobs
from openims.catalog.jobs import LeaseLost
from openims.db.models import Job
from openims.db.session import after_commit
from openims.objects.scratch import ScratchFull, ScratchTooSmall
from openims.runtime import Runtime
from openims.worker.outcomes import JobDeferred, JobFailed, WorkerStopping

# A job waiting for scratch space looks again this often.
SCRATCH_WAIT = 5.0


class JobContext:
    def __init__(self, rt: Runtime, job: Job, worker_id: str) -> None:
        self.rt = rt
        self.job = job
        self.worker_id = worker_id
        self.lost = threading.Event()
        # Set when the worker shuts down past its grace period: the work stops at its next progress report.
        self.stopping = threading.Event()
        # (error_code, fail_reason) once the job has failed: what revert() reports on sub-jobs.
        self.failure: tuple[str, str] | None = None
        self._percent = 0.0
        self._last_report = 0.0
        self._lock = threading.Lock()

    @property
    def attempt_key(self) -> str:
        """Names this attempt's temp files: a stale attempt (a worker paused past its lease) that wakes up
        and cleans up after itself can never remove the files of the attempt that took over. ``clear_temp``
        by job id still finds every attempt's files."""
        return f"{self.job.id}-{self.job.attempts:x}"

    @property
    def lease_seconds(self) -> int:
        return self.rt.settings.job_lease_seconds

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(self.job.id)

    def confirm_lease(self) -> None:
        """Ask the database whether this worker still holds the job (LeaseLost if not): right before
        publishing data, which must never replace the data of an attempt that took over."""
        with self.fenced():
            pass

    @contextmanager
    def fenced(self) -> Iterator[tuple[Session, Job]]:
        """A transaction that only commits if this worker still holds the lease.

        A busy or unreachable database is waited out (with backoff) for up to one lease: longer,
        and the lease may have passed to another worker anyway.
        """
        self.check()
        with self.rt.db.transaction(retry_for=self.lease_seconds) as s:
            yield s, jobs.fenced(s, self.job.id, self.worker_id)

    @contextmanager
    def scratch(self, size: int) -> Iterator[Path | None]:
        """A private scratch directory with ``size`` bytes reserved for the block (None when nothing is needed).

        No space now: the job is handed back to wait (JobDeferred); more than there can ever be: it fails.
        """
        if size <= 0:
            yield None
            return
        owner = f"{self.job.id}-{self.job.attempts}"
        try:
            reservation = self.rt.scratch.try_reserve(owner, size)
        except ScratchTooSmall as exc:
            raise JobFailed("IMG.0059", f"The image file cannot be processed here: it {exc}.") from exc
        except ScratchFull as exc:
            raise JobDeferred(str(exc), SCRATCH_WAIT) from exc
        try:
            yield reservation.path
        finally:
            self.rt.scratch.release(reservation)

    def remove_data_after_commit(self, session: Session, image_ids: list[str]) -> None:
        """Once ``session`` commits: delete these images' stored data and this job's temp files.

        After the commit that removed the images, so no row points at data that is gone, and the
        deletes (slow for big files) hold no transaction.
        """
        def remove() -> None:
            for image_id in image_ids:
                self.rt.images.delete(image_id)
            self.rt.images.clear_temp(self.job.id)

        after_commit(session, remove)

    def count_imported(self, session: Session, size: int) -> None:
        """Count ``size`` bytes as imported by this job (``openims_imported_bytes``) once ``session`` commits."""
        job_type = self.job.job_type
        after_commit(session, lambda: metrics.IMPORTED_BYTES.labels(job_type).inc(size))

    def renew(self) -> None:
        with self._lock:
            entities = {**self.job.entities, "process_percent": round(self._percent, 1)}
            self.job.entities = entities
        try:
            jobs.renew(self.rt.db, self.job.id, self.worker_id, self.lease_seconds, self.rt.clock(), entities)
        except LeaseLost:
            self.lost.set()
            raise

    def progress(self, percent: float) -> None:
        """Record progress in memory (the heartbeat writes it). Raises LeaseLost to abort the work.

        Called from the converting/hashing thread: it must stay cheap, so no database write here.
        Raises WorkerStopping once the worker's shutdown grace is over.
        """
        self.check()
        if self.stopping.is_set():
            raise WorkerStopping(self.job.id)
        with self._lock:
            self._percent = max(self._percent, min(100.0, percent))

"""The worker loop: claim → heartbeat → handler → done, in threads of ``openims serve`` or ``openims worker``.

Beside the job threads, one sweeper thread per worker process gives back images whose direct upload
died with its process (``catalog.uploads.recover_abandoned``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid

from openims import logs, metrics
from openims.audit.trail import job_trace
from openims.backoff import Backoff
from openims.catalog import images, jobs, uploads
from openims.catalog.jobs import MAX_ATTEMPTS, CorruptPayload, JobStatus, LeaseLost
from openims.db.models import Job
from openims.db.session import unavailable
from openims.errors import ServiceUnavailable
from openims.objects.base import StorageUnavailable
from openims.runtime import Runtime
from openims.worker.context import JobContext
from openims.worker.lease import Heartbeat, log_failure
from openims.worker.outcomes import JobDeferred, JobFailed, WorkerStopping, count_qemu_failure
from openims.worker.registry import HANDLERS

log = logging.getLogger("openims.worker")

# The sweep for abandoned uploads runs at most this far apart (and twice per upload lease when shorter).
MAX_SWEEP_INTERVAL = 30.0


# After the grace, how long a shutdown waits for handed-back jobs to unwind (qemu-img killed, files removed).
HAND_BACK_TIMEOUT = 15.0

# How often the image store is swept for data no image points to.
ORPHAN_SWEEP_INTERVAL = 600.0

# A worker that cannot reach the database retries at most this far apart.
MAX_DB_BACKOFF = 10.0

# A job that met an unavailable object store runs again after this long, doubling per attempt, and
# fails on its STORAGE_ATTEMPTS-th.
STORAGE_ATTEMPTS = 3
STORAGE_RETRY_FIRST = 2.0
STORAGE_RETRY_CAP = 30.0
# A job interrupted by the database (connection lost, a restart, a serialisation failure or deadlock)
# runs again after this long, doubling per attempt; MAX_ATTEMPTS bounds the attempts.
DATABASE_RETRY_FIRST = 1.0
DATABASE_RETRY_CAP = 30.0


def retry_delay(attempt: int, first: float, cap: float) -> float:
    return min(cap, first * 2.0 ** max(0, attempt - 1))


def sweep_interval(upload_lease_seconds: float) -> float:
    return min(MAX_SWEEP_INTERVAL, upload_lease_seconds / 2)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(self, rt: Runtime, *, threads: int = 1, poll_interval: float = 0.5) -> None:
        self.rt = rt
        self.threads = threads
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._job_threads: list[threading.Thread] = []
        # The jobs running now, so that a shutdown past its grace can hand them back.
        self._active: dict[str, JobContext] = {}
        self._active_lock = threading.Lock()

    def start(self) -> None:
        for i in range(self.threads):
            t = threading.Thread(target=self._loop, name=f"openims-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
            self._job_threads.append(t)
        # One sweeper, not one per job thread: a sweep is one indexed query, and a job thread busy
        # with a long import would delay it.
        sweeper = threading.Thread(target=self._sweep_loop, name="openims-upload-sweep", daemon=True)
        sweeper.start()
        self._threads.append(sweeper)

    def stop(self, grace: float = 10.0) -> None:
        """Claim nothing more; let running jobs finish for up to ``grace`` seconds, then hand back the
        rest (their qemu-img killed, their scratch removed, their lease released for another worker)."""
        self._stop.set()
        self.rt.job_submitted.set()
        deadline = time.monotonic() + grace
        for t in self._job_threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._active_lock:
            running = list(self._active.values())
        for ctx in running:
            log.warning("job %s: still running after the %.0f s shutdown grace; handing it back", ctx.job.id, grace)
            ctx.stopping.set()
        for t in self._threads:
            t.join(HAND_BACK_TIMEOUT)

    def _loop(self) -> None:
        worker_id = worker_identity()
        backoff = Backoff(first=self.poll_interval, cap=MAX_DB_BACKOFF)
        while not self._stop.is_set():
            try:
                job = jobs.claim(self.rt.db, worker_id, self.rt.settings.job_lease_seconds, self.rt.clock())
            except Exception as exc:
                log_failure("claiming a job", exc)
                self._stop.wait(backoff.next_delay())
                continue
            backoff.reset()
            if job is None:
                if self.rt.job_submitted.wait(self.poll_interval):
                    self.rt.job_submitted.clear()
                continue
            try:
                self.run_one(job, worker_id)
            except Exception:
                # run_one handles what a job can raise; whatever escapes must not end this thread.
                log.exception("job %s: the worker failed around it; its lease will lapse and it is retried", job.id)

    def _sweep_loop(self) -> None:
        # First sweep at start: after a restart, uploads the previous process held are recovered
        # as soon as their leases lapse, and the scratch space of dead processes is freed.
        interval = sweep_interval(self.rt.settings.upload_lease_seconds)
        backoff = Backoff(first=1.0, cap=interval)
        next_orphan_sweep = 0.0
        try:
            self.rt.scratch.sweep()
        except OSError as exc:
            log_failure("sweeping the scratch area", exc)
        while True:
            wait = interval
            try:
                self.sweep_uploads()
                if time.monotonic() >= next_orphan_sweep:
                    self.sweep_orphans()
                    self.prune_audit()
                    next_orphan_sweep = time.monotonic() + ORPHAN_SWEEP_INTERVAL
                backoff.reset()
            except Exception as exc:
                log_failure("sweeping abandoned uploads and orphaned data", exc)
                wait = backoff.next_delay()
            if self._stop.wait(wait):
                return

    def sweep_orphans(self) -> int:
        """Remove stored data no image points to, older than the grace period (crash leftovers); how many."""
        older_than = self.rt.clock() - dt.timedelta(seconds=self.rt.settings.orphan_grace_seconds)
        with self.rt.db.session() as s:
            known = images.stored_locations(s)
        removed = self.rt.images.orphans(lambda location: location in known, older_than)
        if removed:
            log.warning("removed %d stored object(s) no image points to (left by an interrupted job or upload)",
                        removed)
        return removed

    def prune_audit(self) -> int:
        """Delete the audit traces older than OPENIMS_AUDIT_RETENTION_DAYS (with the orphan sweep); how many."""
        removed = self.rt.audit.prune()
        if removed:
            log.info("removed %d audit trace(s) older than %d days", removed, self.rt.audit.retention_days)
        return removed

    def sweep_uploads(self) -> int:
        """Return images whose upload lease lapsed to ``queued`` and remove their temp files; how many."""
        return len(uploads.recover_abandoned(self.rt.db, self.rt.images, self.rt.clock()))

    def run_until_idle(self, worker_id: str | None = None) -> int:
        """Run jobs in the calling thread until none is runnable (tests, ``openims worker --once``).

        Abandoned uploads are swept once first, as the sweeper thread of ``start`` would.
        """
        worker_id = worker_id or worker_identity()
        self.sweep_uploads()
        count = 0
        while (job := jobs.claim(self.rt.db, worker_id, self.rt.settings.job_lease_seconds,
                                 self.rt.clock())) is not None:
            self.run_one(job, worker_id)
            count += 1
        return count

    def run_one(self, job: Job, worker_id: str) -> None:
        ctx = JobContext(self.rt, job, worker_id)
        with self._active_lock:
            self._active[job.id] = ctx
        try:
            # Every line logged while the job runs (in this thread) names it.
            with logs.bound(logs.LogContext(job_id=job.id, job_type=job.job_type)):
                self._run(ctx, job)
        finally:
            with self._active_lock:
                self._active.pop(job.id, None)

    def _run(self, ctx: JobContext, job: Job) -> None:
        handler = HANDLERS.get(job.job_type)
        log.info("job %s (%s) attempt %d started", job.id, job.job_type, job.attempts)
        metrics.JOBS_STARTED.labels(job.job_type).inc()
        self.rt.audit.record(job_trace(job, "startJob", self.rt.clock()))
        interrupted = metrics.JOBS_INTERRUPTED
        # Often enough that pollers see progress move, well within the lease; ctx.renew marks the
        # context lost when the lease is, and the handler stops at its next progress report.
        lease = ctx.lease_seconds
        heartbeat = Heartbeat(ctx.renew, interval=min(1.0, lease / 3), lost=(LeaseLost,), max_backoff=lease / 4,
                              name=f"openims-heartbeat-{job.id[:8]}")
        with heartbeat:
            try:
                if handler is None:
                    raise JobFailed("IMG.0061", f"no handler for job type {job.job_type}")
                if job.attempts > MAX_ATTEMPTS:
                    raise JobFailed("IMG.0061", f"the job was interrupted {MAX_ATTEMPTS} times and is abandoned")
                handler.run(ctx)
                log.info("job %s finished", job.id)
                self.rt.audit.record(job_trace(job, "endJob", self.rt.clock(), outcome="SUCCESS"))
            except LeaseLost:
                log.warning("job %s: lease lost; another worker takes over", job.id)
                interrupted.labels(job.job_type, "lease_lost").inc()
            except ServiceUnavailable as exc:
                interrupted.labels(job.job_type, "database").inc()
                self._database_failed(ctx, exc.message)
            except JobFailed as exc:
                log.info("job %s failed: %s %s", job.id, exc.code, exc.reason)
                count_qemu_failure(exc)
                self._fail(ctx, handler, exc.code, exc.reason)
            except JobDeferred as exc:
                log.info("job %s waits %.0f s: %s", job.id, exc.delay, exc.reason)
                interrupted.labels(job.job_type, "deferred").inc()
                self._hand_back(ctx, exc)
            except StorageUnavailable as exc:
                interrupted.labels(job.job_type, "storage").inc()
                self._storage_failed(ctx, handler, exc)
            except WorkerStopping:
                interrupted.labels(job.job_type, "handed_back").inc()
                self._release_on_stop(ctx)
            except CorruptPayload as exc:
                log.error("job %s failed: %s", job.id, exc)
                self._fail(ctx, handler, "IMG.0061", f"The job cannot run: {exc}.")
            except Exception as exc:
                busy = unavailable(exc)
                if busy is not None:
                    interrupted.labels(job.job_type, "database").inc()
                    self._database_failed(ctx, busy.message)
                else:
                    log.exception("job %s crashed", job.id)
                    self._fail(ctx, handler, "IMG.0061",
                               "Unknown system error while running the job; it has been logged.")

    def _release_on_stop(self, ctx: JobContext) -> None:
        try:
            with ctx.fenced() as (_s, row):
                jobs.release(row, self.rt.clock(), delay=0, counts=False)
            log.info("job %s handed back: another worker takes it up now", ctx.job.id)
        except (LeaseLost, ServiceUnavailable) as lost:
            log.warning("job %s: not handed back (%s); it runs again once its lease lapses", ctx.job.id, lost)

    def _hand_back(self, ctx: JobContext, exc: JobDeferred) -> None:
        try:
            with ctx.fenced() as (_s, row):
                jobs.hand_back(row, self.rt.clock(), delay=exc.delay, reason=exc.reason)
        except (LeaseLost, ServiceUnavailable) as lost:
            log.warning("job %s could not be handed back (%s); it runs again once its lease lapses", ctx.job.id, lost)

    def _database_failed(self, ctx: JobContext, message: str) -> None:
        """The database failed under the job (a passing condition): it runs again after a delay that grows
        per attempt. Releasing needs the database too; when it is still away, the lease lapses instead."""
        delay = retry_delay(ctx.job.attempts, DATABASE_RETRY_FIRST, DATABASE_RETRY_CAP)
        try:
            with ctx.fenced() as (_s, row):
                jobs.release(row, self.rt.clock(), delay=delay)
            log.warning("job %s interrupted (%s); attempt %d in %.0f s", ctx.job.id, message, ctx.job.attempts + 1,
                        delay)
        except (LeaseLost, ServiceUnavailable) as lost:
            log.warning("job %s interrupted (%s), to be retried once its lease lapses (%s)", ctx.job.id, message, lost)

    def _storage_failed(self, ctx: JobContext, handler: object, exc: StorageUnavailable) -> None:
        """The object store failed past boto3's own retries: the job is tried again later, a bounded number
        of times (with growing delays), then fails saying so."""
        if ctx.job.attempts >= STORAGE_ATTEMPTS:
            log.warning("job %s failed: %s (attempt %d)", ctx.job.id, exc, ctx.job.attempts)
            self._fail(ctx, handler, "IMG.0061", f"The object store could not be used: {exc}; the job was "
                                                  f"tried {ctx.job.attempts} times.")
            return
        delay = retry_delay(ctx.job.attempts, STORAGE_RETRY_FIRST, STORAGE_RETRY_CAP)
        log.warning("job %s: %s; attempt %d of %d again in %.0f s", ctx.job.id, exc, ctx.job.attempts + 1,
                    STORAGE_ATTEMPTS, delay)
        try:
            with ctx.fenced() as (_s, row):
                jobs.release(row, self.rt.clock(), delay=delay)
        except (LeaseLost, ServiceUnavailable) as lost:
            log.warning("job %s: lease not released (%s); it runs again once it lapses", ctx.job.id, lost)

    def _fail(self, ctx: JobContext, handler: object, code: str, reason: str) -> None:
        try:
            revert = getattr(handler, "revert", None)
            ctx.failure = (code, reason)
            with ctx.fenced() as (s, row):
                if revert is not None:
                    # A corrupt payload names nothing that could be undone; the failure says why.
                    with contextlib.suppress(CorruptPayload):
                        revert(ctx, s)
                jobs.finish(row, JobStatus.FAIL, self.rt.clock(), error_code=code, fail_reason=reason)
            self.rt.audit.record(job_trace(ctx.job, "endJob", self.rt.clock(), outcome=code, failed=True))
        except LeaseLost:
            log.warning("job %s: lease lost before the failure was recorded", ctx.job.id)
        except ServiceUnavailable as exc:
            log.warning("job %s: its failure could not be recorded (%s); it runs again once its lease lapses",
                        ctx.job.id, exc.message)

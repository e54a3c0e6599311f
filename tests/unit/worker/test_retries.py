"""How the worker treats failures under a job: the database away for a moment (a restart, a lost
connection, a serialisation failure) is retried with growing delays up to a bound; a permanent error
(a bug, a constraint) fails the job at once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from openims.catalog import jobs
from openims.catalog.jobs import MAX_ATTEMPTS, JobStatus, JobType
from openims.clock import ManualClock
from openims.db.models import Domain, Job, Project
from openims.errors import ServiceUnavailable
from openims.runtime import Runtime
from openims.worker import runner
from openims.worker.context import JobContext


class _Failing:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.runs = 0

    def run(self, ctx: JobContext) -> None:
        self.runs += 1
        raise self.exc


def _submit(rt: Runtime) -> str:
    with rt.db.transaction() as s:
        project = s.scalar(select(Project).join(Domain, Domain.id == Project.domain_id).where(Domain.name == "admin"))
        assert project is not None
        return jobs.submit(s, project_id=project.id, job_type=JobType.IMPORT_IMAGE, payload={},
                           entities={}, now=rt.clock()).id


def _job(rt: Runtime, job_id: str) -> Job:
    with rt.db.transaction(readonly=True) as s:
        row = s.get(Job, job_id)
        assert row is not None
        return row


serialization = sa_exc.OperationalError("UPDATE", {}, Exception("could not serialize access"))


@pytest.mark.parametrize("exc", [ServiceUnavailable("The database is unavailable at the moment."), serialization])
def test_a_database_failure_is_retried_with_growing_delays_then_abandoned(
        runtime: Runtime, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    handler = _Failing(exc)
    monkeypatch.setitem(runner.HANDLERS, JobType.IMPORT_IMAGE.value, handler)
    job_id = _submit(runtime)
    worker = runner.Worker(runtime)
    delays = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert worker.run_until_idle() == 1
        row = _job(runtime, job_id)
        assert row.status == JobStatus.RUNNING.value and row.lease_owner is None and row.attempts == attempt
        assert row.lease_expires_at is not None
        delays.append((row.lease_expires_at - clock()).total_seconds())
        assert worker.run_until_idle() == 0  # not before its delay
        clock.advance(delays[-1] + 0.01)
    assert delays[:6] == [1, 2, 4, 8, 16, 30] and set(delays[6:]) == {30}
    assert worker.run_until_idle() == 1  # the attempt past the bound
    row = _job(runtime, job_id)
    assert row.status == JobStatus.FAIL.value and row.error_code == "IMG.0061"
    assert f"interrupted {MAX_ATTEMPTS} times" in (row.fail_reason or "")
    assert handler.runs == MAX_ATTEMPTS


def test_a_permanent_error_fails_at_once(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = _Failing(sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key value")))
    monkeypatch.setitem(runner.HANDLERS, JobType.IMPORT_IMAGE.value, handler)
    job_id = _submit(runtime)
    assert runner.Worker(runtime).run_until_idle() == 1
    row = _job(runtime, job_id)
    assert row.status == JobStatus.FAIL.value and row.attempts == 1 and handler.runs == 1
    assert row.fail_reason == "Unknown system error while running the job; it has been logged."
    assert row.end_time is not None and row.end_time - row.begin_time < dt.timedelta(seconds=1)  # type: ignore[operator]

"""catalog.jobs: claiming, lease renewal and fencing — a worker that lost its lease writes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from openims.catalog import jobs
from openims.catalog.jobs import JobStatus, JobType, LeaseLost
from openims.clock import ManualClock
from openims.db.models import Job, Project
from openims.runtime import Runtime

LEASE = 10


def _submit(runtime: Runtime, now: dt.datetime) -> str:
    with runtime.db.transaction() as s:
        project_id = s.scalars(select(Project.id)).first()
        assert project_id is not None
        return jobs.submit(s, project_id=project_id, job_type=JobType.IMPORT_IMAGE, payload={}, entities={},
                           now=now).id


def test_one_claim_per_job_until_its_lease_lapses(runtime: Runtime, clock: ManualClock) -> None:
    job_id = _submit(runtime, clock())
    first = jobs.claim(runtime.db, "w1", LEASE, clock())
    assert first is not None and first.id == job_id and first.attempts == 1
    assert jobs.claim(runtime.db, "w2", LEASE, clock()) is None  # held
    clock.advance(LEASE + 1)
    second = jobs.claim(runtime.db, "w2", LEASE, clock())  # w1 died: redone from the start
    assert second is not None and second.id == job_id and second.attempts == 2


def test_the_old_holder_can_neither_renew_nor_write(runtime: Runtime, clock: ManualClock) -> None:
    _submit(runtime, clock())
    job = jobs.claim(runtime.db, "w1", LEASE, clock())
    assert job is not None
    jobs.renew(runtime.db, job.id, "w1", LEASE, clock(), {"process_percent": 10.0})
    clock.advance(LEASE + 1)
    assert jobs.claim(runtime.db, "w2", LEASE, clock()) is not None
    with pytest.raises(LeaseLost):
        jobs.renew(runtime.db, job.id, "w1", LEASE, clock())
    with pytest.raises(LeaseLost), runtime.db.transaction() as s:
        jobs.fenced(s, job.id, "w1")
    with runtime.db.transaction() as s:
        row = jobs.fenced(s, job.id, "w2")
        jobs.finish(row, JobStatus.SUCCESS, clock())
    with runtime.db.transaction(readonly=True) as s:
        done = s.get(Job, job.id)
        assert done is not None and done.status == "SUCCESS" and done.lease_owner is None
    with pytest.raises(LeaseLost):  # a finished job has no lease to renew
        jobs.renew(runtime.db, job.id, "w2", LEASE, clock())

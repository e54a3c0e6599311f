"""Job payloads: typed, validated when read; a corrupt one fails its job with a clear reason."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from openims.catalog import jobs
from openims.catalog.imports import DiskTask, ImportPayload
from openims.catalog.jobs import CorruptPayload, JobStatus, JobType
from openims.catalog.lifecycle import CopyPayload, ExportPayload
from openims.catalog.members import MemberBatch
from openims.db.models import Domain, Job, Project
from openims.runtime import Runtime
from openims.worker.runner import Worker


def test_payloads_round_trip_through_json() -> None:
    task = DiskTask(image_id="i", job_id="j", bucket="b", key="k", min_disk=40, quick=False, data_disk=False)
    payload = ImportPayload(domain_id="d", disks=(task,), declared_format="qcow2")
    assert ImportPayload.from_json(payload.to_json()) == payload
    export = ExportPayload(domain_id="d", image_id="i", bucket="b", key="k", file_format="vmdk", location="l",
                           source_format="qcow2", virtual_size=1)
    assert ExportPayload.from_json(export.to_json()) == export
    assert CopyPayload.from_json({"source_image_id": "a", "image_id": "b"}) == CopyPayload(source_image_id="a",
                                                                                            image_id="b")
    batch = MemberBatch(images=("i",), projects=("p",))
    assert MemberBatch.from_json(batch.to_json()) == batch


def test_payloads_written_before_declared_format_existed_still_read() -> None:
    stored = {"domain_id": "d", "disks": [{"image_id": "i", "job_id": "j", "bucket": "b", "key": "k",
                                           "min_disk": 40, "quick": False, "data_disk": False}]}
    payload = ImportPayload.from_json(stored)
    assert payload.declared_format is None and payload.disks[0].has_os_version is False


@pytest.mark.parametrize("stored", [{}, {"domain_id": "d", "disks": "x"},
                                    {"domain_id": "d", "disks": [{"image_id": 1}]}, None, []])
def test_a_corrupt_payload_is_refused_naming_what_is_wrong(stored: object) -> None:
    with pytest.raises(CorruptPayload, match="not a valid ImportPayload"):
        ImportPayload.from_json(stored)


def test_a_job_with_a_corrupt_payload_fails_with_that_reason(runtime: Runtime) -> None:
    with runtime.db.transaction() as s:
        project = s.scalar(select(Project).join(Domain, Domain.id == Project.domain_id).where(Domain.name == "admin"))
        assert project is not None
        job = jobs.submit(s, project_id=project.id, job_type=JobType.IMPORT_IMAGE, payload={"domain_id": "d"},
                          entities={}, now=runtime.clock())
        job_id = job.id
    assert Worker(runtime).run_until_idle() == 1
    with runtime.db.transaction(readonly=True) as s:
        row = s.get(Job, job_id)
        assert row is not None
        assert row.status == JobStatus.FAIL.value
        assert row.error_code == "IMG.0061"
        assert row.fail_reason is not None and "not a valid ImportPayload" in row.fail_reason
        assert "disks" in row.fail_reason

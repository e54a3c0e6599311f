"""Faults on the S3 path, against a real SeaweedFS: a bounded scratch area, objects that change or go away
after the import was submitted, an engine that stops (and comes back, or does not), crash leftovers.

Where a fault must meet the job at a given moment, the job is held in INIT by a scratch reservation of
the test process (a reservation like any other worker's on the host), the fault is made, and the
reservation is let go: the job then meets the fault on its first read, deterministically.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openims.objects.scratch import Scratch
from tests.support.images import MiB, make_image, qemu_compare
from tests.support.server import Api, ServerProcess
from tests.support.stores import IMAGE_BUCKET, IMAGE_PREFIX, S3Stores

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-s3-faults")]

LIMIT = 64 * MiB
BUCKET = "e2e-bucket"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Stores]:
    s = S3Stores(tmp_path_factory.mktemp("s3-faults"))
    try:
        yield s
    finally:
        s.close()


def _env(stores: S3Stores) -> dict[str, str]:
    return {**stores.env(), "OPENIMS_JOB_LEASE_SECONDS": "5", "OPENIMS_SCRATCH_LIMIT": str(LIMIT),
            "OPENIMS_ORPHAN_GRACE_SECONDS": "0"}


@pytest.fixture(scope="module")
def server(stores: S3Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("e2e-s3") / "data"
    with ServerProcess(data, env=_env(stores)) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Api:
    a = Api(server.url)
    assert a.http.put(f"/obs/{BUCKET}").status_code in (200, 201)
    return a


@pytest.fixture
def hog(server: ServerProcess) -> Iterator[Any]:
    """Holds nearly all scratch space while the block runs; ``hog.release()`` lets it go."""
    scratch = Scratch(server.data_dir / "scratch", LIMIT)
    reservation = scratch.try_reserve(f"test-hog-{uuid.uuid4().hex[:8]}", LIMIT - 4096)

    class Hog:
        released = False

        def release(self) -> None:
            if not self.released:
                scratch.release(reservation)
                self.released = True

    h = Hog()
    try:
        yield h
    finally:
        h.release()


def _submit(api: Api, key: str, name: str) -> str:
    return api.create(name=name, image_url=f"{BUCKET}:{key}", min_disk=1, os_version="Ubuntu 18.04 server 64bit")


def _job(api: Api, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = api.http.get(f"/v1/{api.project_id}/jobs/{job_id}").json()
    return job


def _waiting(api: Api, job_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _job(api, job_id)
        if job["status"] == "INIT" and "waiting_reason" in job["entities"]:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never waited: {_job(api, job_id)}")


def _no_leftovers(server: ServerProcess, stores: S3Stores, image_id: str) -> None:
    assert image_id not in stores.stored_images(server.data_dir)
    scratch = server.data_dir / "scratch"
    assert [p for p in scratch.rglob("*") if p.is_file() and not p.name.startswith(".")] == []


def test_a_job_waits_for_scratch_space_then_runs(api: Api, server: ServerProcess, stores: S3Stores,
                                                 files: Path, hog: Any) -> None:
    src = make_image(files / "wait", "qcow2", size=8 * MiB, seed=3)
    api.upload(BUCKET, "wait/disk.qcow2", src)
    job_id = _submit(api, "wait/disk.qcow2", "waits")
    job = _waiting(api, job_id)
    # The job body says why it waits.
    assert "scratch space" in job["entities"]["waiting_reason"], job
    time.sleep(1.0)
    assert _job(api, job_id)["status"] == "INIT"
    hog.release()
    job = api.wait_job(job_id, timeout=60)
    assert job["status"] == "SUCCESS", job
    assert "waiting_reason" not in job["entities"]
    stored = stores.stored_image(server.data_dir, job["entities"]["image_id"], files / "stored")
    assert qemu_compare(src, "qcow2", stored, "qcow2")


def test_a_file_that_can_never_fit_fails_at_once(api: Api, server: ServerProcess, stores: S3Stores,
                                                 files: Path) -> None:
    src = make_image(files / "huge", "raw", size=40 * MiB, seed=5)  # downloaded and converted: 80 MiB
    api.upload(BUCKET, "huge/disk.raw", src)
    job = api.wait_job(_submit(api, "huge/disk.raw", "never-fits"), timeout=30)
    assert job["status"] == "FAIL" and job["error_code"] == "IMG.0059", job
    assert "OPENIMS_SCRATCH_LIMIT" in job["fail_reason"]
    _no_leftovers(server, stores, job["entities"]["image_id"])


def test_an_object_deleted_after_submission_fails_cleanly(api: Api, server: ServerProcess, stores: S3Stores,
                                                          files: Path, hog: Any) -> None:
    src = make_image(files / "gone", "vhdx", size=8 * MiB, seed=6)
    api.upload(BUCKET, "gone/disk.vhdx", src)
    job_id = _submit(api, "gone/disk.vhdx", "gone")
    _waiting(api, job_id)
    stores.client().delete_object(Bucket=BUCKET, Key="gone/disk.vhdx")
    hog.release()
    job = api.wait_job(job_id, timeout=60)
    assert job["status"] == "FAIL" and job["error_code"] == "IMG.0057", job
    assert "does not exist" in job["fail_reason"]
    _no_leftovers(server, stores, job["entities"]["image_id"])


def test_an_object_truncated_after_submission_fails_cleanly(api: Api, server: ServerProcess, stores: S3Stores,
                                                            files: Path, hog: Any) -> None:
    src = make_image(files / "cut", "qcow2", size=8 * MiB, seed=7)
    api.upload(BUCKET, "cut/disk.qcow2", src)
    job_id = _submit(api, "cut/disk.qcow2", "cut")
    _waiting(api, job_id)
    data = src.read_bytes()
    stores.client().put_object(Bucket=BUCKET, Key="cut/disk.qcow2", Body=data[: len(data) // 3])
    hog.release()
    job = api.wait_job(job_id, timeout=60)
    assert job["status"] == "FAIL" and job["error_code"] == "IMG.0057", job
    _no_leftovers(server, stores, job["entities"]["image_id"])


def test_the_engine_stopped_then_back_the_job_retries_and_succeeds(api: Api, server: ServerProcess,
                                                                   stores: S3Stores, files: Path, hog: Any) -> None:
    src = make_image(files / "flaky", "vmdk", size=8 * MiB, seed=8)
    api.upload(BUCKET, "flaky/disk.vmdk", src)
    job_id = _submit(api, "flaky/disk.vmdk", "flaky")
    _waiting(api, job_id)
    stores.engine.kill()
    try:
        hog.release()
        # The first attempt meets the stopped engine and hands the job back to retry with a delay.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "attempt 2 of 3" not in server.log.read_text():
            time.sleep(0.1)
        assert "attempt 2 of 3" in server.log.read_text()
        assert _job(api, job_id)["status"] == "RUNNING"
    finally:
        stores.engine.start()
    job = api.wait_job(job_id, timeout=90)
    assert job["status"] == "SUCCESS", job
    stored = stores.stored_image(server.data_dir, job["entities"]["image_id"], files / "stored")
    assert qemu_compare(src, "vmdk", stored, "qcow2")


def test_the_engine_stays_down_the_job_fails_clearly(api: Api, server: ServerProcess, stores: S3Stores,
                                                     files: Path, hog: Any) -> None:
    src = make_image(files / "down", "qcow2", size=4 * MiB, seed=9)
    api.upload(BUCKET, "down/disk.qcow2", src)
    job_id = _submit(api, "down/disk.qcow2", "down")
    _waiting(api, job_id)
    stores.engine.kill()
    try:
        hog.release()
        job = api.wait_job(job_id, timeout=120)
    finally:
        stores.engine.start()
    assert job["status"] == "FAIL" and job["error_code"] == "IMG.0061", job
    assert "object store" in job["fail_reason"] and "3 times" in job["fail_reason"], job
    _no_leftovers(server, stores, job["entities"]["image_id"])


def test_crash_leftovers_are_swept_and_live_data_is_kept(api: Api, server: ServerProcess, stores: S3Stores,
                                                         files: Path) -> None:
    src = make_image(files / "keep", "qcow2", seed=10)
    api.upload(BUCKET, "keep/disk.qcow2", src)
    job = api.wait_job(_submit(api, "keep/disk.qcow2", "kept"))
    assert job["status"] == "SUCCESS", job
    kept = job["entities"]["image_id"]
    # What a worker killed between sealing and recording leaves: an object no image points to, and a
    # multipart upload never completed.
    orphan = f"{IMAGE_PREFIX}{uuid.uuid4()}/0123456789abcdef"
    s3 = stores.client()
    s3.put_object(Bucket=IMAGE_BUCKET, Key=orphan, Body=b"half an image")
    pending = s3.create_multipart_upload(Bucket=IMAGE_BUCKET, Key=f"{IMAGE_PREFIX}{uuid.uuid4()}/feedfacefeedface")
    server.stop()
    server.start()  # the worker sweeps at start (grace 0 here)
    deadline = time.monotonic() + 30
    keys: list[str] = []
    while time.monotonic() < deadline:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=IMAGE_BUCKET).get("Contents", [])]
        uploads = s3.list_multipart_uploads(Bucket=IMAGE_BUCKET).get("Uploads", [])
        if orphan not in keys and not uploads:
            break
        time.sleep(0.2)
    assert orphan not in keys
    assert not [u for u in s3.list_multipart_uploads(Bucket=IMAGE_BUCKET).get("Uploads", [])
                if u["UploadId"] == pending["UploadId"]]
    assert kept in stores.stored_images(server.data_dir)
    assert api.http.get(f"/v2/images/{kept}/file").status_code == 200


def test_a_stalled_engine_holds_no_database_lock(server: ServerProcess, stores: S3Stores, api: Api) -> None:
    # Creating a bucket asks the engine outside any transaction: while the engine hangs (SIGSTOP), the
    # request waits for it, and every other write goes on (SQLite: one writer at a time).
    answers: list[httpx.Response] = []
    stores.engine.send_signal(signal.SIGSTOP)
    try:
        waiting = threading.Thread(target=lambda: answers.append(
            httpx.put(f"{server.url}/obs/stalled-bucket", headers=dict(api.http.headers), timeout=120)))
        waiting.start()
        time.sleep(1.0)
        assert waiting.is_alive(), "the bucket was created without the engine"
        start = time.monotonic()
        r = api.http.post("/v2/images", json={"name": "while-stalled", "disk_format": "raw",
                                              "container_format": "bare"})
        took = time.monotonic() - start
        assert r.status_code == 201 and took < 3, f"{r.status_code} after {took:.1f} s: {r.text[:200]}"
    finally:
        stores.engine.send_signal(signal.SIGCONT)
    waiting.join(120)
    assert [a.status_code for a in answers] == [201]


def test_secrets_are_in_no_log_and_no_answer(server: ServerProcess, stores: S3Stores, api: Api) -> None:
    secret = stores.engine.admin.secret_key
    assert secret not in server.log.read_text()
    jobs_seen = api.http.get("/v2/cloudimages").text
    assert secret not in jobs_seen


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files-s3-faults")

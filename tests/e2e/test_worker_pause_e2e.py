"""A worker paused (SIGSTOP, with its qemu-img) past its lease: another worker takes the job over; once
the first one resumes (SIGCONT) it writes nothing — not the image, not the job, not its files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_crash_e2e import _slow_image
from tests.support.images import file_digests
from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-crash")]

LEASE = 5


def _worker(data: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENIMS_DATA_DIR": str(data), "OPENIMS_JOB_LEASE_SECONDS": str(LEASE),
           "OPENIMS_ARGON2_TIME_COST": "1", "OPENIMS_ARGON2_MEMORY_KIB": "8"}
    with open(log, "ab") as out:
        # Its own process group: SIGSTOP pauses the worker and its qemu-img together, as a paused VM would.
        return subprocess.Popen([sys.executable, "-m", "openims.cli", "worker"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.parametrize("resume", ["while the second converts", "after the second is done"])
def test_a_paused_worker_writes_nothing_after_it_resumes(resume: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    src = _slow_image(tmp_path)
    api_server = ServerProcess(data, env={"OPENIMS_WORKERS": "0", "OPENIMS_JOB_LEASE_SECONDS": str(LEASE)}).start()
    first = _worker(data, tmp_path / "first.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        api = Api(api_server.url)
        api.upload("pause", "big.qcow2", src)
        job_id = api.create(name="paused", image_url="pause:big.qcow2", min_disk=1)
        deadline = time.monotonic() + 30
        while api.http.get(f"/v1/{api.project_id}/jobs/{job_id}").json()["status"] != "RUNNING":
            assert time.monotonic() < deadline, "the job never ran"
            time.sleep(0.02)
        time.sleep(0.3)  # inside the conversion
        os.killpg(first.pid, signal.SIGSTOP)
        second = _worker(data, tmp_path / "second.log")
        if resume == "while the second converts":
            # The first one wakes up and unwinds (killing its qemu-img, removing its files) while the
            # second works on the same job: it must not touch the second one's files.
            deadline = time.monotonic() + 60
            while "attempt 2 started" not in (tmp_path / "second.log").read_text():
                assert time.monotonic() < deadline, (tmp_path / "second.log").read_text()[-2000:]
                time.sleep(0.02)
            time.sleep(0.3)
            os.killpg(first.pid, signal.SIGCONT)
        job = api.wait_job(job_id, timeout=120)
        assert job["status"] == "SUCCESS", job
        image_id = job["entities"]["image_id"]
        stored = data / "images" / image_id
        before = (stored.stat().st_ino, file_digests(stored))

        os.killpg(first.pid, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while "lease lost" not in (tmp_path / "first.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(1.0)
        # The resumed worker stopped: the image, its data and the job are as the second worker left them.
        assert (stored.stat().st_ino, file_digests(stored)) == before
        assert api.http.get(f"/v1/{api.project_id}/jobs/{job_id}").json() == job
        images = api.http.get("/v2/cloudimages", params={"name": "paused"}).json()["images"]
        assert [i["id"] for i in images] == [image_id] and images[0]["status"] == "active"
        assert list((data / "images" / ".tmp").iterdir()) == []
        assert subprocess.run(["pgrep", "-f", f"qemu-img convert.*{data}"], capture_output=True).returncode == 1
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
        api_server.stop()

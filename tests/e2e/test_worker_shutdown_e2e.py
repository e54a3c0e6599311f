"""A worker told to stop (SIGTERM) finishes its running job within the grace period, or hands it back
(qemu-img killed, files removed, lease released) so another worker takes it up at once."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_crash_e2e import _slow_image
from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-crash")]

LEASE = 60  # long: a job that moves on quickly was handed back, it did not wait for its lease to lapse


def _running(api: Api, job_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if api.http.get(f"/v1/{api.project_id}/jobs/{job_id}").json()["status"] == "RUNNING":
            time.sleep(0.3)  # inside the conversion
            return
        time.sleep(0.02)
    raise AssertionError("the job never ran")


def _sigterm(server: ServerProcess) -> int:
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    return server.proc.wait(60)


@pytest.mark.parametrize("grace", [0, 120])
def test_sigterm_during_an_import(grace: int, tmp_path: Path) -> None:
    data = tmp_path / "data"
    src = _slow_image(tmp_path)
    env = {"OPENIMS_JOB_LEASE_SECONDS": str(LEASE), "OPENIMS_WORKER_GRACE_SECONDS": str(grace)}
    first = ServerProcess(data, env=env).start()
    try:
        api = Api(first.url)
        api.upload("stop", "big.qcow2", src)
        job_id = api.create(name="stopped", image_url="stop:big.qcow2", min_disk=1)
        _running(api, job_id)
        stopped_at = time.monotonic()
        assert _sigterm(first) in (0, 128 + signal.SIGTERM)  # a clean exit, not killed by the signal
    finally:
        first.kill()
    log = first.log.read_text()
    # No qemu-img of the stopped server is left behind.
    assert subprocess.run(["pgrep", "-f", f"qemu-img convert.*{data}"], capture_output=True).returncode == 1
    second = ServerProcess(data, env=env, port=first.port).start()
    try:
        api = Api(second.url)
        job = api.wait_job(job_id, timeout=120)
        assert job["status"] == "SUCCESS", job
        images = api.http.get("/v2/cloudimages", params={"name": "stopped"}).json()["images"]
        assert [i["id"] for i in images] == [job["entities"]["image_id"]]
        if grace:
            # Finished by the first server before it exited.
            assert "handed back" not in log and f"job {job_id} finished" in log
        else:
            assert f"job {job_id} handed back" in log
            # Taken up at once by the next worker, long before the lease would have lapsed.
            assert time.monotonic() - stopped_at < LEASE / 2
        assert list((data / "images" / ".tmp").iterdir()) == []
    finally:
        second.stop()

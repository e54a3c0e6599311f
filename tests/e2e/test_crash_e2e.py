"""A server killed with SIGKILL mid-import finishes the job after restart, with exactly one image."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-crash")]


def _slow_image(d: Path) -> Path:
    """~384 MiB of random data in a qcow2: converting and hashing it takes a few seconds."""
    raw = d / "big.raw"
    with open(raw, "wb") as f:
        for _ in range(384):
            f.write(os.urandom(1024 * 1024))
    out = d / "big.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(out)], check=True)
    raw.unlink()
    return out


def test_sigkill_during_import_then_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    src = _slow_image(tmp_path)
    env = {"OPENIMS_JOB_LEASE_SECONDS": "5"}
    server = ServerProcess(data, env=env).start()
    try:
        api = Api(server.url)
        api.upload("crash", "big.qcow2", src)
        job_id = api.create(name="survivor", image_url="crash:big.qcow2", min_disk=1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job = api.http.get(f"/v1/{api.project_id}/jobs/{job_id}").json()
            if job["status"] == "RUNNING":
                break
            time.sleep(0.02)
        assert job["status"] == "RUNNING", job
        time.sleep(0.3)  # inside the conversion
    finally:
        server.kill()
    # Whatever the dead worker left half-written is still there; the restarted one must cope.
    restarted = ServerProcess(data, env=env, port=server.port).start()
    try:
        api = Api(restarted.url)
        job = api.wait_job(job_id, timeout=180)
        assert job["status"] == "SUCCESS", job
        images = api.http.get("/v2/cloudimages", params={"name": "survivor"}).json()["images"]
        assert len(images) == 1
        assert images[0]["id"] == job["entities"]["image_id"] and images[0]["status"] == "active"
        stored = data / "images" / images[0]["id"]
        assert images[0]["size"] == stored.stat().st_size
        assert list((data / "images" / ".tmp").iterdir()) == []
    finally:
        restarted.stop()

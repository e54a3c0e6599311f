"""A server killed with SIGKILL during a direct upload gives the image back (queued) after restart.

Nothing in the dead process can clean up; the upload's lease lapses and the restarted server's
worker sweeps the image back to ``queued`` and removes the half-written spool file, so the
owner can upload again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.images import MiB, make_image
from tests.support.server import Api, ServerProcess
from tests.support.stores import Stores

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-upload-crash")]
STORES = ("file", "s3")

LEASE = 3  # seconds; the sweep then runs every 1.5 s
TOTAL = 300 * MiB


def _status(api: Api, image_id: str) -> str:
    status: str = api.http.get(f"/v2/images/{image_id}").raise_for_status().json()["status"]
    return status


def _temp_dir(data: Path, stores: Stores) -> Path:
    # Where uploads spool: beside the stored files, or in the scratch area on the way to S3.
    return data / "images" / ".tmp" if stores.kind == "file" else data / "scratch" / "store"


def test_sigkill_during_upload_then_restart(tmp_path: Path, stores: Stores) -> None:
    data = tmp_path / "data"
    env = {"OPENIMS_UPLOAD_LEASE_SECONDS": str(LEASE), **stores.env()}

    def _spooled(data: Path) -> int:
        return sum(p.stat().st_size for p in _temp_dir(data, stores).iterdir())

    server = ServerProcess(data, env=env).start()
    outcome: list[object] = []
    try:
        api = Api(server.url)
        r = api.http.post("/v2/images", json={"name": "interrupted", "disk_format": "raw",
                                               "container_format": "bare"})
        assert r.status_code == 201, r.text
        image_id = r.json()["id"]

        def slow_body() -> Iterator[bytes]:
            chunk = bytes(MiB)
            for _ in range(TOTAL // MiB):
                yield chunk
                time.sleep(0.01)

        def put() -> None:
            try:
                outcome.append(httpx.put(f"{server.url}/v2/images/{image_id}/file", content=slow_body(), timeout=60,
                                         headers={"X-Auth-Token": api.token,
                                                  "Content-Type": "application/octet-stream"}))
            except httpx.TransportError as exc:
                outcome.append(exc)

        uploader = threading.Thread(target=put, daemon=True)
        uploader.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _spooled(data) < 48 * MiB:
            time.sleep(0.02)
        assert _spooled(data) >= 48 * MiB, "the upload did not get going"
        assert _status(api, image_id) == "saving"
    finally:
        server.kill()
    uploader.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError), outcome
    killed_at = time.monotonic()
    assert _spooled(data) > 0  # the dead process's half-written spool file

    restarted = ServerProcess(data, env=env, port=server.port).start()
    try:
        api = Api(restarted.url)
        while _status(api, image_id) != "queued" and time.monotonic() - killed_at < 4 * LEASE + 10:
            time.sleep(0.1)
        assert _status(api, image_id) == "queued"
        # Within the lease (plus one sweep interval and the restart), not "some day".
        assert time.monotonic() - killed_at < LEASE + LEASE / 2 + 10
        assert _spooled(data) == 0

        disk = make_image(tmp_path / "src", "raw", size=8 * MiB)
        with open(disk, "rb") as f:
            r = api.http.put(f"/v2/images/{image_id}/file", content=f,
                             headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        image = api.http.get(f"/v2/images/{image_id}").json()
        assert image["status"] == "active" and image["virtual_size"] == 8 * MiB
        assert list(_temp_dir(data, stores).iterdir()) == []
        assert stores.stored_images(data) == [image_id]  # the data of the second upload, nothing else
    finally:
        restarted.stop()

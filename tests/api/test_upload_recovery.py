"""A direct upload (PUT /v2/images/{id}/file) whose process died does not leave its image in ``saving``.

The upload holds the image with a lease it renews while data arrives and while the data is
processed; the worker's sweep gives images whose lease lapsed back to ``queued``. The clock is the
runtime's ManualClock, moved by hand. Uploads that must interleave with the test (data arriving
in pieces while the clock moves and the sweep runs) go through ``httpx.ASGITransport``, which,
unlike the TestClient, hands the body to the app piece by piece as the client produces it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from fastapi.testclient import TestClient

from openims.api.app import create_app
from openims.catalog import imports, uploads
from openims.clock import ManualClock
from openims.db.models import Image
from openims.imaging import keep_image
from openims.runtime import Runtime
from openims.worker import uploads as transfer
from openims.worker.runner import Worker
from tests.api.test_glance_data import OCTETS, leftovers, put_file, status_of
from tests.api.test_glance_images import create, project_of
from tests.api.test_images_api import VALID, upload
from tests.support.images import make_image, qemu_compare

LEASE = 60


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"upload_lease_seconds": LEASE}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def disk(tmp_path: Path) -> bytes:
    return make_image(tmp_path / "src", "qcow2").read_bytes()


@pytest.fixture
def image_id(client: TestClient, admin_headers: dict[str, str]) -> str:
    iid: str = create(client, admin_headers, name="up", disk_format="qcow2", container_format="bare")["id"]
    return iid


def lease_of(rt: Runtime, image_id: str) -> tuple[str | None, Any]:
    with rt.db.session() as s:
        image = s.get(Image, image_id)
        assert image is not None
        return image.upload_holder, image.upload_lease_expires_at


def crashed_upload(rt: Runtime, project_id: str, image_id: str, holder: str = "c0ffee" * 5 + "00") -> str:
    """What a process killed mid-upload leaves: the image held in saving, a half-written spool file."""
    with rt.db.transaction() as s:
        uploads.begin(s, project_id, image_id, rt.clock(), holder=holder, lease_seconds=LEASE)
    temp = rt.images.temp_path(holder, image_id)
    temp.with_name(temp.name + ".upload").write_bytes(b"\0" * 65536)
    return holder


async def put_streamed(rt: Runtime, headers: dict[str, str], image_id: str,
                       body: AsyncIterator[bytes]) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as ac:
        return await ac.put(f"/v2/images/{image_id}/file", content=body, headers={**headers, **OCTETS})


class TestCrashedUpload:
    def test_swept_back_to_queued_then_uploaded_again(self, client: TestClient, admin_headers: dict[str, str],
                                                      runtime: Runtime, clock: ManualClock, image_id: str,
                                                      disk: bytes) -> None:
        crashed_upload(runtime, project_of(client, admin_headers), image_id)
        worker = Worker(runtime)
        assert status_of(client, admin_headers, image_id) == "saving"
        # Until the lease lapses the image is taken: another upload is refused, the sweep leaves it.
        clock.advance(LEASE - 1)
        assert worker.sweep_uploads() == 0
        assert put_file(client, admin_headers, image_id, disk).status_code == 409
        assert status_of(client, admin_headers, image_id) == "saving" and leftovers(runtime, image_id) != []

        clock.advance(2)
        assert worker.sweep_uploads() == 1
        assert status_of(client, admin_headers, image_id) == "queued"
        assert lease_of(runtime, image_id) == (None, None)
        assert leftovers(runtime, image_id) == []
        assert worker.sweep_uploads() == 0

        r = put_file(client, admin_headers, image_id, disk)
        assert r.status_code == 204, r.text
        assert status_of(client, admin_headers, image_id) == "active"
        assert lease_of(runtime, image_id) == (None, None)

    def test_the_worker_sweeps_on_its_own(self, client: TestClient, admin_headers: dict[str, str],
                                          runtime: Runtime, clock: ManualClock, image_id: str) -> None:
        crashed_upload(runtime, project_of(client, admin_headers), image_id)
        clock.advance(LEASE + 1)
        worker = Worker(runtime, threads=1)
        worker.start()  # the sweeper thread sweeps at once, then every 30 s
        try:
            deadline = time.monotonic() + 10
            while status_of(client, admin_headers, image_id) != "queued" and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            worker.stop()
        assert status_of(client, admin_headers, image_id) == "queued"
        assert leftovers(runtime, image_id) == []

    def test_run_until_idle_sweeps_too(self, client: TestClient, admin_headers: dict[str, str],
                                       runtime: Runtime, clock: ManualClock, image_id: str) -> None:
        crashed_upload(runtime, project_of(client, admin_headers), image_id)
        clock.advance(LEASE + 1)
        assert Worker(runtime).run_until_idle() == 0  # no jobs, but the upload is recovered
        assert status_of(client, admin_headers, image_id) == "queued"

    def test_images_filled_by_jobs_are_never_swept(self, client: TestClient, admin_headers: dict[str, str],
                                                   runtime: Runtime, clock: ManualClock, tmp_path: Path) -> None:
        upload(client, admin_headers, "bkt", "disk.qcow2", make_image(tmp_path / "src", "qcow2"))
        r = client.post("/v2/cloudimages/action", json=VALID, headers=admin_headers)
        assert r.status_code == 200, r.text
        found = client.get("/v2/cloudimages", params={"name": VALID["name"]}, headers=admin_headers).json()
        job_image = found["images"][0]["id"]
        with runtime.db.transaction() as s:
            imports.start_disk(s, job_image, clock())  # as the import job does; its job lease covers it
        clock.advance(LEASE * 100)  # far past any upload lease
        assert Worker(runtime).sweep_uploads() == 0
        assert status_of(client, admin_headers, job_image) == "saving"


class TestLiveUpload:
    @pytest.mark.anyio
    async def test_renews_while_data_arrives_and_is_not_swept(self, client: TestClient,
                                                              admin_headers: dict[str, str], runtime: Runtime,
                                                              clock: ManualClock, image_id: str,
                                                              disk: bytes) -> None:
        worker = Worker(runtime)
        seen: list[Any] = []

        async def body() -> AsyncIterator[bytes]:
            yield disk[:8192]
            clock.advance(LEASE * 2 / 3)
            yield disk[8192:16384]  # data keeps coming: the lease is renewed from now
            clock.advance(LEASE * 2 / 3)  # past the first expiry, not past the renewed one
            seen.append(await anyio.to_thread.run_sync(worker.sweep_uploads))
            seen.append(await anyio.to_thread.run_sync(status_of, client, admin_headers, image_id))
            yield disk[16384:]

        r = await put_streamed(runtime, admin_headers, image_id, body())
        assert r.status_code == 204, r.text
        assert seen == [0, "saving"]
        assert status_of(client, admin_headers, image_id) == "active"
        assert lease_of(runtime, image_id) == (None, None)
        assert leftovers(runtime, image_id) == [image_id]

    def test_renews_while_the_data_is_processed(self, client: TestClient, admin_headers: dict[str, str],
                                                runtime: Runtime, clock: ManualClock, image_id: str, disk: bytes,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
        # No bytes arrive while qemu-img works: the lease is renewed on a timer (every lease/4 s, real time).
        monkeypatch.setattr(uploads, "MAX_RENEW_INTERVAL", 0.05)
        worker = Worker(runtime)
        real_import: Callable[..., Any] = keep_image
        seen: list[int] = []

        def wait_for_renewal() -> None:
            expected = clock() + dt.timedelta(seconds=LEASE)
            deadline = time.monotonic() + 10
            while lease_of(runtime, image_id)[1] != expected and time.monotonic() < deadline:
                time.sleep(0.01)

        def slow_import(*args: Any, **kwargs: Any) -> Any:
            clock.advance(LEASE * 2 / 3)
            wait_for_renewal()
            clock.advance(LEASE * 2 / 3)
            seen.append(worker.sweep_uploads())
            return real_import(*args, **kwargs)

        monkeypatch.setattr(transfer, "keep_image", slow_import)
        r = put_file(client, admin_headers, image_id, disk)
        assert r.status_code == 204, r.text
        assert seen == [0]
        assert status_of(client, admin_headers, image_id) == "active"

    def test_refused_data_clears_the_lease(self, client: TestClient, admin_headers: dict[str, str],
                                           runtime: Runtime, image_id: str) -> None:
        r = put_file(client, admin_headers, image_id, b"not a disk image" * 100)
        assert r.status_code == 415, r.text
        assert status_of(client, admin_headers, image_id) == "queued"
        assert lease_of(runtime, image_id) == (None, None)
        assert leftovers(runtime, image_id) == []


class TestStalledUpload:
    @pytest.mark.anyio
    async def test_loses_the_image_and_cannot_touch_a_newer_upload(self, client: TestClient,
                                                                    admin_headers: dict[str, str],
                                                                    runtime: Runtime, clock: ManualClock,
                                                                    image_id: str, disk: bytes) -> None:
        worker = Worker(runtime)
        project = project_of(client, admin_headers)
        newer = "b" * 32
        seen: list[Any] = []

        async def body() -> AsyncIterator[bytes]:
            yield disk[:8192]
            clock.advance(LEASE + 1)  # nothing arrives for longer than the lease
            seen.append(await anyio.to_thread.run_sync(worker.sweep_uploads))
            seen.append(await anyio.to_thread.run_sync(status_of, client, admin_headers, image_id))
            # Another upload takes the queued image before the stalled one wakes up.
            with runtime.db.transaction() as s:
                uploads.begin(s, project, image_id, clock(), holder=newer, lease_seconds=LEASE)
            yield disk[8192:]

        r = await put_streamed(runtime, admin_headers, image_id, body())
        assert seen == [1, "queued"]
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "IMG.0035" and "abandoned" in r.json()["error"]["message"]
        # The stalled upload neither restored nor published anything: the newer one still holds the image.
        assert status_of(client, admin_headers, image_id) == "saving"
        assert lease_of(runtime, image_id)[0] == newer
        assert leftovers(runtime, image_id) == []

    def test_stale_upload_does_not_publish_over_a_newer_one(self, client: TestClient,
                                                            admin_headers: dict[str, str], runtime: Runtime,
                                                            clock: ManualClock, image_id: str, disk: bytes,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        # A process paused just before publishing (so no renewal), while its lease lapsed and the image
        # was uploaded anew. Even with its converted data still in place, it must not publish it.
        monkeypatch.setattr(transfer.UploadLease, "renew", lambda self: None)
        staging_class = type(runtime.images.staging("0" * 32, image_id))
        real_seal: Callable[[Any], None] = staging_class.seal
        newer = make_image(tmp_path / "newer", "qcow2", seed=7).read_bytes()
        outcome: list[int] = []

        def paused_seal(staging: Any) -> None:
            # Sealed (flushed) and about to publish: here the process pauses.
            real_seal(staging)
            monkeypatch.setattr(staging_class, "seal", real_seal)
            clock.advance(LEASE + 1)
            with runtime.db.transaction() as s:
                assert len(uploads.sweep_expired(s, clock())) == 1  # the database side of a sweep
            outcome.append(put_file(client, admin_headers, image_id, newer).status_code)

        monkeypatch.setattr(staging_class, "seal", paused_seal)
        r = put_file(client, admin_headers, image_id, disk)
        assert outcome == [204]
        assert r.status_code == 409, r.text
        image = client.get(f"/v2/images/{image_id}", headers=admin_headers).json()
        assert image["status"] == "active"
        # What is stored is the newer upload's data, as the image's checksum says; nothing else is left.
        stored = client.get(f"/v2/images/{image_id}/file", headers=admin_headers).content
        assert hashlib.md5(stored).hexdigest() == image["checksum"]
        assert qemu_compare(write(tmp_path / "stored.qcow2", stored), "qcow2", write(tmp_path / "newer.qcow2", newer),
                            "qcow2")
        assert not qemu_compare(tmp_path / "stored.qcow2", "qcow2", write(tmp_path / "disk.qcow2", disk), "qcow2")
        assert leftovers(runtime, image_id) == [image_id]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path

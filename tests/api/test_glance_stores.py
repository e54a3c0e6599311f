"""Several image stores through HTTP (OPENIMS_STORES, two file stores): discovery, imports into named
stores, copy-image between them, downloads, deletes, and the stores' part of the orphan sweep (the
sheet's §1). The single-store answers are in test_glance_import."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from openims.catalog.jobs import LeaseLost
from openims.clock import ManualClock
from openims.db.models import Image
from openims.objects import image_stores
from openims.runtime import Runtime
from openims.worker.runner import Worker
from tests.api.test_glance_images import create, error_code
from tests.api.test_glance_import import image_of, stage, start, tasks
from tests.api.test_keystone_rbac import _with_role
from tests.support.images import make_image

H = dict[str, str]
OCTETS = {"Content-Type": "application/octet-stream"}
COPY = {"name": "copy-image"}
DIRECT = {"name": "glance-direct"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"stores": "fast:file,slow:file", "default_store": "fast", "orphan_grace_seconds": 0}


def store_dir(runtime: Runtime, store_id: str) -> Path:
    return runtime.settings.data_dir / "images" / store_id


def stored(runtime: Runtime, image_id: str) -> dict[str, bytes]:
    """The image's data file in each store that has one."""
    found = {}
    for store_id in ("fast", "slow"):
        path = store_dir(runtime, store_id) / image_id
        if path.is_file():
            found[store_id] = path.read_bytes()
    return found


def imported(client: TestClient, headers: H, runtime: Runtime, data: bytes, **body: Any) -> dict[str, Any]:
    """A new image, ``data`` staged and imported (qcow2, bare) with ``body``'s stores; once the worker ran."""
    image = create(client, headers, name="imported", disk_format="qcow2", container_format="bare")
    assert stage(client, headers, image["id"], data).status_code == 204
    r = start(client, headers, image["id"], {"method": DIRECT, **body})
    assert r.status_code == 202, r.text
    Worker(runtime).run_until_idle()
    return image_of(client, headers, image["id"])


@pytest.fixture
def data(tmp_path: Path) -> bytes:
    return make_image(tmp_path, "qcow2").read_bytes()


class TestDiscovery:
    def test_stores_and_their_details(self, client: TestClient, admin_headers: H, runtime: Runtime) -> None:
        r = client.get("/v2/info/stores", headers=admin_headers)
        assert r.status_code == 200
        assert r.json() == {"stores": [{"id": "fast", "default": "true"}, {"id": "slow"}]}
        r = client.get("/v2/info/stores/detail", headers=admin_headers)
        assert r.status_code == 200
        fast, slow = r.json()["stores"]
        assert (fast["id"], fast["default"], fast["type"], fast["weight"]) == ("fast", "true", "file", 0)
        assert slow["properties"]["data_dir"] == str(store_dir(runtime, "slow")) and "default" not in slow
        member = _with_role(client, admin_headers, "storesmember2", "member")
        assert client.get("/v2/info/stores", headers=member).status_code == 200
        assert client.get("/v2/info/stores/detail", headers=member).status_code == 403
        assert client.get("/v2/info/stores").status_code == 401

    def test_versions_include_the_multi_store_ones(self, client: TestClient) -> None:
        ids = [v["id"] for v in client.get("/versions").json()["versions"]]
        assert ids[0] == "v2.12" and {"v2.8", "v2.10", "v2.11"} <= set(ids)

    def test_create_names_the_stores(self, client: TestClient, admin_headers: H) -> None:
        r = client.post("/v2/images", json={"name": "n"}, headers=admin_headers)
        assert r.status_code == 201
        assert r.headers["OpenStack-image-store-ids"] == "fast,slow"
        assert "stores" not in r.json()  # no data, no stores


class TestImportIntoStores:
    def test_default_store(self, client: TestClient, admin_headers: H, runtime: Runtime, data: bytes) -> None:
        got = imported(client, admin_headers, runtime, data)
        assert (got["status"], got["stores"]) == ("active", "fast")
        assert stored(runtime, got["id"]) == {"fast": data}
        assert got["os_glance_importing_to_stores"] == "" and got["os_glance_failed_import"] == ""
        [task] = tasks(client, admin_headers, got["id"])
        assert task["status"] == "success" and task["input"]["backend"] == ["fast"]

    def test_named_store(self, client: TestClient, admin_headers: H, runtime: Runtime, data: bytes) -> None:
        got = imported(client, admin_headers, runtime, data, stores=["slow"])
        assert (got["status"], got["stores"]) == ("active", "slow")
        # The staged data (in the default store) is gone; the data is in the named store only.
        assert stored(runtime, got["id"]) == {"slow": data}
        assert client.get(f"/v2/images/{got['id']}/file", headers=admin_headers).content == data

    def test_all_stores(self, client: TestClient, admin_headers: H, runtime: Runtime, data: bytes) -> None:
        got = imported(client, admin_headers, runtime, data, all_stores=True)
        assert (got["status"], got["stores"], got["checksum"]) == ("active", "fast,slow", hashlib.md5(data).hexdigest())
        assert stored(runtime, got["id"]) == {"fast": data, "slow": data}
        assert got["os_glance_importing_to_stores"] == "" and got["os_glance_failed_import"] == ""
        # Listed with its stores too.
        listed = client.get("/v2/images", headers=admin_headers).json()["images"]
        assert [i["stores"] for i in listed if i["id"] == got["id"]] == ["fast,slow"]

    @pytest.mark.parametrize("must_succeed", [True, False])
    def test_a_store_that_fails(self, client: TestClient, admin_headers: H, runtime: Runtime, data: bytes,
                                monkeypatch: pytest.MonkeyPatch, must_succeed: bool) -> None:
        def full(chunks: Any, staging: Any, progress: Any) -> Any:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(image_stores, "_stream", full)  # the copy into the second store fails
        got = imported(client, admin_headers, runtime, data, stores=["fast", "slow"],
                       all_stores_must_succeed=must_succeed)
        [task] = tasks(client, admin_headers, got["id"])
        if must_succeed:
            # As Glance's revert: the image goes back to queued, its data gone from every store.
            assert (got["status"], task["status"]) == ("queued", "failure") and "No space left" in task["message"]
            assert got["os_glance_failed_import"] == "fast,slow" and stored(runtime, got["id"]) == {}
        else:
            assert (got["status"], got["stores"], task["status"]) == ("active", "fast", "success")
            assert got["os_glance_failed_import"] == "slow" and stored(runtime, got["id"]) == {"fast": data}
        assert got["os_glance_importing_to_stores"] == "" and "os_glance_import_task" not in got

    def test_refusals(self, client: TestClient, admin_headers: H, data: bytes) -> None:
        image = create(client, admin_headers, name="s", disk_format="qcow2", container_format="bare")
        assert stage(client, admin_headers, image["id"], data).status_code == 204
        r = start(client, admin_headers, image["id"], {"method": DIRECT, "stores": ["fast", "nope"]})
        assert r.status_code == 409 and "Unknown store 'nope'" in r.text
        r = start(client, admin_headers, image["id"], {"method": DIRECT, "stores": ["slow"], "all_stores": True})
        assert r.status_code == 400
        assert image_of(client, admin_headers, image["id"])["status"] == "uploading"  # nothing changed

    def test_a_failed_import_leaves_no_data_anywhere(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                                     tmp_path: Path) -> None:
        raw = make_image(tmp_path, "raw").read_bytes()  # not the qcow2 it claims to be
        got = imported(client, admin_headers, runtime, raw, all_stores=True)
        assert (got["status"], got["size"]) == ("queued", None) and "stores" not in got
        assert (got["os_glance_failed_import"], got["os_glance_importing_to_stores"]) == ("fast,slow", "")
        assert stored(runtime, got["id"]) == {}


class TestCopyImage:
    def test_copy_into_the_other_store(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                       data: bytes) -> None:
        image_id = imported(client, admin_headers, runtime, data)["id"]
        r = start(client, admin_headers, image_id, {"method": COPY, "stores": ["slow"]})
        assert r.status_code == 202 and r.content == b""
        running = image_of(client, admin_headers, image_id)
        assert running["status"] == "active" and running["stores"] == "fast"  # active throughout
        assert running["os_glance_importing_to_stores"] == "slow" and running["os_glance_import_task"]
        # The lock holds: another copy (or import) waits for this one.
        assert start(client, admin_headers, image_id, {"method": COPY, "stores": ["slow"]}).status_code == 409
        Worker(runtime).run_until_idle()
        got = image_of(client, admin_headers, image_id)
        assert (got["status"], got["stores"]) == ("active", "fast,slow")
        assert got["os_glance_importing_to_stores"] == "" and got["os_glance_failed_import"] == ""
        assert "os_glance_import_task" not in got
        assert stored(runtime, image_id) == {"fast": data, "slow": data}
        assert [t["status"] for t in tasks(client, admin_headers, image_id)] == ["success", "success"]
        assert client.get(f"/v2/images/{image_id}/file", headers=admin_headers).content == data
        # Deleting the image removes every copy.
        assert client.delete(f"/v2/images/{image_id}", headers=admin_headers).status_code == 204
        assert stored(runtime, image_id) == {}

    def test_refusals(self, client: TestClient, admin_headers: H, runtime: Runtime, data: bytes) -> None:
        image_id = imported(client, admin_headers, runtime, data)["id"]
        r = start(client, admin_headers, image_id, {"method": COPY, "stores": ["fast"]})
        assert r.status_code == 400 and "already present in store 'fast'" in r.text
        r = start(client, admin_headers, image_id, {"method": COPY, "stores": ["elsewhere"]})
        assert r.status_code == 409
        assert start(client, admin_headers, image_id, {"method": COPY, "stores": ["slow"],
                                                       "all_stores": True}).status_code == 400
        assert start(client, admin_headers, image_id, {"method": COPY}).status_code == 400
        member = _with_role(client, admin_headers, "copymember2", "member")
        r = start(client, member, image_id, {"method": COPY, "stores": ["slow"]})
        assert r.status_code == 403 and error_code(r) == "IMG.0026"
        assert len(tasks(client, admin_headers, image_id)) == 1  # none of these started a task
        # all_stores copies into every store still without the data; once none is left, nothing to do.
        assert start(client, admin_headers, image_id, {"method": COPY, "all_stores": True}).status_code == 202
        Worker(runtime).run_until_idle()
        assert image_of(client, admin_headers, image_id)["stores"] == "fast,slow"
        assert start(client, admin_headers, image_id, {"method": COPY, "all_stores": True}).status_code == 202
        assert len(tasks(client, admin_headers, image_id)) == 2  # the import and one copy: no new task

    def test_only_an_active_image(self, client: TestClient, admin_headers: H) -> None:
        image = create(client, admin_headers, name="q", disk_format="qcow2", container_format="bare")
        r = start(client, admin_headers, image["id"], {"method": COPY, "stores": ["slow"]})
        assert r.status_code == 409

    @pytest.mark.parametrize("must_succeed", [True, False])
    def test_a_copy_that_does_not_match_fails_its_store(self, client: TestClient, admin_headers: H,
                                                        runtime: Runtime, data: bytes, must_succeed: bool) -> None:
        image_id = imported(client, admin_headers, runtime, data)["id"]
        # The stored data no longer has the image's checksum (same size): the copy must not publish it.
        (store_dir(runtime, "fast") / image_id).write_bytes(bytes(len(data)))
        r = start(client, admin_headers, image_id, {"method": COPY, "stores": ["slow"],
                                                    "all_stores_must_succeed": must_succeed})
        assert r.status_code == 202
        Worker(runtime).run_until_idle()
        got = image_of(client, admin_headers, image_id)
        assert (got["status"], got["stores"], got["os_glance_failed_import"]) == ("active", "fast", "slow")
        assert got["os_glance_importing_to_stores"] == "" and "os_glance_import_task" not in got
        [task] = [t for t in tasks(client, admin_headers, image_id) if t["input"]["import_req"]["method"] == COPY]
        assert task["status"] == ("failure" if must_succeed else "success")
        if must_succeed:
            assert "store slow" in task["message"] and "md5" in task["message"]
        # Nothing half-made is left in the target store.
        assert "slow" not in stored(runtime, image_id)
        assert [p.name for p in (store_dir(runtime, "slow") / ".tmp").iterdir()] == []


class TestReadingAndRemovingCopies:
    def test_downloads_prefer_the_default_store_then_any(self, client: TestClient, admin_headers: H,
                                                         runtime: Runtime, data: bytes) -> None:
        image_id = imported(client, admin_headers, runtime, data, stores=["slow", "fast"])["id"]
        assert stored(runtime, image_id) == {"fast": data, "slow": data}
        (store_dir(runtime, "slow") / image_id).write_bytes(b"not read")  # the first copy, not the default's
        assert client.get(f"/v2/images/{image_id}/file", headers=admin_headers).content == data
        r = client.get(f"/v2/images/{image_id}/file", headers={**admin_headers, "Range": "bytes=0-3"})
        assert r.status_code == 206 and r.content == data[:4]
        (store_dir(runtime, "fast") / image_id).unlink()  # gone from the default store: another copy serves
        assert client.get(f"/v2/images/{image_id}/file", headers=admin_headers).content == b"not read"

    def test_delete_one_copy(self, client: TestClient, admin_headers: H, runtime: Runtime, data: bytes) -> None:
        image_id = imported(client, admin_headers, runtime, data, all_stores=True)["id"]
        member = _with_role(client, admin_headers, "storedeleter", "member")
        assert client.delete(f"/v2/stores/slow/{image_id}", headers=member).status_code == 403
        assert client.delete(f"/v2/stores/nope/{image_id}", headers=admin_headers).status_code == 409
        unknown = "00000000-0000-0000-0000-000000000000"
        assert client.delete(f"/v2/stores/slow/{unknown}", headers=admin_headers).status_code == 404
        # The first copy (the default store's) goes; the other remains the image's data.
        assert client.delete(f"/v2/stores/fast/{image_id}", headers=admin_headers).status_code == 204
        got = image_of(client, admin_headers, image_id)
        assert (got["status"], got["stores"]) == ("active", "slow")
        assert stored(runtime, image_id) == {"slow": data}
        assert client.get(f"/v2/images/{image_id}/file", headers=admin_headers).content == data
        # The last copy stays (delete the image instead), as Glance answers.
        r = client.delete(f"/v2/stores/slow/{image_id}", headers=admin_headers)
        assert r.status_code == 403 and "only store" in r.text
        # Copied back, then the other copy goes.
        assert start(client, admin_headers, image_id, {"method": COPY, "stores": ["fast"]}).status_code == 202
        Worker(runtime).run_until_idle()
        assert client.delete(f"/v2/stores/fast/{image_id}", headers=admin_headers).status_code == 204
        assert stored(runtime, image_id) == {"slow": data}

    def test_data_of_before_several_stores_is_the_default_stores(self, client: TestClient, admin_headers: H,
                                                                 runtime: Runtime, data: bytes) -> None:
        image_id = imported(client, admin_headers, runtime, data)["id"]
        # As an image stored before OPENIMS_STORES: a bare id, its file in <data>/images.
        (store_dir(runtime, "fast") / image_id).rename(runtime.settings.image_dir / image_id)
        with runtime.db.transaction() as s:
            s.execute(update(Image).where(Image.id == image_id).values(location=image_id))
        assert image_of(client, admin_headers, image_id)["stores"] == "fast"
        assert client.get(f"/v2/images/{image_id}/file", headers=admin_headers).content == data
        assert start(client, admin_headers, image_id, {"method": COPY, "stores": ["slow"]}).status_code == 202
        Worker(runtime).run_until_idle()
        assert image_of(client, admin_headers, image_id)["stores"] == "fast,slow"
        assert client.delete(f"/v2/images/{image_id}", headers=admin_headers).status_code == 204
        assert stored(runtime, image_id) == {} and not (runtime.settings.image_dir / image_id).exists()

    def test_the_orphan_sweep_keeps_copies(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                           data: bytes, clock: ManualClock) -> None:
        image_id = imported(client, admin_headers, runtime, data, all_stores=True)["id"]
        orphan = "11111111-2222-3333-4444-555555555555"
        (store_dir(runtime, "slow") / orphan).write_bytes(b"left by a crash")
        (runtime.settings.image_dir / orphan).write_bytes(b"left by a crash too")
        clock.advance(10)
        assert Worker(runtime).sweep_orphans() == 2
        assert stored(runtime, image_id) == {"fast": data, "slow": data}
        assert not (store_dir(runtime, "slow") / orphan).exists()
        assert not (runtime.settings.image_dir / orphan).exists()


class TestInterruptedCopy:
    def test_a_copy_cut_off_leaves_nothing_and_the_next_attempt_finishes(
            self, client: TestClient, admin_headers: H, runtime: Runtime, data: bytes, clock: ManualClock,
            monkeypatch: pytest.MonkeyPatch) -> None:
        image_id = imported(client, admin_headers, runtime, data)["id"]
        assert start(client, admin_headers, image_id, {"method": COPY, "stores": ["slow"]}).status_code == 202
        real = image_stores._stream

        def cut_off(chunks: Any, staging: Any, progress: Any) -> Any:
            # Half the data written, then the worker loses its lease (paused past it, say).
            staging.path.write_bytes(next(iter(chunks))[: len(data) // 2])
            raise LeaseLost("cut off")

        monkeypatch.setattr(image_stores, "_stream", cut_off)
        Worker(runtime).run_until_idle()
        got = image_of(client, admin_headers, image_id)
        assert (got["stores"], got["os_glance_importing_to_stores"]) == ("fast", "slow")
        assert "slow" not in stored(runtime, image_id)
        assert [p.name for p in (store_dir(runtime, "slow") / ".tmp").iterdir()] == []
        # The lease lapses; another attempt takes the job over and makes the copy.
        monkeypatch.setattr(image_stores, "_stream", real)
        clock.advance(runtime.settings.job_lease_seconds + 1)
        Worker(runtime).run_until_idle()
        got = image_of(client, admin_headers, image_id)
        assert (got["stores"], got["os_glance_importing_to_stores"]) == ("fast,slow", "")
        assert stored(runtime, image_id) == {"fast": data, "slow": data}
        assert [t["status"] for t in tasks(client, admin_headers, image_id)] == ["success", "success"]


class TestSingleStore:
    """Without OPENIMS_STORES nothing names a store (Glance without multi-backend)."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {}

    def test_no_store_ids_anywhere(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                   data: bytes) -> None:
        assert runtime.stores is None
        ids = [v["id"] for v in client.get("/versions").json()["versions"]]
        assert "v2.8" not in ids and "v2.10" not in ids
        got = imported(client, admin_headers, runtime, data)
        assert got["status"] == "active" and "stores" not in got
        assert (runtime.settings.image_dir / got["id"]).read_bytes() == data  # a bare id, as before
        assert client.delete(f"/v2/stores/fast/{got['id']}", headers=admin_headers).status_code == 404
        r = start(client, admin_headers, got["id"], {"method": COPY, "stores": ["fast"]})
        assert r.status_code == 409 and "single image store" in r.text


class TestOtherPathsOnSeveralStores:
    def test_ims_copy_of_an_image_in_another_store(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                                   data: bytes) -> None:
        source = imported(client, admin_headers, runtime, data, stores=["slow"])
        r = client.post(f"/v1/cloudimages/{source['id']}/copy", json={"name": "the-copy"}, headers=admin_headers)
        assert r.status_code == 200, r.text
        Worker(runtime).run_until_idle()
        job = client.get(f"/v1/cloudimages/job/{r.json()['job_id']}", headers=admin_headers).json()
        assert job["status"] == "SUCCESS", job
        copy = image_of(client, admin_headers, job["entities"]["image_id"])
        # New data goes to the default store, streamed over from the store that holds the source.
        assert (copy["status"], copy["stores"], copy["checksum"]) == ("active", "fast", source["checksum"])
        assert stored(runtime, copy["id"]) == {"fast": data}

    def test_a_direct_upload_goes_to_the_default_store(self, client: TestClient, admin_headers: H,
                                                             runtime: Runtime, data: bytes) -> None:
        image = create(client, admin_headers, name="up", disk_format="qcow2", container_format="bare")
        r = client.put(f"/v2/images/{image['id']}/file", content=data, headers={**admin_headers, **OCTETS})
        assert r.status_code == 204
        assert image_of(client, admin_headers, image["id"])["stores"] == "fast"
        assert stored(runtime, image["id"]) == {"fast": data}

"""IMS lifecycle routes through HTTP: update, quick import, register, export, copy, quota, OS versions.

Jobs run in-process with ``Worker(runtime).run_until_idle()``; images are tiny and made by qemu-img.
"""

from __future__ import annotations

import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openims.api.app import create_app
from openims.db.models import Image, ImageMember, Project
from openims.runtime import Runtime
from openims.worker.runner import Worker
from tests.api.test_images_api import create, upload
from tests.conftest import login
from tests.support.images import file_digests, make_image, qemu_compare
from tests.support.tenants import add_user

H = dict[str, str]
OTHER = {"domain": "other", "project": "local-1_other"}


def _project_id(client: TestClient, headers: H) -> str:
    pid: str = client.get("/v3/auth/projects", headers=headers).json()["projects"][0]["id"]
    return pid


def _job(client: TestClient, headers: H, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = client.get(f"/v1/cloudimages/job/{job_id}", headers=headers).json()
    return job


def _run(client: TestClient, headers: H, runtime: Runtime, r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    Worker(runtime).run_until_idle()
    return _job(client, headers, r.json()["job_id"])


def _imported(client: TestClient, headers: H, runtime: Runtime, files: Path, *, name: str = "img",
              seed: int = 1, bucket: str = "bkt", **body: Any) -> str:
    src = make_image(files, "qcow2", seed=seed)
    upload(client, headers, bucket, f"disk-{seed}.qcow2", src)
    job = _run(client, headers, runtime, create(client, headers, **{
        "name": name, "image_url": f"{bucket}:disk-{seed}.qcow2", "min_disk": 40,
        "os_version": "CentOS 7.0 64bit", **body}))
    assert job["status"] == "SUCCESS", job
    image_id: str = job["entities"]["image_id"]
    return image_id


def _show(client: TestClient, headers: H, image_id: str) -> dict[str, Any]:
    r = client.get(f"/v2/images/{image_id}", headers=headers)
    assert r.status_code == 200, r.text
    image: dict[str, Any] = r.json()
    return image


def _set(runtime: Runtime, image_id: str, **changes: Any) -> None:
    """Change an image row directly (states and kinds the API cannot produce on its own)."""
    with runtime.db.transaction() as s:
        image = s.get(Image, image_id)
        assert image is not None
        props = changes.pop("properties", None)
        for k, v in changes.items():
            setattr(image, k, v)
        if props:
            image.properties = {**image.properties, **props}


def _queued(runtime: Runtime, project_id: str, **fields: Any) -> str:
    """A queued image as native POST /v2/images makes it: metadata only, no data."""
    now = runtime.clock()
    image = Image(id=str(uuid.uuid4()), owner=project_id,
                  name=fields.pop("name", "registered"), status="queued", visibility="private", image_type="private",
                  container_format="bare", disk_format=fields.pop("disk_format", None),
                  min_disk=fields.pop("min_disk", 0), created_at=now, updated_at=now,
                  properties={"__imagetype": "private", **fields.pop("properties", {})})
    with runtime.db.transaction() as s:
        s.add(image)
    return image.id


# What an import records for a system disk image (catalog.imports); enough for requests refused up front.
_IMPORTED_PROPS = {"__imagetype": "private", "__os_type": "Linux", "__platform": "CentOS", "__os_bit": "64",
                   "__os_version": "CentOS 7.0 64bit", "virtual_env_type": "FusionCompute", "architecture": "x86",
                   "hw_firmware_type": "bios", "enterprise_project_id": "0", "__support_kvm": "true",
                   "__description": "", "__isregistered": "true"}


def _active(runtime: Runtime, project_id: str) -> str:
    """An active image row without stored data, for requests that are refused before any job runs."""
    image_id = _queued(runtime, project_id, name="img", min_disk=40, properties=_IMPORTED_PROPS)
    _set(runtime, image_id, status="active", disk_format="qcow2", size=1 << 20, virtual_size=4 << 20,
         location=image_id, checksum="0" * 32, os_hash_algo="sha512", os_hash_value="0" * 128)
    return image_id


def _share(runtime: Runtime, image_id: str, member: str, status: str = "accepted") -> None:
    now = runtime.clock()
    with runtime.db.transaction() as s:
        s.add(ImageMember(image_id=image_id, member_id=member, status=status, created_at=now, updated_at=now))


@pytest.fixture
def files(tmp_path: Path) -> Path:
    return tmp_path / "files"


@pytest.fixture
def viewer(client: TestClient, runtime: Runtime) -> H:
    add_user(runtime.db, name="viewer", role="readonly")
    return {"X-Auth-Token": login(client, "viewer", "User-Pass-1234")}


@pytest.fixture
def eve(client: TestClient, runtime: Runtime) -> H:
    """A user of another account, with full rights there."""
    add_user(runtime.db, name="eve", role="te_admin", domain_name="other", project_name="local-1_other")
    return {"X-Auth-Token": login(client, "eve", "User-Pass-1234", **OTHER)}


# ================================================================ PATCH /v2/cloudimages/{id}


def _patch(client: TestClient, headers: H, image_id: str, *ops: dict[str, Any]) -> Any:
    return client.patch(f"/v2/cloudimages/{image_id}", json=list(ops), headers=headers)


class TestUpdate:
    def test_auth_and_tenancy(self, client: TestClient, admin_headers: H, runtime: Runtime, files: Path,
                              viewer: H, eve: H) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        op = {"op": "replace", "path": "/name", "value": "x"}
        assert _patch(client, {}, image_id, op).status_code == 401
        r = _patch(client, viewer, image_id, op)
        assert r.status_code == 403 and r.json()["error"]["code"] == "IMG.0026"
        r = _patch(client, eve, image_id, op)
        assert r.status_code == 404 and r.json()["error"]["code"] == "IMG.0144"
        assert _show(client, admin_headers, image_id)["name"] == "img"
        # Shared with eve's project: she can see it is there, but only the owner may change it.
        _share(runtime, image_id, _project_id(client, eve))
        r = _patch(client, eve, image_id, op)
        assert r.status_code == 403 and r.json()["error"]["code"] == "IMG.0047"
        assert _show(client, admin_headers, image_id)["name"] == "img"

    def test_documented_attributes(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                   files: Path) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        before = _show(client, admin_headers, image_id)
        runtime.clock.advance(5)  # type: ignore[attr-defined]
        r = _patch(client, admin_headers, image_id,
                   {"op": "replace", "path": "/name", "value": "ims_test"},
                   {"op": "replace", "path": "/__description", "value": "patched"},
                   {"op": "replace", "path": "/min_ram", "value": "1024"},
                   {"op": "add", "path": "/max_ram", "value": 4096},
                   {"op": "replace", "path": "/min_disk", "value": 60},
                   {"op": "replace", "path": "/__os_version", "value": "Ubuntu 14.04 server 32bit"},
                   {"op": "replace", "path": "/hw_firmware_type", "value": "uefi"},
                   {"op": "add", "path": "/__support_largememory", "value": "true"},
                   {"op": "add", "path": "/hw_vif_multiqueue_enabled", "value": True},
                   {"op": "add", "path": "/__support_kvm_gpu_type", "value": "V100_vGPU"},
                   {"op": "replace", "path": "/enterprise_project_id",
                    "value": "3b1fa5a6-cd4e-4ba4-bd07-ae3c6a2e1e45"},
                   {"op": "add", "path": "/my_team", "value": "ops"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body == _show(client, admin_headers, image_id)
        assert body["name"] == "ims_test" and body["__description"] == "patched"
        # Extension attributes are strings in this view (as the SDK's UpdateImageResponse types max_ram).
        assert body["min_ram"] == 1024 and body["max_ram"] == "4096" and body["min_disk"] == 60
        # The OS version implies platform, type and bitness.
        assert (body["__os_version"], body["__platform"], body["__os_type"], body["__os_bit"]) == (
            "Ubuntu 14.04 server 32bit", "Ubuntu", "Linux", "32")
        assert body["hw_firmware_type"] == "uefi" and body["__support_largememory"] == "true"
        assert body["hw_vif_multiqueue_enabled"] == "true" and body["__support_kvm_gpu_type"] == "V100_vGPU"
        assert body["my_team"] == "ops"
        assert body["updated_at"] > before["updated_at"] and body["created_at"] == before["created_at"]
        # Data and identity untouched.
        for key in ("id", "checksum", "size", "status", "owner", "os_hash_value"):
            assert body[key] == before[key]
        found = client.get("/v2/cloudimages", params={"name": "ims_test"}, headers=admin_headers).json()["images"]
        assert [i["id"] for i in found] == [image_id]

        r = _patch(client, admin_headers, image_id, {"op": "remove", "path": "/my_team"},
                   {"op": "remove", "path": "/__support_largememory"}, {"op": "remove", "path": "/max_ram"},
                   {"op": "remove", "path": "/__description"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert "my_team" not in body and "__support_largememory" not in body and "max_ram" not in body
        assert body["__description"] == ""

    def test_empty_patch_changes_nothing(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                         files: Path) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        before = _show(client, admin_headers, image_id)
        r = _patch(client, admin_headers, image_id)
        assert r.status_code == 200 and r.json() == before

    @pytest.mark.parametrize(("ops", "code"), [
        ([{"op": "move", "path": "/name", "value": "x"}], "IMG.0001"),
        ([{"op": "replace", "path": "name", "value": "x"}], "IMG.0001"),
        ([{"op": "replace", "path": "/name"}], "IMG.0001"),
        ([{"op": "replace", "path": "/id", "value": "x"}], "IMG.0001"),
        ([{"op": "replace", "path": "/status", "value": "active"}], "IMG.0001"),
        ([{"op": "replace", "path": "/checksum", "value": "0" * 32}], "IMG.0001"),
        ([{"op": "replace", "path": "/__platform", "value": "Windows"}], "IMG.0001"),
        # visibility and __imagetype (publishing): the operator's alone, 403 to others (test_operators.py).
        ([{"op": "add", "path": "/__anything_new", "value": "x"}], "IMG.0001"),
        ([{"op": "add", "path": "/MyKey", "value": "x"}], "IMG.0001"),
        ([{"op": "add", "path": "/key", "value": "v" * 256}], "IMG.0001"),
        ([{"op": "remove", "path": "/not_there"}], "IMG.0001"),
        ([{"op": "replace", "path": "/__is_config_init", "value": "maybe"}], "IMG.0001"),
        ([{"op": "replace", "path": "/name", "value": "bad/name"}], "IMG.0003"),
        ([{"op": "replace", "path": "/name", "value": "n" * 129}], "IMG.0002"),
        ([{"op": "remove", "path": "/name"}], "IMG.0013"),
        ([{"op": "replace", "path": "/__description", "value": "<b>"}], "IMG.0054"),
        ([{"op": "replace", "path": "/min_disk", "value": 0}], "IMG.0055"),
        ([{"op": "replace", "path": "/min_disk", "value": 2000}], "IMG.0055"),
        ([{"op": "replace", "path": "/min_disk", "value": "forty"}], "IMG.0055"),
        ([{"op": "replace", "path": "/min_ram", "value": 8192}, {"op": "replace", "path": "/max_ram",
                                                                  "value": 1024}], "IMG.0055"),
        ([{"op": "replace", "path": "/__os_version", "value": "Plan 9"}], "IMG.0056"),
        ([{"op": "replace", "path": "/hw_firmware_type", "value": "coreboot"}], "IMG.0141"),
        ([{"op": "replace", "path": "/enterprise_project_id", "value": "nope"}], "IMG.0155"),
        # An extension attribute's name ending in a newline ("$" matched before it): stored with it before.
        ([{"op": "add", "path": "/foo\n", "value": "x"}], "IMG.0001"),
        # __support_kvm is "true" on imported images: HANA needs it removed first.
        ([{"op": "add", "path": "/__support_xen_hana", "value": "true"}], "IMG.0035"),
        ([{"op": "add", "path": "/__support_xen", "value": "true"},
          {"op": "add", "path": "/__support_kvm_infiniband", "value": "true"}], "IMG.0035"),
        # All or nothing: a valid rename before a bad op is not applied either.
        ([{"op": "replace", "path": "/name", "value": "renamed"},
          {"op": "replace", "path": "/min_ram", "value": -1}], "IMG.0055"),
    ])
    def test_bad_operations(self, client: TestClient, admin_headers: H, runtime: Runtime,
                            ops: list[dict[str, Any]], code: str) -> None:
        image_id = _active(runtime, _project_id(client, admin_headers))
        before = _show(client, admin_headers, image_id)
        r = _patch(client, admin_headers, image_id, *ops)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == code, r.text
        assert _show(client, admin_headers, image_id) == before

    def test_hana_after_removing_kvm(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                     files: Path) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        r = _patch(client, admin_headers, image_id, {"op": "remove", "path": "/__support_kvm"},
                   {"op": "add", "path": "/__support_xen_hana", "value": "true"})
        assert r.status_code == 200 and r.json()["__support_xen_hana"] == "true", r.text

    @pytest.mark.parametrize("raw", [b'{"op": "replace", "path": "/name", "value": "x"}', b"[1, 2]", b"nope"])
    def test_body_must_be_an_array_of_operations(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                                 raw: bytes) -> None:
        image_id = _active(runtime, _project_id(client, admin_headers))
        r = client.patch(f"/v2/cloudimages/{image_id}", content=raw,
                         headers={**admin_headers, "Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0001", r.text

    def test_body_media_types(self, client: TestClient, admin_headers: H, runtime: Runtime) -> None:
        image_id = _active(runtime, _project_id(client, admin_headers))
        r = client.patch(f"/v2/cloudimages/{image_id}", content=b"", headers=admin_headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0007"
        # The SDK's application/json;charset=UTF-8 and Glance's JSON-patch type are both understood.
        for media_type, name in (("application/json;charset=UTF-8", "one"),
                                 ("application/openstack-images-v2.1-json-patch", "two")):
            r = client.patch(f"/v2/cloudimages/{image_id}", headers={**admin_headers, "Content-Type": media_type},
                             content=b'[{"op": "replace", "path": "/name", "value": "%s"}]' % name.encode())
            assert r.status_code == 200 and r.json()["name"] == name, r.text

    def test_only_active_images(self, client: TestClient, admin_headers: H, runtime: Runtime) -> None:
        image_id = _queued(runtime, _project_id(client, admin_headers))
        r = _patch(client, admin_headers, image_id, {"op": "replace", "path": "/name", "value": "x"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0046"

    def test_data_image_has_no_os_version(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                          files: Path) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        _set(runtime, image_id, properties={"virtual_env_type": "DataImage"})
        r = _patch(client, admin_headers, image_id, {"op": "replace", "path": "/__os_version",
                                                     "value": "CentOS 7.0 64bit"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0168"
        # Other attributes of a data image can change; its min_disk range is the data-disk one.
        r = _patch(client, admin_headers, image_id, {"op": "replace", "path": "/min_disk", "value": 30})
        assert r.json()["error"]["code"] == "IMG.0055"
        r = _patch(client, admin_headers, image_id, {"op": "replace", "path": "/min_disk", "value": 100})
        assert r.status_code == 200 and r.json()["min_disk"] == 100

    def test_min_disk_must_hold_the_disk(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                         files: Path) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        _set(runtime, image_id, virtual_size=50 * 1024**3)
        r = _patch(client, admin_headers, image_id, {"op": "replace", "path": "/min_disk", "value": 49})
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0055"
        assert "50 GB" in r.json()["error"]["message"]


# ================================================================ quick import


class TestQuickImport:
    def test_system_and_data_disk_forms(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                        files: Path) -> None:
        raw = make_image(files, "raw", seed=3)
        upload(client, admin_headers, "bkt", "disk.raw", raw)
        job = _run(client, admin_headers, runtime, client.post("/v2/cloudimages/quickimport/action", json={
            "name": "quick", "image_url": "bkt:disk.raw", "os_version": "CentOS 7.0 64bit", "min_disk": 40,
            "type": "ECS", "tags": ["aaa.111"]}, headers=admin_headers))
        assert job["status"] == "SUCCESS" and job["job_type"] == "imsImportImageJob", job
        image = _show(client, admin_headers, job["entities"]["image_id"])
        assert image["disk_format"] == "raw" and image["__quick_import"] == "true"
        assert image["virtual_env_type"] == "FusionCompute" and image["tags"] == ["aaa.111"]
        assert runtime.images.path(image["id"]).read_bytes() == raw.read_bytes()

        job = _run(client, admin_headers, runtime, client.post("/v2.1/cloudimages/quickimport/action", json={
            "name": "quick-data", "image_url": "bkt:disk.raw", "os_type": "Linux", "min_disk": 40,
            "type": "DataImage", "image_tags": [{"key": "k", "value": "v"}]}, headers=admin_headers))
        assert job["status"] == "SUCCESS" and job["job_type"] == "imsImportDataImageJob", job
        image = _show(client, admin_headers, job["entities"]["image_id"])
        assert image["virtual_env_type"] == "DataImage" and image["disk_format"] == "raw"
        assert image["__quick_import"] == "true" and image["tags"] == ["k.v"]

    @pytest.mark.parametrize(("change", "code"), [
        ({"os_version": None}, "IMG.0056"),
        ({"os_version": "Plan 9"}, "IMG.0056"),
        ({"image_url": None}, "IMG.0017"),
        ({"image_url": "no-colon"}, "IMG.0017"),
        ({"min_disk": None}, "IMG.0055"),
        ({"min_disk": 2000}, "IMG.0055"),
        ({"name": None}, "IMG.0013"),
        ({"type": "Mainframe"}, "IMG.0024"),
        ({"type": "DataImage", "min_disk": 10}, "IMG.0055"),
    ])
    def test_validation(self, client: TestClient, admin_headers: H, change: dict[str, Any], code: str) -> None:
        body = {"name": "q", "image_url": "bkt:disk.raw", "os_version": "CentOS 7.0 64bit", "min_disk": 40, **change}
        r = client.post("/v2/cloudimages/quickimport/action", json={k: v for k, v in body.items() if v is not None},
                        headers=admin_headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text

    def test_non_raw_files_fail_with_reason(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                            files: Path) -> None:
        qcow2 = make_image(files, "qcow2")
        upload(client, admin_headers, "bkt", "disk.qcow2", qcow2)
        upload(client, admin_headers, "bkt", "disk.zvhd2", qcow2)
        for key, words in (("disk.qcow2", "raw"), ("disk.zvhd2", "not supported")):
            job = _run(client, admin_headers, runtime, client.post("/v2/cloudimages/quickimport/action", json={
                "name": "q", "image_url": f"bkt:{key}", "os_version": "CentOS 7.0 64bit", "min_disk": 40},
                headers=admin_headers))
            assert job["status"] == "FAIL" and job["error_code"] == "IMG.0072", job
            assert words in job["fail_reason"] and key in job["fail_reason"]
        assert client.get("/v2/cloudimages", headers=admin_headers).json()["images"] == []

    def test_auth(self, client: TestClient, viewer: H) -> None:
        body = {"name": "q", "image_url": "bkt:d.raw", "os_version": "CentOS 7.0 64bit", "min_disk": 40}
        assert client.post("/v2/cloudimages/quickimport/action", json=body).status_code == 401
        r = client.post("/v2/cloudimages/quickimport/action", json=body, headers=viewer)
        assert r.status_code == 403 and r.json()["error"]["code"] == "IMG.0026"


# ================================================================ register


def _register(client: TestClient, headers: H, image_id: str, url: str | None) -> Any:
    return client.put(f"/v1/cloudimages/{image_id}/upload", json={} if url is None else {"image_url": url},
                      headers=headers)


class TestRegister:
    def test_register_queued_image(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                   files: Path) -> None:
        pid = _project_id(client, admin_headers)
        image_id = _queued(runtime, pid, name="native", disk_format="vmdk", min_disk=1)
        src = make_image(files, "vmdk", seed=7)
        upload(client, admin_headers, "bkt", "in/disk.vmdk", src)
        r = _register(client, admin_headers, image_id, "bkt:in/disk.vmdk")
        assert r.status_code == 200, r.text
        job_id = r.json()["job_id"]
        job = client.get(f"/v1/{pid}/jobs/{job_id}", headers=admin_headers).json()
        assert job["job_type"] == "imsNativeImportImageJob" and job["entities"]["image_id"] == image_id
        assert _show(client, admin_headers, image_id)["status"] == "saving"
        # A second registration of the same image is refused while the first runs.
        r = _register(client, admin_headers, image_id, "bkt:in/disk.vmdk")
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0046"
        Worker(runtime).run_until_idle()
        job = _job(client, admin_headers, job_id)
        assert job["status"] == "SUCCESS", job
        image = _show(client, admin_headers, image_id)
        assert image["status"] == "active" and image["name"] == "native"
        assert image["__isregistered"] == "true" and image["__data_origin"] == "file,bkt:in/disk.vmdk"
        stored = runtime.images.path(image_id)
        md5, sha512, size = file_digests(stored)
        assert (image["checksum"], image["os_hash_value"], image["size"]) == (md5, sha512, size)
        assert qemu_compare(stored, image["disk_format"], src, "vmdk")

    def test_failure_gives_the_image_back_as_queued(self, client: TestClient, admin_headers: H,
                                                    runtime: Runtime, files: Path) -> None:
        pid = _project_id(client, admin_headers)
        image_id = _queued(runtime, pid, disk_format="qcow2")
        client.put("/obs/bkt", headers=admin_headers)
        job = _run(client, admin_headers, runtime, _register(client, admin_headers, image_id, "bkt:missing.qcow2"))
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0057", job
        assert "bkt:missing.qcow2" in job["fail_reason"]
        assert _show(client, admin_headers, image_id)["status"] == "queued"
        # The declared disk_format must be what the file holds.
        upload(client, admin_headers, "bkt", "disk.vhd", make_image(files, "vhd"))
        job = _run(client, admin_headers, runtime, _register(client, admin_headers, image_id, "bkt:disk.vhd"))
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0057" and "qcow2" in job["fail_reason"], job
        assert _show(client, admin_headers, image_id)["status"] == "queued"
        assert not runtime.images.exists(image_id)
        # And it can be tried again.
        upload(client, admin_headers, "bkt", "disk.qcow2", make_image(files, "qcow2"))
        job = _run(client, admin_headers, runtime, _register(client, admin_headers, image_id, "bkt:disk.qcow2"))
        assert job["status"] == "SUCCESS", job
        assert _show(client, admin_headers, image_id)["status"] == "active"

    def test_refusals(self, client: TestClient, admin_headers: H, runtime: Runtime, files: Path, viewer: H,
                      eve: H) -> None:
        pid = _project_id(client, admin_headers)
        image_id = _queued(runtime, pid)
        assert _register(client, {}, image_id, "bkt:d.qcow2").status_code == 401
        assert _register(client, viewer, image_id, "bkt:d.qcow2").status_code == 403
        r = _register(client, eve, image_id, "bkt:d.qcow2")
        assert r.status_code == 404 and r.json()["error"]["code"] == "IMG.0144"
        for url, code in ((None, "IMG.0017"), ("no-colon", "IMG.0017"), ("Bad_Bucket:x", "IMG.0109")):
            r = _register(client, admin_headers, image_id, url)
            assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
        active = _imported(client, admin_headers, runtime, files)
        r = _register(client, admin_headers, active, "bkt:disk-1.qcow2")
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0046"
        # A queued image that a pending copy job will fill cannot be registered meanwhile.
        copy_job = _copy(client, admin_headers, active, name="pending-copy").json()["job_id"]
        copy_id = _job(client, admin_headers, copy_job)["entities"]["image_id"]
        assert _show(client, admin_headers, copy_id)["status"] == "queued"
        r = _register(client, admin_headers, copy_id, "bkt:disk-1.qcow2")
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0046"
        assert _show(client, admin_headers, image_id)["status"] == "queued"


# ================================================================ export


def _export(client: TestClient, headers: H, image_id: str, **body: Any) -> Any:
    return client.post(f"/v1/cloudimages/{image_id}/file", json=body, headers=headers)


QEMU_NAMES = {"qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vpc", "raw": "raw"}


class TestExport:
    @pytest.mark.parametrize("fmt", ["qcow2", "vmdk", "vhd", "raw"])
    def test_export_each_format(self, client: TestClient, admin_headers: H, runtime: Runtime, files: Path,
                                fmt: str) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        r = _export(client, admin_headers, image_id, bucket_url=f"bkt:out/exported.{fmt}", file_format=fmt)
        assert r.status_code == 200, r.text
        job = _job(client, admin_headers, r.json()["job_id"])
        assert job["job_type"] == "imsNativeExportImageJob" and job["entities"]["image_id"] == image_id
        assert Worker(runtime).run_until_idle() == 1
        job = _job(client, admin_headers, r.json()["job_id"])
        assert job["status"] == "SUCCESS" and job["entities"]["process_percent"] == 100.0, job
        objects = client.get("/obs/bkt", params={"prefix": "out/"}, headers=admin_headers).json()["objects"]
        assert [o["key"] for o in objects] == [f"out/exported.{fmt}"]
        exported = runtime.settings.obs_dir / "bkt" / "out" / f"exported.{fmt}"
        info = subprocess.run(["qemu-img", "info", "-f", QEMU_NAMES[fmt], "--output=json", str(exported)],
                              capture_output=True, text=True, check=True)
        assert f'"format": "{QEMU_NAMES[fmt]}"' in info.stdout
        image = _show(client, admin_headers, image_id)
        assert qemu_compare(runtime.images.path(image_id), image["disk_format"], exported, QEMU_NAMES[fmt])
        # No temp files left in the bucket or the image store.
        assert [p.name for p in (runtime.settings.obs_dir / "bkt" / "out").iterdir()] == [f"exported.{fmt}"]
        assert list(runtime.images.tmp.iterdir()) == []

    def test_retry_after_a_crash_past_publishing_succeeds(self, client: TestClient, admin_headers: H,
                                                          runtime: Runtime, files: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
        """A worker dies after the file is in the bucket but before SUCCESS: the retry finishes the job."""
        from openims.catalog import jobs as job_rules
        from openims.worker import lifecycle_handlers
        from openims.worker.context import JobContext

        image_id = _imported(client, admin_headers, runtime, files)
        job_id = _export(client, admin_headers, image_id, bucket_url="bkt:out/x.qcow2",
                         file_format="qcow2").json()["job_id"]

        class Crash(Exception):
            pass

        def crash(*_: Any, **__: Any) -> None:
            raise Crash

        job = job_rules.claim(runtime.db, "dead-worker", runtime.settings.job_lease_seconds, runtime.clock())
        assert job is not None and job.id == job_id
        monkeypatch.setattr(lifecycle_handlers, "finish", crash)
        with pytest.raises(Crash):
            lifecycle_handlers.HANDLERS["imsNativeExportImageJob"].run(JobContext(runtime, job, "dead-worker"))
        monkeypatch.undo()
        exported = runtime.settings.obs_dir / "bkt" / "out" / "x.qcow2"
        before = file_digests(exported)
        assert _job(client, admin_headers, job_id)["status"] == "RUNNING"

        runtime.clock.advance(runtime.settings.job_lease_seconds + 1)  # type: ignore[attr-defined]
        assert Worker(runtime).run_until_idle() == 1
        job_body = _job(client, admin_headers, job_id)
        assert job_body["status"] == "SUCCESS", (job_body["error_code"], job_body["fail_reason"])
        assert file_digests(exported) == before  # the published file is kept, not rewritten
        assert list(runtime.images.tmp.iterdir()) == []

    def test_retry_does_not_take_over_a_different_file(self, client: TestClient, admin_headers: H,
                                                       runtime: Runtime, files: Path) -> None:
        from openims.catalog import jobs as job_rules

        image_id = _imported(client, admin_headers, runtime, files)
        job_id = _export(client, admin_headers, image_id, bucket_url="bkt:out/y.qcow2",
                         file_format="qcow2").json()["job_id"]
        # The first attempt dies before doing anything; meanwhile someone writes another file there.
        assert job_rules.claim(runtime.db, "dead-worker", runtime.settings.job_lease_seconds, runtime.clock())
        (runtime.settings.obs_dir / "bkt" / "out").mkdir(parents=True, exist_ok=True)
        (runtime.settings.obs_dir / "bkt" / "out" / "y.qcow2").write_bytes(b"someone else's file")
        runtime.clock.advance(runtime.settings.job_lease_seconds + 1)  # type: ignore[attr-defined]
        Worker(runtime).run_until_idle()
        job = _job(client, admin_headers, job_id)
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0070", job
        assert (runtime.settings.obs_dir / "bkt" / "out" / "y.qcow2").read_bytes() == b"someone else's file"
        assert list(runtime.images.tmp.iterdir()) == []

    @pytest.mark.parametrize(("body", "code"), [
        ({"file_format": "zvhd"}, "IMG.0072"),
        ({"file_format": "zvhd2"}, "IMG.0072"),
        ({"file_format": "iso"}, "IMG.0072"),
        ({"file_format": None}, "IMG.0001"),
        ({"file_format": None, "is_quick_export": True}, "IMG.0072"),
        ({"is_quick_export": True}, "IMG.0001"),
        ({"is_quick_export": "yes"}, "IMG.0001"),
        ({"bucket_url": None}, "IMG.0017"),
        ({"bucket_url": "no-colon"}, "IMG.0017"),
        ({"bucket_url": ":file.qcow2"}, "IMG.0068"),
        ({"bucket_url": "Bad_Bucket:file.qcow2"}, "IMG.0109"),
        ({"bucket_url": "bkt\n:file.qcow2"}, "IMG.0109"),
        ({"bucket_url": "bkt:file.qcow2\n"}, "IMG.0075"),
        ({"bucket_url": "bkt:"}, "IMG.0073"),
        ({"bucket_url": "bkt:" + "f" * 129}, "IMG.0074"),
        ({"bucket_url": "bkt:my file.qcow2"}, "IMG.0175"),
        ({"bucket_url": "bkt:a/../file.qcow2"}, "IMG.0075"),
        ({"bucket_url": "bkt:a//file.qcow2"}, "IMG.0075"),
        ({"bucket_url": "bkt:file*.qcow2"}, "IMG.0075"),
    ])
    def test_validation(self, client: TestClient, admin_headers: H, runtime: Runtime,
                        body: dict[str, Any], code: str) -> None:
        image_id = _active(runtime, _project_id(client, admin_headers))
        full = {"bucket_url": "bkt:out.qcow2", "file_format": "qcow2", **body}
        r = _export(client, admin_headers, image_id, **{k: v for k, v in full.items() if v is not None})
        assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
        assert Worker(runtime).run_until_idle() == 0

    def test_which_images_can_be_exported(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                          files: Path, viewer: H, eve: H) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        body = {"bucket_url": "bkt:out.qcow2", "file_format": "qcow2"}
        assert _export(client, {}, image_id, **body).status_code == 401
        assert _export(client, viewer, image_id, **body).status_code == 403
        r = _export(client, eve, image_id, **body)
        assert r.status_code == 404 and r.json()["error"]["code"] == "IMG.0144"
        _share(runtime, image_id, _project_id(client, eve))
        r = _export(client, eve, image_id, **body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "IMG.0047"
        _set(runtime, image_id, visibility="public")
        assert _export(client, eve, image_id, **body).json()["error"]["code"] == "IMG.0077"
        _set(runtime, image_id, visibility="private", properties={"virtual_env_type": "IsoImage"})
        assert _export(client, admin_headers, image_id, **body).json()["error"]["code"] == "IMG.0167"
        _set(runtime, image_id, properties={"virtual_env_type": "FusionCompute"}, size=200 * 1024**3)
        assert _export(client, admin_headers, image_id, **body).json()["error"]["code"] == "IMG.0160"
        queued = _queued(runtime, _project_id(client, admin_headers))
        r = _export(client, admin_headers, queued, **body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0046"
        assert Worker(runtime).run_until_idle() == 0

    def test_data_images_can_be_exported(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                         files: Path) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        _set(runtime, image_id, properties={"virtual_env_type": "DataImage"})
        job = _run(client, admin_headers, runtime,
                   _export(client, admin_headers, image_id, bucket_url="bkt:data.vmdk", file_format="VMDK"))
        assert job["status"] == "SUCCESS", job

    def test_bucket_problems_fail_the_job(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                          files: Path, eve: H) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        # A bucket nobody has.
        job = _run(client, admin_headers, runtime,
                   _export(client, admin_headers, image_id, bucket_url="nobucket:x.qcow2", file_format="qcow2"))
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0069" and "nobucket" in job["fail_reason"]
        # Another account's bucket: the same answer, and nothing is written there.
        assert client.put("/obs/eves-bucket", headers=eve).status_code == 201
        job = _run(client, admin_headers, runtime,
                   _export(client, admin_headers, image_id, bucket_url="eves-bucket:x.qcow2", file_format="qcow2"))
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0069", job
        assert client.get("/obs/eves-bucket", headers=eve).json()["objects"] == []
        # An existing file is never replaced.
        upload(client, admin_headers, "bkt", "taken.qcow2", files / "disk-1.qcow2")
        before = (runtime.settings.obs_dir / "bkt" / "taken.qcow2").read_bytes()
        job = _run(client, admin_headers, runtime,
                   _export(client, admin_headers, image_id, bucket_url="bkt:taken.qcow2", file_format="vmdk"))
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0070", job
        assert (runtime.settings.obs_dir / "bkt" / "taken.qcow2").read_bytes() == before
        assert list(runtime.images.tmp.iterdir()) == []
        # The image itself is unaffected by failed exports.
        assert _show(client, admin_headers, image_id)["status"] == "active"

    def test_image_deleted_before_the_job_runs(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                               files: Path) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        r = _export(client, admin_headers, image_id, bucket_url="bkt:gone.qcow2", file_format="qcow2")
        assert client.delete(f"/v2/images/{image_id}", headers=admin_headers).status_code == 204
        job = _run(client, admin_headers, runtime, r)
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0144", job
        assert not (runtime.settings.obs_dir / "bkt" / "gone.qcow2").exists()


# ================================================================ copy


def _copy(client: TestClient, headers: H, image_id: str, **body: Any) -> Any:
    return client.post(f"/v1/cloudimages/{image_id}/copy", json=body, headers=headers)


class TestCopy:
    def test_copy(self, client: TestClient, admin_headers: H, runtime: Runtime, files: Path) -> None:
        source_id = _imported(client, admin_headers, runtime, files, min_ram=1024, tags=["team.ops"])
        _patch(client, admin_headers, source_id, {"op": "add", "path": "/my_key", "value": "kept"})
        source = _show(client, admin_headers, source_id)
        r = _copy(client, admin_headers, source_id, name="the-copy", description="test copy")
        job = _job(client, admin_headers, r.json()["job_id"])
        assert job["job_type"] == "imsCopyImageInRegionJob" and job["entities"]["image_name"] == "the-copy"
        copy_id = job["entities"]["image_id"]
        assert copy_id != source_id and _show(client, admin_headers, copy_id)["status"] == "queued"
        Worker(runtime).run_until_idle()
        job = _job(client, admin_headers, job["job_id"])
        assert job["status"] == "SUCCESS", job
        copy = _show(client, admin_headers, copy_id)
        assert copy["status"] == "active" and copy["name"] == "the-copy" and copy["__description"] == "test copy"
        assert copy["visibility"] == "private" and copy["__imagetype"] == "private"
        for key in ("checksum", "os_hash_value", "size", "virtual_size", "disk_format", "min_disk", "min_ram",
                    "__os_version", "__platform", "my_key"):
            assert copy[key] == source[key], key
        assert copy["__originalimagename"] == source_id
        assert runtime.images.path(copy_id).read_bytes() == runtime.images.path(source_id).read_bytes()
        assert file_digests(runtime.images.path(copy_id))[0] == copy["checksum"]
        # Two independent images: deleting the source keeps the copy whole.
        assert client.delete(f"/v2/images/{source_id}", headers=admin_headers).status_code == 204
        assert file_digests(runtime.images.path(copy_id))[0] == copy["checksum"]
        assert _show(client, admin_headers, copy_id)["status"] == "active"

    @pytest.mark.parametrize(("body", "code"), [
        ({"name": None}, "IMG.0013"),
        ({"name": "bad/name"}, "IMG.0003"),
        ({"description": "a\nb"}, "IMG.0054"),
        ({"cmk_id": "bd66288c-9081-460a-8227-4cbd0c814cb4"}, "IMG.0095"),
        ({"enterprise_project_id": "nope"}, "IMG.0155"),
    ])
    def test_validation(self, client: TestClient, admin_headers: H, runtime: Runtime,
                        body: dict[str, Any], code: str) -> None:
        image_id = _active(runtime, _project_id(client, admin_headers))
        full = {"name": "copy", **body}
        r = _copy(client, admin_headers, image_id, **{k: v for k, v in full.items() if v is not None})
        assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
        assert len(client.get("/v2/cloudimages", headers=admin_headers).json()["images"]) == 1

    def test_who_may_copy_what(self, client: TestClient, admin_headers: H, runtime: Runtime, files: Path,
                               viewer: H, eve: H) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        assert _copy(client, {}, image_id, name="c").status_code == 401
        assert _copy(client, viewer, image_id, name="c").status_code == 403
        r = _copy(client, eve, image_id, name="c")
        assert r.status_code == 404 and r.json()["error"]["code"] == "IMG.0144"
        eve_project = _project_id(client, eve)
        _share(runtime, image_id, eve_project, status="pending")
        r = _copy(client, eve, image_id, name="c")
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0196"
        with runtime.db.transaction() as s:
            member = s.get(ImageMember, (image_id, eve_project))
            assert member is not None
            member.status = "accepted"
        # An accepted shared image can be copied into the member's own project.
        job = _run(client, eve, runtime, _copy(client, eve, image_id, name="mine-now"))
        assert job["status"] == "SUCCESS", job
        copy = _show(client, eve, job["entities"]["image_id"])
        assert copy["owner"] == eve_project and copy["__imagetype"] == "private"
        _set(runtime, image_id, visibility="public")
        assert _copy(client, eve, image_id, name="c").json()["error"]["code"] == "IMG.0083"
        _set(runtime, image_id, visibility="shared", properties={"virtual_env_type": "IsoImage"})
        assert _copy(client, admin_headers, image_id, name="c").json()["error"]["code"] == "IMG.0167"
        queued = _queued(runtime, _project_id(client, admin_headers))
        assert _copy(client, admin_headers, queued, name="c").json()["error"]["code"] == "IMG.0046"

    def test_quota_and_source_deleted(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                      files: Path) -> None:
        image_id = _imported(client, admin_headers, runtime, files)
        runtime.settings.image_quota = 2
        r = _copy(client, admin_headers, image_id, name="c1")
        assert r.status_code == 200
        r2 = _copy(client, admin_headers, image_id, name="c2")
        assert r2.status_code == 400 and r2.json()["error"]["code"] == "IMG.0015"
        # The source goes before the job runs: the job fails and its queued copy disappears.
        assert client.delete(f"/v2/images/{image_id}", headers=admin_headers).status_code == 204
        job = _run(client, admin_headers, runtime, r)
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0144", job
        assert client.get("/v2/cloudimages", headers=admin_headers).json()["images"] == []
        assert list(runtime.images.root.glob("*-*")) == []


# ================================================================ quota


class TestQuota:
    def test_show(self, client: TestClient, admin_headers: H, runtime: Runtime, viewer: H) -> None:
        assert client.get("/v1/cloudimages/quota").status_code == 401
        r = client.get("/v1/cloudimages/quota", headers=viewer)
        assert r.status_code == 200
        assert r.json() == {"quotas": {"resources": [{"type": "image", "used": 0, "quota": 100, "min": 1,
                                                       "max": 100000}]}}
        create(client, admin_headers, name="i", image_url="bkt:d.qcow2", min_disk=40,
               data_images=[{"image_url": "bkt:e.qcow2", "min_disk": 40}])
        used = client.get("/v1/cloudimages/quota", headers=viewer).json()["quotas"]["resources"][0]
        assert used["used"] == 2 and used["quota"] == 100

    def test_admin_sets_a_project_quota(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                        eve: H) -> None:
        pid = _project_id(client, admin_headers)
        body = {"quotas": {"resources": [{"type": "image", "quota": 1}]}}
        r = client.put("/v1/cloudimages/quota", params={"project_id": "local-1"}, json=body, headers=admin_headers)
        assert r.status_code == 200, r.text
        assert r.json()["quotas"]["resources"][0]["quota"] == 1
        valid = {"name": "i", "image_url": "bkt:d.qcow2", "min_disk": 40}
        assert create(client, admin_headers, **valid).status_code == 200
        r = create(client, admin_headers, **valid)
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0015"
        # Another account is not affected, and cannot touch or see this project.
        assert create(client, eve, **valid).status_code == 200
        r = client.put("/v1/cloudimages/quota", params={"project_id": pid}, json=body, headers=eve)
        assert r.status_code == 404 and r.json()["error"]["code"] == "IMG.0067"
        r = client.get("/v1/cloudimages/quota", params={"project_id": pid}, headers=eve)
        assert r.status_code == 404
        # Back to the default (by project id).
        r = client.put("/v1/cloudimages/quota", params={"project_id": pid},
                       json={"quotas": {"resources": [{"type": "image", "quota": None}]}}, headers=admin_headers)
        assert r.json()["quotas"]["resources"][0] == {"type": "image", "used": 1, "quota": 100, "min": 1,
                                                      "max": 100000}
        assert create(client, admin_headers, **valid).status_code == 200

    def test_only_account_administrators_set_quotas(self, client: TestClient, admin_headers: H,
                                                    runtime: Runtime, viewer: H) -> None:
        add_user(runtime.db, name="imsuser", role="ims_fullaccess")
        ims_user = {"X-Auth-Token": login(client, "imsuser", "User-Pass-1234")}
        body = {"quotas": {"resources": [{"type": "image", "quota": 500}]}}
        for headers in (viewer, ims_user):
            r = client.put("/v1/cloudimages/quota", json=body, headers=headers)
            assert r.status_code == 403 and r.json()["error"]["code"] == "IMG.0026"
            # Nor may they look at another project's quota.
            r = client.get("/v1/cloudimages/quota", params={"project_id": "whatever"}, headers=headers)
            assert r.status_code == 403
        assert client.put("/v1/cloudimages/quota", json=body).status_code == 401
        r = client.get("/v1/cloudimages/quota", headers=admin_headers)
        assert r.json()["quotas"]["resources"][0]["quota"] == 100

    @pytest.mark.parametrize(("resource", "code"), [
        ({"type": "image", "quota": 0}, "IMG.0034"),
        ({"type": "image", "quota": 100_001}, "IMG.0034"),
        ({"type": "image_member", "quota": 5}, "IMG.0034"),
        ({"type": "image", "quota": "lots"}, "IMG.0001"),
    ])
    def test_bad_values(self, client: TestClient, admin_headers: H, resource: dict[str, Any], code: str) -> None:
        r = client.put("/v1/cloudimages/quota", json={"quotas": {"resources": [resource]}}, headers=admin_headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
        r = client.put("/v1/cloudimages/quota", params={"project_id": "no-such-project"},
                       json={"quotas": {"resources": [{"type": "image", "quota": 5}]}}, headers=admin_headers)
        assert r.status_code == 404

    def test_concurrent_creates_cannot_overshoot(self, runtime: Runtime, admin_token: str) -> None:
        """Twelve simultaneous requests (imports and copies) for the last three places: three win."""
        app = create_app(runtime)
        headers = {"X-Auth-Token": admin_token}
        with runtime.db.transaction() as s:
            pid = s.query(Project).filter_by(name="local-1").one().id
        with TestClient(app) as c:
            r = c.put("/v1/cloudimages/quota", json={"quotas": {"resources": [{"type": "image", "quota": 3}]}},
                      headers=headers)
            assert r.status_code == 200
        # A source to copy from, counted against the quota too: two places remain for twelve requests.
        source = _queued(runtime, pid, name="source")
        _set(runtime, source, status="active", location=source, size=1, virtual_size=1, disk_format="raw",
             checksum="0" * 32, os_hash_value="0" * 128)
        barrier = threading.Barrier(12)
        results: list[int] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            client = TestClient(app)
            barrier.wait()
            if i % 2:
                r = client.post(f"/v1/cloudimages/{source}/copy", json={"name": f"c{i}"}, headers=headers)
            else:
                r = client.post("/v2/cloudimages/action", json={"name": f"i{i}", "image_url": "bkt:d.qcow2",
                                                                "min_disk": 40}, headers=headers)
            with lock:
                results.append(r.status_code)
            if r.status_code != 200:
                assert r.json()["error"]["code"] == "IMG.0015", r.text

        threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(results) == [200, 200] + [400] * 10
        with runtime.db.transaction() as s:
            assert s.query(Image).filter_by(owner=pid).count() == 3


# ================================================================ OS versions


class TestOsVersions:
    def test_list(self, client: TestClient, viewer: H) -> None:
        assert client.get("/v1/cloudimages/os_version").status_code == 401
        r = client.get("/v1/cloudimages/os_version", headers=viewer)
        assert r.status_code == 200
        platforms = {p["platform"]: p["version_list"] for p in r.json()}
        assert {"Windows", "CentOS", "Ubuntu", "Red Hat", "Debian", "EulerOS"} <= set(platforms)
        centos = {v["os_version"]: v for v in platforms["CentOS"]}
        assert centos["CentOS 7.0 64bit"] == {"platform": "CentOS", "os_version_key": "CentOS 7.0 64bit",
                                              "os_version": "CentOS 7.0 64bit", "os_bit": 64, "os_type": "Linux"}
        assert centos["CentOS 7.0 32bit"]["os_bit"] == 32
        assert platforms["Windows"][0]["os_type"] == "Windows"
        # Every listed version is accepted by image creation.
        from openims.catalog.validation import os_version

        for versions in platforms.values():
            for v in versions:
                assert os_version(v["os_version"]) is not None

"""Glance's interoperable import through HTTP: discovery, stage, import, tasks (the sheet's §1 and §2)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openims.clock import ManualClock
from openims.runtime import Runtime
from openims.worker.runner import Worker
from tests.api.test_glance_images import create, error_code, project_of, share
from tests.api.test_keystone_rbac import _with_role
from tests.conftest import new_tenant
from tests.support.images import make_image

H = dict[str, str]
OCTETS = {"Content-Type": "application/octet-stream"}


def stage(client: TestClient, headers: H, image_id: str, data: bytes, **extra: str) -> Any:
    return client.put(f"/v2/images/{image_id}/stage", content=data, headers={**headers, **OCTETS, **extra})


def start(client: TestClient, headers: H, image_id: str, body: Any = None) -> Any:
    body = {"method": {"name": "glance-direct"}} if body is None else body
    return client.post(f"/v2/images/{image_id}/import", json=body, headers=headers)


def image_of(client: TestClient, headers: H, image_id: str) -> dict[str, Any]:
    r = client.get(f"/v2/images/{image_id}", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def tasks(client: TestClient, headers: H, image_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/v2/images/{image_id}/tasks", headers=headers)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["tasks"]
    return found


def imported(client: TestClient, headers: H, runtime: Runtime, data: bytes, disk_format: str) -> dict[str, Any]:
    """A new image with ``data`` staged and imported as ``disk_format`` (bare), once the worker ran: the image."""
    image = create(client, headers, name="imported", disk_format=disk_format, container_format="bare")
    assert stage(client, headers, image["id"], data).status_code == 204
    assert start(client, headers, image["id"]).status_code == 202
    Worker(runtime).run_until_idle()
    return image_of(client, headers, image["id"])


class TestDiscovery:
    def test_methods_and_stores(self, client: TestClient, admin_headers: H) -> None:
        body = client.get("/v2/info/import", headers=admin_headers).json()
        assert body == {"import-methods": {"description": "Import methods available.", "type": "array",
                                           "value": ["glance-direct", "web-download", "copy-image"]}}
        r = client.get("/v2/info/stores", headers=admin_headers)
        assert r.status_code == 404 and "Multi backend is not supported at this site." in r.text
        assert client.get("/v2/info/stores/detail", headers=admin_headers).status_code == 404
        member = _with_role(client, admin_headers, "storesmember", "member")
        assert client.get("/v2/info/stores/detail", headers=member).status_code == 403
        assert client.get("/v2/info/import").status_code == 401

    def test_create_advertises_the_methods(self, client: TestClient, admin_headers: H) -> None:
        r = client.post("/v2/images", json={"name": "n"}, headers=admin_headers)
        assert r.status_code == 201
        assert r.headers["OpenStack-image-import-methods"] == "glance-direct,web-download,copy-image"
        assert "OpenStack-image-store-ids" not in r.headers


class TestStage:
    def test_stage_keeps_the_data_waiting(self, client: TestClient, admin_headers: H, tmp_path: Path) -> None:
        data = make_image(tmp_path, "qcow2").read_bytes()
        image = create(client, admin_headers, name="staged")  # formats are not needed to stage
        r = stage(client, admin_headers, image["id"], data)
        assert r.status_code == 204 and r.content == b""
        got = image_of(client, admin_headers, image["id"])
        assert (got["status"], got["size"], got["checksum"]) == ("uploading", len(data), None)
        # Nothing to download yet; no second stage, no direct upload meanwhile.
        assert client.get(f"/v2/images/{image['id']}/file", headers=admin_headers).status_code == 204
        r = stage(client, admin_headers, image["id"], data)
        assert r.status_code == 409 and "uploading" in r.text
        r = client.put(f"/v2/images/{image['id']}/file", content=data, headers={**admin_headers, **OCTETS})
        assert r.status_code == 409

    def test_refusals(self, client: TestClient, admin_headers: H, runtime: Runtime) -> None:
        image = create(client, admin_headers, name="refused")
        r = client.put(f"/v2/images/{image['id']}/stage", content=b"x", headers={**admin_headers,
                                                                                "Content-Type": "text/plain"})
        assert r.status_code == 415
        r = stage(client, admin_headers, image["id"], b"abc", **{"X-Openstack-Image-Size": "4"})
        assert r.status_code == 400 and "announced" in r.text
        assert image_of(client, admin_headers, image["id"])["status"] == "queued"
        reader = _with_role(client, admin_headers, "stagereader", "reader")
        assert stage(client, reader, image["id"], b"abc").status_code == 403
        assert stage(client, admin_headers, "00000000-0000-0000-0000-000000000000", b"abc").status_code == 404
        assert runtime.images.exists(image["id"]) is False


class TestGlanceDirect:
    def test_stage_import_active(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                 tmp_path: Path) -> None:
        data = make_image(tmp_path, "vmdk").read_bytes()
        image = create(client, admin_headers, name="imported", disk_format="vmdk", container_format="bare")
        assert stage(client, admin_headers, image["id"], data).status_code == 204
        r = start(client, admin_headers, image["id"])
        assert r.status_code == 202 and r.content == b""
        got = image_of(client, admin_headers, image["id"])
        assert got["status"] == "importing"
        task_id = got["os_glance_import_task"]
        [task] = tasks(client, admin_headers, image["id"])
        assert task["id"] == task_id and task["status"] == "pending" and task["type"] == "api_image_import"
        # A second import while the first holds the image is refused.
        assert start(client, admin_headers, image["id"]).status_code == 409

        Worker(runtime).run_until_idle()
        got = image_of(client, admin_headers, image["id"])
        assert (got["status"], got["disk_format"], got["size"]) == ("active", "vmdk", len(data))
        assert got["checksum"] == hashlib.md5(data).hexdigest() and got["virtual_size"] == 4 * 1024 * 1024
        assert "os_glance_import_task" not in got
        assert got["os_glance_importing_to_stores"] == "" and got["os_glance_failed_import"] == ""
        assert client.get(f"/v2/images/{image['id']}/file", headers=admin_headers).content == data
        [task] = tasks(client, admin_headers, image["id"])
        assert task["status"] == "success" and task["result"] == {"image_id": image["id"]}
        assert task["input"] == {"image_id": image["id"], "import_req": {"method": {"name": "glance-direct"}},
                                 "backend": []}
        assert task["owner"] == project_of(client, admin_headers) and task["message"] == ""
        assert task["expires_at"] > task["created_at"] and not task["created_at"].endswith("Z")
        assert task["request_id"].startswith("req-") and task["user_id"] and task["deleted"] is False
        # Active: another glance-direct import is a conflict.
        assert start(client, admin_headers, image["id"]).status_code == 409

    def test_refused_data_gives_the_image_back_queued(self, client: TestClient, admin_headers: H,
                                                      runtime: Runtime, tmp_path: Path, clock: ManualClock) -> None:
        got = imported(client, admin_headers, runtime, make_image(tmp_path, "raw").read_bytes(), "qcow2")
        image = got
        assert (got["status"], got["size"], got["checksum"]) == ("queued", None, None)
        assert "os_glance_import_task" not in got and got["os_glance_failed_import"] == ""
        assert not runtime.images.exists(image["id"])
        [task] = tasks(client, admin_headers, image["id"])
        assert task["status"] == "failure" and "qcow2" in task["message"] and task["result"] is None
        # Staged again with the right data, it imports.
        clock.advance(1)
        good = make_image(tmp_path / "good", "qcow2").read_bytes()
        assert stage(client, admin_headers, image["id"], good).status_code == 204
        assert start(client, admin_headers, image["id"]).status_code == 202
        Worker(runtime).run_until_idle()
        assert image_of(client, admin_headers, image["id"])["status"] == "active"
        assert [t["status"] for t in tasks(client, admin_headers, image["id"])] == ["failure", "success"]

    def test_deleted_while_importing(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                     tmp_path: Path) -> None:
        image = create(client, admin_headers, name="gone", disk_format="qcow2", container_format="bare")
        assert stage(client, admin_headers, image["id"], make_image(tmp_path, "qcow2").read_bytes()).status_code == 204
        assert start(client, admin_headers, image["id"]).status_code == 202
        assert client.delete(f"/v2/images/{image['id']}", headers=admin_headers).status_code == 204
        Worker(runtime).run_until_idle()
        assert client.get(f"/v2/images/{image['id']}", headers=admin_headers).status_code == 404
        assert not runtime.images.exists(image["id"])


class TestImportErrors:
    """In Glance's order: body, image, status, formats, policy, lock, stores."""

    @pytest.mark.parametrize("body", [None, {}, {"method": "glance-direct"}, {"method": {}},
                                      {"method": {"name": "glance-direct"}, "all_stores": "yes"}])
    def test_malformed_body_is_400(self, client: TestClient, admin_headers: H, body: Any) -> None:
        image = create(client, admin_headers, name="n")
        r = (client.post(f"/v2/images/{image['id']}/import", headers=admin_headers) if body is None
             else start(client, admin_headers, image["id"], body))
        assert r.status_code == 400, r.text

    @pytest.mark.parametrize("name", ["glance-download", "nope"])
    def test_methods_not_offered_are_unknown(self, client: TestClient, admin_headers: H, name: str) -> None:
        r = start(client, admin_headers, "00000000-0000-0000-0000-000000000000", {"method": {"name": name}})
        assert r.status_code == 400 and f"Unknown import method name '{name}'" in r.text

    def test_image_status_and_formats(self, client: TestClient, admin_headers: H, runtime: Runtime) -> None:
        assert start(client, admin_headers, "00000000-0000-0000-0000-000000000000").status_code == 404
        queued = create(client, admin_headers, name="queued", disk_format="qcow2")
        r = start(client, admin_headers, queued["id"])
        assert r.status_code == 409 and "Image needs to be staged" in r.text
        no_formats = create(client, admin_headers, name="no-formats", container_format=None)
        assert stage(client, admin_headers, no_formats["id"], b"data").status_code == 204
        r = start(client, admin_headers, no_formats["id"])
        assert r.status_code == 409 and "disk_format" in r.text
        stranger = _with_role(client, admin_headers, "importreader", "reader")
        assert start(client, stranger, queued["id"]).status_code == 403

    def test_stores(self, client: TestClient, admin_headers: H) -> None:
        image = create(client, admin_headers, name="s", disk_format="qcow2")
        assert stage(client, admin_headers, image["id"], b"data").status_code == 204
        method = {"name": "glance-direct"}
        r = start(client, admin_headers, image["id"], {"method": method, "stores": ["fast"]})
        assert r.status_code == 409 and "Unknown store" in r.text
        r = start(client, admin_headers, image["id"], {"method": method, "stores": [], "all_stores": True})
        assert r.status_code == 400
        assert image_of(client, admin_headers, image["id"])["status"] == "uploading"  # nothing changed
        # What openstackclient sends by default: accepted with one store (Glance: 400), it means nothing here.
        r = start(client, admin_headers, image["id"], {"method": method, "all_stores": False,
                                                       "all_stores_must_succeed": False})
        assert r.status_code == 202

    def test_shared_with_you_is_403(self, client: TestClient, admin_headers: H, runtime: Runtime) -> None:
        image = create(client, admin_headers, name="theirs", disk_format="qcow2")
        assert stage(client, admin_headers, image["id"], b"data").status_code == 204
        other = new_tenant(client, runtime, "importer2")
        assert start(client, other, image["id"]).status_code == 404
        share(runtime, image["id"], project_of(client, other))
        r = start(client, other, image["id"])
        assert r.status_code == 403 and error_code(r) == "IMG.0047"

    def test_copy_image_with_one_store(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                       tmp_path: Path) -> None:
        image = create(client, admin_headers, name="c", disk_format="qcow2")
        copy = {"method": {"name": "copy-image"}}
        assert start(client, admin_headers, image["id"], {**copy, "all_stores": True}).status_code == 409  # queued
        r = client.put(f"/v2/images/{image['id']}/file", content=make_image(tmp_path, "qcow2").read_bytes(),
                       headers={**admin_headers, **OCTETS})
        assert r.status_code == 204
        member = _with_role(client, admin_headers, "copymember", "member")
        assert start(client, member, image["id"], {**copy, "all_stores": True}).status_code == 403
        # The one store holds the data already: nothing to do, and no task.
        assert start(client, admin_headers, image["id"], {**copy, "all_stores": True}).status_code == 202
        assert tasks(client, admin_headers, image["id"]) == []
        assert start(client, admin_headers, image["id"], copy).status_code == 400
        assert start(client, admin_headers, image["id"], {**copy, "stores": ["x"]}).status_code == 409


class TestConversion:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"import_convert_to": "qcow2"}

    def test_import_converts_when_configured(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                             tmp_path: Path) -> None:
        got = imported(client, admin_headers, runtime, make_image(tmp_path, "vmdk").read_bytes(), "vmdk")
        image = got
        assert (got["status"], got["disk_format"]) == ("active", "qcow2")
        stored = client.get(f"/v2/images/{image['id']}/file", headers=admin_headers).content
        assert stored[:4] == b"QFI\xfb" and hashlib.md5(stored).hexdigest() == got["checksum"]

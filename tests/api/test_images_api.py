"""IMS create-from-file validation, jobs and image queries through HTTP (worker run in-process)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openims.catalog import jobs
from openims.runtime import Runtime
from openims.worker.runner import Worker
from tests.conftest import login
from tests.support.images import make_image
from tests.support.openapi import assert_documented
from tests.support.tenants import add_user


def upload(client: TestClient, headers: dict[str, str], bucket: str, key: str, path: Path) -> None:
    r = client.put(f"/obs/{bucket}/{key}", content=path.read_bytes(), headers=headers)
    assert r.status_code == 201, r.text


def create(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/v2/cloudimages/action", json=body, headers=headers)


@pytest.fixture
def qcow2(tmp_path: Path) -> Path:
    return make_image(tmp_path / "src", "qcow2")


VALID = {"name": "img", "image_url": "bkt:disk.qcow2", "min_disk": 40, "os_version": "CentOS 7.0 64bit"}


class TestCreateValidation:
    @pytest.mark.parametrize(("change", "code"), [
        ({"name": None}, "IMG.0013"),
        ({"name": "x" * 129}, "IMG.0002"),
        ({"name": " lead"}, "IMG.0003"),
        ({"name": "bad/name"}, "IMG.0003"),
        ({"description": "a<b"}, "IMG.0054"),
        ({"description": "d" * 1025}, "IMG.0004"),
        ({"os_version": "Plan 9"}, "IMG.0056"),
        ({"os_type": "BeOS"}, "IMG.0122"),
        ({"min_disk": 0}, "IMG.0055"),
        ({"min_disk": 1025}, "IMG.0055"),
        ({"min_disk": None}, "IMG.0055"),
        ({"min_ram": 4096, "max_ram": 1024}, "IMG.0055"),
        ({"type": "Mainframe"}, "IMG.0024"),
        ({"hw_firmware_type": "coreboot"}, "IMG.0141"),
        ({"architecture": "arm", "hw_firmware_type": "bios"}, "IMG.0141"),
        ({"tags": ["bad tag.x"]}, "IMG.0115"),
        ({"tags": ["a.b"], "image_tags": [{"key": "c", "value": "d"}]}, "IMG.0115"),
        ({"tags": [f"k{i}.v" for i in range(11)]}, "IMG.0116"),
        ({"cmk_id": "some-key"}, "IMG.0095"),
        ({"enterprise_project_id": "not-a-uuid"}, "IMG.0155"),
        ({"image_url": "no-colon"}, "IMG.0017"),
        ({"image_url": None}, "IMG.0017"),
        ({"image_url": "Bad_Bucket:x.qcow2"}, "IMG.0109"),
        ({"is_quick_import": True, "os_version": None}, "IMG.0056"),
        ({"instance_id": "c6d4d5c6-0000-4000-8000-000000000000"}, "IMG.0005"),
        ({"volume_id": "c6d4d5c6-0000-4000-8000-000000000000"}, "IMG.0120"),
        ({"data_images": [{"image_url": "bkt:d.qcow2", "min_disk": 40}] * 4}, "IMG.0001"),
        ({"data_images": [{"image_url": "bkt:disk.qcow2", "min_disk": 40}]}, "IMG.0123"),
        ({"data_images": [{"image_url": "bkt:d.qcow2", "min_disk": 10}]}, "IMG.0055"),
    ])
    def test_bad_fields_are_400_with_documented_code(self, client: TestClient, admin_headers: dict[str, str],
                                                     runtime: Runtime, change: dict[str, Any], code: str) -> None:
        body = {**VALID, **change}
        body = {k: v for k, v in body.items() if v is not None}
        r = create(client, admin_headers, **body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == code, r.text
        # Nothing was created.
        assert client.get("/v2/cloudimages", headers=admin_headers).json()["images"] == []

    @pytest.mark.parametrize("raw", [b"{", b"[]", b'{"name": "x", "min_disk": "forty", "image_url": "b:k"}',
                                     b'{"name": 5, "min_disk": 40, "image_url": "b:k"}', b""])
    def test_malformed_json_is_400(self, client: TestClient, admin_headers: dict[str, str], raw: bytes) -> None:
        r = client.post("/v2/cloudimages/action", content=raw,
                        headers={**admin_headers, "Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "IMG.0001"

    def test_oversized_body_is_413(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        r = client.post("/v2/cloudimages/action", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                        headers={**admin_headers, "Content-Type": "application/json"})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "IMG.0001"


class TestAuth:
    def test_no_token_401(self, client: TestClient) -> None:
        r = client.post("/v2/cloudimages/action", json=VALID)
        assert r.status_code == 401 and r.json()["error"]["code"] == 401

    def test_readonly_user_may_read_not_create(self, client: TestClient, runtime: Runtime) -> None:
        add_user(runtime.db, name="viewer", role="readonly")
        h = {"X-Auth-Token": login(client, "viewer", "User-Pass-1234")}
        assert client.get("/v2/cloudimages", headers=h).status_code == 200
        r = create(client, h, **VALID)
        assert r.status_code == 403 and r.json()["error"]["code"] == "IMG.0026"

    def test_project_in_path_must_be_the_token_project(self, client: TestClient,
                                                       admin_headers: dict[str, str]) -> None:
        r = client.get(f"/v1/{'f' * 32}/jobs/{'a' * 32}", headers=admin_headers)
        assert r.status_code == 403

    def test_unknown_route_and_method(self, client: TestClient, admin_headers: dict[str, str]) -> None:
        r = client.get("/v2/nothing-here", headers=admin_headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "IMG.0001"
        r = client.put("/v2/cloudimages/action", headers=admin_headers)
        assert r.status_code == 405
        assert r.headers["X-Request-Id"]


class TestImportFlow:
    def test_create_poll_query(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime,
                               qcow2: Path) -> None:
        upload(client, admin_headers, "bkt", "disk.qcow2", qcow2)
        r = create(client, admin_headers, **{**VALID, "image_tags": [{"key": "team", "value": "ops"}],
                                             "min_ram": 1024, "max_ram": 4096, "is_config_init": True})
        assert r.status_code == 200
        job_id = r.json()["job_id"]
        project_id = client.get("/v3/auth/projects", headers=admin_headers).json()["projects"][0]["id"]
        job = client.get(f"/v1/{project_id}/jobs/{job_id}", headers=admin_headers).json()
        assert job["status"] == "INIT" and job["job_type"] == "imsImportImageJob"
        image_id = job["entities"]["image_id"]
        queued = client.get(f"/v2/images/{image_id}", headers=admin_headers).json()
        assert queued["status"] == "queued"

        assert Worker(runtime).run_until_idle() == 1
        job = client.get(f"/v1/cloudimages/job/{job_id}", headers=admin_headers).json()
        assert job["status"] == "SUCCESS" and job["entities"]["process_percent"] == 100.0
        image = client.get(f"/v2/images/{image_id}", headers=admin_headers).json()
        assert image["status"] == "active" and image["tags"] == ["team.ops"]
        assert image["min_ram"] == 1024 and image["max_ram"] == "4096" and image["__is_config_init"] == "true"

        # The documented filters find it; wrong values do not.
        for params in ({"id": image_id}, {"name": "img"}, {"status": "active"}, {"__imagetype": "private"},
                       {"__os_type": "Linux"}, {"__platform": "CentOS"}, {"disk_format": "qcow2"},
                       {"min_disk": "40"}, {"visibility": "private"}, {"owner": project_id},
                       {"created_at": "gte:2000-01-01T00:00:00Z"}, {"updated_at": "lt:2999-01-01T00:00:00Z"}):
            found = client.get("/v2/cloudimages", params=params, headers=admin_headers).json()["images"]
            assert [i["id"] for i in found] == [image_id], params
        for params in ({"name": "other"}, {"status": "queued"}, {"__platform": "Debian"},
                       {"owner": "0" * 32}, {"created_at": "lt:2000-01-01T00:00:00Z"}):
            assert client.get("/v2/cloudimages", params=params, headers=admin_headers).json()["images"] == []

    def test_missing_object_fails_job(self, client: TestClient, admin_headers: dict[str, str],
                                      runtime: Runtime) -> None:
        client.put("/obs/bkt", headers=admin_headers)
        job_id = create(client, admin_headers, **VALID).json()["job_id"]
        Worker(runtime).run_until_idle()
        job = client.get(f"/v1/cloudimages/job/{job_id}", headers=admin_headers).json()
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0057"
        assert "bkt:disk.qcow2" in job["fail_reason"]
        assert client.get("/v2/cloudimages", headers=admin_headers).json()["images"] == []

    def test_quota_is_enforced(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime) -> None:
        runtime.settings.image_quota = 2
        assert create(client, admin_headers, **VALID).status_code == 200
        r = create(client, admin_headers, **{**VALID, "data_images": [{"image_url": "bkt:d.qcow2",
                                                                          "min_disk": 40}]})
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0015"
        assert create(client, admin_headers, **VALID).status_code == 200
        assert create(client, admin_headers, **VALID).json()["error"]["code"] == "IMG.0015"


class TestTenancy:
    def test_other_accounts_see_nothing(self, client: TestClient, admin_headers: dict[str, str],
                                        runtime: Runtime, qcow2: Path) -> None:
        upload(client, admin_headers, "bkt", "disk.qcow2", qcow2)
        job_id = create(client, admin_headers, **VALID).json()["job_id"]
        Worker(runtime).run_until_idle()
        image_id = client.get(f"/v1/cloudimages/job/{job_id}", headers=admin_headers).json()["entities"]["image_id"]

        add_user(runtime.db, name="eve", role="te_admin", domain_name="other", project_name="local-1_other")
        h = {"X-Auth-Token": login(client, "eve", "User-Pass-1234", domain="other", project="local-1_other")}
        r = client.get(f"/v2/images/{image_id}", headers=h)
        assert r.status_code == 404 and r.json()["error"]["code"] == "IMG.0144"
        assert client.get(f"/v1/cloudimages/job/{job_id}", headers=h).status_code == 404
        assert client.get("/v2/cloudimages", headers=h).json()["images"] == []
        assert client.get("/v2/cloudimages", params={"id": image_id}, headers=h).json()["images"] == []
        assert client.delete(f"/v2/images/{image_id}", headers=h).status_code == 404
        # Their bucket listing and uploads cannot reach the admin account's bucket.
        assert client.get("/obs/bkt", headers=h).status_code == 404
        assert client.put("/obs/bkt/x.qcow2", content=b"x", headers=h).status_code == 404
        # An import naming the other account's bucket fails as "not found".
        job2 = create(client, h, **VALID).json()["job_id"]
        Worker(runtime).run_until_idle()
        job = client.get(f"/v1/cloudimages/job/{job2}", headers=h).json()
        assert job["status"] == "FAIL" and "does not exist" in job["fail_reason"]


class TestListing:
    def test_keyset_pagination_and_sorting(self, client: TestClient, admin_headers: dict[str, str],
                                           runtime: Runtime) -> None:
        ids = []
        for i in range(7):
            runtime.clock.advance(1)  # type: ignore[attr-defined]
            r = create(client, admin_headers, **{**VALID, "name": f"img-{i % 3}"})
            job = client.get(f"/v1/cloudimages/job/{r.json()['job_id']}", headers=admin_headers).json()
            ids.append(job["entities"]["image_id"])
        seen: list[str] = []
        marker = None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if marker:
                params["marker"] = marker
            page = client.get("/v2/cloudimages", params=params, headers=admin_headers).json()["images"]
            if not page:
                break
            seen += [i["id"] for i in page]
            marker = page[-1]["id"]
        assert seen == list(reversed(ids))  # created_at desc by default
        by_name: list[tuple[str, str]] = []
        marker = None
        while True:
            params = {"limit": 2, "sort_key": "name", "sort_dir": "asc"}
            if marker:
                params["marker"] = marker
            page = client.get("/v2/cloudimages", params=params, headers=admin_headers).json()["images"]
            if not page:
                break
            by_name += [(i["name"], i["id"]) for i in page]
            marker = page[-1]["id"]
        assert by_name == sorted(by_name) and len(by_name) == 7
        for bad in ({"sort_key": "secret"}, {"sort_dir": "up"}, {"limit": "x"}, {"marker": "nope"},
                    {"created_at": "after:2020"}, {"__imagetype": "weird"}):
            r = client.get("/v2/cloudimages", params=bad, headers=admin_headers)
            assert r.status_code == 400, bad


def test_job_state_machine_refuses_illegal_transitions() -> None:
    from openims.db.models import Job

    job = Job(id="j", project_id="p", job_type="imsImportImageJob", status="SUCCESS", payload={}, entities={},
              created_at=dt.datetime.now(dt.UTC), attempts=1)
    with pytest.raises(RuntimeError):
        jobs.finish(job, jobs.JobStatus.FAIL, dt.datetime.now(dt.UTC))


class TestSpecialImports:
    def _run(self, client: TestClient, headers: dict[str, str], runtime: Runtime, **body: Any) -> dict[str, Any]:
        r = create(client, headers, **body)
        assert r.status_code == 200, r.text
        Worker(runtime).run_until_idle()
        job: dict[str, Any] = client.get(f"/v1/cloudimages/job/{r.json()['job_id']}", headers=headers).json()
        return job

    def test_quick_import_stores_raw_without_conversion(self, client: TestClient, admin_headers: dict[str, str],
                                                        runtime: Runtime, tmp_path: Path) -> None:
        raw = make_image(tmp_path, "raw")
        upload(client, admin_headers, "bkt", "disk.raw", raw)
        job = self._run(client, admin_headers, runtime, name="quick", image_url="bkt:disk.raw", min_disk=40,
                        os_version="CentOS 7.0 64bit", is_quick_import=True)
        assert job["status"] == "SUCCESS", job
        image = client.get(f"/v2/images/{job['entities']['image_id']}", headers=admin_headers).json()
        assert image["disk_format"] == "raw" and image["size"] == raw.stat().st_size
        assert runtime.images.path(image["id"]).read_bytes() == raw.read_bytes()

    def test_quick_import_refuses_non_raw(self, client: TestClient, admin_headers: dict[str, str],
                                          runtime: Runtime, qcow2: Path) -> None:
        upload(client, admin_headers, "bkt", "disk.qcow2", qcow2)
        job = self._run(client, admin_headers, runtime, name="quick", image_url="bkt:disk.qcow2", min_disk=40,
                        os_version="CentOS 7.0 64bit", is_quick_import=True)
        assert job["status"] == "FAIL" and job["error_code"].startswith("IMG.")

    def test_zvhd_is_not_supported(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime,
                                   qcow2: Path) -> None:
        upload(client, admin_headers, "bkt", "disk.zvhd2", qcow2)
        job = self._run(client, admin_headers, runtime, name="z", image_url="bkt:disk.zvhd2", min_disk=40)
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0072"
        assert "zvhd" in job["fail_reason"] and "not supported" in job["fail_reason"]

    def test_iso_needs_os_version(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime,
                                  tmp_path: Path) -> None:
        from tests.unit.imaging.imaging_support import make_iso

        iso = tmp_path / "install.iso"
        make_iso(iso, b"\x00" * 1024 * 1024)
        upload(client, admin_headers, "bkt", "install.iso", iso)
        job = self._run(client, admin_headers, runtime, name="iso", image_url="bkt:install.iso", min_disk=40)
        assert job["status"] == "FAIL" and job["error_code"] == "IMG.0166"
        job = self._run(client, admin_headers, runtime, name="iso", image_url="bkt:install.iso", min_disk=40,
                        os_version="CentOS 7.0 64bit")
        assert job["status"] == "SUCCESS", job


def test_keyset_pages_over_nullable_sort_keys(client: TestClient, admin_headers: dict[str, str],
                                              runtime: Runtime, qcow2: Path) -> None:
    """Queued images have no size or disk format: paging by those keys still visits every image once."""
    upload(client, admin_headers, "bkt", "disk.qcow2", qcow2)
    ids = [create(client, admin_headers, **{**VALID, "name": f"n{i}"}).json()["job_id"] for i in range(3)]
    Worker(runtime).run_until_idle()  # three active images with a size...
    for i in range(4):  # ...and four queued ones without
        runtime.clock.advance(1)  # type: ignore[attr-defined]
        create(client, admin_headers, **{**VALID, "name": f"q{i}", "image_url": "bkt:missing.qcow2"})
    assert ids
    for key in ("size", "disk_format", "container_format", "name"):
        for direction in ("asc", "desc"):
            seen: list[str] = []
            marker = None
            while True:
                params: dict[str, Any] = {"limit": 2, "sort_key": key, "sort_dir": direction}
                if marker:
                    params["marker"] = marker
                page = client.get("/v2/cloudimages", params=params, headers=admin_headers).json()["images"]
                if not page:
                    break
                seen += [i["id"] for i in page]
                marker = page[-1]["id"]
            assert len(seen) == len(set(seen)) == 7, (key, direction)


def test_ims_image_list_conforms_to_its_documented_schema(client: TestClient, admin_headers: dict[str, str]) -> None:
    # Fuzzing finding: /v2/cloudimages was documented with the native image schema, whose extra properties
    # are strings, while an IMS image also has "deleted": false (and "deleted_at": null).
    r = client.post("/v2/images", json={"name": "fz", "disk_format": "qcow2", "container_format": "bare"},
                    headers=admin_headers)
    assert r.status_code == 201, r.text
    listed = client.get("/v2/cloudimages", params={"sort_dir": "asc"}, headers=admin_headers)
    assert listed.json()["images"][0]["deleted"] is False
    assert_documented(client.get("/openapi.json").json(), "GET", "/v2/cloudimages", listed)

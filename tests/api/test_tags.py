"""Image tags through HTTP: the IMS tag APIs (both families), query by tags, and the native tag routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openims.runtime import Runtime
from openims.worker.runner import Worker
from tests.api.test_images_api import create, upload
from tests.conftest import login
from tests.support.images import make_image
from tests.support.tenants import add_user

H = dict[str, str]
VALID = {"image_url": "bkt:disk.qcow2", "min_disk": 40, "os_version": "CentOS 7.0 64bit"}


def project_of(client: TestClient, headers: H) -> str:
    return str(client.get("/v3/auth/projects", headers=headers).json()["projects"][0]["id"])


def new_images(client: TestClient, headers: H, runtime: Runtime, *names: str, **extra: Any) -> list[str]:
    """Import one image per name (from the bucket file the ``source`` fixture uploaded); active when returned."""
    job_ids = []
    for name in names:
        runtime.clock.advance(1)  # type: ignore[attr-defined]  # distinct created_at: a stable order
        r = create(client, headers, **{**VALID, "name": name, **extra})
        assert r.status_code == 200, r.text
        job_ids.append(r.json()["job_id"])
    Worker(runtime).run_until_idle()
    ids = []
    for job_id in job_ids:
        job = client.get(f"/v1/cloudimages/job/{job_id}", headers=headers).json()
        assert job["status"] == "SUCCESS", job
        ids.append(job["entities"]["image_id"])
    return ids


@pytest.fixture
def source(client: TestClient, admin_headers: H, tmp_path: Path) -> None:
    upload(client, admin_headers, "bkt", "disk.qcow2", make_image(tmp_path / "src", "qcow2"))


@pytest.fixture
def image(client: TestClient, admin_headers: H, runtime: Runtime, source: None) -> str:
    return new_images(client, admin_headers, runtime, "tagged")[0]


@pytest.fixture
def pid(client: TestClient, admin_headers: H) -> str:
    return project_of(client, admin_headers)


@pytest.fixture
def outsider(client: TestClient, runtime: Runtime) -> H:
    """A user of another account."""
    add_user(runtime.db, name="eve", role="te_admin", domain_name="other", project_name="local-1_other")
    return {"X-Auth-Token": login(client, "eve", "User-Pass-1234", domain="other", project="local-1_other")}


def tags_of(client: TestClient, headers: H, pid: str, image_id: str) -> list[dict[str, str]]:
    r = client.get(f"/v2/{pid}/images/{image_id}/tags", headers=headers)
    assert r.status_code == 200, r.text
    return sorted(r.json()["tags"], key=lambda t: t["key"])


def add(client: TestClient, headers: H, pid: str, image_id: str, key: Any, value: Any) -> Any:
    return client.post(f"/v2/{pid}/images/{image_id}/tags", json={"tag": {"key": key, "value": value}},
                       headers=headers)


def error_code(r: Any) -> str:
    return str(r.json()["error"]["code"])


class TestAddAndQueryTags:
    def test_add_update_list_and_show_on_image(self, client: TestClient, admin_headers: H, pid: str,
                                               image: str) -> None:
        assert add(client, admin_headers, pid, image, "key1", "value1").status_code == 204
        assert add(client, admin_headers, pid, image, "empty", "").status_code == 204
        # Same key again: the value is replaced, not a second tag.
        assert add(client, admin_headers, pid, image, "key1", "value2").status_code == 204
        # Surrounding spaces are trimmed, as image_tag_format.rst says.
        assert add(client, admin_headers, pid, image, " team ", " ops ").status_code == 204
        assert tags_of(client, admin_headers, pid, image) == [
            {"key": "empty", "value": ""}, {"key": "key1", "value": "value2"}, {"key": "team", "value": "ops"}]
        shown = client.get(f"/v2/images/{image}", headers=admin_headers).json()
        assert sorted(shown["tags"]) == ["empty", "key1.value2", "team.ops"]
        listed = client.get("/v2/cloudimages", params={"id": image}, headers=admin_headers).json()["images"]
        assert sorted(listed[0]["tags"]) == ["empty", "key1.value2", "team.ops"]

    def test_invalid_tags_are_400(self, client: TestClient, admin_headers: H, pid: str, image: str) -> None:
        for key, value, code in [
            ("", "v", "IMG.0115"),
            ("k" * 37, "v", "IMG.0115"),
            ("k", "v" * 44, "IMG.0115"),
            ("bad key", "v", "IMG.0115"),
            ("k", "a.b", "IMG.0115"),
            ("k", None, "IMG.0001"),
            (None, "v", "IMG.0001"),
        ]:
            body: dict[str, Any] = {"tag": {k: v for k, v in (("key", key), ("value", value)) if v is not None}}
            r = client.post(f"/v2/{pid}/images/{image}/tags", json=body, headers=admin_headers)
            assert r.status_code == 400 and error_code(r) == code, (key, value, r.text)
        assert tags_of(client, admin_headers, pid, image) == []

    def test_at_most_ten_tags(self, client: TestClient, admin_headers: H, pid: str, image: str) -> None:
        for i in range(10):
            assert add(client, admin_headers, pid, image, f"k{i}", "v").status_code == 204
        r = add(client, admin_headers, pid, image, "k10", "v")
        assert r.status_code == 400 and error_code(r) == "IMG.0116"
        # Updating one of the ten is still allowed.
        assert add(client, admin_headers, pid, image, "k3", "new").status_code == 204
        assert len(tags_of(client, admin_headers, pid, image)) == 10

    def test_delete_by_key_is_not_idempotent(self, client: TestClient, admin_headers: H, pid: str,
                                              image: str) -> None:
        add(client, admin_headers, pid, image, "key1", "v")
        add(client, admin_headers, pid, image, "key2", "")
        assert client.delete(f"/v2/{pid}/images/{image}/tags/key1", headers=admin_headers).status_code == 204
        assert client.delete(f"/v2/{pid}/images/{image}/tags/key2", headers=admin_headers).status_code == 204
        r = client.delete(f"/v2/{pid}/images/{image}/tags/key1", headers=admin_headers)
        assert r.status_code == 404
        assert tags_of(client, admin_headers, pid, image) == []

    def test_tags_from_import_show_up(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str,
                                      source: None) -> None:
        (image,) = new_images(client, admin_headers, runtime, "imported",
                              image_tags=[{"key": "team", "value": "ops"}, {"key": "solo", "value": ""}])
        assert tags_of(client, admin_headers, pid, image) == [{"key": "solo", "value": ""},
                                                              {"key": "team", "value": "ops"}]
        # Setting the key again replaces the imported form instead of adding a second "solo".
        assert add(client, admin_headers, pid, image, "solo", "x").status_code == 204
        assert client.delete(f"/v2/{pid}/images/{image}/tags/team", headers=admin_headers).status_code == 204
        assert client.get(f"/v2/images/{image}", headers=admin_headers).json()["tags"] == ["solo.x"]

    def test_all_project_tags_aggregated(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str,
                                         source: None, outsider: H) -> None:
        a, b = new_images(client, admin_headers, runtime, "a", "b")
        add(client, admin_headers, pid, a, "key3", "value3")
        add(client, admin_headers, pid, b, "key3", "valueXX")
        add(client, admin_headers, pid, b, "key8", "")
        r = client.get(f"/v2/{pid}/images/tags", headers=admin_headers)
        assert r.status_code == 200
        assert r.json() == {"tags": [{"key": "key3", "values": ["value3", "valueXX"]},
                                     {"key": "key8", "values": [""]}]}
        # Another account sees none of them.
        other = project_of(client, outsider)
        assert client.get(f"/v2/{other}/images/tags", headers=outsider).json() == {"tags": []}


class TestAccess:
    def test_no_token_is_401(self, client: TestClient, pid: str, image: str) -> None:
        for method, path, body in (
            ("POST", f"/v2/{pid}/images/{image}/tags", {"tag": {"key": "k", "value": "v"}}),
            ("GET", f"/v2/{pid}/images/{image}/tags", None),
            ("DELETE", f"/v2/{pid}/images/{image}/tags/k", None),
            ("POST", f"/v2/{pid}/images/{image}/tags/action", {"action": "create", "tags": []}),
            ("GET", f"/v2/{pid}/images/tags", None),
            ("POST", f"/v2/{pid}/images/resource_instances/action", {"action": "count"}),
            ("PUT", "/v1/cloudimages/tags", {"image_id": image, "tag": "k.v"}),
            ("GET", "/v1/cloudimages/tags", None),
            ("PUT", f"/v2/images/{image}/tags/k", None),
            ("DELETE", f"/v2/images/{image}/tags/k", None),
        ):
            r = client.request(method, path, json=body)
            assert r.status_code == 401, (method, path)

    def test_reader_may_read_not_write(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str,
                                       image: str) -> None:
        add(client, admin_headers, pid, image, "k", "v")
        add_user(runtime.db, name="viewer", role="readonly")
        h = {"X-Auth-Token": login(client, "viewer", "User-Pass-1234")}
        assert tags_of(client, h, pid, image) == [{"key": "k", "value": "v"}]
        r = add(client, h, pid, image, "k2", "v")
        assert r.status_code == 403 and error_code(r) == "IMG.0026"
        assert client.put(f"/v2/images/{image}/tags/x", headers=h).status_code == 403
        assert client.put("/v1/cloudimages/tags", json={"image_id": image, "tag": "a.b"}, headers=h).status_code == 403

    def test_path_project_must_be_the_token_project(self, client: TestClient, admin_headers: H, image: str) -> None:
        r = add(client, admin_headers, "f" * 32, image, "k", "v")
        assert r.status_code == 403

    def test_other_accounts_image_is_404(self, client: TestClient, admin_headers: H, pid: str, image: str,
                                         outsider: H) -> None:
        other = project_of(client, outsider)
        for r in (add(client, outsider, other, image, "k", "v"),
                  client.get(f"/v2/{other}/images/{image}/tags", headers=outsider),
                  client.delete(f"/v2/{other}/images/{image}/tags/k", headers=outsider),
                  client.post(f"/v2/{other}/images/{image}/tags/action", headers=outsider,
                              json={"action": "delete", "tags": [{"key": "k"}]}),
                  client.put("/v1/cloudimages/tags", json={"image_id": image, "tag": "k.v"}, headers=outsider),
                  client.put(f"/v2/images/{image}/tags/k", headers=outsider),
                  client.delete(f"/v2/images/{image}/tags/k", headers=outsider)):
            assert r.status_code == 404 and error_code(r) == "IMG.0144", r.text
        assert client.get("/v1/cloudimages/tags", headers=outsider).json() == {"tags": []}

    def test_unknown_image_is_404(self, client: TestClient, admin_headers: H, pid: str) -> None:
        r = add(client, admin_headers, pid, "00000000-0000-0000-0000-000000000000", "k", "v")
        assert r.status_code == 404 and error_code(r) == "IMG.0144"


class TestBatch:
    def _action(self, client: TestClient, h: H, pid: str, image: str, action: str, tags: list[dict[str, Any]]) -> Any:
        return client.post(f"/v2/{pid}/images/{image}/tags/action", json={"action": action, "tags": tags},
                           headers=h)

    def test_create_then_delete(self, client: TestClient, admin_headers: H, pid: str, image: str) -> None:
        r = self._action(client, admin_headers, pid, image, "create", [
            {"key": "key1", "value": "value1"}, {"key": "key2", "value": "value2"}, {"key": "key3", "value": ""}])
        assert r.status_code == 204, r.text
        r = self._action(client, admin_headers, pid, image, "create", [{"key": "key1", "value": "again"}])
        assert r.status_code == 204
        assert tags_of(client, admin_headers, pid, image) == [
            {"key": "key1", "value": "again"}, {"key": "key2", "value": "value2"}, {"key": "key3", "value": ""}]
        # A value that does not match keeps the tag; a key alone removes it; absent tags are fine.
        r = self._action(client, admin_headers, pid, image, "delete", [
            {"key": "key1", "value": "value1"}, {"key": "key2"}, {"key": "nope", "value": "x"},
            {"key": "key3", "value": ""}])
        assert r.status_code == 204
        assert tags_of(client, admin_headers, pid, image) == [{"key": "key1", "value": "again"}]

    def test_bad_batches_change_nothing(self, client: TestClient, admin_headers: H, pid: str, image: str) -> None:
        add(client, admin_headers, pid, image, "keep", "me")
        for action, tags, code in [
            ("create", [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}], "IMG.0115"),
            ("create", [{"key": "ok", "value": "1"}, {"key": "a"}], "IMG.0115"),
            ("create", [{"key": "ok", "value": "1"}, {"key": "bad*", "value": "1"}], "IMG.0115"),
            ("create", [{"key": f"k{i}", "value": "v"} for i in range(10)], "IMG.0116"),
            ("delete", [{"key": "keep"}, {"key": ""}], "IMG.0115"),
            ("delete", [{"key": "keep"}, {"key": "k" * 128}], "IMG.0115"),
            ("Create", [{"key": "a", "value": "1"}], "IMG.0001"),
        ]:
            r = self._action(client, admin_headers, pid, image, action, tags)
            assert r.status_code == 400 and error_code(r) == code, (action, tags, r.text)
        assert tags_of(client, admin_headers, pid, image) == [{"key": "keep", "value": "me"}]

    def test_delete_checks_lengths_not_characters(self, client: TestClient, admin_headers: H, pid: str,
                                                  image: str) -> None:
        r = self._action(client, admin_headers, pid, image, "delete", [{"key": "any thing*", "value": "x y"}])
        assert r.status_code == 204

    def test_sdk_batch_delete_route(self, client: TestClient, admin_headers: H, pid: str, image: str) -> None:
        add(client, admin_headers, pid, image, "a", "1")
        add(client, admin_headers, pid, image, "b", "2")
        r = client.request("DELETE", f"/v1/{pid}/cloudimages/{image}/tags/delete", headers=admin_headers,
                           json={"tags": [{"key": "a", "value": "1"}]})
        assert r.status_code == 204
        assert tags_of(client, admin_headers, pid, image) == [{"key": "b", "value": "2"}]


class TestQueryByTags:
    @pytest.fixture
    def catalog(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str,
                source: None) -> dict[str, str]:
        names = ("web_1", "web_2", "db_1", "bare")
        ids = dict(zip(names, new_images(client, admin_headers, runtime, *names), strict=True))
        tags = {"web_1": {"role": "web", "env": "prod"}, "web_2": {"role": "web", "env": "test"},
                "db_1": {"role": "db", "env": "prod", "key_x": ""}, "bare": {}}
        for name, pairs in tags.items():
            for k, v in pairs.items():
                assert add(client, admin_headers, pid, ids[name], k, v).status_code == 204
        return ids

    def _query(self, client: TestClient, h: H, pid: str, **body: Any) -> Any:
        return client.post(f"/v2/{pid}/images/resource_instances/action", json=body, headers=h)

    def _names(self, client: TestClient, h: H, pid: str, **body: Any) -> list[str]:
        r = self._query(client, h, pid, action="filter", **body)
        assert r.status_code == 200, r.text
        return sorted(x["resource_name"] for x in r.json()["resources"])

    def test_filters(self, client: TestClient, admin_headers: H, pid: str, catalog: dict[str, str]) -> None:
        h = admin_headers
        assert self._names(client, h, pid, tags=[{"key": "role", "values": ["web"]}]) == ["web_1", "web_2"]
        assert self._names(client, h, pid, tags=[{"key": "role", "values": ["web"]},
                                                  {"key": "env", "values": ["prod"]}]) == ["web_1"]
        # Several values of one key: any of them; no values: any value.
        assert self._names(client, h, pid, tags=[{"key": "env", "values": ["prod", "test"]}]) == [
            "db_1", "web_1", "web_2"]
        assert self._names(client, h, pid, tags=[{"key": "env", "values": []}]) == ["db_1", "web_1", "web_2"]
        assert self._names(client, h, pid, tags=[{"key": "key_x", "values": [""]}]) == ["db_1"]
        assert self._names(client, h, pid, tags_any=[{"key": "role", "values": ["db"]},
                                                      {"key": "env", "values": ["test"]}]) == ["db_1", "web_2"]
        assert self._names(client, h, pid, not_tags=[{"key": "role", "values": ["web"]},
                                                      {"key": "env", "values": ["prod"]}]) == [
            "bare", "db_1", "web_2"]
        assert self._names(client, h, pid, not_tags_any=[{"key": "role", "values": ["db"]},
                                                          {"key": "env", "values": ["test"]}]) == ["bare", "web_1"]
        assert self._names(client, h, pid, without_any_tag=True, tags=[{"key": "role", "values": []}]) == ["bare"]
        assert self._names(client, h, pid, matches=[{"key": "resource_name", "value": "web"}]) == ["web_1", "web_2"]
        assert self._names(client, h, pid, matches=[{"key": "resource_id", "value": catalog["db_1"]}]) == ["db_1"]
        # A "_" in a name match is a character, not a wildcard.
        assert self._names(client, h, pid, matches=[{"key": "resource_name", "value": "a_e"}]) == []  # not "bare"

    def test_filter_shape_count_and_paging(self, client: TestClient, admin_headers: H, pid: str,
                                           catalog: dict[str, str]) -> None:
        r = self._query(client, admin_headers, pid, action="filter", limit="1", offset="0",
                        tags=[{"key": "role", "values": ["web"]}])
        body = r.json()
        assert body["total_count"] == 2 and len(body["resources"]) == 1
        first = body["resources"][0]
        assert first == {"resource_id": catalog["web_2"], "resource_detail": {"status": "active"},
                         "tags": [{"key": "env", "value": "test"}, {"key": "role", "value": "web"}],
                         "resource_name": "web_2"}  # newest first
        second = self._query(client, admin_headers, pid, action="filter", limit=1, offset=1,
                             tags=[{"key": "role", "values": ["web"]}]).json()["resources"]
        assert [x["resource_id"] for x in second] == [catalog["web_1"]]
        r = self._query(client, admin_headers, pid, action="count", tags=[{"key": "env", "values": ["prod"]}])
        assert r.status_code == 200 and r.json() == {"total_count": 2}
        # Default limit is 10; all four images.
        assert self._query(client, admin_headers, pid, action="filter").json()["total_count"] == 4

    def test_bad_queries_are_400(self, client: TestClient, admin_headers: H, pid: str) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"action": "list"}, "IMG.0001"),
            ({}, "IMG.0001"),
            ({"action": "filter", "limit": "0"}, "IMG.0001"),
            ({"action": "filter", "limit": "1001"}, "IMG.0001"),
            ({"action": "filter", "limit": "ten"}, "IMG.0001"),
            ({"action": "filter", "offset": "-1"}, "IMG.0001"),
            ({"action": "filter", "tags": [{"key": f"k{i}", "values": []} for i in range(11)]}, "IMG.0115"),
            ({"action": "filter", "tags": [{"key": "k", "values": [str(i) for i in range(11)]}]}, "IMG.0115"),
            ({"action": "filter", "tags": [{"key": "k", "values": []}, {"key": "k", "values": []}]}, "IMG.0115"),
            ({"action": "filter", "tags_any": [{"key": "", "values": []}]}, "IMG.0115"),
            ({"action": "filter", "not_tags": [{"key": "k", "values": ["a", "a"]}]}, "IMG.0115"),
            ({"action": "filter", "matches": [{"key": "owner", "value": "x"}]}, "IMG.0001"),
            ({"action": "filter", "matches": [{"key": "resource_name", "value": ""}]}, "IMG.0001"),
        ]
        for body, code in cases:
            r = self._query(client, admin_headers, pid, **body)
            assert r.status_code == 400 and error_code(r) == code, (body, r.text)

    def test_only_own_images(self, client: TestClient, admin_headers: H, pid: str, catalog: dict[str, str],
                             outsider: H) -> None:
        other = project_of(client, outsider)
        assert self._query(client, outsider, other, action="count").json() == {"total_count": 0}


class TestFamilyTwo:
    def test_put_both_forms_and_query(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str,
                                      source: None) -> None:
        a, b = new_images(client, admin_headers, runtime, "fam-a", "fam-b")
        r = client.put("/v1/cloudimages/tags", json={"image_id": a, "tag": "aaaa.1111"}, headers=admin_headers)
        assert r.status_code == 204, r.text
        r = client.put("/v1/cloudimages/tags", json={"image_id": a, "image_tag": {"key": "key1", "value": "v1"}},
                       headers=admin_headers)
        assert r.status_code == 204
        # Modify: same key, new value.
        client.put("/v1/cloudimages/tags", json={"image_id": a, "tag": "aaaa.2222"}, headers=admin_headers)
        client.put("/v1/cloudimages/tags", json={"image_id": b, "tag": "test"}, headers=admin_headers)
        assert tags_of(client, admin_headers, pid, a) == [{"key": "aaaa", "value": "2222"},
                                                          {"key": "key1", "value": "v1"}]
        r = client.get("/v1/cloudimages/tags", headers=admin_headers)
        assert r.status_code == 200 and r.json() == {"tags": ["aaaa.2222", "key1.v1", "test"]}
        # The image filters of the query APIs select whose tags are listed.
        assert client.get("/v1/cloudimages/tags", params={"name": "fam-b"}, headers=admin_headers).json() == {
            "tags": ["test"]}
        assert client.get("/v1/cloudimages/tags", params={"id": a, "__imagetype": "private"},
                          headers=admin_headers).json() == {"tags": ["aaaa.2222", "key1.v1"]}
        assert client.get("/v1/cloudimages/tags", params={"status": "queued"}, headers=admin_headers).json() == {
            "tags": []}
        # limit/page page through the tags.
        assert client.get("/v1/cloudimages/tags", params={"limit": 2, "page": 2},
                          headers=admin_headers).json() == {"tags": ["test"]}

    def test_bad_requests_are_400(self, client: TestClient, admin_headers: H, pid: str, image: str) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"tag": "a.b", "image_tag": {"key": "c", "value": "d"}}, "IMG.0115"),
            ({}, "IMG.0115"),
            ({"tag": ""}, "IMG.0115"),
            ({"tag": ".value"}, "IMG.0115"),
            ({"tag": "bad key.v"}, "IMG.0115"),
            ({"image_tag": {"key": "k" * 37, "value": "v"}}, "IMG.0115"),
        ]
        for body, code in cases:
            r = client.put("/v1/cloudimages/tags", json={"image_id": image, **body}, headers=admin_headers)
            assert r.status_code == 400 and error_code(r) == code, (body, r.text)
        assert tags_of(client, admin_headers, pid, image) == []
        r = client.put("/v1/cloudimages/tags", json={"tag": "a.b"}, headers=admin_headers)
        assert r.status_code == 400 and error_code(r) == "IMG.0001"
        for params in ({"limit": "x"}, {"page": "0"}, {"__imagetype": "weird"}, {"created_at": "soon"}):
            assert client.get("/v1/cloudimages/tags", params=params, headers=admin_headers).status_code == 400


class TestNative:
    def test_add_and_delete(self, client: TestClient, admin_headers: H, pid: str, image: str) -> None:
        assert client.put(f"/v2/images/{image}/tags/aaaa", headers=admin_headers).status_code == 204
        assert client.put(f"/v2/images/{image}/tags/aaaa", headers=admin_headers).status_code == 204  # idempotent
        assert client.get(f"/v2/images/{image}", headers=admin_headers).json()["tags"] == ["aaaa"]
        assert tags_of(client, admin_headers, pid, image) == [{"key": "aaaa", "value": ""}]
        assert client.delete(f"/v2/images/{image}/tags/aaaa", headers=admin_headers).status_code == 204
        r = client.delete(f"/v2/images/{image}/tags/aaaa", headers=admin_headers)
        assert r.status_code == 404
        assert client.get(f"/v2/images/{image}", headers=admin_headers).json()["tags"] == []

    def test_long_key_allowed_bad_characters_refused(self, client: TestClient, admin_headers: H,
                                                     image: str) -> None:
        assert client.put(f"/v2/images/{image}/tags/{'k' * 255}", headers=admin_headers).status_code == 204
        for bad in ("k" * 256, "a.b", "sp%20ace", "star*"):
            r = client.put(f"/v2/images/{image}/tags/{bad}", headers=admin_headers)
            assert r.status_code == 400 and error_code(r) == "IMG.0115", bad

    def test_native_delete_removes_an_ims_tag_by_key(self, client: TestClient, admin_headers: H, pid: str,
                                                     image: str) -> None:
        add(client, admin_headers, pid, image, "team", "ops")
        assert client.delete(f"/v2/images/{image}/tags/team", headers=admin_headers).status_code == 204
        assert tags_of(client, admin_headers, pid, image) == []

    def test_limit_applies(self, client: TestClient, admin_headers: H, pid: str, image: str) -> None:
        for i in range(10):
            assert client.put(f"/v2/images/{image}/tags/t{i}", headers=admin_headers).status_code == 204
        r = client.put(f"/v2/images/{image}/tags/t10", headers=admin_headers)
        assert r.status_code == 400 and error_code(r) == "IMG.0116"

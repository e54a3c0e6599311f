"""The deprecated routes of the IMS reference: Glance v1/v1.1 image queries and deletion, full-ECS images."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from openims.runtime import Runtime
from tests.api.test_glance_data import put_file
from tests.api.test_glance_images import create, error_code
from tests.conftest import new_tenant
from tests.support.images import make_image

H = dict[str, str]


def test_v1_1_detail_lists_and_filters(client: TestClient, admin_headers: H, runtime: Runtime,
                                       tmp_path: Path) -> None:
    a = create(client, admin_headers, name="legacy-a", disk_format="qcow2", purpose="x")
    b = create(client, admin_headers, name="legacy-b", disk_format="raw")
    data = make_image(tmp_path, "qcow2").read_bytes()
    assert put_file(client, admin_headers, a["id"], data).status_code == 204
    r = client.get("/v1.1/images/detail", headers=admin_headers)
    assert r.status_code == 200
    found = {i["id"]: i for i in r.json()["images"]}
    assert set(found) == {a["id"], b["id"]}
    one = found[a["id"]]
    assert set(one) == {"id", "name", "status", "deleted", "deleted_at", "container_format", "disk_format",
                        "created_at", "updated_at", "min_disk", "min_ram", "protected", "checksum", "owner",
                        "is_public", "virtual_size", "size", "properties"}
    assert (one["status"], one["size"], one["is_public"], one["deleted"]) == ("active", len(data), False, False)
    assert one["properties"]["purpose"] == "x" and not any(k.startswith("__") for k in one["properties"])
    assert "T" in one["created_at"] and not one["created_at"].endswith("Z")

    def ids(**params: str) -> set[str]:
        return {i["id"] for i in client.get("/v1.1/images/detail", params=params, headers=admin_headers)
                .json()["images"]}

    assert ids(disk_format="raw") == {b["id"]} and ids(name="legacy-a") == {a["id"]}
    assert ids(status="queued") == {b["id"]} and ids(size_min="1") == {a["id"]}
    assert ids(**{"changes-since": "2000-01-01T00:00:00Z"}) == {a["id"], b["id"]}
    assert ids(**{"changes-since": "2999-01-01T00:00:00"}) == set()
    assert client.get("/v1.1/images/detail", params={"size_min": "x"}, headers=admin_headers).status_code == 400
    assert client.get("/v1.1/images/detail").status_code == 401
    # Another account sees none of them.
    stranger = new_tenant(client, runtime, "legacy1")
    assert client.get("/v1.1/images/detail", headers=stranger).json()["images"] == []


def test_v1_head_and_v1_1_delete(client: TestClient, admin_headers: H, runtime: Runtime, tmp_path: Path) -> None:
    image = create(client, admin_headers, name="legacy-head", disk_format="qcow2", purpose="x")
    data = make_image(tmp_path, "qcow2").read_bytes()
    assert put_file(client, admin_headers, image["id"], data).status_code == 204
    r = client.head(f"/v1/images/{image['id']}", headers=admin_headers)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["X-Image-Meta-Id"] == image["id"] and r.headers["X-Image-Meta-Status"] == "active"
    assert r.headers["X-Image-Meta-Size"] == str(len(data)) and r.headers["X-Image-Meta-Is_public"] == "False"
    assert r.headers["X-Image-Meta-Property-purpose"] == "x" and r.headers["Etag"] == r.headers[
        "X-Image-Meta-Checksum"]
    stranger = new_tenant(client, runtime, "legacy2")
    assert client.head(f"/v1/images/{image['id']}", headers=stranger).status_code == 404
    assert client.delete(f"/v1.1/images/{image['id']}", headers=stranger).status_code == 404
    assert client.delete(f"/v1.1/images/{image['id']}", headers=admin_headers).status_code == 204
    assert client.head(f"/v1/images/{image['id']}", headers=admin_headers).status_code == 404
    assert not runtime.images.exists(image["id"])


def test_whole_images_are_refused_as_documented(client: TestClient, admin_headers: H) -> None:
    url = "/v1/cloudimages/wholeimages/action"
    r = client.post(url, json={"name": "whole", "instance_id": "877a2cda-41b7-4b5b-8f8d-ef79a6a2a7c9"},
                    headers=admin_headers)
    assert r.status_code == 400 and error_code(r) == "IMG.0005"
    r = client.post(url, json={"name": "whole", "backup_id": "b1", "whole_image_type": "CBR"}, headers=admin_headers)
    assert r.status_code == 400 and error_code(r) == "IMG.0020"
    r = client.post(url, json={"name": "whole"}, headers=admin_headers)
    assert r.status_code == 400 and error_code(r) == "IMG.0001"
    assert client.post(url, json={"name": "whole"}).status_code == 401

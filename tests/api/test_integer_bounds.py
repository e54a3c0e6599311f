"""Integers no database column can hold are the client's mistake: a 400 naming the range, never a 500.

PostgreSQL's ``integer`` columns (min_disk, min_ram) end at 2**31 - 1 and SQLite's at 2**63 - 1; a
query filter or an attribute beyond that used to reach the driver and come back as a 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from openims.runtime import Runtime
from tests.api.test_images_api import create
from tests.api.test_ims_lifecycle import _active, _project_id

H = dict[str, str]
HUGE = 10**20  # beyond any integer column
BEYOND_INT32 = 2**31  # fits SQLite, not PostgreSQL's integer
PATCH_JSON = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


@pytest.mark.parametrize("value", [str(HUGE), str(BEYOND_INT32), "-" + str(HUGE), "12abc", "1e3", " "])
@pytest.mark.parametrize("path, name", [
    ("/v2/cloudimages", "min_disk"),
    ("/v2/images", "min_disk"),
    ("/v2/images", "min_ram"),
    ("/v1/cloudimages/tags", "min_disk"),
])
def test_integer_filters_out_of_range_are_400(client: TestClient, admin_headers: H, path: str, name: str,
                                             value: str) -> None:
    r = client.get(path, params={name: value}, headers=admin_headers)
    assert r.status_code == 400, r.text
    assert name in r.json()["error"]["message"]


def test_size_filters_take_64_bit_values(client: TestClient, admin_headers: H) -> None:
    r = client.get("/v2/images", params={"size_min": str(2**40), "size_max": str(2**63 - 1)}, headers=admin_headers)
    assert r.status_code == 200, r.text
    r = client.get("/v2/images", params={"size_max": str(2**63)}, headers=admin_headers)
    assert r.status_code == 400
    assert "size_max must be between 0 and 9223372036854775807" in r.json()["error"]["message"]


def test_a_filter_at_the_edge_is_accepted(client: TestClient, admin_headers: H) -> None:
    r = client.get("/v2/cloudimages", params={"min_disk": str(2**31 - 1)}, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["images"] == []


@pytest.mark.parametrize("field", ["min_ram", "max_ram"])
@pytest.mark.parametrize("value", [HUGE, BEYOND_INT32])
def test_import_memory_beyond_range_is_400(client: TestClient, admin_headers: H, field: str, value: int) -> None:
    r = create(client, admin_headers, name="big", image_url="b:x.qcow2", min_disk=40,
               os_version="CentOS 7.0 64bit", **{field: value})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "IMG.0055"


def test_glance_min_ram_edges(client: TestClient, admin_headers: H) -> None:
    r = client.post("/v2/images", json={"name": "edge", "min_ram": 2**31 - 1}, headers=admin_headers)
    assert r.status_code == 201, r.text
    image_id = r.json()["id"]
    assert client.get(f"/v2/images/{image_id}", headers=admin_headers).json()["min_ram"] == 2**31 - 1
    for value in (BEYOND_INT32, HUGE):
        r = client.post("/v2/images", json={"name": "over", "min_ram": value}, headers=admin_headers)
        assert r.status_code == 400, r.text
        r = client.patch(f"/v2/images/{image_id}", json=[{"op": "replace", "path": "/min_ram", "value": value}],
                         headers={**admin_headers, **PATCH_JSON})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "IMG.0055"
    # Nothing changed.
    assert client.get(f"/v2/images/{image_id}", headers=admin_headers).json()["min_ram"] == 2**31 - 1


@pytest.mark.parametrize("path", ["/min_ram", "/max_ram", "/min_disk"])
def test_ims_update_beyond_range_is_400(client: TestClient, admin_headers: H, runtime: Runtime, path: str) -> None:
    image_id = _active(runtime, _project_id(client, admin_headers))
    before: dict[str, Any] = client.get(f"/v2/images/{image_id}", headers=admin_headers).json()
    r = client.patch(f"/v2/cloudimages/{image_id}", json=[{"op": "replace", "path": path, "value": HUGE}],
                     headers=admin_headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "IMG.0055"
    after = client.get(f"/v2/images/{image_id}", headers=admin_headers).json()
    assert after["updated_at"] == before["updated_at"]

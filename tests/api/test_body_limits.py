"""The 1 MiB limit on request bodies: every JSON request, whatever its path; only streamed uploads are exempt."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from openims.runtime import Runtime
from tests.conftest import password_auth
from tests.support.images import MiB, make_image

LIMIT = 1024 * 1024
OCTETS = {"Content-Type": "application/octet-stream"}


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON of exactly ``size`` bytes (a long string in an extra field)."""
    base = json.dumps({**body, "padding": ""}).encode()
    return json.dumps({**body, "padding": "x" * (size - len(base))}).encode()


def chunked(data: bytes) -> Iterator[bytes]:
    # No Content-Length: the limit must be enforced as the body is read.
    for i in range(0, len(data), 64 * 1024):
        yield data[i:i + 64 * 1024]


def ims_413(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    assert r.json() == {"error": {"code": "IMG.0001",
                                  "message": f"The request body exceeds the limit of {LIMIT} bytes."}}
    assert r.headers["X-Request-Id"]


@pytest.fixture
def image_id(client: TestClient, admin_headers: dict[str, str]) -> str:
    r = client.post("/v2/images", json={"name": "lim", "disk_format": "raw", "container_format": "bare"},
                    headers=admin_headers)
    assert r.status_code == 201, r.text
    iid: str = r.json()["id"]
    return iid


class TestJsonBodies:
    @pytest.mark.parametrize("path", ["/v1/cloudimages/{id}/file", "/v2.1/cloudimages/{id}/file",
                                      "/image/v1/cloudimages/{id}/file"])
    @pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
    def test_oversized_export_body_is_413(self, client: TestClient, admin_headers: dict[str, str], image_id: str,
                                          path: str, streamed: bool) -> None:
        # POST …/file exports an image: a JSON request, although its path ends like the upload's.
        body = padded({"bucket_url": "bkt:out.qcow2", "file_format": "qcow2"}, LIMIT + 1)
        r = client.post(path.format(id=image_id), content=chunked(body) if streamed else body,
                        headers={**admin_headers, "Content-Type": "application/json"})
        ims_413(r)

    def test_export_body_at_the_limit_reaches_the_route(self, client: TestClient, admin_headers: dict[str, str],
                                                        image_id: str) -> None:
        body = padded({"bucket_url": "bkt:out.qcow2", "file_format": "qcow2"}, LIMIT)
        r = client.post(f"/v1/cloudimages/{image_id}/file", content=body,
                        headers={**admin_headers, "Content-Type": "application/json"})
        # The route answers (the image has no data to export), not the limit.
        assert r.status_code != 413 and r.json()["error"]["code"] != "IMG.0001", r.text

    def test_other_methods_on_upload_paths_are_limited(self, client: TestClient, admin_headers: dict[str, str],
                                                       image_id: str) -> None:
        # Only PUT streams there; a declared oversized body is refused before routing (even a 405).
        data = b"x" * (LIMIT + 1)
        for method, path in (("POST", f"/v2/images/{image_id}/file"), ("POST", "/obs/bkt/key"),
                             ("PATCH", f"/v2/images/{image_id}"), ("PUT", "/obs/bkt")):
            ims_413(client.request(method, path, content=data, headers=admin_headers))
        # A chunked one is counted as the route reads it.
        ops = json.dumps([{"op": "replace", "path": "/name", "value": "x" * LIMIT}]).encode()
        r = client.patch(f"/image/v2/images/{image_id}", content=chunked(ops),
                         headers={**admin_headers, "Content-Type": "application/openstack-images-v2.1-json-patch"})
        ims_413(r)
        assert client.get(f"/v2/images/{image_id}", headers=admin_headers).json()["name"] == "lim"

    @pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
    def test_identity_routes_answer_in_keystone_shape(self, client: TestClient, streamed: bool) -> None:
        body = padded(password_auth("admin", "whatever"), LIMIT + 1)
        for path in ("/v3/auth/tokens", "/identity/v3/auth/tokens"):
            r = client.post(path, content=chunked(body) if streamed else body,
                            headers={"Content-Type": "application/json"})
            assert r.status_code == 413, r.text
            assert r.json() == {"error": {"code": 413, "title": "Request Entity Too Large",
                                          "message": f"The request body exceeds the limit of {LIMIT} bytes."}}


class TestStreamedUploads:
    @pytest.mark.parametrize("path", ["/v2/images/{id}/file", "/image/v2/images/{id}/file"])
    @pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
    def test_image_data_over_the_limit_is_stored(self, client: TestClient, admin_headers: dict[str, str],
                                                 runtime: Runtime, image_id: str, tmp_path: Path, path: str,
                                                 streamed: bool) -> None:
        data = make_image(tmp_path, "raw", size=4 * MiB).read_bytes()
        assert len(data) > LIMIT
        r = client.put(path.format(id=image_id), content=chunked(data) if streamed else data,
                       headers={**admin_headers, **OCTETS})
        assert r.status_code == 204, r.text
        image = client.get(f"/v2/images/{image_id}", headers=admin_headers).json()
        assert image["status"] == "active" and image["virtual_size"] == len(data)

    @pytest.mark.parametrize("path", ["/obs/bkt/big.raw", "/image/obs/bkt/big.raw"])
    def test_object_over_the_limit_is_stored(self, client: TestClient, admin_headers: dict[str, str],
                                             path: str) -> None:
        data = b"\x01" * (3 * LIMIT)
        r = client.put(path, content=chunked(data), headers={**admin_headers, **OCTETS})
        assert r.status_code == 201, r.text
        objects = client.get("/obs/bkt", headers=admin_headers).json()["objects"]
        assert [(o["key"], o["size"]) for o in objects] == [("big.raw", len(data))]

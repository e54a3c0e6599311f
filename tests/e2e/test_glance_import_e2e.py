"""Glance's interoperable import through a real server and worker, on the file store and on a real S3 engine.

glance-direct (stage, then import) and web-download from a real local HTTP server; a refused import
leaves the image queued and nothing in the image store.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.images import make_image
from tests.support.server import Api, ServerProcess
from tests.support.stores import Stores

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-glance-import")]
STORES = ("file", "s3")
OCTETS = {"Content-Type": "application/octet-stream"}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def web_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    root = tmp_path_factory.mktemp("web")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server(stores: Stores, web_root: tuple[Path, int],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"OPENIMS_JOB_LEASE_SECONDS": "5", "OPENIMS_WEB_DOWNLOAD_ALLOWED_HOSTS": "127.0.0.1",
           "OPENIMS_WEB_DOWNLOAD_ALLOWED_PORTS": str(web_root[1]), **stores.env()}
    with ServerProcess(tmp_path_factory.mktemp("e2e") / "data", env=env) as srv:
        yield srv


def _new(api: Api, name: str, disk_format: str) -> str:
    r = api.http.post("/v2/images", json={"name": name, "disk_format": disk_format, "container_format": "bare"})
    assert r.status_code == 201, r.text
    image_id: str = r.json()["id"]
    return image_id


def _import(api: Api, image_id: str, method: dict[str, str]) -> dict[str, Any]:
    r = api.http.post(f"/v2/images/{image_id}/import", json={"method": method})
    assert r.status_code == 202, r.text
    return api.wait_image(image_id)


def test_glance_direct(server: ServerProcess, api: Api, stores: Stores, files: Path) -> None:
    source = make_image(files / "direct", "vmdk", seed=7)
    image_id = _new(api, "direct", "vmdk")
    r = api.http.put(f"/v2/images/{image_id}/stage", content=source.read_bytes(), headers=OCTETS)
    assert r.status_code == 204, r.text
    image = _import(api, image_id, {"name": "glance-direct"})
    data = source.read_bytes()
    assert (image["status"], image["size"], image["checksum"]) == ("active", len(data), hashlib.md5(data).hexdigest())
    assert api.http.get(f"/v2/images/{image_id}/file").content == data
    assert stores.stored_image(server.data_dir, image_id, files / "stored-direct").read_bytes() == data


def test_web_download(server: ServerProcess, api: Api, stores: Stores, files: Path,
                      web_root: tuple[Path, int]) -> None:
    root, port = web_root
    source = make_image(root, "qcow2", seed=8)
    image_id = _new(api, "from-web", "qcow2")
    image = _import(api, image_id, {"name": "web-download", "uri": f"http://127.0.0.1:{port}/{source.name}"})
    assert image["status"] == "active", image
    assert api.http.get(f"/v2/images/{image_id}/file").content == source.read_bytes()
    tasks = api.http.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    assert [t["status"] for t in tasks] == ["success"]


def test_refused_import_leaves_nothing(server: ServerProcess, api: Api, stores: Stores, files: Path) -> None:
    raw = make_image(files / "liar", "raw", seed=9)
    image_id = _new(api, "liar", "qcow2")
    assert api.http.put(f"/v2/images/{image_id}/stage", content=raw.read_bytes(), headers=OCTETS).status_code == 204
    image = _import(api, image_id, {"name": "glance-direct"})
    assert (image["status"], image["size"]) == ("queued", None), image
    assert image_id not in stores.stored_images(server.data_dir)
    [task] = api.http.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    assert task["status"] == "failure" and "qcow2" in task["message"]

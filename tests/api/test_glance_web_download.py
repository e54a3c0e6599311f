"""web-download through HTTP, from a real local HTTP server the test allows, and the SSRF attempts refused."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openims.runtime import Runtime
from openims.worker.runner import Worker
from tests.api.test_glance_images import create
from tests.api.test_glance_import import image_of, start, tasks
from tests.support.images import make_image

H = dict[str, str]


class Files:
    def __init__(self) -> None:
        self.served: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.requests: list[str] = []


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Files, int]]:
    state = Files()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            if self.path in state.redirects:
                self.send_response(302)
                self.send_header("Location", state.redirects[self.path])
                self.end_headers()
            elif self.path in state.served:
                body = state.served[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def settings_overrides(files: tuple[Files, int]) -> dict[str, Any]:
    # The operator allows this one internal host and its port; nothing else inside.
    return {"web_download_allowed_hosts": "127.0.0.1", "web_download_allowed_ports": f"80,443,{files[1]}"}


def web(client: TestClient, headers: H, image_id: str, uri: str) -> Any:
    return start(client, headers, image_id, {"method": {"name": "web-download", "uri": uri}})


def test_download_import_active(client: TestClient, admin_headers: H, runtime: Runtime, tmp_path: Path,
                                files: tuple[Files, int]) -> None:
    state, port = files
    data = make_image(tmp_path, "qcow2").read_bytes()
    state.served["/disk.qcow2"] = data
    state.redirects["/latest"] = "/disk.qcow2"  # a redirect to an allowed place is followed
    image = create(client, admin_headers, name="from-web", disk_format="qcow2", container_format="bare")
    r = web(client, admin_headers, image["id"], f"http://127.0.0.1:{port}/latest")
    assert r.status_code == 202 and r.content == b""
    assert image_of(client, admin_headers, image["id"])["status"] == "importing"
    Worker(runtime).run_until_idle()
    got = image_of(client, admin_headers, image["id"])
    assert (got["status"], got["size"], got["checksum"]) == ("active", len(data), hashlib.md5(data).hexdigest())
    assert client.get(f"/v2/images/{image['id']}/file", headers=admin_headers).content == data
    assert state.requests == ["/latest", "/disk.qcow2"]
    [task] = tasks(client, admin_headers, image["id"])
    assert task["status"] == "success" and task["input"]["import_req"]["method"]["name"] == "web-download"


@pytest.mark.parametrize("uri", [
    "http://localhost:{port}/disk.qcow2",  # a name that resolves to 127.0.0.1, not allowed by name
    "http://2130706433/disk.qcow2",  # 127.0.0.1 spelled as a number
    "http://0x7f.0.0.1/disk.qcow2",
    "http://[::1]:{port}/disk.qcow2",
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:1/disk.qcow2",  # an allowed host, a port that is not
    "gopher://127.0.0.1:{port}/",
    "file:///etc/passwd",
])
def test_refused_at_submit(client: TestClient, admin_headers: H, files: tuple[Files, int], uri: str) -> None:
    state, port = files
    image = create(client, admin_headers, name="ssrf", disk_format="qcow2", container_format="bare")
    r = web(client, admin_headers, image["id"], uri.format(port=port))
    assert r.status_code == 400 and "URI for web-download does not pass filtering" in r.text
    assert image_of(client, admin_headers, image["id"])["status"] == "queued"
    assert state.requests == []


def test_refused_redirect_fails_the_task(client: TestClient, admin_headers: H, runtime: Runtime, tmp_path: Path,
                                         files: tuple[Files, int]) -> None:
    state, port = files
    state.served["/disk.qcow2"] = make_image(tmp_path, "qcow2").read_bytes()
    state.redirects["/go"] = f"http://localhost:{port}/disk.qcow2"
    image = create(client, admin_headers, name="redirected", disk_format="qcow2", container_format="bare")
    assert web(client, admin_headers, image["id"], f"http://127.0.0.1:{port}/go").status_code == 202
    Worker(runtime).run_until_idle()
    got = image_of(client, admin_headers, image["id"])
    assert (got["status"], got["size"]) == ("queued", None) and "os_glance_import_task" not in got
    [task] = tasks(client, admin_headers, image["id"])
    assert task["status"] == "failure" and "refused" in task["message"] and "localhost" in task["message"]
    assert state.requests == ["/go"]  # the target was never asked


def test_bad_downloads_fail_cleanly(client: TestClient, admin_headers: H, runtime: Runtime,
                                    files: tuple[Files, int]) -> None:
    state, port = files
    state.served["/garbage.qcow2"] = b"not a disk image at all" * 100
    for path, words in (("/missing.qcow2", "404"), ("/garbage.qcow2", "qcow2")):
        image = create(client, admin_headers, name="bad", disk_format="qcow2", container_format="bare")
        assert web(client, admin_headers, image["id"], f"http://127.0.0.1:{port}{path}").status_code == 202
        Worker(runtime).run_until_idle()
        assert image_of(client, admin_headers, image["id"])["status"] == "queued"
        [task] = tasks(client, admin_headers, image["id"])
        assert task["status"] == "failure" and words in task["message"], task["message"]
    assert not any(runtime.images.tmp.iterdir())


def test_web_download_rules(client: TestClient, admin_headers: H, files: tuple[Files, int]) -> None:
    image = create(client, admin_headers, name="rules", disk_format="qcow2", container_format="bare")
    r = start(client, admin_headers, image["id"], {"method": {"name": "web-download"}})
    assert r.status_code == 400 and "method.uri" in r.text
    r = client.put(f"/v2/images/{image['id']}/stage", content=b"x",
                   headers={**admin_headers, "Content-Type": "application/octet-stream"})
    assert r.status_code == 204
    r = web(client, admin_headers, image["id"], f"http://127.0.0.1:{files[1]}/disk.qcow2")
    assert r.status_code == 409 and "queued" in r.text

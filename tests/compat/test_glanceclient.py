"""python-glanceclient's CLI, unchanged, against a real server: image-list, image-create --file, image-download."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.images import make_image
from tests.support.server import ADMIN_PASSWORD, Api, ServerProcess

pytestmark = [pytest.mark.compat, pytest.mark.xdist_group("compat-glance")]

GLANCE = str(Path(sys.executable).with_name("glance"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("compat-glance") / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def env(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # A home of its own: glanceclient caches the server's schemas in ~/.glanceclient.
    home = tmp_path_factory.mktemp("glance-home")
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "OS_AUTH_URL": f"{server.url}/v3",
            "OS_USERNAME": "admin", "OS_PASSWORD": ADMIN_PASSWORD, "OS_PROJECT_NAME": "local-1",
            "OS_USER_DOMAIN_NAME": "admin", "OS_PROJECT_DOMAIN_NAME": "admin", "OS_REGION_NAME": "local-1",
            "OS_IDENTITY_API_VERSION": "3"}


def _close_stdin() -> None:
    os.close(0)


def glance(env: dict[str, str], *args: str) -> str:
    # Run as `glance … <&-`: with any stdin (even /dev/null) glanceclient takes image data from it.
    r = subprocess.run([GLANCE, *args], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       preexec_fn=_close_stdin, timeout=120)
    assert r.returncode == 0, f"glance {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def field(table: str, name: str) -> str:
    found = re.search(rf"^\| {re.escape(name)} +\| (.*?) *\|$", table, re.MULTILINE)
    assert found, f"no {name} in\n{table}"
    return found.group(1)


def test_create_list_download(server: ServerProcess, env: dict[str, str], tmp_path: Path) -> None:
    assert "| ID | Name |" in glance(env, "image-list")
    source = make_image(tmp_path / "src", "vmdk")
    shown = glance(env, "image-create", "--file", str(source), "--disk-format", "vmdk", "--container-format", "bare",
                   "--name", "cli-image", "--property", "purpose=compat")
    image_id = field(shown, "id")
    assert field(shown, "status") == "active" and field(shown, "purpose") == "compat"
    # As Glance: the file is kept as it was sent, in its own format.
    assert field(shown, "disk_format") == "vmdk"

    listing = glance(env, "image-list")
    assert re.search(rf"^\| {image_id} \| cli-image +\|$", listing, re.MULTILINE), listing

    out = tmp_path / "downloaded.vmdk"
    glance(env, "image-download", "--file", str(out), image_id)
    image = Api(server.url).http.get(f"/v2/images/{image_id}").json()
    data = out.read_bytes()
    # glanceclient verified os_hash_value while downloading; the bytes are the uploaded file's.
    assert hashlib.sha512(data).hexdigest() == image["os_hash_value"]
    assert data == source.read_bytes()
    assert hashlib.md5(data).hexdigest() == image["checksum"] and len(data) == image["size"]


def test_list_pages_and_refused_upload(server: ServerProcess, env: dict[str, str], tmp_path: Path) -> None:
    api = Api(server.url)
    made = set()
    for i in range(23):  # glanceclient asks 20 per page
        r = api.http.post("/v2/images", json={"name": f"cli-page-{i:02d}"})
        assert r.status_code == 201, r.text
        made.add(r.json()["id"])
    listing = glance(env, "image-list")
    assert made <= set(re.findall(r"^\| ([0-9a-f-]{36}) \|", listing, re.MULTILINE))

    # Declared qcow2, the data is raw: refused with the reason, and the image stays queued without data.
    raw = make_image(tmp_path / "src", "raw")
    refused = subprocess.run([GLANCE, "image-create", "--file", str(raw), "--disk-format", "qcow2",
                              "--container-format", "bare", "--name", "cli-liar"], env=env, capture_output=True,
                             text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert refused.returncode != 0
    assert "Image disk_format qcow2 does not match stream data raw" in refused.stdout + refused.stderr
    liar = api.http.get("/v2/images", params={"name": "cli-liar"}).json()["images"]
    assert len(liar) == 1 and liar[0]["status"] == "queued" and liar[0]["size"] is None
    assert httpx.get(f"{server.url}/v2/images/{liar[0]['id']}/file",
                     headers={"X-Auth-Token": api.token}).status_code == 204


def test_interoperable_import(server: ServerProcess, env: dict[str, str], tmp_path: Path) -> None:
    """glance image-create-via-import (glance-direct), then image-stage + image-import step by step."""
    source = make_image(tmp_path / "src", "vmdk")
    shown = glance(env, "image-create-via-import", "--file", str(source), "--disk-format", "vmdk",
                   "--container-format", "bare", "--name", "via-import", "--import-method", "glance-direct")
    image_id = field(shown, "id")
    api = Api(server.url)
    image = api.wait_image(image_id)
    assert image["status"] == "active" and image["disk_format"] == "vmdk", image
    out = tmp_path / "downloaded.vmdk"
    glance(env, "image-download", "--file", str(out), image_id)
    data = out.read_bytes()
    assert data == source.read_bytes() and hashlib.md5(data).hexdigest() == image["checksum"]

    # The same in steps; image-tasks shows the import's task.
    created = glance(env, "image-create", "--disk-format", "qcow2", "--container-format", "bare", "--name", "steps")
    steps_id = field(created, "id")
    qcow2 = make_image(tmp_path / "src2", "qcow2")
    glance(env, "image-stage", "--file", str(qcow2), steps_id)
    assert field(glance(env, "image-show", steps_id), "status") == "uploading"
    glance(env, "image-import", "--import-method", "glance-direct", steps_id)
    assert api.wait_image(steps_id)["status"] == "active"
    assert "success" in glance(env, "image-tasks", steps_id)
    glance(env, "image-download", "--file", str(tmp_path / "steps.qcow2"), steps_id)
    assert (tmp_path / "steps.qcow2").read_bytes() == qcow2.read_bytes()


def test_metadefs(server: ServerProcess, env: dict[str, str]) -> None:
    """glance md-*: the seeded catalogue, then a namespace made, filled, updated and deleted by the CLI."""
    listing = glance(env, "md-namespace-list", "--page-size", "2")  # three shipped namespaces: two pages
    for name in ("OpenIMS::OperatingSystem", "OpenIMS::Compute::VirtualHardware", "OpenIMS::Compute::CPUTopology"):
        assert f"| {name} " in listing, listing
    shown = glance(env, "md-namespace-show", "OpenIMS::Compute::VirtualHardware", "--resource-type",
                   "OS::Glance::Image")
    assert "hw_disk_bus" in shown and "hw_firmware_type" in shown
    assert "OS::Nova::Flavor" in glance(env, "md-resource-type-list")

    made = glance(env, "md-namespace-create", "Compat::Example", "--display-name", "Compat example",
                  "--description", "made by glanceclient")
    assert field(made, "visibility") == "private" and field(made, "display_name") == "Compat example"
    prop = glance(env, "md-property-create", "Compat::Example", "--name", "speed", "--title", "Speed", "--type",
                  "integer", "--schema", '{"minimum": 1, "description": "how fast"}')
    assert field(prop, "minimum") == "1"
    # (`--append` is not tried: glanceclient sends its header as a Python bool, which its HTTP layer cannot
    # encode, so it fails before any request; tests/api/test_metadefs.py covers X-Openstack-Append.)
    glance(env, "md-tag-create", "Compat::Example", "--name", "a")
    glance(env, "md-tag-create-multiple", "Compat::Example", "--names", "b,c")  # replaces
    assert re.findall(r"^\| (\w) +\|$", glance(env, "md-tag-list", "Compat::Example"), re.MULTILINE) == ["b", "c"]
    glance(env, "md-resource-type-associate", "Compat::Example", "--name", "OS::Glance::Image", "--prefix", "cx_")
    assert "cx_speed" in glance(env, "md-namespace-show", "Compat::Example", "--resource-type", "OS::Glance::Image")
    # The update sends the whole shown namespace back (contents included) with the change.
    updated = glance(env, "md-namespace-update", "Compat::Example", "--display-name", "Renamed")
    assert field(updated, "display_name") == "Renamed" and "speed" in field(updated, "properties")
    glance(env, "md-namespace-delete", "Compat::Example")
    assert "Compat::Example" not in glance(env, "md-namespace-list")

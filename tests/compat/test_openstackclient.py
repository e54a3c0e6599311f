"""python-openstackclient's CLI, unchanged, against a real server: interoperable import, deactivation,
sharing and Keystone role grants, as OpenStack provisioning scripts use them."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.images import make_image
from tests.support.server import ADMIN_PASSWORD, Api, ServerProcess

pytestmark = [pytest.mark.compat, pytest.mark.xdist_group("compat-osc")]

OPENSTACK = str(Path(sys.executable).with_name("openstack"))
PASSWORD = "Osc-user-pass-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("compat-osc") / "data") as srv:
        yield srv


def _env(server: ServerProcess, home: Path, user: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "OS_AUTH_URL": f"{server.url}/v3",
            "OS_USERNAME": user, "OS_PASSWORD": password, "OS_PROJECT_NAME": "local-1",
            "OS_USER_DOMAIN_NAME": "admin", "OS_PROJECT_DOMAIN_NAME": "admin", "OS_REGION_NAME": "local-1",
            "OS_IDENTITY_API_VERSION": "3", "OS_IMAGE_API_VERSION": "2"}


@pytest.fixture(scope="module")
def env(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _env(server, tmp_path_factory.mktemp("osc-home"))


def osc(env: dict[str, str], *args: str, check: bool = True) -> Any:
    # A terminal as stdin, as a person types it: on any other stdin (even /dev/null) `image create`
    # uploads what it reads there as the image data.
    controller, terminal = pty.openpty()
    try:
        r = subprocess.run([OPENSTACK, *args], env=env, capture_output=True, text=True, stdin=terminal, timeout=120)
    finally:
        os.close(controller)
        os.close(terminal)
    if check:
        assert r.returncode == 0, f"openstack {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def osc_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(osc(env, *args, "-f", "json").stdout)


def test_create_with_import_then_deactivate(server: ServerProcess, env: dict[str, str], tmp_path: Path) -> None:
    source = make_image(tmp_path / "src", "qcow2")
    image = osc_json(env, "image", "create", "--import", "--file", str(source), "--disk-format", "qcow2",
                     "--container-format", "bare", "osc-imported")
    api = Api(server.url)
    got = api.wait_image(image["id"])
    assert got["status"] == "active" and got["checksum"] == hashlib.md5(source.read_bytes()).hexdigest(), got
    out = tmp_path / "saved.qcow2"
    osc(env, "image", "save", "--file", str(out), image["id"])
    assert out.read_bytes() == source.read_bytes()

    osc(env, "image", "set", "--deactivate", image["id"])
    assert osc_json(env, "image", "show", image["id"])["status"] == "deactivated"
    osc(env, "image", "set", "--activate", image["id"])
    assert osc_json(env, "image", "show", image["id"])["status"] == "active"


def test_stage_then_import(server: ServerProcess, env: dict[str, str], tmp_path: Path) -> None:
    image = osc_json(env, "image", "create", "--disk-format", "vmdk", "--container-format", "bare", "osc-steps")
    source = make_image(tmp_path / "src", "vmdk")
    osc(env, "image", "stage", "--file", str(source), image["id"])
    assert osc_json(env, "image", "show", image["id"])["status"] == "uploading"
    osc(env, "image", "import", "--method", "glance-direct", image["id"])
    assert Api(server.url).wait_image(image["id"])["status"] == "active"


def test_role_add_and_share(server: ServerProcess, env: dict[str, str], tmp_path: Path) -> None:
    """A provisioning script: a project, a user with Keystone's member role on it, an image shared to it."""
    # In the caller's own account (domain), as a tenant administrator runs it.
    project = osc_json(env, "project", "create", "local-1_osc")
    user = osc_json(env, "user", "create", "--password", PASSWORD, "oscuser")
    osc(env, "role", "add", "--user", user["id"], "--project", project["id"], "member")
    assigned = osc_json(env, "role", "assignment", "list", "--user", user["id"], "--names")
    assert [(a["Role"], a["Project"].split("@")[0]) for a in assigned] == [("member", "local-1_osc")]

    image = osc_json(env, "image", "create", "--shared", "osc-shared")
    member = osc_json(env, "image", "add", "project", image["id"], project["id"])
    assert member["status"] == "pending"
    user_env = {**_env(server, tmp_path, "oscuser", PASSWORD), "OS_PROJECT_NAME": "local-1_osc"}
    osc(user_env, "image", "set", "--accept", image["id"])
    listed = osc_json(user_env, "image", "list")
    assert image["id"] in [i["ID"] for i in listed]
    # A member of its own project, not an administrator: the server refuses (403), whatever osc's exit status
    # (the SDK call it makes does not raise), and nothing changes.
    osc(user_env, "role", "add", "--user", user["id"], "--project", project["id"], "admin", check=False)
    assert [a["Role"] for a in osc_json(env, "role", "assignment", "list", "--user", user["id"], "--names")] == [
        "member"]
    osc(env, "role", "remove", "--user", user["id"], "--project", project["id"], "member")
    assert osc_json(env, "role", "assignment", "list", "--user", user["id"]) == []

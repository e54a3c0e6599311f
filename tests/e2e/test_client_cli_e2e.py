"""The seed scenario through the CLI (a subprocess) and through openims.client, against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openims.client import Credentials, Session, TokenCache
from openims.client.ims import DataDisk, ImsClient, JobFailed
from tests.support.images import make_image
from tests.support.server import ADMIN_PASSWORD, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-import")]


def _cli(server: ServerProcess, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENIMS_ENDPOINT": server.url, "OPENIMS_PASSWORD": ADMIN_PASSWORD,
           "OPENIMS_TOKEN_CACHE": str(tmp / "tokens.json"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "openims.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_upload_import_wait_list_delete(server: ServerProcess, files: Path) -> None:
    tmp = files / "cli"
    src = make_image(tmp, "vhdx", seed=21)
    r = _cli(server, tmp, "obs", "put", str(src), "cli-bucket:in/disk.vhdx")
    assert r.returncode == 0, r.stderr
    r = _cli(server, tmp, "obs", "ls", "cli-bucket", "--json")
    assert [o["key"] for o in json.loads(r.stdout)] == ["in/disk.vhdx"]
    r = _cli(server, tmp, "image", "import", "--image-url", "cli-bucket:in/disk.vhdx", "--name", "from-cli",
             "--min-disk", "40", "--os-version", "CentOS 7.0 64bit", "--wait", "--json")
    assert r.returncode == 0, r.stderr
    image = json.loads(r.stdout)
    assert image["status"] == "active" and image["name"] == "from-cli"
    # The token is cached, private to the user.
    cache = tmp / "tokens.json"
    assert cache.stat().st_mode & 0o777 == 0o600
    r = _cli(server, tmp, "image", "list", "--json", "--name", "from-cli")
    assert [i["id"] for i in json.loads(r.stdout)] == [image["id"]]
    r = _cli(server, tmp, "image", "delete", image["id"])
    assert r.returncode == 0, r.stderr
    r = _cli(server, tmp, "image", "show", image["id"])
    assert r.returncode == 1 and "IMG.0144" in r.stderr


def test_cli_import_with_data_disk_prints_every_image(server: ServerProcess, files: Path) -> None:
    tmp = files / "cli-data"
    system = make_image(tmp, "qcow2", seed=22)
    data = make_image(tmp, "vmdk", seed=23)
    for path, key in ((system, "sys.qcow2"), (data, "data.vmdk")):
        assert _cli(server, tmp, "obs", "put", str(path), f"cli-data:{key}").returncode == 0
    r = _cli(server, tmp, "image", "import", "--image-url", "cli-data:sys.qcow2", "--name", "with-data",
             "--min-disk", "40", "--os-version", "CentOS 7.0 64bit", "--data-disk", "cli-data:data.vmdk:100",
             "--wait", "--json")
    assert r.returncode == 0, r.stderr
    images = json.loads(r.stdout)
    assert [(i["name"], i["status"], i["__imagetype"]) for i in images] == [
        ("with-data", "active", "private"), ("with-data-data1", "active", "private")]
    assert images[1]["min_disk"] == 100
    # The progress line names the whole job id, which `job show` takes.
    job_id = r.stderr.split("job ", 1)[1].split()[0]
    shown = _cli(server, tmp, "job", "show", job_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["entities"]["image_id"] == images[0]["id"]


def test_cli_reports_failed_job(server: ServerProcess, files: Path) -> None:
    r = _cli(server, files, "image", "import", "--image-url", "cli-bucket:missing.qcow2", "--name", "nope",
             "--min-disk", "40", "--wait")
    assert r.returncode == 1
    assert "IMG.0057" in r.stderr


def test_python_client(server: ServerProcess, files: Path) -> None:
    tmp = files / "py"
    system = make_image(tmp, "qcow2", seed=31)
    data = make_image(tmp, "vdi", seed=32)
    creds = Credentials(endpoint=server.url, username="admin", password=ADMIN_PASSWORD, domain="admin",
                        project="local-1")
    with Session(creds, token_cache=TokenCache.in_memory()) as session:
        ims = ImsClient(session)
        ims.put_object(system, "py-bucket", "system.qcow2")
        ims.put_object(data, "py-bucket", "data.vdi")
        seen: list[str] = []
        job = ims.import_image(image_url="py-bucket:system.qcow2", name="from-python", min_disk=40,
                               os_version="CentOS 7.0 64bit",
                               data_disks=[DataDisk.parse("py-bucket:data.vdi:40")], wait=True,
                               progress=lambda j: seen.append(j["status"]))
        assert job["status"] == "SUCCESS" and seen[-1] == "SUCCESS"
        image = ims.show_image(job["entities"]["image_id"])
        assert image["status"] == "active"
        assert len(job["entities"]["sub_jobs_result"]) == 1
        with pytest.raises(JobFailed) as failed:
            ims.import_image(image_url="py-bucket:nothing.qcow2", name="nope", min_disk=40, wait=True)
        assert failed.value.job["error_code"] == "IMG.0057"

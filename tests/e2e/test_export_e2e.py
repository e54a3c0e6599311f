"""Export round trip and the lifecycle CLI against a real server (``openims serve`` + real qemu-img).

An image imported from qcow2 is exported to every format, each exported file is imported again,
and the re-imported image must hold the same guest data as the original (``qemu-img compare``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.images import file_digests, make_image, qemu_compare
from tests.support.server import ADMIN_PASSWORD, Api, ServerProcess
from tests.support.stores import Stores

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-export")]
STORES = ("file", "s3")

# Our format name → qemu-img's, for the exported files.
QEMU = {"qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vpc", "raw": "raw"}


@pytest.fixture(scope="module")
def stored(server: ServerProcess, stores: Stores, files: Path) -> Any:
    """image id → a local copy of its stored data."""
    return lambda image_id: stores.stored_image(server.data_dir, image_id, files / "stored")


@pytest.fixture(scope="module")
def exported(server: ServerProcess, stores: Stores, files: Path) -> Any:
    """(bucket, key) → a local copy of the object (asserted present)."""
    def get(bucket: str, key: str) -> Path:
        path = stores.bucket_object(server.data_dir, bucket, key, files / "exported")
        assert path is not None, f"{bucket}:{key} is not in the bucket"
        return path
    return get


def _import(api: Api, url: str, name: str) -> str:
    job = api.wait_job(api.create(name=name, image_url=url, min_disk=1, os_version="CentOS 7.0 64bit"))
    assert job["status"] == "SUCCESS", job
    image_id: str = job["entities"]["image_id"]
    return image_id


@pytest.fixture(scope="module")
def original(api: Api, server: ServerProcess, files: Path) -> tuple[str, Path]:
    # 24 MiB with data in several places, so every format has real clusters and holes to get right.
    src = make_image(files / "export", "qcow2", size=24 * 1024 * 1024, seed=41)
    api.upload("export-e2e", "src/original.qcow2", src)
    return _import(api, "export-e2e:src/original.qcow2", "original"), src


@pytest.mark.parametrize("fmt", ["qcow2", "vmdk", "vhd", "raw"])
def test_export_then_reimport_keeps_the_guest_data(fmt: str, api: Api, server: ServerProcess,
                                                   original: tuple[str, Path], stored: Any, exported: Any) -> None:
    image_id, src = original
    key = f"exported/original.{fmt}"
    r = api.http.post(f"/v1/cloudimages/{image_id}/file",
                      json={"bucket_url": f"export-e2e:{key}", "file_format": fmt})
    assert r.status_code == 200, r.text
    job = api.wait_job(r.json()["job_id"])
    assert job["status"] == "SUCCESS", job
    assert job["job_type"] == "imsNativeExportImageJob" and job["entities"]["image_id"] == image_id
    assert job["begin_time"] and job["end_time"] and job["error_code"] is None

    out = exported("export-e2e", key)
    info = json.loads(subprocess.run(["qemu-img", "info", "-f", QEMU[fmt], "--output=json", str(out)],
                                     capture_output=True, check=True, text=True).stdout)
    assert info["format"] == QEMU[fmt]
    assert info["virtual-size"] == 24 * 1024 * 1024
    assert qemu_compare(out, QEMU[fmt], src, "qcow2")

    # The exported file is an ordinary image file: importing it gives back the same disk.
    again = _import(api, f"export-e2e:{key}", f"reimported-{fmt}")
    assert qemu_compare(stored(again), "qcow2", stored(image_id), "qcow2")
    reimported = api.http.get(f"/v2/images/{again}").json()
    assert reimported["virtual_size"] == api.http.get(f"/v2/images/{image_id}").json()["virtual_size"]

    # Exporting to the same name again never replaces the file.
    before = file_digests(out)
    r = api.http.post(f"/v1/cloudimages/{image_id}/file", json={"bucket_url": f"export-e2e:{key}", "file_format": fmt})
    job = api.wait_job(r.json()["job_id"])
    assert job["status"] == "FAIL" and job["error_code"] == "IMG.0070", job
    assert file_digests(exported("export-e2e", key)) == before


# ---------------------------------------------------------------- the CLI


def _cli(server: ServerProcess, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENIMS_ENDPOINT": server.url, "OPENIMS_PASSWORD": ADMIN_PASSWORD,
           "OPENIMS_TOKEN_CACHE": str(tmp / "tokens.json"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "openims.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _json(r: subprocess.CompletedProcess[str]) -> Any:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_cli_update_export_copy_download(server: ServerProcess, api: Api, files: Path,
                                         original: tuple[str, Path], exported: Any) -> None:
    image_id, src = original
    tmp = files / "cli-lifecycle"
    tmp.mkdir()
    image = _json(_cli(server, tmp, "image", "update", image_id, "--name", "renamed-by-cli", "--min-disk", "50",
                       "--os-version", "Debian GNU/Linux 10.0.0 64bit", "--set", "team=ops", "--json"))
    assert image["name"] == "renamed-by-cli" and image["min_disk"] == 50 and image["team"] == "ops"
    assert image["__platform"] == "Debian"
    assert api.http.get(f"/v2/images/{image_id}").json()["name"] == "renamed-by-cli"
    r = _cli(server, tmp, "image", "update", image_id, "--min-disk", "0")
    assert r.returncode == 1 and "IMG.0055" in r.stderr

    job = _json(_cli(server, tmp, "image", "export", image_id, "--to", "export-e2e:cli/disk.vmdk", "--format",
                     "vmdk", "--wait", "--json"))
    assert job["status"] == "SUCCESS"
    assert qemu_compare(exported("export-e2e", "cli/disk.vmdk"), "vmdk", src, "qcow2")
    r = _cli(server, tmp, "image", "export", image_id, "--to", "export-e2e:cli/disk.vmdk", "--format", "vmdk",
             "--wait")
    assert r.returncode == 1 and "IMG.0070" in r.stderr
    r = _cli(server, tmp, "image", "export", image_id, "--to", "export-e2e:cli/disk.zvhd2", "--format", "zvhd2")
    assert r.returncode == 1 and "IMG.0072" in r.stderr

    copy = _json(_cli(server, tmp, "image", "copy", image_id, "--name", "cli-copy", "--wait", "--json"))
    assert copy["status"] == "active" and copy["name"] == "cli-copy"
    assert copy["checksum"] == api.http.get(f"/v2/images/{image_id}").json()["checksum"]

    out = tmp / "downloaded.qcow2"
    r = _cli(server, tmp, "image", "download", copy["id"], "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert file_digests(out)[0] == copy["checksum"]
    assert qemu_compare(out, "qcow2", src, "qcow2")


def test_cli_upload_and_quota(server: ServerProcess, api: Api, files: Path, stored: Any) -> None:
    tmp = files / "cli-quota"
    tmp.mkdir()
    r = api.http.post("/v2/images", json={"name": "uploaded", "disk_format": "vhd", "container_format": "bare"})
    assert r.status_code == 201, r.text
    queued = r.json()["id"]
    src = make_image(tmp, "vhd", seed=43)
    r = _cli(server, tmp, "image", "upload", queued, str(src))
    assert r.returncode == 0, r.stderr
    assert api.http.get(f"/v2/images/{queued}").json()["status"] == "active"
    assert stored(queued).read_bytes() == src.read_bytes()  # kept as uploaded, as Glance does

    quota = _json(_cli(server, tmp, "quota", "show", "--json"))["quotas"]["resources"][0]
    used = quota["used"]
    # Every image the project owns counts, this upload included (how many others depends on which
    # tests of the module ran before).
    owned = [i for i in api.http.get("/v2/images", params={"limit": 1000}).json()["images"]
             if i["owner"] == api.project_id]
    assert used == len(owned) >= 1 and quota["quota"] == 100
    quota = _json(_cli(server, tmp, "quota", "set", "--project", "local-1", "--images", str(used), "--json"))
    assert quota["quotas"]["resources"][0]["quota"] == used
    r = _cli(server, tmp, "image", "import", "--image-url", "export-e2e:src/original.qcow2", "--name", "over",
             "--min-disk", "40")
    assert r.returncode == 1 and "IMG.0015" in r.stderr
    quota = _json(_cli(server, tmp, "quota", "set", "--reset", "--json"))
    assert quota["quotas"]["resources"][0]["quota"] == 100
    r = _cli(server, tmp, "quota", "set")
    assert r.returncode == 2

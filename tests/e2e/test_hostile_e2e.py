"""Hostile or broken image files: each ends in FAIL with a precise error, and no image is left."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.images import make_image
from tests.support.server import Api, ServerProcess
from tests.support.stores import Stores

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-import")]
STORES = ("file", "s3")

BUCKET = "hostile"


def _qemu(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def backing_file(d: Path) -> str:
    _qemu("create", "-q", "-f", "raw", str(d / "base.raw"), "1M")
    _qemu("create", "-q", "-f", "qcow2", "-b", str(d / "base.raw"), "-F", "raw", str(d / "backing.qcow2"))
    return "backing.qcow2"


def data_file(d: Path) -> str:
    _qemu("create", "-q", "-f", "qcow2", "-o", f"data_file={d / 'external.raw'}", str(d / "datafile.qcow2"), "1M")
    return "datafile.qcow2"


def vmdk_external_extent(d: Path) -> str:
    (d / "extent.vmdk").write_text(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"
        "# Extent description\nRW 2048 FLAT \"/etc/passwd\" 0\n\nddb.virtualHWVersion = \"4\"\n")
    return "extent.vmdk"


def truncated_header(d: Path) -> str:
    src = make_image(d, "qcow2", seed=3, name="full.qcow2")
    (d / "truncated.qcow2").write_bytes(src.read_bytes()[:100])
    return "truncated.qcow2"


def too_big_for_min_disk(d: Path) -> str:
    _qemu("create", "-q", "-f", "qcow2", str(d / "big.qcow2"), "3G")
    return "big.qcow2"


def extension_lies(d: Path) -> str:
    make_image(d, "qcow2", seed=4, name="liar.vmdk")
    return "liar.vmdk"


CASES: dict[str, tuple[Callable[[Path], str], str, str]] = {
    # name: (maker, expected error_code, words the fail_reason must contain)
    "backing-file": (backing_file, "IMG.0057", "backing"),
    "data-file": (data_file, "IMG.0057", "data"),
    "vmdk-extent": (vmdk_external_extent, "IMG.0057", "vmdk"),
    "truncated": (truncated_header, "IMG.0057", "truncated.qcow2"),
    "min-disk": (too_big_for_min_disk, "IMG.0055", "min"),
    "extension": (extension_lies, "IMG.0057", "qcow2"),
}


def _assert_failed_cleanly(api: Api, server: ServerProcess, stores: Stores, job: dict, code: str,
                           words: str) -> None:
    assert job["status"] == "FAIL", job
    assert job["error_code"] == code, job
    assert words.lower() in job["fail_reason"].lower(), job["fail_reason"]
    image_id = job["entities"]["image_id"]
    r = api.http.get(f"/v2/images/{image_id}")
    assert r.status_code == 404
    assert r.json()["error"]["code"].startswith("IMG.")
    assert image_id not in stores.stored_images(server.data_dir)
    assert not [p for p in (server.data_dir / "images" / ".tmp").iterdir() if image_id in p.name]
    # Nothing left in the scratch area either (downloads from S3, staged conversions).
    scratch = server.data_dir / "scratch"
    assert not [p for p in scratch.rglob("*") if p.is_file() and not p.name.startswith(".")]


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_fails_cleanly(case: str, api: Api, server: ServerProcess, stores: Stores, files: Path) -> None:
    maker, code, words = CASES[case]
    d = files / f"hostile-{case}"
    d.mkdir()
    name = maker(d)
    api.upload(BUCKET, f"{case}/{name}", d / name)
    job = api.wait_job(api.create(name=f"bad-{case}", image_url=f"{BUCKET}:{case}/{name}", min_disk=1))
    _assert_failed_cleanly(api, server, stores, job, code, words)


@pytest.mark.parametrize("url", ["hostile:no/such/file.qcow2", "hostile:../../etc/passwd",
                                 "hostile:a/../../../etc/passwd", "nobucket:x.qcow2", "hostile:link.qcow2"])
def test_unreachable_objects_fail_cleanly(url: str, api: Api, server: ServerProcess, stores: Stores,
                                          files: Path) -> None:
    assert api.http.put(f"/obs/{BUCKET}").status_code in (200, 201)
    if stores.kind == "file":
        link = server.data_dir / "obs" / BUCKET / "link.qcow2"
        if not link.is_symlink():
            os.symlink("/etc/passwd", link)  # a symlink out of the bucket
    job = api.wait_job(api.create(name="bad-url", image_url=url, min_disk=1))
    _assert_failed_cleanly(api, server, stores, job, "IMG.0057", url.split(":", 1)[1])

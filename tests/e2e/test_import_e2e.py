"""The core scenario through a real server: upload → create → poll job → image, for every format."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.images import FORMATS, file_digests, make_image, qemu_compare
from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-import")]


def _stored_path(server: ServerProcess, image_id: str) -> Path:
    return server.data_dir / "images" / image_id


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_import_every_format(fmt: str, api: Api, server: ServerProcess, files: Path) -> None:
    src = make_image(files / fmt, fmt, seed=hash(fmt) % 1000)
    key = f"formats/{src.name}"
    api.upload("e2e-bucket", key, src)
    job_id = api.create(name=f"img-{fmt}", image_url=f"e2e-bucket:{key}", min_disk=1,
                        os_version="Ubuntu 18.04 server 64bit", tags=["env.test"])
    job = api.wait_job(job_id)
    assert job["status"] == "SUCCESS", job
    assert job["job_type"] == "imsImportImageJob"
    assert job["begin_time"] and job["end_time"] and job["error_code"] is None
    image_id = job["entities"]["image_id"]
    assert job["entities"]["image_name"] == f"img-{fmt}"

    image = api.http.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "active"
    assert image["disk_format"] == "qcow2" and image["container_format"] == "bare"
    assert image["__os_version"] == "Ubuntu 18.04 server 64bit" and image["__platform"] == "Ubuntu"
    assert image["__os_type"] == "Linux" and image["__os_bit"] == "64"
    assert image["__imagetype"] == "private" and image["visibility"] == "private"
    assert image["__data_origin"] == f"file,e2e-bucket:{key}"
    assert image["owner"] == api.project_id and image["tags"] == ["env.test"]

    # Independently recomputed over the stored bytes.
    stored = _stored_path(server, image_id)
    md5, sha512, size = file_digests(stored)
    assert image["size"] == size and image["__image_size"] == str(size)
    assert image["checksum"] == md5
    assert image["os_hash_algo"] == "sha512" and image["os_hash_value"] == sha512
    info = subprocess.run(["qemu-img", "info", "-f", "qcow2", "--output=json", str(stored)],
                          capture_output=True, check=True, text=True).stdout
    import json

    assert image["virtual_size"] == json.loads(info)["virtual-size"]
    # The guest-visible data survived conversion.
    qfmt = FORMATS[fmt][0]
    assert qemu_compare(src, qfmt, stored, "qcow2")

    listed = api.http.get("/v2/cloudimages", params={"id": image_id}).json()["images"]
    assert [i["id"] for i in listed] == [image_id]


def test_data_disk_image(api: Api, server: ServerProcess, files: Path) -> None:
    src = make_image(files / "data", "qcow2", seed=7)
    api.upload("e2e-bucket", "data/disk.qcow2", src)
    r = api.http.post("/v1/cloudimages/dataimages/action",
                      json={"name": "data-disk", "image_url": "e2e-bucket:data/disk.qcow2", "min_disk": 40,
                            "os_type": "Linux"})
    assert r.status_code == 200, r.text
    job = api.wait_job(r.json()["job_id"])
    assert job["status"] == "SUCCESS" and job["job_type"] == "imsImportDataImageJob"
    image = api.http.get(f"/v2/images/{job['entities']['image_id']}").json()
    assert image["virtual_env_type"] == "DataImage" and image["status"] == "active"


def test_system_image_with_data_images(api: Api, server: ServerProcess, files: Path) -> None:
    sys_disk = make_image(files / "multi", "vmdk", seed=11)
    data1 = make_image(files / "multi", "vhd", seed=12)
    data2 = make_image(files / "multi", "raw", seed=13)
    for p in (sys_disk, data1, data2):
        api.upload("e2e-bucket", f"multi/{p.name}", p)
    job_id = api.create(name="with-data", image_url=f"e2e-bucket:multi/{sys_disk.name}", min_disk=1,
                        os_version="CentOS 7.0 64bit",
                        data_images=[{"image_url": f"e2e-bucket:multi/{data1.name}", "min_disk": 40},
                                     {"image_url": f"e2e-bucket:multi/{data2.name}", "min_disk": 40,
                                      "name": "second-data"}])
    job = api.wait_job(job_id)
    assert job["status"] == "SUCCESS", job
    subs = job["entities"]["sub_jobs_result"]
    assert len(subs) == 2 and len(job["entities"]["sub_jobs_list"]) == 2
    assert all(s["status"] == "SUCCESS" and s["job_type"] == "imsImportDataImageJob" for s in subs)
    names = []
    for sub, src in zip(subs, (data1, data2), strict=True):
        image = api.http.get(f"/v2/images/{sub['entities']['image_id']}").json()
        assert image["status"] == "active" and image["virtual_env_type"] == "DataImage"
        assert "__os_version" not in image and image["__os_type"] == "Linux"
        qfmt = FORMATS["vhd" if src is data1 else "raw"][0]
        assert qemu_compare(src, qfmt, _stored_path(server, image["id"]), "qcow2")
        names.append(image["name"])
    assert names == ["with-data-data1", "second-data"]


def test_failing_data_disk_fails_the_whole_job(api: Api, server: ServerProcess, files: Path) -> None:
    src = make_image(files / "halfbad", "qcow2", seed=41)
    api.upload("e2e-bucket", "halfbad/system.qcow2", src)
    job = api.wait_job(api.create(name="half-bad", image_url="e2e-bucket:halfbad/system.qcow2", min_disk=1,
                                  os_version="CentOS 7.0 64bit",
                                  data_images=[{"image_url": "e2e-bucket:halfbad/missing.qcow2", "min_disk": 40}]))
    assert job["status"] == "FAIL" and job["error_code"] == "IMG.0057"
    sub = job["entities"]["sub_jobs_result"][0]
    assert sub["status"] == "FAIL" and "missing.qcow2" in sub["fail_reason"]
    # All or nothing: the system disk's image is gone too.
    assert api.http.get(f"/v2/images/{job['entities']['image_id']}").status_code == 404
    assert api.http.get(f"/v2/images/{sub['entities']['image_id']}").status_code == 404

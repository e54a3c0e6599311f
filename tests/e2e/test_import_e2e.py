"""The core scenario through a real server: upload → create → poll job → image, for every format."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.images import FORMATS, file_digests, make_image, qemu_compare
from tests.support.server import Api, ServerProcess
from tests.support.stores import S3Stores, Stores

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-import")]
STORES = ("file", "s3")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_import_every_format(fmt: str, api: Api, server: ServerProcess, stores: Stores, files: Path) -> None:
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
    stored = stores.stored_image(server.data_dir, image_id, files / "stored")
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


def test_system_image_with_data_images(api: Api, server: ServerProcess, stores: Stores, files: Path) -> None:
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
        assert qemu_compare(src, qfmt, stores.stored_image(server.data_dir, image["id"], files / "stored"), "qcow2")
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


def test_file_put_on_the_engine_directly_imports(api: Api, server: ServerProcess, stores: Stores,
                                                 files: Path) -> None:
    """The seed scenario on S3: the user uploads with boto3 and their own engine credentials (not
    through the service), the image is created from it, and its data is an object on the engine."""
    if not isinstance(stores, S3Stores):
        pytest.skip("the engine's own upload path exists only on S3")
    # The bucket is the user's: created through the service (which records the owner).
    assert api.http.put("/obs/direct-bucket").status_code in (200, 201)
    src = make_image(files / "direct", "vmdk", seed=77)
    stores.client(stores.user).upload_file(str(src), "direct-bucket", "vm/disk.vmdk")
    # The service lists it from the engine.
    listed = api.http.get("/obs/direct-bucket").json()
    assert [(o["key"], o["size"]) for o in listed["objects"]] == [("vm/disk.vmdk", src.stat().st_size)], listed
    job = api.wait_job(api.create(name="direct", image_url="direct-bucket:vm/disk.vmdk", min_disk=1,
                                  os_version="Ubuntu 18.04 server 64bit"))
    assert job["status"] == "SUCCESS", job
    image_id = job["entities"]["image_id"]
    image = api.http.get(f"/v2/images/{image_id}").json()
    stored = stores.stored_image(server.data_dir, image_id, files / "stored")
    assert file_digests(stored)[0] == image["checksum"]
    assert qemu_compare(src, "vmdk", stored, "qcow2")
    # Downloaded through the API: the very bytes of the object.
    r = api.http.get(f"/v2/images/{image_id}/file")
    assert r.status_code == 200 and r.content == stored.read_bytes()
    r = api.http.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == stored.read_bytes()[100:200]
    # Nothing of the image on the server's disk: no stored file, no scratch left.
    assert not (server.data_dir / "images" / image_id).exists()
    scratch = server.data_dir / "scratch"
    assert [p for p in scratch.rglob("*") if p.is_file() and not p.name.startswith(".")] == []
    # Deleting the image deletes its object.
    assert api.http.delete(f"/v2/images/{image_id}").status_code == 204
    assert image_id not in stores.stored_images(server.data_dir)


def test_engine_bucket_nobody_registered_is_not_found(api: Api, server: ServerProcess, stores: Stores) -> None:
    """An engine bucket no account registered is nobody's: not importable, not claimable by a user."""
    if not isinstance(stores, S3Stores):
        pytest.skip("engine buckets exist only on S3")
    stores.client().create_bucket(Bucket="someone-elses")
    stores.client().put_object(Bucket="someone-elses", Key="disk.raw", Body=b"\0" * 4096)
    job = api.wait_job(api.create(name="stolen", image_url="someone-elses:disk.raw", min_disk=1,
                                  os_version="Ubuntu 18.04 server 64bit"))
    assert job["status"] == "FAIL" and job["error_code"] == "IMG.0057", job
    assert "someone-elses" not in [b["name"] for b in api.http.get("/obs").json()["buckets"]]
    r = api.http.put("/obs/someone-elses")
    assert r.status_code == 409 and r.json()["error"]["code"] == "IMG.0038", r.text
    # An operator, on the server, gives it to an account; then it is that account's like any other.
    import os
    import sys

    env = {**os.environ, "OPENIMS_DATA_DIR": str(server.data_dir), "OPENIMS_DATABASE_URL": server.database_url,
           **stores.env()}
    adopt = subprocess.run([sys.executable, "-m", "openims.cli", "obs", "adopt", "someone-elses", "--account",
                            "admin"], env=env, capture_output=True, text=True, timeout=60)
    assert adopt.returncode == 0, adopt.stderr
    assert "someone-elses" in [b["name"] for b in api.http.get("/obs").json()["buckets"]]
    job = api.wait_job(api.create(name="adopted", image_url="someone-elses:disk.raw", min_disk=1,
                                  os_version="Ubuntu 18.04 server 64bit"))
    assert job["status"] == "SUCCESS", job


def test_quick_import_reads_the_object_once_into_the_store(api: Api, server: ServerProcess, stores: Stores,
                                                           files: Path) -> None:
    """IMS fast import of raw: streamed from the bucket into the store (on S3 only the head and tail of
    the object are fetched for the inspection), stored byte for byte."""
    src = make_image(files / "quick", "raw", size=48 * 1024 * 1024, seed=21)  # data beyond the probe's head
    api.upload("e2e-bucket", "quick/disk.raw", src)
    r = api.http.post("/v2/cloudimages/quickimport/action", json={
        "name": "quick", "image_url": "e2e-bucket:quick/disk.raw", "os_version": "CentOS 7.0 64bit", "min_disk": 40})
    assert r.status_code == 200, r.text
    job = api.wait_job(r.json()["job_id"])
    assert job["status"] == "SUCCESS", job
    image = api.http.get(f"/v2/images/{job['entities']['image_id']}").json()
    assert image["disk_format"] == "raw" and image["__quick_import"] == "true"
    stored = stores.stored_image(server.data_dir, image["id"], files / "stored")
    md5, sha512, size = file_digests(stored)
    assert (md5, sha512, size) == file_digests(src) and image["checksum"] == md5 and image["size"] == size

    # A fixed VHD is raw data plus a footer at the very end: found in the probe's tail, and refused.
    vhd = make_image(files / "quick", "vhd", size=40 * 1024 * 1024, seed=22)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "vpc", "-O", "vpc", "-o", "subformat=fixed", str(vhd),
                    str(files / "quick" / "fixed.vhd")], check=True)
    api.upload("e2e-bucket", "quick/fixed.img", files / "quick" / "fixed.vhd")
    r = api.http.post("/v2/cloudimages/quickimport/action", json={
        "name": "quick-vhd", "image_url": "e2e-bucket:quick/fixed.img", "os_version": "CentOS 7.0 64bit",
        "min_disk": 40})
    job = api.wait_job(r.json()["job_id"])
    assert job["status"] == "FAIL" and "vhd" in job["fail_reason"], job

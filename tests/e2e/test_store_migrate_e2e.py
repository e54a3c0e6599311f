"""``openims store migrate --to s3``: an embedded deployment's stored images move to the S3 image store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import file_digests, make_image
from tests.support.server import Api, ServerProcess
from tests.support.stores import S3Stores

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-migrate")]


def _migrate(data: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "openims.cli", "store", "migrate", "--to", "s3"],
                          env={**os.environ, "OPENIMS_DATA_DIR": str(data), **env}, capture_output=True,
                          text=True, timeout=120)


def test_migrate_file_store_to_s3(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sources = [make_image(tmp_path / "src", fmt, seed=50 + i) for i, fmt in enumerate(("qcow2", "vhd"))]
    digests = {}
    with ServerProcess(data) as server:  # the embedded default: files
        api = Api(server.url)
        for src in sources:
            api.upload("legacy", f"in/{src.name}", src)
            job = api.wait_job(api.create(name=src.stem, image_url=f"legacy:in/{src.name}", min_disk=1,
                                          os_version="CentOS 7.0 64bit"))
            assert job["status"] == "SUCCESS", job
            image_id = job["entities"]["image_id"]
            digests[image_id] = file_digests(data / "images" / image_id)
    stores = S3Stores(tmp_path / "s3")
    try:
        env = {k: v for k, v in stores.env().items() if k != "OPENIMS_BUCKETS"}  # buckets stay files
        r = _migrate(data, env)
        assert r.returncode == 0, r.stderr
        assert "moved 2" in r.stdout
        assert not [p for p in (data / "images").iterdir() if p.name != ".tmp"]  # no image file left
        assert sorted(stores.stored_images(data)) == sorted(digests)
        # Again: nothing to do (idempotent).
        r = _migrate(data, env)
        assert r.returncode == 0 and "moved 0" in r.stdout, r.stdout + r.stderr
        with ServerProcess(data, env=env) as server:
            api = Api(server.url)
            for image_id, (md5, _sha512, size) in digests.items():
                image = api.http.get(f"/v2/images/{image_id}").json()
                assert image["checksum"] == md5 and image["size"] == size
                body = api.http.get(f"/v2/images/{image_id}/file").content
                assert len(body) == size and file_digests(_write(tmp_path / image_id, body))[0] == md5
    finally:
        stores.close()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path

"""Several image stores through a real server and worker: a file store and two stores on a real S3 engine
(SeaweedFS). An image imported into the file store is copied into an S3 store (copy-image, streamed),
read back from either, copied back into the file store and, by the engine, into the other S3 store after
its file copy was removed, and deleted from all of them."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.images import make_image
from tests.support.server import Api, ServerProcess
from tests.support.stores import IMAGE_BUCKET, IMAGE_PREFIX, S3Stores

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-glance-stores")]
OCTETS = {"Content-Type": "application/octet-stream"}
ARCHIVE = "archive/"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Stores]:
    stores = S3Stores(tmp_path_factory.mktemp("stores-e2e"))
    try:
        yield stores
    finally:
        stores.close()


@pytest.fixture(scope="module")
def server(engine: S3Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # The engine's settings, without its single image store: two named stores instead.
    env = {k: v for k, v in engine.env().items() if k not in ("OPENIMS_IMAGE_STORE", "OPENIMS_BUCKETS")}
    env.update({"OPENIMS_STORES": f"local:file,objects:s3://{IMAGE_BUCKET}/{IMAGE_PREFIX},"
                                  f"archive:s3://{IMAGE_BUCKET}/{ARCHIVE}",
                "OPENIMS_DEFAULT_STORE": "local", "OPENIMS_JOB_LEASE_SECONDS": "5"})
    with ServerProcess(tmp_path_factory.mktemp("e2e-stores") / "data", env=env) as srv:
        yield srv


def _settled(api: Api, image_id: str, timeout: float = 120) -> dict[str, Any]:
    """The image once no import or copy holds it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        image: dict[str, Any] = api.wait_image(image_id)
        if "os_glance_import_task" not in image:
            return image
        time.sleep(0.2)
    raise TimeoutError(f"image {image_id} is still held by task {image['os_glance_import_task']}")


def _objects(engine: S3Stores, image_id: str, prefix: str = IMAGE_PREFIX) -> list[str]:
    return engine._keys(f"{prefix}{image_id}/")


def _object(engine: S3Stores, key: str, into: Path) -> bytes:
    engine.client().download_file(IMAGE_BUCKET, key, str(into))
    return into.read_bytes()


def _start(api: Api, image_id: str, body: dict[str, Any]) -> None:
    r = api.http.post(f"/v2/images/{image_id}/import", json=body)
    assert r.status_code == 202, r.text


def test_file_and_s3_stores(server: ServerProcess, engine: S3Stores, tmp_path: Path) -> None:
    api = Api(server.url)
    source = make_image(tmp_path / "src", "qcow2", seed=21, size=12 << 20)  # several 5 MiB parts on S3
    data = source.read_bytes()
    md5 = hashlib.md5(data).hexdigest()
    stores = api.http.get("/v2/info/stores").json()["stores"]
    assert stores == [{"id": "local", "default": "true"}, {"id": "objects"}, {"id": "archive"}]

    r = api.http.post("/v2/images", json={"name": "three-stores", "disk_format": "qcow2", "container_format": "bare"})
    assert r.status_code == 201 and r.headers["OpenStack-image-store-ids"] == "local,objects,archive"
    image_id: str = r.json()["id"]
    assert api.http.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTETS).status_code == 204
    _start(api, image_id, {"method": {"name": "glance-direct"}, "stores": ["local"]})
    image = _settled(api, image_id)
    assert (image["status"], image["stores"], image["checksum"]) == ("active", "local", md5)
    local_file = server.data_dir / "images" / "local" / image_id
    assert local_file.read_bytes() == data and _objects(engine, image_id) == []

    # copy-image: streamed from the file store into the engine, checked against the image's checksums.
    _start(api, image_id, {"method": {"name": "copy-image"}, "stores": ["objects"]})
    image = _settled(api, image_id)
    assert (image["status"], image["stores"]) == ("active", "local,objects")
    assert image["os_glance_failed_import"] == "" and image["os_glance_importing_to_stores"] == ""
    [key] = _objects(engine, image_id)
    assert _object(engine, key, tmp_path / "stored") == data
    assert api.http.get(f"/v2/images/{image_id}/file").content == data

    # The file copy goes: downloads come from the engine. Then all_stores: streamed back into the file
    # store, and copied by the engine into the other bucket prefix.
    assert api.http.delete(f"/v2/stores/local/{image_id}").status_code == 204
    assert not local_file.exists()
    assert api.http.get(f"/v2/images/{image_id}").json()["stores"] == "objects"
    assert api.http.get(f"/v2/images/{image_id}/file").content == data
    _start(api, image_id, {"method": {"name": "copy-image"}, "all_stores": True})
    assert _settled(api, image_id)["stores"] == "local,objects,archive"
    assert local_file.read_bytes() == data
    [archived] = _objects(engine, image_id, ARCHIVE)
    assert _object(engine, archived, tmp_path / "archived") == data
    log = server.log.read_text()
    assert f"image {image_id} copied to store archive by the engine" in log
    assert f"image {image_id} copied to store local streamed, checksums verified" in log

    # Deleting the image removes every copy.
    assert api.http.delete(f"/v2/images/{image_id}").status_code == 204
    assert not local_file.exists()
    assert _objects(engine, image_id) == [] and _objects(engine, image_id, ARCHIVE) == []
    tasks = api.http.get(f"/v2/images/{image_id}/tasks")
    assert tasks.status_code == 404

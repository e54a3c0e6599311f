"""openstacksdk, unchanged, against a real server: list (paginated), create with upload, update, tag, delete."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest
from openstack import exceptions
from openstack.connection import Connection

from tests.support.images import make_image
from tests.support.server import ADMIN_PASSWORD, ServerProcess

pytestmark = [pytest.mark.compat, pytest.mark.xdist_group("compat-glance")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("compat-sdk") / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def conn(server: ServerProcess) -> Iterator[Connection]:
    # Found through the token catalog: image endpoint <server>/image, version discovery to /image/v2.
    c = openstack.connect(auth_url=f"{server.url}/identity/v3", username="admin", password=ADMIN_PASSWORD,
                          project_name="local-1", user_domain_name="admin", project_domain_name="admin",
                          region_name="local-1", load_yaml_config=False, load_envvars=False)
    yield c
    c.close()


def test_list_follows_pages_until_the_end(conn: Connection) -> None:
    made = {conn.image.create_image(name=f"page-{i:02d}", allow_duplicates=True).id for i in range(27)}
    # The server's default page is 25 images: the SDK must follow "next" to see them all, once each.
    listed = [i.id for i in conn.image.images()]
    assert len(listed) == len(set(listed)) and made <= set(listed)
    # Small pages (limit + marker) give the same set, in the same order.
    assert [i.id for i in conn.image.images(limit=4)] == listed
    by_name = [i.name for i in conn.image.images(sort_key="name", sort_dir="asc", limit=5)]
    assert by_name == sorted(by_name)
    for image_id in made:
        conn.image.delete_image(image_id)
    assert not made & {i.id for i in conn.image.images()}


def test_image_lifecycle(conn: Connection, tmp_path: Path) -> None:
    source = make_image(tmp_path / "src", "qcow2")
    with open(source, "rb") as f:
        image = conn.image.create_image(name="sdk-image", data=f, disk_format="qcow2", container_format="bare")
    # POST /v2/images, then PUT /v2/images/{id}/file: the upload went through the import pipeline.
    image = conn.image.get_image(image.id)
    assert image.status == "active" and image.disk_format == "qcow2" and image.container_format == "bare"
    assert image.size and image.virtual_size == 4 * 1024 * 1024
    assert image.hash_algo == "sha512" and image.hash_value and image.checksum

    # Download (the SDK checks the md5 against the image's checksum) gives back the uploaded bytes.
    downloaded = conn.image.download_image(image)
    assert hashlib.sha512(downloaded.content).hexdigest() == image.hash_value
    assert downloaded.content == source.read_bytes() and image.size == source.stat().st_size

    updated = conn.image.update_image(image, name="sdk-renamed", custom_prop="v1")
    assert updated.name == "sdk-renamed" and updated.properties["custom_prop"] == "v1"
    fetched = conn.image.get_image(image.id)
    assert fetched.name == "sdk-renamed" and fetched.properties["custom_prop"] == "v1"
    # The IMS attributes survive the SDK's "replace all properties" patch.
    assert fetched.properties["__imagetype"] == "private" and fetched.properties["virtual_env_type"]

    conn.image.add_tag(image, "compat")
    assert conn.image.get_image(image.id).tags == ["compat"]
    assert [i.id for i in conn.image.images(tag="compat")] == [image.id]
    conn.image.remove_tag(image, "compat")
    assert conn.image.get_image(image.id).tags == []

    conn.image.delete_image(image)
    with pytest.raises(exceptions.NotFoundException):
        conn.image.get_image(image.id)


def test_refused_upload_is_reported(conn: Connection, tmp_path: Path) -> None:
    # Declared qcow2, the data is vmdk: the SDK raises and deletes the image it created (its own clean-up).
    source = make_image(tmp_path / "src", "vmdk")
    with open(source, "rb") as f, pytest.raises(exceptions.SDKException) as caught:
        conn.image.create_image(name="sdk-liar", data=f, disk_format="qcow2", container_format="bare")
    assert "Image disk_format qcow2 does not match stream data vmdk" in str(caught.value)
    assert [i for i in conn.image.images() if i.name == "sdk-liar"] == []


def test_create_image_with_import(conn: Connection, tmp_path: Path) -> None:
    """create_image(use_import=True): stage, glance-direct import, and the SDK waits for active."""
    source = make_image(tmp_path / "src", "vmdk")
    image = conn.create_image("sdk-imported", filename=str(source), disk_format="vmdk", container_format="bare",
                              use_import=True, wait=True, timeout=120)
    image = conn.image.wait_for_status(conn.image.get_image(image.id), "active", wait=120)
    assert image.disk_format == "vmdk"
    assert image.checksum == hashlib.md5(source.read_bytes()).hexdigest()
    assert conn.image.download_image(image).content == source.read_bytes()
    assert [t.status for t in conn.image.image_tasks(image)] == ["success"]

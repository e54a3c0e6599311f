"""Native image data through HTTP: streamed upload through the import pipeline, download with ranges."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openims.catalog import native, uploads
from openims.errors import ImsConflict
from openims.runtime import Runtime
from tests.api.test_glance_images import create, error_code, other_account, project_of, set_columns, share
from tests.conftest import login
from tests.support.images import file_digests, make_image
from tests.support.tenants import add_user
from tests.unit.imaging.imaging_support import make_iso

OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # A limit the tests can exceed with a few MiB.
    return {"max_image_file_size": 16 * 1024 * 1024}


def put_file(client: TestClient, headers: dict[str, str], image_id: str, data: Any,
             extra: dict[str, str] | None = None) -> Any:
    return client.put(f"/v2/images/{image_id}/file", content=data, headers={**headers, **OCTETS, **(extra or {})})


def leftovers(rt: Runtime, image_id: str) -> list[str]:
    """Stored data of the image and any temp files: a refused upload leaves none."""
    found = [p.name for p in rt.images.tmp.iterdir()]
    if rt.images.exists(image_id):
        found.append(image_id)
    return found


def status_of(client: TestClient, headers: dict[str, str], image_id: str) -> str:
    status: str = client.get(f"/v2/images/{image_id}", headers=headers).json()["status"]
    return status


def backing_file_qcow2(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(d / "base.raw"), "1M"], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(d / "base.raw"), "-F", "raw",
                    str(d / "backing.qcow2")], check=True)
    return d / "backing.qcow2"


class TestUpload:
    @pytest.mark.parametrize("fmt", ["qcow2", "vmdk"])
    def test_upload_then_download(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime,
                                  tmp_path: Path, fmt: str) -> None:
        source = make_image(tmp_path / "src", fmt)
        image = create(client, admin_headers, name="uploaded", disk_format=fmt, min_disk=1)
        r = put_file(client, admin_headers, image["id"], source.read_bytes())
        assert r.status_code == 204, r.text
        assert r.content == b""
        got = client.get(f"/v2/images/{image['id']}", headers=admin_headers).json()
        # Stored verbatim, as Glance: the client's own size and checksums of its file hold.
        md5, sha512, size = file_digests(source)
        assert got["status"] == "active" and got["disk_format"] == fmt
        assert got["size"] == size and got["checksum"] == md5
        assert got["os_hash_algo"] == "sha512" and got["os_hash_value"] == sha512
        assert got["virtual_size"] == 4 * 1024 * 1024 and got["__image_size"] == str(size)
        assert leftovers(runtime, image["id"]) == [image["id"]]

        r = client.get(f"/v2/images/{image['id']}/file", headers=admin_headers)
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["Content-Length"] == str(size) and r.headers["Content-MD5"] == md5
        assert r.content == source.read_bytes()

        # Deleting the image removes its data once the deletion commits.
        assert client.delete(f"/v2/images/{image['id']}", headers=admin_headers).status_code == 204
        assert leftovers(runtime, image["id"]) == []

    def test_streamed_chunked_upload(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime,
                                     tmp_path: Path) -> None:
        source = make_image(tmp_path / "src", "raw")
        image = create(client, admin_headers, name="streamed", disk_format="raw")

        def chunks() -> Iterator[bytes]:
            with open(source, "rb") as f:
                while chunk := f.read(64 * 1024):
                    yield chunk

        r = put_file(client, admin_headers, image["id"], chunks())
        assert r.status_code == 204, r.text
        assert status_of(client, admin_headers, image["id"]) == "active"

    def test_curl_style_upload_without_content_type(self, client: TestClient, admin_headers: dict[str, str],
                                                    tmp_path: Path) -> None:
        source = make_image(tmp_path / "src", "qcow2")
        image = create(client, admin_headers, name="curl", disk_format="qcow2")
        r = client.put(f"/image/v2/images/{image['id']}/file", content=source.read_bytes(), headers=admin_headers)
        assert r.status_code == 204, r.text

    @pytest.mark.parametrize(("maker", "declared", "code", "words"), [
        (lambda d: make_image(d, "vmdk"), "qcow2", "IMG.0057", "disk_format qcow2 does not match stream data vmdk"),
        (backing_file_qcow2, "qcow2", "IMG.0057", "Image failed safety checks"),
        # raw takes any content (as Glance), but never content unsafe as what it really is.
        (backing_file_qcow2, "raw", "IMG.0057", "Image failed safety checks"),
        (lambda d: (d / "garbage.bin", (d / "garbage.bin").write_bytes(b"\x00junk" * 7))[0], "vmdk", "IMG.0057",
         "does not match stream data raw"),
    ], ids=["vmdk-declared-qcow2", "backing-file", "backing-file-declared-raw", "garbage"])
    def test_refused_data_leaves_a_queued_image_and_nothing_else(
            self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime, tmp_path: Path,
            maker: Any, declared: str, code: str, words: str) -> None:
        (tmp_path / "src").mkdir()
        source = maker(tmp_path / "src")
        image = create(client, admin_headers, name="refused", disk_format=declared)
        r = put_file(client, admin_headers, image["id"], source.read_bytes())
        assert r.status_code == 415, r.text  # Glance's answer to a format lie and to unsafe content
        assert error_code(r) == code and words in r.json()["error"]["message"]
        got = client.get(f"/v2/images/{image['id']}", headers=admin_headers).json()
        assert got["status"] == "queued" and got["size"] is None and got["checksum"] is None
        assert leftovers(runtime, image["id"]) == []
        assert client.get(f"/v2/images/{image['id']}/file", headers=admin_headers).status_code == 204
        # Glance semantics: the queued image takes a correct upload afterwards.
        good = make_image(tmp_path / "good", declared if declared != "raw" else "raw")
        assert put_file(client, admin_headers, image["id"], good.read_bytes()).status_code == 204
        assert status_of(client, admin_headers, image["id"]) == "active"

    @pytest.mark.parametrize(("disk_format", "container_format"), [
        ("ami", "ami"), ("ploop", "bare"), ("zvhd2", "bare"), ("qcow2", "ovf"), ("vmdk", "ova")])
    def test_formats_nothing_here_reads_are_kept_opaque(self, client: TestClient, admin_headers: dict[str, str],
                                                        tmp_path: Path, disk_format: str,
                                                        container_format: str) -> None:
        """Glance's other disk and container formats: stored as the metadata says, virtual size unknown."""
        data = make_image(tmp_path, "qcow2").read_bytes()[:300_000] + b"appended"
        image = create(client, admin_headers, name="opaque", disk_format=disk_format,
                       container_format=container_format)
        assert put_file(client, admin_headers, image["id"], data).status_code == 204
        got = client.get(f"/v2/images/{image['id']}", headers=admin_headers).json()
        assert (got["status"], got["disk_format"], got["container_format"]) == ("active", disk_format,
                                                                                 container_format)
        assert got["size"] == len(data) and got["checksum"] == hashlib.md5(data).hexdigest()
        assert got["virtual_size"] is None
        assert client.get(f"/v2/images/{image['id']}/file", headers=admin_headers).content == data
        # Nothing here reads it as a disk: an IMS export says so instead of failing later.
        r = client.post(f"/v1/cloudimages/{image['id']}/file", headers=admin_headers,
                        json={"bucket_url": "exports:opaque.qcow2", "file_format": "qcow2"})
        assert r.status_code == 400 and "stored as uploaded" in r.json()["error"]["message"], r.text

    def test_raw_takes_any_safe_content_as_it_is(self, client: TestClient, admin_headers: dict[str, str],
                                                 tmp_path: Path) -> None:
        data = make_image(tmp_path, "qcow2").read_bytes()
        image = create(client, admin_headers, name="qcow2-as-raw", disk_format="raw")
        assert put_file(client, admin_headers, image["id"], data).status_code == 204
        got = client.get(f"/v2/images/{image['id']}", headers=admin_headers).json()
        assert (got["disk_format"], got["virtual_size"], got["size"]) == ("raw", len(data), len(data))
        assert client.get(f"/v2/images/{image['id']}/file", headers=admin_headers).content == data

    def test_raw_takes_an_iso_and_keeps_it(self, client: TestClient, admin_headers: dict[str, str],
                                           tmp_path: Path) -> None:
        iso = tmp_path / "boot.iso"
        make_iso(iso, b"boot files " * 40_000)
        image = create(client, admin_headers, name="iso-as-raw", disk_format="raw")
        assert put_file(client, admin_headers, image["id"], iso.read_bytes()).status_code == 204
        got = client.get(f"/v2/images/{image['id']}", headers=admin_headers).json()
        assert got["disk_format"] == "raw" and got["virtual_size"] == got["size"] == iso.stat().st_size
        assert client.get(f"/v2/images/{image['id']}/file", headers=admin_headers).content == iso.read_bytes()

    def test_virtual_size_must_fit_min_disk(self, client: TestClient, admin_headers: dict[str, str],
                                            runtime: Runtime, tmp_path: Path) -> None:
        big = tmp_path / "big.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "2G"], check=True)
        image = create(client, admin_headers, name="small-disk", disk_format="qcow2", min_disk=1)
        r = put_file(client, admin_headers, image["id"], big.read_bytes())
        assert r.status_code == 400 and error_code(r) == "IMG.0055"
        assert status_of(client, admin_headers, image["id"]) == "queued"
        assert leftovers(runtime, image["id"]) == []

    def test_size_limit(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime) -> None:
        image = create(client, admin_headers, name="big", disk_format="raw")
        too_big = 17 * 1024 * 1024

        def chunks() -> Iterator[bytes]:
            for _ in range(17):
                yield b"\x01" * (1024 * 1024)

        # Streamed without a length: refused once the limit is crossed.
        r = put_file(client, admin_headers, image["id"], chunks())
        assert r.status_code == 413 and error_code(r) == "IMG.0059"
        assert status_of(client, admin_headers, image["id"]) == "queued"
        assert leftovers(runtime, image["id"]) == []
        # Announced: refused before reading.
        r = put_file(client, admin_headers, image["id"], b"x", {"X-OpenStack-Image-Size": str(too_big)})
        assert r.status_code == 413

    def test_state_and_request_errors(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime,
                                      tmp_path: Path) -> None:
        source = make_image(tmp_path / "src", "qcow2").read_bytes()
        no_format = create(client, admin_headers, name="no-format")
        r = put_file(client, admin_headers, no_format["id"], source)
        assert r.status_code == 400 and "disk_format" in r.json()["error"]["message"]
        image = create(client, admin_headers, name="once", disk_format="qcow2")
        r = client.put(f"/v2/images/{image['id']}/file", content=source,
                       headers={**admin_headers, "Content-Type": "application/json"})
        assert r.status_code == 415
        assert put_file(client, admin_headers, image["id"], source).status_code == 204
        r = put_file(client, admin_headers, image["id"], source)
        assert r.status_code == 409 and error_code(r) == "IMG.0035"
        r = put_file(client, admin_headers, "0" * 8 + "-0000-4000-8000-" + "0" * 12, source)
        assert r.status_code == 404
        # An image an import job fills takes no upload.
        job_image = create(client, admin_headers, name="job", disk_format="qcow2")
        with runtime.db.transaction() as s:
            from openims.db.models import Image

            row = s.get(Image, job_image["id"])
            assert row is not None
            row.properties = {**row.properties, "__data_origin": "file,bkt:disk.qcow2"}
        assert put_file(client, admin_headers, job_image["id"], source).status_code == 409

    def test_who_may_upload(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime,
                            tmp_path: Path) -> None:
        source = make_image(tmp_path / "src", "qcow2").read_bytes()
        image = create(client, admin_headers, name="mine", disk_format="qcow2")
        assert client.put(f"/v2/images/{image['id']}/file", content=source, headers=OCTETS).status_code == 401
        stranger = other_account(client, runtime)
        assert put_file(client, stranger, image["id"], source).status_code == 404
        share(runtime, image["id"], project_of(client, stranger))
        r = put_file(client, stranger, image["id"], source)
        assert r.status_code == 403 and error_code(r) == "IMG.0047"
        add_user(runtime.db, name="viewer", role="readonly")
        viewer = {"X-Auth-Token": login(client, "viewer", "User-Pass-1234")}
        assert put_file(client, viewer, image["id"], source).status_code == 403
        assert status_of(client, admin_headers, image["id"]) == "queued"

    def test_image_deleted_during_upload_is_410(self, client: TestClient, admin_headers: dict[str, str],
                                                runtime: Runtime, tmp_path: Path) -> None:
        source = make_image(tmp_path / "src", "qcow2").read_bytes()
        image = create(client, admin_headers, name="doomed", disk_format="qcow2")
        project = project_of(client, admin_headers)

        def chunks() -> Iterator[bytes]:
            yield source[:4096]
            # The owner deletes the image while its data is still arriving.
            with runtime.db.transaction() as s:
                native.delete_image(s, project, image["id"])
            yield source[4096:]

        r = put_file(client, admin_headers, image["id"], chunks())
        assert r.status_code == 410, r.text
        assert leftovers(runtime, image["id"]) == []

    def test_concurrent_uploads_one_wins(self, runtime: Runtime, client: TestClient,
                                         admin_headers: dict[str, str]) -> None:
        image = create(client, admin_headers, name="race", disk_format="qcow2")
        project = project_of(client, admin_headers)
        barrier = threading.Barrier(4)
        outcomes: list[str] = []

        def attempt() -> None:
            barrier.wait()
            try:
                with runtime.db.transaction() as s:
                    uploads.begin(s, project, image["id"], runtime.clock())
                outcomes.append("won")
            except ImsConflict:
                outcomes.append("409")

        threads = [threading.Thread(target=attempt) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["409", "409", "409", "won"]
        assert status_of(client, admin_headers, image["id"]) == "saving"
        # The HTTP route refuses too while the winner is busy.
        assert put_file(client, admin_headers, image["id"], b"data").status_code == 409


class TestDownload:
    @pytest.fixture
    def stored(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime,
               tmp_path: Path) -> tuple[str, bytes]:
        image = create(client, admin_headers, name="dl", disk_format="qcow2")
        assert put_file(client, admin_headers, image["id"], make_image(tmp_path, "qcow2").read_bytes()).status_code \
            == 204
        return image["id"], runtime.images.path(image["id"]).read_bytes()

    def test_ranges(self, client: TestClient, admin_headers: dict[str, str], stored: tuple[str, bytes]) -> None:
        image_id, data = stored
        size = len(data)
        url = f"/v2/images/{image_id}/file"
        for header, start, end in (("bytes=0-9", 0, 9), (f"bytes=10-{size + 100}", 10, size - 1),
                                   ("bytes=-5", size - 5, size - 1), (f"bytes={size - 3}-", size - 3, size - 1)):
            r = client.get(url, headers={**admin_headers, "Range": header})
            assert r.status_code == 206, header
            assert r.content == data[start:end + 1]
            assert r.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
            assert r.headers["Content-Length"] == str(end - start + 1)
        for header in (f"bytes={size}-", "bytes=5-2", "bytes=a-b", "items=0-1", "bytes=0-1,4-5", "bytes=-0"):
            r = client.get(url, headers={**admin_headers, "Range": header})
            assert r.status_code == 416, header
            assert r.headers["Content-Range"] == f"bytes */{size}"

    def test_checksum_headers(self, client: TestClient, admin_headers: dict[str, str],
                              stored: tuple[str, bytes]) -> None:
        image_id, data = stored
        r = client.get(f"/image/v2/images/{image_id}/file", headers=admin_headers)
        md5 = hashlib.md5(data).hexdigest()
        # Glance's Content-MD5 is the hex digest (what glanceclient checks), not RFC 1864 base64.
        assert r.headers["Content-MD5"] == md5 != base64.b64encode(hashlib.md5(data).digest()).decode()
        assert r.content == data

    def test_who_may_download(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime,
                              stored: tuple[str, bytes]) -> None:
        image_id, data = stored
        url = f"/v2/images/{image_id}/file"
        assert client.get(url).status_code == 401
        stranger = other_account(client, runtime)
        assert client.get(url, headers=stranger).status_code == 404
        share(runtime, image_id, project_of(client, stranger))
        r = client.get(url, headers=stranger)
        assert r.status_code == 200 and r.content == data

    def test_no_data_is_204(self, client: TestClient, admin_headers: dict[str, str], runtime: Runtime) -> None:
        image = create(client, admin_headers, name="empty", disk_format="qcow2")
        r = client.get(f"/v2/images/{image['id']}/file", headers=admin_headers)
        assert r.status_code == 204 and r.content == b""
        set_columns(runtime, image["id"], status="saving")
        assert client.get(f"/v2/images/{image['id']}/file", headers=admin_headers).status_code == 204

"""objects.s3 against a real engine (SeaweedFS): multipart writes, conditional publishes, ranged and
pinned reads, server-side copies, and the errors callers rely on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openims.config import Settings
from openims.objects import s3 as s3mod
from openims.objects.base import ObjectExists, ObjectNotFound, StorageUnavailable
from openims.objects.s3 import S3Objects, make_client
from openims.objects.seaweed import SeaweedFS

MiB = 1 << 20
BUCKET = "objects-test"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with SeaweedFS(tmp_path_factory.mktemp("seaweed")) as sw:
        yield sw


@pytest.fixture(scope="module")
def objects(engine: SeaweedFS) -> S3Objects:
    settings = Settings(s3_endpoint=engine.endpoint, s3_access_key_id=engine.admin.access_key,
                        s3_secret_access_key=engine.admin.secret_key, s3_part_size=5 * MiB, s3_parallel_parts=3,
                        s3_max_attempts=2)
    objs = S3Objects(make_client(settings), settings)
    objs.create_bucket(BUCKET, "us-east-1")
    return objs


def _uploads(objects: S3Objects) -> list[Any]:
    uploads: list[Any] = objects.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    return uploads


def test_multipart_write_publishes_only_when_complete(objects: S3Objects, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3mod, "_GROW_EVERY", 2)  # parts double every 2 here (every 1,000 for real)
    data = os.urandom(33 * MiB + 123)
    writer = objects.writer(BUCKET, "big/object")
    for i in range(0, len(data), 3 * MiB + 7):  # writes that do not line up with parts
        writer.write(data[i:i + 3 * MiB + 7])
    with pytest.raises(ObjectNotFound):
        objects.head(BUCKET, "big/object")  # nothing visible before the publish
    assert writer.complete().size == len(data)
    assert b"".join(objects.read(BUCKET, "big/object")) == data
    # 5, 5, 10, 10 MiB and the rest: growing parts, all there.
    head = objects.client.head_object(Bucket=BUCKET, Key="big/object", PartNumber=3)
    assert head["ContentLength"] == 10 * MiB
    assert _uploads(objects) == []


def test_abort_leaves_nothing(objects: S3Objects) -> None:
    writer = objects.writer(BUCKET, "aborted")
    writer.write(os.urandom(12 * MiB))
    writer.abort()
    with pytest.raises(ObjectNotFound):
        objects.head(BUCKET, "aborted")
    assert [u for u in _uploads(objects) if u["Key"] == "aborted"] == []


def test_a_conditional_publish_never_replaces(objects: S3Objects, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"first")
    objects.upload_file(BUCKET, "once", path, if_absent=True)
    path.write_bytes(b"second" * (2 * MiB))
    with pytest.raises(ObjectExists):
        objects.upload_file(BUCKET, "once", path, if_absent=True)
    assert b"".join(objects.read(BUCKET, "once")) == b"first"
    assert [u for u in _uploads(objects) if u["Key"] == "once"] == []


def test_ranged_and_pinned_reads(objects: S3Objects) -> None:
    objects.client.put_object(Bucket=BUCKET, Key="ranged", Body=bytes(range(256)) * 1024)
    assert b"".join(objects.read(BUCKET, "ranged", 1000, 24)) == (bytes(range(256)) * 1024)[1000:1024]
    etag = objects.client.head_object(Bucket=BUCKET, Key="ranged")["ETag"]
    objects.client.put_object(Bucket=BUCKET, Key="ranged", Body=b"replaced")
    with pytest.raises(ObjectNotFound, match="changed"):
        b"".join(objects.read(BUCKET, "ranged", if_match=etag))


def test_download_and_server_side_copy(objects: S3Objects, tmp_path: Path) -> None:
    data = os.urandom(17 * MiB)
    objects.client.put_object(Bucket=BUCKET, Key="src", Body=data)
    objects.copy(BUCKET, "src", "copied", len(data))
    dest = tmp_path / "dl"
    assert objects.download(BUCKET, "copied", dest, expected_size=len(data)) == len(data)
    assert dest.read_bytes() == data
    with pytest.raises(ObjectNotFound):
        objects.download(BUCKET, "no-such-object", tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_wrong_credentials_and_a_stopped_engine(engine: SeaweedFS) -> None:
    wrong = S3Objects(make_client(Settings(s3_endpoint=engine.endpoint, s3_access_key_id=engine.admin.access_key,
                                           s3_secret_access_key="not-the-secret", s3_max_attempts=1)),
                      Settings())
    with pytest.raises(StorageUnavailable, match="credentials") as refused:
        list(wrong.listing(BUCKET))
    assert "not-the-secret" not in str(refused.value)
    gone = S3Objects(make_client(Settings(s3_endpoint="http://127.0.0.1:9", s3_access_key_id="x",
                                          s3_secret_access_key="y", s3_max_attempts=1)), Settings())
    with pytest.raises(StorageUnavailable, match="could not be reached"):
        gone.head(BUCKET, "src")

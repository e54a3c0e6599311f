"""Several image stores: OPENIMS_STORES as parsed, and the routing of locations to the store holding them."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path

import pytest
from pydantic import ValidationError

from openims.config import Settings, StoreSpec, parse_stores
from openims.objects.image_store import FileImageStore
from openims.objects.image_stores import ImageStores, StoreInfo, UnknownLocation, is_local

IMAGE = "0b9d7c3e-5f4a-4e21-9c1d-2a3b4c5d6e7f"
JOB = "a1b2c3d4e5f60718"


def _parse(text: str, default: str = "", data: Path = Path("/data")) -> tuple[list[StoreSpec], str]:
    return parse_stores(text, default, data, data / "images")


class TestParse:
    def test_forms(self) -> None:
        specs, default = _parse("local:file, cold:file:/mnt/cold ,objects:s3://openims-images/images")
        assert specs == [StoreSpec("local", "file", "/data/images/local"), StoreSpec("cold", "file", "/mnt/cold"),
                         StoreSpec("objects", "s3", "s3://openims-images/images")]
        assert default == "local"
        assert _parse("a:file,b:file", "b")[1] == "b"
        assert _parse("") == ([], "")

    @pytest.mark.parametrize(("text", "default", "says"), [
        ("os_glance_staging_store:file", "", "reserved"),
        ("a:file,a:file:/x", "", "given twice"),
        ("a b:file", "", "is not 1-64"),
        ("a", "", "is not <id>:file"),
        ("a:nfs://x", "", "use file"),
        ("a:file:relative/dir", "", "must be absolute"),
        ("a:file:/data/images", "", "directory of its own"),
        ("a:file:/x,b:file:/x", "", "share the directory"),
        ("a:s3://bucket/images,b:s3://bucket/images/fast", "", "overlap"),
        ("a:s3://bucket,b:s3://bucket/x", "", "overlap"),
        ("a:file", "b", "is not one of"),
        ("", "a", "names no store"),
    ])
    def test_refusals(self, text: str, default: str, says: str) -> None:
        with pytest.raises(ValueError, match=says):
            _parse(text, default)

    def test_two_buckets_or_prefixes_are_separate(self) -> None:
        specs, _ = _parse("a:s3://bucket/images,b:s3://bucket/images2,c:s3://other/images")
        assert [s.id for s in specs] == ["a", "b", "c"]

    def test_settings_refuse_at_start(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="os_glance_"):
            Settings(data_dir=tmp_path, stores="os_glance_tasks_store:file")
        with pytest.raises(ValidationError, match="cannot be combined"):
            Settings(data_dir=tmp_path, stores="a:file", image_store="s3://bucket/x")
        assert Settings(data_dir=tmp_path).store_specs() == ([], "")


@pytest.fixture
def stores(tmp_path: Path) -> ImageStores:
    legacy = FileImageStore(tmp_path / "images")
    named = {i: FileImageStore(tmp_path / "images" / i, name=i) for i in ("fast", "slow")}
    return ImageStores(dict(named), [StoreInfo("fast", "file"), StoreInfo("slow", "file")], "slow", legacy)


def _put(stores: ImageStores, store_id: str, data: bytes) -> str:
    staging = stores.staging_in(store_id, JOB, IMAGE)
    staging.path.write_bytes(data)
    staging.seal()
    return staging.publish()


class TestRouting:
    def test_locations_name_their_store(self, stores: ImageStores, tmp_path: Path) -> None:
        fast = _put(stores, "fast", b"data")
        assert fast == f"file://fast/{IMAGE}" and (tmp_path / "images" / "fast" / IMAGE).read_bytes() == b"data"
        assert stores.store_of(fast) == "fast"
        assert stores.store_of(IMAGE) == "slow"  # a bare id: from before several stores, the default's
        with pytest.raises(UnknownLocation):
            stores.store_of(f"file://gone/{IMAGE}")
        # New data goes to the default store.
        assert stores.staging(JOB, IMAGE).path.parent == tmp_path / "images" / "slow" / ".tmp"
        assert is_local(stores) and is_local(stores, fast)

    def test_preferred_reads_the_default_first(self, stores: ImageStores) -> None:
        fast, slow = _put(stores, "fast", b"a"), _put(stores, "slow", b"a")
        assert stores.preferred([fast, slow]) == [slow, fast]
        assert stores.preferred([fast, f"file://gone/{IMAGE}"]) == [fast]

    def test_delete_by_id_removes_every_copy(self, stores: ImageStores, tmp_path: Path) -> None:
        _put(stores, "fast", b"a")
        _put(stores, "slow", b"a")
        (tmp_path / "images" / IMAGE).write_bytes(b"legacy")
        stores.delete(IMAGE)
        assert not any(p.name == IMAGE for p in (tmp_path / "images").rglob("*"))

    def test_copy_into_streams_and_hashes(self, stores: ImageStores, tmp_path: Path) -> None:
        data = bytes(range(256)) * 10_000
        source = _put(stores, "fast", data)
        seen: list[int] = []
        staging, copied = stores.copy_into(source, "slow", JOB, IMAGE, progress=seen.append)
        assert copied.size == len(data) and seen[-1] == len(data)
        assert copied.md5 == hashlib.md5(data).hexdigest()
        assert hmac.compare_digest(copied.sha512 or "", hashlib.sha512(data).hexdigest())
        assert not (tmp_path / "images" / "slow" / IMAGE).exists()  # nothing published yet
        staging.seal()
        assert staging.publish() == f"file://slow/{IMAGE}"
        assert stores.read(f"file://slow/{IMAGE}").__next__()[:4] == data[:4]

    def test_orphans_are_swept_per_location(self, stores: ImageStores, tmp_path: Path) -> None:
        fast = _put(stores, "fast", b"a")
        _put(stores, "slow", b"b")
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert stores.orphans(lambda location: location == fast, later) == 1  # slow's copy: no row points to it
        assert (tmp_path / "images" / "fast" / IMAGE).exists()
        assert not (tmp_path / "images" / "slow" / IMAGE).exists()

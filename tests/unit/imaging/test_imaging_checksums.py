"""MD5 + SHA-512 in one pass, checked against hashlib run independently."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from pathlib import Path

import pytest

from openims.imaging import ConversionFailed, copy_with_digests, digest_file

MiB = 1 << 20
CHUNK = 4096


def expected(data: bytes) -> tuple[int, str, str]:
    return len(data), hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5, 100_000])
def test_digests_match_hashlib(size: int, tmp_path: Path) -> None:
    data = random.Random(size).randbytes(size)
    seen: list[int] = []
    digests = digest_file(write(tmp_path / "f", data), chunk=CHUNK, progress=seen.append)
    assert (digests.size, digests.md5, digests.sha512) == expected(data)
    assert seen == sorted(seen)
    assert seen[-1:] == ([size] if size else [])
    assert len(seen) == -(-size // CHUNK)


def test_default_chunk_over_several_chunks(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(9 * MiB + 123)
    digests = digest_file(write(tmp_path / "f", data))
    assert (digests.size, digests.md5, digests.sha512) == expected(data)


def test_no_thread_is_left_behind(tmp_path: Path) -> None:
    before = threading.active_count()
    path = write(tmp_path / "f", bytes(10 * CHUNK))
    digest_file(path, chunk=CHUNK)

    def explode(_: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        digest_file(path, chunk=CHUNK, progress=explode)
    assert threading.active_count() == before


def test_deadline(tmp_path: Path) -> None:
    path = write(tmp_path / "f", bytes(CHUNK))
    with pytest.raises(ConversionFailed) as caught:
        digest_file(path, deadline=time.monotonic() - 1)
    assert caught.value.code == "IMG.0061"


def test_chunk_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        digest_file(write(tmp_path / "f", b"x"), chunk=0)


def test_copy_keeps_content_and_holes(tmp_path: Path) -> None:
    chunk = 64 * 1024
    rng = random.Random(2)
    data = rng.randbytes(chunk) + bytes(8 * chunk) + rng.randbytes(chunk + 17) + bytes(2 * chunk)
    source = write(tmp_path / "src", data)
    target = tmp_path / "dst"
    seen: list[int] = []
    digests = copy_with_digests(source, target, chunk=chunk, progress=seen.append)
    assert target.read_bytes() == data
    assert (digests.size, digests.md5, digests.sha512) == expected(data)
    assert seen[-1] == len(data)
    # The all-zero chunks were skipped, not written.
    assert target.stat().st_blocks * 512 < len(data) - 4 * chunk


def test_copy_ending_in_a_hole(tmp_path: Path) -> None:
    data = b"x" * CHUNK + bytes(3 * CHUNK)
    target = tmp_path / "dst"
    copy_with_digests(write(tmp_path / "src", data), target, chunk=CHUNK)
    assert target.read_bytes() == data


def test_failed_copy_leaves_nothing(tmp_path: Path) -> None:
    source = write(tmp_path / "src", bytes(CHUNK))
    target = tmp_path / "dst"
    with pytest.raises(ConversionFailed):
        copy_with_digests(source, target, deadline=time.monotonic() - 1)
    assert not target.exists()


def test_read_error_surfaces_and_stops_the_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk error halfway through is the caller's error, not a silently short digest."""
    import io

    from openims.imaging import checksums

    class Failing(io.FileIO):
        reads = 0

        def readinto(self, buffer: object) -> int:  # type: ignore[override]
            Failing.reads += 1
            if Failing.reads > 2:
                raise OSError(5, "Input/output error")
            return super().readinto(buffer)  # type: ignore[arg-type]

    path = write(tmp_path / "f", bytes(10 * CHUNK))
    before = threading.active_count()
    with Failing(path, "rb") as source, pytest.raises(OSError, match="Input/output"):
        checksums._digest_stream(source, chunk=CHUNK, progress=None, deadline=None)
    assert threading.active_count() == before

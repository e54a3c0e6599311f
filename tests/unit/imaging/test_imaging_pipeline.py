"""import_image end to end: every format converted and compared, failures cleaned up."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from openims.imaging import ConversionFailed, ImageFormat, ImageRejected, StoredImage, import_image
from openims.imaging import pipeline as pipeline_module
from tests.unit.imaging.imaging_support import SAMPLE_NAMES, QemuImg, Sample

MiB = 1 << 20
GiB = 1 << 30


def run_import(source: Path, dest: Path, **overrides: object) -> tuple[StoredImage, list[int]]:
    seen: list[int] = []
    options: dict[str, object] = {
        "min_disk_gb": 40,
        "declared": None,
        "max_file_size": 64 * MiB,
        "timeout": 60.0,
        "progress": seen.append,
    }
    options.update(overrides)
    stored = import_image(source, dest, **options)  # type: ignore[arg-type]
    return stored, seen


def rejected(source: Path, dest: Path, **overrides: object) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        run_import(source, dest, **overrides)
    assert not dest.exists(), "a failed import must leave nothing at dest"
    return caught.value


def same_disk(first: Path, first_fmt: str, second: Path, second_fmt: str) -> bool:
    """qemu-img compare: equal content (a larger disk must be zeros past the end)."""
    exe = shutil.which("qemu-img")
    assert exe is not None
    proc = subprocess.run(
        [exe, "compare", "-f", first_fmt, "-F", second_fmt, str(first), str(second)],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def check_digests(stored: StoredImage) -> None:
    data = stored.path.read_bytes()
    assert stored.size == len(data)
    assert stored.checksum == hashlib.md5(data).hexdigest()
    assert stored.os_hash_algo == "sha512"
    assert stored.os_hash_value == hashlib.sha512(data).hexdigest()


def check_progress(seen: list[int]) -> None:
    assert seen[0] == 0
    assert seen[-1] == 100
    assert seen == sorted(set(seen)), "whole percentages, strictly increasing"


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_format_converts_to_qcow2(
    name: str, samples: dict[str, Sample], source_raw: Path, tmp_path: Path
) -> None:
    sample = samples[name]
    stored, seen = run_import(sample.path, tmp_path / "stored.qcow2", declared=sample.format)
    assert stored.path == tmp_path / "stored.qcow2"
    assert stored.source_format is sample.format
    assert stored.disk_format == "qcow2"
    original, original_fmt = (sample.path, "raw") if sample.format is ImageFormat.ISO else (source_raw, "raw")
    assert same_disk(original, original_fmt, stored.path, "qcow2")
    check_digests(stored)
    check_progress(seen)


def test_stage_timings_say_where_the_time_went(samples: dict[str, Sample], tmp_path: Path) -> None:
    """What operators read in the worker log: every stage of a conversion, timed."""
    stored, _ = run_import(samples["qcow2"].path, tmp_path / "stored.qcow2")
    assert list(stored.stages) == ["inspect", "convert", "verify", "checksum", "fsync"]
    assert all(seconds >= 0 for seconds in stored.stages.values())
    quick, _ = run_import(samples["raw"].path, tmp_path / "stored.raw", quick=True)
    assert list(quick.stages) == ["inspect", "copy"]


@pytest.mark.parametrize("name", ["qcow2", "vmdk-streamOptimized", "vhd-fixed", "iso"])
def test_store_as_raw(name: str, samples: dict[str, Sample], source_raw: Path, tmp_path: Path) -> None:
    sample = samples[name]
    stored, seen = run_import(sample.path, tmp_path / "stored.raw", store_format="raw")
    assert stored.disk_format == "raw"
    assert stored.size == stored.virtual_size
    original = sample.path if sample.format is ImageFormat.ISO else source_raw
    assert same_disk(original, "raw", stored.path, "raw")
    check_digests(stored)
    check_progress(seen)


def test_quick_import_copies_raw(samples: dict[str, Sample], source_raw: Path, tmp_path: Path) -> None:
    stored, seen = run_import(samples["raw"].path, tmp_path / "stored.raw", quick=True)
    assert stored.disk_format == "raw"
    assert stored.source_format is ImageFormat.RAW
    assert stored.path.read_bytes() == source_raw.read_bytes()
    check_digests(stored)
    check_progress(seen)


@pytest.mark.parametrize("name", ["qcow2", "iso"])
def test_quick_import_needs_raw_content(name: str, samples: dict[str, Sample], tmp_path: Path) -> None:
    error = rejected(samples[name].path, tmp_path / "stored.raw", quick=True)
    assert error.code == "IMG.0072"
    assert "quick import accepts only raw" in error.reason


def test_virtual_size_over_min_disk(tmp_path: Path, qemu_img: QemuImg) -> None:
    image = tmp_path / "big.qcow2"
    qemu_img("create", "-f", "qcow2", image, "2G")
    error = rejected(image, tmp_path / "stored.qcow2", min_disk_gb=1)
    assert error.code == "IMG.0055"
    assert "2.0 GiB" in error.reason
    assert "at least 2 GB" in error.reason


def test_virtual_size_equal_to_min_disk_fits(tmp_path: Path, qemu_img: QemuImg) -> None:
    image = tmp_path / "big.qcow2"
    qemu_img("create", "-f", "qcow2", image, "2G")
    stored, _ = run_import(image, tmp_path / "stored.qcow2", min_disk_gb=2)
    assert stored.virtual_size == 2 * GiB


def test_min_disk_may_be_left_out(samples: dict[str, Sample], tmp_path: Path) -> None:
    stored, _ = run_import(samples["qcow2"].path, tmp_path / "stored.qcow2", min_disk_gb=None)
    assert stored.virtual_size == 2 * MiB


def test_huge_virtual_disk_is_refused_without_min_disk(tmp_path: Path, qemu_img: QemuImg) -> None:
    image = tmp_path / "huge.qcow2"
    qemu_img("create", "-f", "qcow2", image, "64T")
    error = rejected(image, tmp_path / "stored.qcow2", min_disk_gb=None)
    assert error.code == "IMG.0055"
    assert "this service accepts" in error.reason


def test_file_over_max_size(samples: dict[str, Sample], tmp_path: Path) -> None:
    assert rejected(samples["qcow2"].path, tmp_path / "stored.qcow2", max_file_size=MiB).code == "IMG.0059"


def test_declared_mismatch(samples: dict[str, Sample], tmp_path: Path) -> None:
    error = rejected(samples["qcow2"].path, tmp_path / "s.qcow2", declared=ImageFormat.VMDK)
    assert error.reason == "file extension says vmdk but the content is qcow2"


def test_hostile_image_removes_existing_dest(tmp_path: Path, qemu_img: QemuImg) -> None:
    (tmp_path / "base.raw").write_bytes(bytes(4096))
    image = tmp_path / "child.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", image, "1M")
    dest = tmp_path / "stored.qcow2"
    dest.write_bytes(b"left over from an earlier attempt")
    assert "backing file" in rejected(image, dest).reason


def test_conversion_failure_removes_partial_output(
    samples: dict[str, Sample], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_done(src: Path, src_fmt: ImageFormat, dst: Path, dst_fmt: str, **kwargs: object) -> None:
        dst.write_bytes(b"partial")
        raise ConversionFailed("conversion timed out after 1 s")

    monkeypatch.setattr(pipeline_module, "qemu_img_convert", half_done)
    error = rejected(samples["qcow2"].path, tmp_path / "stored.qcow2")
    assert error.code == "IMG.0061"


def test_io_error_while_hashing_is_an_internal_error(
    samples: dict[str, Sample], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(pipeline_module, "digest_file", broken)
    error = rejected(samples["qcow2"].path, tmp_path / "stored.qcow2")
    assert isinstance(error, ConversionFailed)
    assert error.code == "IMG.0061"
    assert "Input/output error" in error.reason


def test_timeout(samples: dict[str, Sample], tmp_path: Path) -> None:
    error = rejected(samples["qcow2"].path, tmp_path / "stored.qcow2", timeout=0)
    assert isinstance(error, ConversionFailed)
    assert "timed out" in error.reason


def test_unknown_store_format(samples: dict[str, Sample], tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        run_import(samples["qcow2"].path, tmp_path / "stored.vmdk", store_format="vmdk")


def test_dest_must_not_be_the_source(samples: dict[str, Sample], tmp_path: Path) -> None:
    upload = tmp_path / "upload.qcow2"
    shutil.copyfile(samples["qcow2"].path, upload)
    with pytest.raises(ValueError):
        run_import(upload, upload)
    assert upload.exists()

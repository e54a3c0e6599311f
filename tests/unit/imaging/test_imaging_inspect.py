"""Format detection and the refusal of hostile image files."""

from __future__ import annotations

import os
import random
import shutil
import struct
import time
from pathlib import Path

import pytest

from openims.imaging import ImageFormat, ImageRejected, format_from_extension, inspect_image
from openims.imaging import inspect as inspect_module
from tests.unit.imaging.imaging_support import SAMPLE_NAMES, QemuImg, Sample, VmdkEditor

MiB = 1 << 20
GiB = 1 << 30


def rejected(path: Path, **kwargs: object) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        inspect_image(path, **kwargs)  # type: ignore[arg-type]
    return caught.value


# --- extensions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("disk.qcow2", ImageFormat.QCOW2),
        ("bucket/dir/DISK.QCOW2", ImageFormat.QCOW2),
        ("old.qcow", ImageFormat.QCOW),
        ("a.vmdk", ImageFormat.VMDK),
        ("a.vhd", ImageFormat.VHD),
        ("a.vhdx", ImageFormat.VHDX),
        ("a.vdi", ImageFormat.VDI),
        ("a.qed", ImageFormat.QED),
        ("a.raw", ImageFormat.RAW),
        ("a.iso", ImageFormat.ISO),
        ("a.tar.img", None),
        ("a.img", None),
    ],
)
def test_format_from_extension(key: str, expected: ImageFormat | None) -> None:
    assert format_from_extension(key) is expected


@pytest.mark.parametrize("key", ["win.zvhd", "win.ZVHD2", "dir/x.zvhd2"])
def test_zvhd_extensions_are_not_supported(key: str) -> None:
    with pytest.raises(ImageRejected) as caught:
        format_from_extension(key)
    assert caught.value.code == "IMG.0072"
    assert "zvhd" in caught.value.reason
    assert "not supported by this deployment" in caught.value.reason


@pytest.mark.parametrize("key", ["disk.exe", "disk", "dir.vmdk/disk", "disk.qcow2.gz"])
def test_unknown_extensions_are_not_supported(key: str) -> None:
    with pytest.raises(ImageRejected) as caught:
        format_from_extension(key)
    assert caught.value.code == "IMG.0072"


def test_qemu_names() -> None:
    assert ImageFormat.VHD.qemu_name == "vpc"
    assert ImageFormat.ISO.qemu_name == "raw"
    assert ImageFormat.QCOW2.qemu_name == "qcow2"
    assert ImageFormat.VHD.value == "vhd"


# --- every supported format -----------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_supported_format_is_detected(name: str, samples: dict[str, Sample], source_raw: Path) -> None:
    sample = samples[name]
    result = inspect_image(sample.path, max_file_size=64 * MiB)
    assert result.format is sample.format
    assert result.file_size == sample.path.stat().st_size
    if sample.format is ImageFormat.VHD:
        # qemu rounds a VHD up to a whole CHS geometry.
        assert 2 * MiB <= result.virtual_size < 2 * MiB + 64 * 1024
    elif sample.format is ImageFormat.ISO:
        assert result.virtual_size == sample.path.stat().st_size
    else:
        assert result.virtual_size == source_raw.stat().st_size


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_matching_declared_format_is_accepted(name: str, samples: dict[str, Sample]) -> None:
    sample = samples[name]
    assert inspect_image(sample.path, declared=sample.format).format is sample.format


def test_detection_ignores_the_file_name(samples: dict[str, Sample], tmp_path: Path) -> None:
    misnamed = tmp_path / "disk.vmdk"
    shutil.copyfile(samples["qcow2"].path, misnamed)
    assert inspect_image(misnamed).format is ImageFormat.QCOW2


def test_extension_content_mismatch(samples: dict[str, Sample]) -> None:
    error = rejected(samples["qcow2"].path, declared=ImageFormat.VMDK)
    assert error.code == "IMG.0057"
    assert error.reason == "file extension says vmdk but the content is qcow2"


def test_raw_extension_with_other_content(samples: dict[str, Sample]) -> None:
    error = rejected(samples["vhdx"].path, declared=ImageFormat.RAW)
    assert error.reason == "file extension says raw but the content is vhdx"


def test_declared_format_with_raw_content(samples: dict[str, Sample]) -> None:
    error = rejected(samples["raw"].path, declared=ImageFormat.QCOW2)
    assert error.reason == "file extension says qcow2 but the content is raw"


def test_partition_table_counts_as_raw(tmp_path: Path) -> None:
    disk = bytearray(MiB)
    disk[446:462] = struct.pack("<B3BB3BII", 0x00, 0, 2, 0, 0x83, 0xFE, 0xFF, 0xFF, 2048, 4096)
    disk[510:512] = b"\x55\xaa"
    path = tmp_path / "mbr.raw"
    path.write_bytes(bytes(disk))
    assert inspect_image(path, declared=ImageFormat.RAW).format is ImageFormat.RAW


# --- file checks before any content is read --------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    error = rejected(tmp_path / "nothing.qcow2")
    assert (error.code, error.reason) == ("IMG.0057", "the image file was not found")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.qcow2"
    path.touch()
    error = rejected(path)
    assert (error.code, error.reason) == ("IMG.0057", "the image file is empty")


def test_directory_is_refused(tmp_path: Path) -> None:
    assert rejected(tmp_path).code == "IMG.0057"


def test_symlink_is_refused(samples: dict[str, Sample], tmp_path: Path) -> None:
    link = tmp_path / "link.qcow2"
    link.symlink_to(samples["qcow2"].path)
    assert "symbolic link" in rejected(link).reason


def test_file_over_the_size_limit(samples: dict[str, Sample]) -> None:
    error = rejected(samples["qcow2"].path, max_file_size=1024)
    assert error.code == "IMG.0059"
    assert "1.0 KiB allowed" in error.reason


def test_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.raw"
    with open(huge, "wb") as f:
        f.truncate(1 << 40)  # sparse: 1 TiB that reading would take hours
    started = time.monotonic()
    assert rejected(huge, max_file_size=MiB).code == "IMG.0059"
    assert time.monotonic() - started < 1


# --- hostile images ---------------------------------------------------------------------------


@pytest.fixture
def base_raw(tmp_path: Path) -> Path:
    base = tmp_path / "base.raw"
    base.write_bytes(b"secret" * 1000)
    return base


@pytest.mark.parametrize("fmt", ["qcow2", "qcow", "qed"])
def test_backing_file_is_refused(fmt: str, tmp_path: Path, base_raw: Path, qemu_img: QemuImg) -> None:
    image = tmp_path / f"child.{fmt}"
    qemu_img("create", "-f", fmt, "-b", base_raw, "-F", "raw", image, "1M")
    error = rejected(image)
    assert error.code == "IMG.0057"
    assert "backing file" in error.reason


def test_backing_file_reason_names_the_file(tmp_path: Path, qemu_img: QemuImg) -> None:
    image = tmp_path / "child.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", "base.img", "-F", "raw", "-u", image, "1M")
    assert rejected(image).reason == (
        "the qcow2 file names a backing file ('base.img'); images with backing files are refused"
    )


def test_external_data_file_is_refused(tmp_path: Path, qemu_img: QemuImg) -> None:
    image = tmp_path / "split.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}", image, "1M")
    error = rejected(image)
    assert error.code == "IMG.0057"
    assert "external data file" in error.reason


def test_qemu_cross_check_catches_what_the_inspector_misses(
    tmp_path: Path, base_raw: Path, qemu_img: QemuImg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the Python-side checks switched off, qemu-img info alone refuses."""
    monkeypatch.setattr(inspect_module, "_oslo_safety", lambda *args: None)
    monkeypatch.setattr(inspect_module, "_own_safety", lambda *args: None)
    backed = tmp_path / "child.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", base_raw, "-F", "raw", backed, "1M")
    assert "backing file" in rejected(backed).reason
    split = tmp_path / "split.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}", split, "1M")
    assert "external data file" in rejected(split).reason


def test_vmdk_descriptor_pointing_outside(tmp_path: Path) -> None:
    descriptor = tmp_path / "flat.vmdk"
    descriptor.write_text(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        'createType="monolithicFlat"\n\n# Extent description\nRW 2048 FLAT "/etc/passwd" 0\n'
    )
    error = rejected(descriptor)
    assert error.code == "IMG.0057"
    assert "monolithicflat" in error.reason


def test_vmdk_sparse_descriptor_file_referring_to_another_file(tmp_path: Path) -> None:
    """No slash, allowed subformat: oslo passes it, but qemu would open the extent."""
    descriptor = tmp_path / "desc.vmdk"
    descriptor.write_text(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        'createType="monolithicSparse"\n\n# Extent description\nRW 2048 SPARSE "other.vmdk"\n'
    )
    error = rejected(descriptor)
    assert error.code == "IMG.0057"
    assert "separate extent files" in error.reason


def _sparse_vmdk(samples: dict[str, Sample], tmp_path: Path) -> Path:
    copy = tmp_path / "disk.vmdk"
    shutil.copyfile(samples["vmdk-monolithicSparse"].path, copy)
    return copy


def test_sparse_vmdk_naming_extra_extents(
    samples: dict[str, Sample], tmp_path: Path, vmdk_editor: VmdkEditor
) -> None:
    image = _sparse_vmdk(samples, tmp_path)

    def add_extent(text: str) -> str:
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("RW "))
        lines.insert(at + 1, 'RW 4096 SPARSE "neighbour.vmdk"')
        return "\n".join(lines) + "\n"

    vmdk_editor(image, add_extent)
    error = rejected(image)
    assert error.code == "IMG.0057"
    assert "2 extents" in error.reason


def test_sparse_vmdk_with_extent_path(
    samples: dict[str, Sample], tmp_path: Path, vmdk_editor: VmdkEditor
) -> None:
    image = _sparse_vmdk(samples, tmp_path)
    vmdk_editor(image, lambda text: text.replace('SPARSE "', 'SPARSE "../../etc/'))
    assert "outside the image" in rejected(image).reason


@pytest.mark.parametrize("parent_cid", ["ffffffff", "12345678"])
def test_sparse_vmdk_with_parent_disk(
    parent_cid: str,
    samples: dict[str, Sample],
    tmp_path: Path,
    vmdk_editor: VmdkEditor,
) -> None:
    """parentFileNameHint makes qemu open another file; oslo does not look for it."""
    image = _sparse_vmdk(samples, tmp_path)
    vmdk_editor(
        image,
        lambda text: text.replace(
            "parentCID=ffffffff", f'parentCID={parent_cid}\nparentFileNameHint="base.vmdk"'
        ),
    )
    error = rejected(image)
    assert error.code == "IMG.0057"
    assert "parent" in error.reason


def test_sparse_vmdk_parent_caught_by_qemu_alone(
    samples: dict[str, Sample],
    tmp_path: Path,
    vmdk_editor: VmdkEditor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inspect_module, "_own_safety", lambda *args: None)
    image = _sparse_vmdk(samples, tmp_path)
    vmdk_editor(
        image,
        lambda text: text.replace("parentCID=ffffffff", 'parentCID=ffffffff\nparentFileNameHint="base.vmdk"'),
    )
    assert "backing file ('base.vmdk')" in rejected(image).reason


@pytest.mark.parametrize("length", [32, 300])
@pytest.mark.parametrize("declared", [ImageFormat.QCOW2, None])
def test_truncated_qcow2_header(
    length: int, declared: ImageFormat | None, samples: dict[str, Sample], tmp_path: Path
) -> None:
    cut = tmp_path / "cut.qcow2"
    cut.write_bytes(samples["qcow2"].path.read_bytes()[:length])
    error = rejected(cut, declared=declared)
    assert error.code == "IMG.0057"
    assert "truncated" in error.reason


@pytest.mark.parametrize(
    "name",
    ["qcow2", "qcow", "qed", "vdi", "vhdx", "vmdk-monolithicSparse", "vmdk-streamOptimized", "vhd-dynamic"],
)
def test_truncated_body(name: str, samples: dict[str, Sample], tmp_path: Path) -> None:
    """qemu-img convert would read the missing clusters as zeros: refuse instead."""
    data = samples[name].path.read_bytes()
    cut = tmp_path / "cut.img"
    cut.write_bytes(data[: len(data) // 2])
    error = rejected(cut)
    assert error.code == "IMG.0057"


def test_truncated_iso(samples: dict[str, Sample], tmp_path: Path) -> None:
    cut = tmp_path / "cut.iso"
    cut.write_bytes(samples["iso"].path.read_bytes()[: 100 * 1024])
    assert "truncated" in rejected(cut).reason


def _patched(source: Path, target: Path, offset: int, value: bytes) -> Path:
    data = bytearray(source.read_bytes())
    data[offset : offset + len(value)] = value
    target.write_bytes(bytes(data))
    return target


def test_qcow2_unknown_version(samples: dict[str, Sample], tmp_path: Path) -> None:
    image = _patched(samples["qcow2"].path, tmp_path / "v7.qcow2", 4, struct.pack(">I", 7))
    assert rejected(image).code == "IMG.0057"


def test_qcow2_unknown_incompatible_feature(samples: dict[str, Sample], tmp_path: Path) -> None:
    image = _patched(samples["qcow2"].path, tmp_path / "feature.qcow2", 72, struct.pack(">Q", 1 << 40))
    assert "incompatible features" in rejected(image).reason


def test_qcow2_marked_corrupt(samples: dict[str, Sample], tmp_path: Path) -> None:
    # Bit 1 of the incompatible features is "corrupt": only qemu-img reports it.
    image = _patched(samples["qcow2"].path, tmp_path / "corrupt.qcow2", 72, struct.pack(">Q", 2))
    assert "marked corrupt" in rejected(image).reason


def test_qcow2_bad_cluster_size(samples: dict[str, Sample], tmp_path: Path) -> None:
    image = _patched(samples["qcow2"].path, tmp_path / "cluster.qcow2", 20, struct.pack(">I", 40))
    error = rejected(image)
    assert error.code == "IMG.0057"
    assert "invalid cluster size" in error.reason


def test_header_only_qemu_refuses(samples: dict[str, Sample], tmp_path: Path) -> None:
    """A field neither oslo nor our code reads (refcount_order): qemu-img info refuses,
    and its message reaches the user without our server paths."""
    image = _patched(samples["qcow2"].path, tmp_path / "refcount.qcow2", 96, struct.pack(">I", 7))
    error = rejected(image)
    assert error.code == "IMG.0057"
    assert error.reason.startswith("the file cannot be read as qcow2: Could not open 'refcount.qcow2'")
    assert str(tmp_path) not in error.reason


def test_qcow2_header_bomb(samples: dict[str, Sample], tmp_path: Path) -> None:
    """A header claiming an enormous disk and L1 table is refused quickly."""
    data = bytearray(samples["qcow2"].path.read_bytes()[: 3 * 65536])
    data[24:32] = struct.pack(">Q", 1 << 62)  # virtual size
    data[36:40] = struct.pack(">I", 1 << 28)  # L1 entries
    image = tmp_path / "bomb.qcow2"
    image.write_bytes(bytes(data))
    started = time.monotonic()
    assert rejected(image).code == "IMG.0057"
    assert time.monotonic() - started < 5


def test_qcow2_oversized_l1_claim(samples: dict[str, Sample], tmp_path: Path) -> None:
    """Only the L1 size is inflated: the table would run past the end of the file."""
    image = _patched(samples["qcow2"].path, tmp_path / "l1.qcow2", 36, struct.pack(">I", 1 << 22))
    assert "L1 table lies beyond the end of the file" in rejected(image).reason


def test_qcow2_l1_bomb_inside_the_file(samples: dict[str, Sample], tmp_path: Path) -> None:
    """A 32 MiB L1 table of garbage that does fit in the file: qemu-img check
    would print millions of errors; its output limit stops it early."""
    data = bytearray(samples["qcow2"].path.read_bytes())
    data[36:40] = struct.pack(">I", 1 << 22)
    image = tmp_path / "l1.qcow2"
    image.write_bytes(bytes(data) + random.Random(7).randbytes(33 * MiB))
    started = time.monotonic()
    assert rejected(image).code == "IMG.0057"
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("own_checks", [True, False])
def test_encrypted_qcow2(
    own_checks: bool, samples: dict[str, Sample], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not own_checks:
        monkeypatch.setattr(inspect_module, "_own_safety", lambda *args: None)
    # crypt_method 1 (AES): we cannot decrypt it, so it cannot be imported.
    image = _patched(samples["qcow2"].path, tmp_path / "aes.qcow2", 32, struct.pack(">I", 1))
    error = rejected(image)
    assert error.code == "IMG.0072"
    assert "encrypted" in error.reason


def test_luks_is_not_supported(tmp_path: Path) -> None:
    header = struct.pack(
        ">6sH32s32s32sII",
        b"LUKS\xba\xbe",
        1,
        b"aes".ljust(32, b"\0"),
        b"xts-plain64".ljust(32, b"\0"),
        b"sha256".ljust(32, b"\0"),
        4096,
        64,
    )
    image = tmp_path / "disk.img"
    image.write_bytes(header.ljust(MiB, b"\0"))
    error = rejected(image)
    assert error.code == "IMG.0072"
    assert "LUKS" in error.reason


def test_polyglot_qcow2_and_iso(samples: dict[str, Sample], tmp_path: Path) -> None:
    """A qcow2 whose unused header cluster also holds an ISO volume descriptor."""
    data = bytearray(samples["qcow2"].path.read_bytes())
    pvd = bytearray(2048)
    pvd[0:7] = b"\x01CD001\x01"
    data[32768 : 32768 + 2048] = pvd
    image = tmp_path / "both.img"
    image.write_bytes(bytes(data))
    assert "several formats" in rejected(image).reason


def test_differencing_vhd(samples: dict[str, Sample], tmp_path: Path) -> None:
    data = bytearray(samples["vhd-dynamic"].path.read_bytes())
    data[60:64] = struct.pack(">I", 4)  # disk type: differencing
    data[64:68] = b"\x00" * 4
    data[64:68] = struct.pack(">I", ~sum(data[:512]) & 0xFFFFFFFF)
    image = tmp_path / "diff.vhd"
    image.write_bytes(bytes(data))
    assert "differencing" in rejected(image).reason


def test_fixed_vhd_with_bad_footer_checksum(samples: dict[str, Sample], tmp_path: Path) -> None:
    data = bytearray(samples["vhd-fixed"].path.read_bytes())
    data[-512 + 48] ^= 0x01  # change the size, not the checksum
    image = tmp_path / "fixed.vhd"
    image.write_bytes(bytes(data))
    assert "checksum" in rejected(image).reason


def test_differencing_vdi(samples: dict[str, Sample], tmp_path: Path) -> None:
    image = _patched(samples["vdi"].path, tmp_path / "diff.vdi", 0x4C, struct.pack("<I", 4))
    assert "differencing" in rejected(image).reason


def test_vdi_claiming_more_blocks_than_the_file_holds(samples: dict[str, Sample], tmp_path: Path) -> None:
    image = _patched(samples["vdi"].path, tmp_path / "blocks.vdi", 0x184, struct.pack("<I", 1000))
    assert rejected(image).code == "IMG.0057"


def test_damaged_vhdx_region_table(samples: dict[str, Sample], tmp_path: Path) -> None:
    image = _patched(samples["vhdx"].path, tmp_path / "bad.vhdx", 192 * 1024, b"xxxx")
    assert rejected(image).code == "IMG.0057"


def test_declared_raw_random_data_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "random.raw"
    path.write_bytes(os.urandom(100_000))
    result = inspect_image(path, declared=ImageFormat.RAW)
    assert result.format is ImageFormat.RAW
    assert result.virtual_size == 100_352  # qemu rounds raw disks up to whole sectors


def test_huge_virtual_size_is_reported_not_rejected(tmp_path: Path, qemu_img: QemuImg) -> None:
    """inspect_image reports the size; the limits are the pipeline's business."""
    image = tmp_path / "big.qcow2"
    qemu_img("create", "-f", "qcow2", image, "64T")
    assert inspect_image(image).virtual_size == 64 << 40

"""Helpers shared by the imaging tests (a module, since conftest is not for importing)."""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from openims.imaging import ImageFormat

MiB = 1 << 20
SECTOR = 2048  # ISO 9660 logical block

QemuImg = Callable[..., str]
VmdkEditor = Callable[[Path, Callable[[str], str]], None]


def run_qemu_img(*args: str | Path) -> str:
    """Run qemu-img; returns stdout, raises on failure."""
    exe = shutil.which("qemu-img")
    if exe is None:
        pytest.fail("qemu-img is required by the imaging tests: apt-get install qemu-utils")
    proc = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"qemu-img {' '.join(map(str, args))} failed: {proc.stderr}")
    return proc.stdout


def make_iso(path: Path, payload: bytes, *, hybrid: bool = False) -> None:
    """A minimal ISO 9660 file: 16 system sectors, a primary volume descriptor,
    a terminator, then ``payload``. ``hybrid`` adds an MBR like isohybrid does."""
    data_sectors = -(-len(payload) // SECTOR)
    total = 16 + 2 + data_sectors
    image = bytearray(total * SECTOR)
    pvd = bytearray(SECTOR)
    pvd[0] = 1  # primary volume descriptor
    pvd[1:6] = b"CD001"
    pvd[6] = 1
    pvd[40:72] = b"OPENIMS TEST".ljust(32)
    pvd[80:88] = struct.pack("<I", total) + struct.pack(">I", total)
    pvd[128:132] = struct.pack("<H", SECTOR) + struct.pack(">H", SECTOR)
    image[16 * SECTOR : 17 * SECTOR] = pvd
    terminator = bytearray(SECTOR)
    terminator[0] = 255
    terminator[1:6] = b"CD001"
    terminator[6] = 1
    image[17 * SECTOR : 18 * SECTOR] = terminator
    image[18 * SECTOR : 18 * SECTOR + len(payload)] = payload
    if hybrid:
        entry = struct.pack("<B3BB3BII", 0x80, 0, 2, 0, 0x17, 0xFE, 0xFF, 0xFF, 0, total * 4)
        image[446:462] = entry
        image[510:512] = b"\x55\xaa"
    path.write_bytes(bytes(image))


def write_source_raw(path: Path) -> Path:
    """A 2 MiB raw disk: random data, a hole of zeros, then a text pattern."""
    rng = random.Random(20240601)
    data = rng.randbytes(MiB) + bytes(MiB // 2) + (b"openims-imaging-test " * 30000)[: MiB // 2]
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class Sample:
    path: Path
    format: ImageFormat


# name -> (qemu-img output format, extra -o options, expected format)
_CONVERTED: dict[str, tuple[str, str | None, ImageFormat]] = {
    "qcow2": ("qcow2", None, ImageFormat.QCOW2),
    "qcow2-compat-0.10": ("qcow2", "compat=0.10", ImageFormat.QCOW2),
    "qcow": ("qcow", None, ImageFormat.QCOW),
    "vmdk-monolithicSparse": ("vmdk", "subformat=monolithicSparse", ImageFormat.VMDK),
    "vmdk-streamOptimized": ("vmdk", "subformat=streamOptimized", ImageFormat.VMDK),
    "vhd-dynamic": ("vpc", "subformat=dynamic", ImageFormat.VHD),
    "vhd-fixed": ("vpc", "subformat=fixed", ImageFormat.VHD),
    "vhdx": ("vhdx", None, ImageFormat.VHDX),
    "vdi": ("vdi", None, ImageFormat.VDI),
    "qed": ("qed", None, ImageFormat.QED),
}
SAMPLE_NAMES = [*_CONVERTED, "raw", "iso", "iso-hybrid"]


def build_samples(folder: Path, source_raw: Path) -> dict[str, Sample]:
    """One image per supported format, all holding the data of ``source_raw``
    (the ISOs carry it as their payload)."""
    made: dict[str, Sample] = {}
    for name, (qemu_fmt, options, fmt) in _CONVERTED.items():
        target = folder / f"{name}.img"
        args: list[str | Path] = ["convert", "-f", "raw", "-O", qemu_fmt]
        if options:
            args += ["-o", options]
        run_qemu_img(*args, source_raw, target)
        made[name] = Sample(target, fmt)
    raw = folder / "raw.img"
    shutil.copyfile(source_raw, raw)
    made["raw"] = Sample(raw, ImageFormat.RAW)
    for name, hybrid in (("iso", False), ("iso-hybrid", True)):
        iso = folder / f"{name}.iso"
        make_iso(iso, source_raw.read_bytes(), hybrid=hybrid)
        made[name] = Sample(iso, ImageFormat.ISO)
    return made


def rewrite_vmdk_descriptor(path: Path, edit: Callable[[str], str]) -> None:
    """Replace the descriptor embedded in a monolithicSparse VMDK, in place."""
    data = bytearray(path.read_bytes())
    desc_sector, desc_sectors = struct.unpack("<QQ", data[28:44])
    start, length = desc_sector * 512, desc_sectors * 512
    text = bytes(data[start : start + length]).split(b"\x00", 1)[0].decode("ascii")
    new = edit(text).encode("ascii")
    assert len(new) < length, "descriptor does not fit"
    data[start : start + length] = new.ljust(length, b"\x00")
    path.write_bytes(bytes(data))

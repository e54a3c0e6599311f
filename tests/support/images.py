"""Disk images made at test time with qemu-img: nothing binary is committed."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

MiB = 1024 * 1024

# Our format name → (qemu-img format, extra create options)
FORMATS: dict[str, tuple[str, list[str]]] = {
    "qcow2": ("qcow2", []),
    "vmdk": ("vmdk", ["-o", "subformat=monolithicSparse"]),
    "vmdk-stream": ("vmdk", ["-o", "subformat=streamOptimized"]),
    "vhd": ("vpc", []),
    "vhdx": ("vhdx", []),
    "vdi": ("vdi", []),
    "qed": ("qed", []),
    "raw": ("raw", []),
}
EXTENSIONS = {"qcow2": "qcow2", "vmdk": "vmdk", "vmdk-stream": "vmdk", "vhd": "vhd", "vhdx": "vhdx",
              "vdi": "vdi", "qed": "qed", "raw": "raw"}


def write_pattern(path: Path, size: int = 4 * MiB, seed: int = 1) -> Path:
    """A raw disk with recognisable, non-zero content in a few places (so conversion has data to keep)."""
    with open(path, "wb") as f:
        f.truncate(size)
        for i, offset in enumerate(range(0, size, size // 4)):
            f.seek(offset)
            f.write(hashlib.sha256(f"{seed}-{i}".encode()).digest() * 256)
    return path


def make_image(directory: Path, fmt: str, *, size: int = 4 * MiB, seed: int = 1, name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    raw = write_pattern(directory / f".src-{seed}-{os.getpid()}.raw", size, seed)
    qfmt, opts = FORMATS[fmt]
    out = directory / (name or f"disk-{seed}.{EXTENSIONS[fmt]}")
    if fmt == "raw":
        raw.replace(out)
    else:
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", qfmt, *opts, str(raw), str(out)],
                       check=True)
        raw.unlink()
    return out


def qemu_compare(a: Path, fmt_a: str, b: Path, fmt_b: str) -> bool:
    r = subprocess.run(["qemu-img", "compare", "-q", "-f", fmt_a, "-F", fmt_b, str(a), str(b)])
    return r.returncode == 0


def file_digests(path: Path) -> tuple[str, str, int]:
    md5, sha = hashlib.md5(), hashlib.sha512()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return md5.hexdigest(), sha.hexdigest(), size

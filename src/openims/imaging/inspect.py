"""Identify an uploaded disk image and decide whether it is safe to convert.

Two independent layers look at every file:

1. oslo.utils' format inspector (pure Python, reads only headers) names the
   format from the content and runs its safety checks; we add checks it lacks
   (VMDK parent links and extra extents, QED and qcow v1 backing files, VHD and
   VDI differencing disks, truncated headers, fixed VHD footers);
2. ``qemu-img info -f <that format>`` under resource limits must agree: same
   format, no backing file, no external data file, a single VMDK extent that
   is the file itself, same virtual size.

The file extension is never used to pick a format, only compared with it.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oslo_utils.imageutils import format_inspector

from openims.imaging.errors import (
    IMG_FORMAT,
    IMG_TOO_LARGE,
    IMG_UNSUPPORTED,
    FormatMismatch,
    ImageRejected,
)
from openims.imaging.formats import ImageFormat
from openims.imaging.qemu import INFO_TIMEOUT, qemu_img_check, qemu_img_data_end, qemu_img_info
from openims.units import human_size

__all__ = [
    "ImageFormat",
    "Inspection",
    "format_from_extension",
    "inspect_image",
]

_EXTENSIONS: dict[str, ImageFormat | None] = {
    "qcow2": ImageFormat.QCOW2,
    "qcow": ImageFormat.QCOW,
    "vmdk": ImageFormat.VMDK,
    "vhd": ImageFormat.VHD,
    "vhdx": ImageFormat.VHDX,
    "vdi": ImageFormat.VDI,
    "qed": ImageFormat.QED,
    "raw": ImageFormat.RAW,
    "iso": ImageFormat.ISO,
    # ".img" is used for every kind of disk image: the content decides.
    "img": None,
}
_SUPPORTED_TEXT = ", ".join(f".{ext}" for ext in _EXTENSIONS)

# Inspector names (oslo's) that map directly onto our formats.
_INSPECTED: dict[str, ImageFormat] = {
    "qcow2": ImageFormat.QCOW2,
    "vmdk": ImageFormat.VMDK,
    "vhd": ImageFormat.VHD,
    "vhdx": ImageFormat.VHDX,
    "vdi": ImageFormat.VDI,
    "qed": ImageFormat.QED,
    "iso": ImageFormat.ISO,
}
# A partition table is just the start of a raw disk.
_RAW_LIKE = {"raw", "gpt"}

# Magic numbers of formats qemu can read. A file that the inspector calls raw
# but starts with one of these is a damaged or unsupported variant.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"QFI\xfb", "qcow2"),
    (0, b"KDMV", "vmdk"),
    (0, b"COWD", "vmdk"),
    (0, b"# Disk DescriptorFile", "vmdk"),
    (0, b"conectix", "vhd"),
    (0, b"vhdxfile", "vhdx"),
    (0, b"QED\x00", "qed"),
    (0x40, b"\x7f\x10\xda\xbe", "vdi"),
    (0, b"LUKS\xba\xbe", "LUKS"),
)

# Small reads while the inspectors walk headers (the VHDX one only finds its
# metadata if it sees it arrive piece by piece), larger ones afterwards (a
# streamOptimized VMDK with a footer has to be read to the end).
_SMALL_READ = 4096
_SMALL_READ_SPAN = 16 << 20
_LARGE_READ = 1 << 20

_VHD_FIXED, _VHD_DYNAMIC, _VHD_DIFFERENCING = 2, 3, 4
_VDI_DYNAMIC, _VDI_STATIC = 1, 2
_QED_BACKING_FILE = 0x01
_QED_NEED_CHECK = 0x02
_VMDK_SINGLE_FILE = {"monolithicsparse", "streamoptimized"}
# Formats for which `qemu-img check` validates the metadata.
_CHECKABLE = {ImageFormat.QCOW2, ImageFormat.QED, ImageFormat.VMDK, ImageFormat.VDI, ImageFormat.VHDX}
# Formats whose header virtual size we can compare with qemu's.
_SIZE_CROSS_CHECKED = {
    ImageFormat.QCOW2,
    ImageFormat.QCOW,
    ImageFormat.VMDK,
    ImageFormat.VDI,
    ImageFormat.VHDX,
    ImageFormat.QED,
}


@dataclass(frozen=True)
class Inspection:
    format: ImageFormat
    virtual_size: int
    file_size: int


def format_from_extension(key: str) -> ImageFormat | None:
    """The format an object key's extension claims; None for ".img" (any format).

    Raises ImageRejected (IMG.0072) for zvhd/zvhd2 and unknown extensions.
    """
    name = key.rsplit("/", 1)[-1]
    if "." not in name:
        raise ImageRejected(
            IMG_UNSUPPORTED,
            f"the image file name has no extension; supported extensions are {_SUPPORTED_TEXT}",
        )
    extension = name.rsplit(".", 1)[1].lower()
    if extension in ("zvhd", "zvhd2"):
        raise ImageRejected(
            IMG_UNSUPPORTED,
            f"{extension} images are not supported by this deployment; "
            f"supported extensions are {_SUPPORTED_TEXT}",
        )
    if extension not in _EXTENSIONS:
        raise ImageRejected(
            IMG_UNSUPPORTED,
            f"the extension .{extension[:16]} is not a supported image format; "
            f"supported extensions are {_SUPPORTED_TEXT}",
        )
    return _EXTENSIONS[extension]


def _check_file(path: Path, max_file_size: int | None) -> int:
    """Existence, type and size, before any content is read."""
    try:
        # lstat: a symbolic link could point anywhere on the server.
        info = os.lstat(path)
    except FileNotFoundError:
        raise ImageRejected(IMG_FORMAT, "the image file was not found") from None
    except OSError as exc:
        raise ImageRejected(IMG_FORMAT, f"the image file cannot be read ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise ImageRejected(IMG_FORMAT, "the image file is a symbolic link")
    if not stat.S_ISREG(info.st_mode):
        raise ImageRejected(IMG_FORMAT, "the image file is not a regular file")
    if info.st_size == 0:
        raise ImageRejected(IMG_FORMAT, "the image file is empty")
    if max_file_size is not None and info.st_size > max_file_size:
        raise ImageRejected(
            IMG_TOO_LARGE,
            f"the image file is {human_size(info.st_size)}, "
            f"more than the {human_size(max_file_size)} allowed",
        )
    return info.st_size


def _read_at(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def _run_inspectors(path: Path) -> list[format_inspector.FileInspector]:
    """Feed the file to every oslo inspector until they have all decided."""
    with open(path, "rb") as f:
        wrapper = format_inspector.InspectWrapper(f)
        try:
            offset = 0
            while True:
                data = wrapper.read(_SMALL_READ if offset < _SMALL_READ_SPAN else _LARGE_READ)
                if not data:
                    break
                offset += len(data)
                if wrapper.formats is not None:
                    break
        finally:
            wrapper.close()
        matches = wrapper.formats
    # After close() the wrapper always decides; an empty answer means raw.
    return matches or []


def _header(inspector: format_inspector.FileInspector) -> bytes:
    if not inspector.has_region("header"):
        return b""
    return bytes(inspector.region("header").data)


def _fixed_vhd(path: Path, file_size: int) -> bool:
    """True if the file ends with a valid footer of a fixed-size VHD.

    A fixed VHD is a raw disk followed by a 512-byte footer; nothing marks it
    at the start, so the inspector sees raw.
    """
    if file_size < 1024:
        return False
    footer = _read_at(path, file_size - 512, 512)
    if not footer.startswith(b"conectix"):
        return False
    (checksum,) = struct.unpack(">I", footer[64:68])
    if checksum != (~sum(footer[:64] + footer[68:])) & 0xFFFFFFFF:
        raise ImageRejected(IMG_FORMAT, "the file ends with a VHD footer whose checksum is wrong")
    (current_size,) = struct.unpack(">Q", footer[48:56])
    (disk_type,) = struct.unpack(">I", footer[60:64])
    if disk_type != _VHD_FIXED:
        raise ImageRejected(
            IMG_FORMAT,
            "the file ends with a VHD footer of a dynamic or differencing disk but has no VHD header",
        )
    if current_size > file_size - 512:
        raise ImageRejected(IMG_FORMAT, "the VHD footer claims a disk larger than the file")
    return True


def _detect(path: Path, file_size: int) -> tuple[ImageFormat, format_inspector.FileInspector | None]:
    """The format of the content, with the oslo inspector that recognised it."""
    matches = _run_inspectors(path)
    specific = [m for m in matches if m.NAME not in _RAW_LIKE]
    if len(specific) > 1:
        names = ", ".join(sorted(m.NAME for m in specific))
        raise ImageRejected(
            IMG_FORMAT,
            f"the file is valid as several formats at once ({names}); such ambiguous files are refused",
        )
    if specific:
        inspector = specific[0]
        if inspector.NAME == "luks":
            raise ImageRejected(IMG_UNSUPPORTED, "LUKS-encrypted images are not supported")
        fmt = _INSPECTED.get(inspector.NAME)
        if fmt is None:
            raise ImageRejected(IMG_UNSUPPORTED, f"the image format {inspector.NAME} is not supported")
        if fmt is ImageFormat.QCOW2 and _header(inspector)[4:8] == b"\x00\x00\x00\x01":
            # oslo reads qcow version 1 as a (refused) qcow2; it is its own qemu format.
            fmt = ImageFormat.QCOW
        return fmt, inspector
    if _fixed_vhd(path, file_size):
        return ImageFormat.VHD, None
    start = _read_at(path, 0, 512)
    for offset, magic, name in _SIGNATURES:
        if start[offset : offset + len(magic)] == magic:
            raise ImageRejected(
                IMG_FORMAT,
                f"the file starts with a {name} signature but its header is truncated, "
                "corrupt or of an unsupported variant",
            )
    return ImageFormat.RAW, None


def _backing_name(path: Path, header: bytes) -> str:
    """The backing file name a qcow/qcow2 header points at, for the message."""
    if len(header) < 20:
        return ""
    offset, length = struct.unpack(">QI", header[8:20])
    if not offset or not 0 < length <= 1023:
        return ""
    name = _read_at(path, offset, length).decode("utf-8", "replace")
    return f" ({name[:100]!r})"


def _explain(
    fmt: ImageFormat, path: Path, inspector: format_inspector.FileInspector, name: str, exc: Any
) -> str:
    """A user-facing sentence for one failed oslo safety check."""
    label = fmt.value
    if name == "backing_file":
        backing = _backing_name(path, _header(inspector))
        return f"the {label} file names a backing file{backing}; images with backing files are refused"
    if name == "data_file":
        return f"the {label} file keeps its data in an external data file; such images are refused"
    if name == "unknown_features":
        return f"the {label} header uses a version or incompatible features this service does not accept"
    if name == "descriptor":
        vmdk_type = getattr(inspector, "vmdktype", "")
        if str(exc) == "Unsupported subformat":
            return (
                f"the VMDK subformat {vmdk_type!r} is refused; only single-file monolithicSparse "
                "and streamOptimized VMDK images are accepted"
            )
        if str(exc) == "Invalid extent filenames found":
            return "the VMDK descriptor points at files outside the image; such images are refused"
        return f"the VMDK descriptor is not acceptable ({exc})"
    if name == "footer":
        return f"the streamOptimized VMDK footer does not match its header ({exc})"
    return f"the {label} file failed the {name!r} safety check ({exc})"


def _oslo_safety(fmt: ImageFormat, path: Path, inspector: format_inspector.FileInspector) -> None:
    # oslo refuses QED and qcow v1 outright; for those our own checks below
    # take the place of the refused ones.
    tolerated = {ImageFormat.QED: {"banned"}, ImageFormat.QCOW: {"unknown_features"}}.get(fmt, set())
    try:
        inspector.safety_check()
    except format_inspector.SafetyCheckFailed as exc:
        failures = {name: err for name, err in exc.failures.items() if name not in tolerated}
        if failures:
            name, err = next(iter(failures.items()))
            raise ImageRejected(IMG_FORMAT, _explain(fmt, path, inspector, name, err)) from None
    except format_inspector.ImageFormatError as exc:
        raise ImageRejected(
            IMG_FORMAT, f"the {fmt.value} header is truncated or inconsistent ({exc})"
        ) from None


def _check_vmdk(inspector: format_inspector.FileInspector) -> None:
    if not inspector.has_region("header"):
        # A bare descriptor file always refers to extents in other files.
        raise ImageRejected(
            IMG_FORMAT,
            "VMDK descriptor files that refer to separate extent files are refused; "
            "upload a single-file (monolithicSparse or streamOptimized) VMDK",
        )
    text: str = getattr(inspector, "desc_text", None) or ""
    extents = []
    for raw_line in text.splitlines():
        line = raw_line.strip()  # oslo has already lower-cased the descriptor
        if line.startswith(("rw ", "rdonly ", "noaccess ")):
            extents.append(line)
        elif line.startswith("parentfilenamehint"):
            # qemu would open the parent as a backing file.
            raise ImageRejected(
                IMG_FORMAT, "the VMDK is a delta disk that names a parent disk; such images are refused"
            )
        elif line.replace(" ", "").startswith("parentcid=") and line.split("=", 1)[1].strip() != "ffffffff":
            raise ImageRejected(
                IMG_FORMAT, "the VMDK is a delta disk that depends on a parent disk; such images are refused"
            )
    if len(extents) != 1 or extents[0].split()[2:3] != ["sparse"]:
        raise ImageRejected(
            IMG_FORMAT,
            f"the VMDK descriptor lists {len(extents)} extents; only images made of their own "
            "single sparse extent are accepted",
        )


def _check_qcow_tables(fmt: ImageFormat, header: bytes, file_size: int) -> None:
    """The L1 and refcount tables must lie inside the file.

    qemu always writes them into the image, so a table past the end means a
    truncated file or a forged header; refusing here also spares qemu-img
    from walking millions of garbage table entries.
    """
    if fmt is ImageFormat.QCOW:
        (size,) = struct.unpack(">Q", header[24:32])
        cluster_bits, l2_bits = header[32], header[33]
        (l1_offset,) = struct.unpack(">Q", header[40:48])
        if not 9 <= cluster_bits <= 16 or not 6 <= l2_bits <= 16:
            raise ImageRejected(IMG_FORMAT, "the qcow header has an invalid cluster size")
        span = 1 << (cluster_bits + l2_bits)
        tables = [("L1", l1_offset, -(-size // span) * 8)]
    else:
        (cluster_bits,) = struct.unpack(">I", header[20:24])
        (l1_entries,) = struct.unpack(">I", header[36:40])
        l1_offset, refcount_offset = struct.unpack(">QQ", header[40:56])
        (refcount_clusters,) = struct.unpack(">I", header[56:60])
        if not 9 <= cluster_bits <= 21:
            raise ImageRejected(IMG_FORMAT, "the qcow2 header has an invalid cluster size")
        tables = [
            ("L1", l1_offset, l1_entries * 8),
            ("refcount", refcount_offset, refcount_clusters << cluster_bits),
        ]
    for name, offset, length in tables:
        if offset + length > file_size:
            raise ImageRejected(
                IMG_FORMAT,
                f"the {fmt.value} {name} table lies beyond the end of the file (truncated or forged header)",
            )


def _own_safety(
    fmt: ImageFormat, path: Path, file_size: int, inspector: format_inspector.FileInspector | None
) -> None:
    """Checks oslo's inspector does not make (or makes only for some variants)."""
    header = _header(inspector) if inspector is not None else b""
    if fmt in (ImageFormat.QCOW, ImageFormat.QCOW2):
        # qcow v1 keeps crypt_method at 36, qcow2 at 32.
        crypt_at = 36 if fmt is ImageFormat.QCOW else 32
        if len(header) < crypt_at + 4:
            raise ImageRejected(IMG_FORMAT, f"the {fmt.value} header is truncated")
        if header[8:16] != bytes(8):
            backing = _backing_name(path, header)
            raise ImageRejected(
                IMG_FORMAT,
                f"the {fmt.value} file names a backing file{backing}; images with backing files are refused",
            )
        if header[crypt_at : crypt_at + 4] != bytes(4):
            raise ImageRejected(IMG_UNSUPPORTED, f"encrypted {fmt.value} images are not supported")
        _check_qcow_tables(fmt, header, file_size)
    elif fmt is ImageFormat.QED:
        if len(header) < 64:
            raise ImageRejected(IMG_FORMAT, "the qed header is truncated")
        (features,) = struct.unpack("<Q", header[16:24])
        if features & _QED_BACKING_FILE:
            raise ImageRejected(
                IMG_FORMAT, "the qed file names a backing file; images with backing files are refused"
            )
        # Anything but "needs a consistency check" (set by an unclean shutdown).
        if features & ~_QED_NEED_CHECK:
            raise ImageRejected(IMG_FORMAT, "the qed header uses features this service does not accept")
    elif fmt is ImageFormat.VMDK:
        assert inspector is not None
        _check_vmdk(inspector)
    elif fmt is ImageFormat.VHD and header:
        (disk_type,) = struct.unpack(">I", header[60:64])
        if disk_type == _VHD_DIFFERENCING:
            raise ImageRejected(
                IMG_FORMAT, "the VHD is a differencing disk that depends on a parent; such images are refused"
            )
        if disk_type not in (_VHD_FIXED, _VHD_DYNAMIC):
            raise ImageRejected(IMG_FORMAT, f"the VHD header has an unknown disk type ({disk_type})")
    elif fmt is ImageFormat.ISO:
        assert inspector is not None
        # The primary volume descriptor gives the volume size; 0 means it could not say.
        if inspector.virtual_size > file_size:
            raise ImageRejected(IMG_FORMAT, "the iso file is truncated (shorter than its volume size)")
    elif fmt is ImageFormat.VDI:
        (image_type,) = struct.unpack("<I", header[0x4C:0x50])
        if image_type not in (_VDI_DYNAMIC, _VDI_STATIC):
            raise ImageRejected(
                IMG_FORMAT, "only dynamic and static VDI images are accepted (no differencing or undo disks)"
            )
        # qemu reads missing blocks of a cut-off VDI as zeros and its checker
        # does not notice: the allocated blocks must all be in the file.
        (data_offset,) = struct.unpack("<I", header[0x158:0x15C])
        (block_size,) = struct.unpack("<I", header[0x178:0x17C])
        (allocated,) = struct.unpack("<I", header[0x184:0x188])
        if data_offset + allocated * block_size > file_size:
            raise ImageRejected(IMG_FORMAT, "the vdi file is truncated")


def _header_virtual_size(fmt: ImageFormat, inspector: format_inspector.FileInspector | None) -> int | None:
    if inspector is None or fmt not in _SIZE_CROSS_CHECKED:
        return None
    if fmt is ImageFormat.QED:
        # oslo does not parse QED; image_size is a little-endian u64 at 48.
        (size,) = struct.unpack("<Q", _header(inspector)[48:56])
        return int(size)
    try:
        size = int(inspector.virtual_size)
    except Exception:
        # Some inspectors raise on odd-but-accepted headers; qemu's figure stands.
        return None
    # 0 is oslo's "could not tell" (e.g. VHDX metadata it did not reach).
    return size or None


def _cross_check(path: Path, fmt: ImageFormat, info: dict[str, Any], header_size: int | None) -> int:
    """Verify qemu-img's view of the file; return its virtual size."""
    if info.get("format") != fmt.qemu_name:
        raise ImageRejected(IMG_FORMAT, f"qemu-img does not read the file as {fmt.value}")
    for key in ("backing-filename", "full-backing-filename"):
        if key in info:
            name = str(info[key])[:100]
            raise ImageRejected(
                IMG_FORMAT,
                f"the {fmt.value} file names a backing file ({name!r}); "
                "images with backing files are refused",
            )
    if info.get("encrypted"):
        raise ImageRejected(IMG_UNSUPPORTED, f"encrypted {fmt.value} images are not supported")
    specific = info.get("format-specific")
    data = specific.get("data") if isinstance(specific, dict) else None
    data = data if isinstance(data, dict) else {}
    if fmt is ImageFormat.QCOW2:
        if "data-file" in data:
            raise ImageRejected(
                IMG_FORMAT, "the qcow2 file keeps its data in an external data file; such images are refused"
            )
        if data.get("corrupt"):
            raise ImageRejected(IMG_FORMAT, "the qcow2 file is marked corrupt")
        if "encrypt" in data:
            raise ImageRejected(IMG_UNSUPPORTED, "encrypted qcow2 images are not supported")
    if fmt is ImageFormat.VMDK:
        extents = data.get("extents")
        own_name = os.path.abspath(path)
        if (
            not isinstance(extents, list)
            or len(extents) != 1
            or not isinstance(extents[0], dict)
            or extents[0].get("filename") != own_name
        ):
            raise ImageRejected(IMG_FORMAT, "the VMDK refers to data outside the uploaded file")
        if str(data.get("create-type", "")).lower() not in _VMDK_SINGLE_FILE:
            raise ImageRejected(
                IMG_FORMAT, "only single-file monolithicSparse and streamOptimized VMDK images are accepted"
            )
    virtual_size = info.get("virtual-size")
    if not isinstance(virtual_size, int) or isinstance(virtual_size, bool) or virtual_size <= 0:
        raise ImageRejected(IMG_FORMAT, "the image has no usable virtual disk size")
    if header_size is not None and header_size != virtual_size:
        raise ImageRejected(
            IMG_FORMAT,
            f"the {fmt.value} headers disagree about the disk size "
            f"({human_size(header_size)} against {human_size(virtual_size)})",
        )
    return virtual_size


def inspect_image(
    path: Path,
    *,
    declared: ImageFormat | None = None,
    max_file_size: int | None = None,
    timeout: float = INFO_TIMEOUT,
) -> Inspection:
    """Identify ``path`` from its content and check that it is safe to convert.

    ``declared`` is what the file name claims (see format_from_extension);
    None accepts any content. ``timeout`` bounds the qemu-img cross-check.
    Raises ImageRejected with the IMS code and a reason for the user.
    """
    file_size = _check_file(path, max_file_size)
    fmt, inspector = _detect(path, file_size)
    if declared is not None and declared is not fmt:
        raise FormatMismatch(declared.value, fmt.value)
    if inspector is not None:
        _oslo_safety(fmt, path, inspector)
    _own_safety(fmt, path, file_size, inspector)
    info = qemu_img_info(path, fmt, timeout=timeout)
    virtual_size = _cross_check(path, fmt, info, _header_virtual_size(fmt, inspector))
    if fmt in _CHECKABLE:
        qemu_img_check(path, fmt, timeout=timeout)
    elif fmt is ImageFormat.QCOW and qemu_img_data_end(path, fmt, timeout=timeout) > file_size:
        # qemu has no checker for qcow v1; data mapped past the end means a cut-off file.
        raise ImageRejected(IMG_FORMAT, "the qcow file is truncated")
    return Inspection(format=fmt, virtual_size=virtual_size, file_size=file_size)

"""Import pipeline for untrusted disk image files.

Standard library and oslo.utils only: no HTTP, database or other openims
modules (but the leaves ``openims.units`` and ``openims.durable``), so it can be tested and reused on its own.
"""

from openims.imaging.checksums import Digests, SparseWriter, copy_with_digests, digest_file, digest_stream
from openims.imaging.errors import ConversionFailed, FormatMismatch, ImageRejected, QemuCause
from openims.imaging.formats import ImageFormat
from openims.imaging.inspect import Inspection, format_from_extension, inspect_image
from openims.imaging.pipeline import (
    DEFAULT_MAX_VIRTUAL_SIZE,
    INSPECTABLE,
    PROBE_HEAD,
    PROBE_TAIL,
    StoredImage,
    import_image,
    keep_image,
    quick_import_stream,
)
from openims.imaging.qemu import StoreFormat, qemu_img_convert, qemu_img_info

__all__ = [
    "DEFAULT_MAX_VIRTUAL_SIZE",
    "INSPECTABLE",
    "PROBE_HEAD",
    "PROBE_TAIL",
    "ConversionFailed",
    "Digests",
    "FormatMismatch",
    "ImageFormat",
    "ImageRejected",
    "Inspection",
    "QemuCause",
    "SparseWriter",
    "StoreFormat",
    "StoredImage",
    "copy_with_digests",
    "digest_file",
    "digest_stream",
    "format_from_extension",
    "import_image",
    "inspect_image",
    "keep_image",
    "qemu_img_convert",
    "qemu_img_info",
    "quick_import_stream",
]

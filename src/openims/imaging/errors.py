"""Errors raised by the image import pipeline.

They carry an IMS error code and a sentence for the user; mapping them onto
HTTP responses is left to the caller, so this package stays free of the web
and database layers.
"""

from __future__ import annotations

# IMS error-catalogue codes used by this package.
IMG_FORMAT = "IMG.0057"  # image file empty, not found, or in incorrect format
IMG_TOO_LARGE = "IMG.0059"  # size of the image file exceeds the maximum allowed
IMG_UNSUPPORTED = "IMG.0072"  # the specified image format is not supported
IMG_DISK_SIZE = "IMG.0055"  # memory or disk size is invalid
IMG_INTERNAL = "IMG.0061"  # unknown system error


class ImageRejected(Exception):
    """The image file cannot be imported; ``reason`` says why, for the user."""

    code: str
    reason: str

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class ConversionFailed(ImageRejected):
    """A failure on our side (qemu-img missing, crashed or timed out).

    A subclass of ImageRejected so that callers can handle every import
    failure in one place, while still telling the two apart.
    """

    def __init__(self, reason: str, code: str = IMG_INTERNAL) -> None:
        super().__init__(code, reason)


class FormatMismatch(ImageRejected):
    """The content is in another format than the one declared (file name or ``disk_format``)."""

    def __init__(self, declared: str, actual: str) -> None:
        super().__init__(IMG_FORMAT, f"file extension says {declared} but the content is {actual}")
        self.declared = declared
        self.actual = actual

"""Errors raised by the image import pipeline.

They carry an IMS error code and a sentence for the user; mapping them onto
HTTP responses is left to the caller, so this package stays free of the web
and database layers.
"""

from __future__ import annotations

from enum import StrEnum

# IMS error-catalogue codes used by this package.
IMG_FORMAT = "IMG.0057"  # image file empty, not found, or in incorrect format
IMG_TOO_LARGE = "IMG.0059"  # size of the image file exceeds the maximum allowed
IMG_UNSUPPORTED = "IMG.0072"  # the specified image format is not supported
IMG_DISK_SIZE = "IMG.0055"  # memory or disk size is invalid
IMG_INTERNAL = "IMG.0061"  # unknown system error


class QemuCause(StrEnum):
    """How a qemu-img run failed, for whoever counts failures (the worker's metrics); never shown to users."""

    MISSING = "missing"  # qemu-img or prlimit not installed, or the process could not be started
    TIMEOUT = "timeout"  # past its wall-clock limit
    CPU_LIMIT = "cpu_limit"  # killed at its CPU-time limit (SIGXCPU)
    OUTPUT_LIMIT = "output_limit"  # wrote more than allowed (SIGXFSZ): an image larger than it claims, or error spam
    CRASHED = "crashed"  # killed by another signal
    WRITE_ERROR = "write_error"  # no space left, or an I/O error, while writing the output
    REFUSED = "refused"  # exited non-zero: it could not read, check or convert the image
    BAD_OUTPUT = "bad_output"  # printed something other than the JSON asked for


class ImageRejected(Exception):
    """The image file cannot be imported; ``reason`` says why, for the user.

    ``qemu`` is set when qemu-img itself failed (how), None for refusals of our own checks.
    """

    code: str
    reason: str
    qemu: QemuCause | None

    def __init__(self, code: str, reason: str, *, qemu: QemuCause | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.qemu = qemu


class ConversionFailed(ImageRejected):
    """A failure on our side (qemu-img missing, crashed or timed out).

    A subclass of ImageRejected so that callers can handle every import
    failure in one place, while still telling the two apart.
    """

    def __init__(self, reason: str, code: str = IMG_INTERNAL, *, qemu: QemuCause | None = None) -> None:
        super().__init__(code, reason, qemu=qemu)


class FormatMismatch(ImageRejected):
    """The content is in another format than the one declared (file name or ``disk_format``)."""

    def __init__(self, declared: str, actual: str) -> None:
        super().__init__(IMG_FORMAT, f"file extension says {declared} but the content is {actual}")
        self.declared = declared
        self.actual = actual

"""The disk image formats the import pipeline accepts."""

from __future__ import annotations

from enum import StrEnum


class ImageFormat(StrEnum):
    """A source image format; values are the names users and IMS know."""

    QCOW2 = "qcow2"
    QCOW = "qcow"
    VMDK = "vmdk"
    VHD = "vhd"
    VHDX = "vhdx"
    VDI = "vdi"
    QED = "qed"
    RAW = "raw"
    ISO = "iso"

    @property
    def qemu_name(self) -> str:
        """The qemu-img driver that reads this format."""
        if self is ImageFormat.VHD:
            return "vpc"
        if self is ImageFormat.ISO:
            # qemu has no ISO driver: an ISO is a plain byte-for-byte disk.
            return "raw"
        return self.value

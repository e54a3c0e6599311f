"""Binary size units, defined once for every layer (imaging included: this module imports nothing)."""

from __future__ import annotations

MiB = 1 << 20
GiB = 1 << 30


def human_size(size: int) -> str:
    """Bytes as a short human figure, for messages."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")

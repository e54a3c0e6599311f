"""Binary size units, defined once for every layer (imaging included: this module imports nothing)."""

from __future__ import annotations

MiB = 1 << 20
GiB = 1 << 30

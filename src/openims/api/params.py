"""Integer query parameters: parsed strictly and bounded to what the database columns can hold.

A value no column can hold (``min_disk=10**21``) is the client's mistake, answered with a 400
naming the range, rather than an overflow deep in the database driver.
"""

from __future__ import annotations

import re

from openims.catalog.validation import INT32_MAX, INT64_MAX
from openims.errors import ImsBadRequest

__all__ = ["INT32_MAX", "INT64_MAX", "parse_int"]

_DIGITS = re.compile(r"[+-]?[0-9]{1,19}")


def parse_int(name: str, raw: str | int, *, low: int = 0, high: int = INT32_MAX, code: str = "IMG.0001") -> int:
    """``raw`` as an integer in ``low..high``, or BadRequest(``code``) saying what is allowed."""
    if isinstance(raw, bool):
        raise ImsBadRequest(f"{name} must be an integer.", code=code)
    if isinstance(raw, int):
        value = raw
    elif _DIGITS.fullmatch(raw.strip()):
        value = int(raw.strip())
    else:
        raise ImsBadRequest(f"{name} must be an integer.", code=code)
    if not low <= value <= high:
        raise ImsBadRequest(f"{name} must be between {low} and {high}.", code=code)
    return value

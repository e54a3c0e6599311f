"""Process memory: large transfer buffers go back to the operating system when they are freed.

Imports, uploads and S3 transfers use buffers of several MiB (hashing ring, multipart parts). glibc
raises its mmap threshold after the first such buffer is freed (up to 32 MiB), so later ones come
from the heap and the process keeps its peak; a fixed threshold of 1 MiB keeps every big buffer
mmapped and returned on free, so memory stays flat whatever the image size.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("openims")

_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 20


def return_big_buffers() -> bool:
    """Fix glibc's mmap threshold (a no-op elsewhere); whether it was set."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
    except (OSError, AttributeError):
        log.debug("mallopt is not available; memory use may keep its peak")
        return False

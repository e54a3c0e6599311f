"""Thread capacity for long transfers and password hashing, apart from the small pool that runs request
handlers.

Request handlers share a few threads (Settings.api_threads): they are short and hold the GIL, so
more threads only stretch tail latency. A streamed upload or a conversion holds its thread for
minutes; on that pool it would starve every other request, so transfers get a pool of their own.
"""

from __future__ import annotations

import os

import anyio

TRANSFER_THREADS = 64
_limiter: anyio.CapacityLimiter | None = None
_hashing: anyio.CapacityLimiter | None = None


def transfer_limiter() -> anyio.CapacityLimiter:
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(TRANSFER_THREADS)
    return _limiter


def hashing_limiter() -> anyio.CapacityLimiter:
    """Password hashing (argon2 releases the GIL): one thread per core, apart from request handlers,
    so a burst of logins neither starves other requests nor runs more hashes than there are cores."""
    global _hashing
    if _hashing is None:
        _hashing = anyio.CapacityLimiter(os.cpu_count() or 2)
    return _hashing

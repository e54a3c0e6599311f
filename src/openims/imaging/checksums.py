"""MD5 and SHA-512 of an image file in one read pass, on two cores.

The file is read once into a small ring of reusable buffers. A reader thread
fills each buffer and runs MD5 on it while the calling thread runs SHA-512 on
the same bytes; hashlib releases the GIL on large buffers, so the two hashes
really run in parallel. The copy out of the page cache goes with MD5, the
faster of the two, so SHA-512 alone sets the pace. Memory stays at a few
chunks whatever the file size.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openims.imaging.errors import ConversionFailed
from openims.units import MiB

# Large chunks: each one costs a GIL hand-off between the hashing threads and whatever else the
# process is doing (the API, heartbeats). 4 MiB measured as fast as 8 and 16 MiB (both hashes at the
# pace of SHA-512 alone; bench/import_bench.py, 1 GiB: 1.85 s either way) with a quarter of the buffer
# memory of 16: an import to an S3 store holds these and its parts at once (peak RSS 205 → 194 MiB).
DEFAULT_CHUNK = 4 * MiB
# Three buffers: one hashed by both threads, one being filled, one spare to absorb jitter.
_BUFFERS = 3


@dataclass(frozen=True)
class Digests:
    size: int
    md5: str
    sha512: str


def _digest_stream(
    source: io.RawIOBase,
    *,
    chunk: int,
    progress: Callable[[int], None] | None,
    deadline: float | None,
    sink: Callable[[bytearray, int], None] | None = None,
) -> Digests:
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    md5 = hashlib.md5(usedforsecurity=False)  # required by the IMS/Glance API, not for security
    sha512 = hashlib.sha512()
    # A buffer goes back to ``free`` only once SHA-512 is done with it, and the reader refills
    # one only after its own MD5 of the previous buffer: no buffer is overwritten while hashed.
    free: queue.Queue[bytearray | None] = queue.Queue()
    for _ in range(_BUFFERS):
        free.put(bytearray(chunk))
    filled: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
    stop = threading.Event()
    failures: list[BaseException] = []

    def read_and_md5() -> None:
        try:
            while not stop.is_set():
                buffer = free.get()
                if buffer is None:
                    break
                length = source.readinto(buffer)
                if not length:
                    break
                filled.put((buffer, length))
                with memoryview(buffer) as view:
                    md5.update(view[:length])
        except BaseException as exc:  # handed to the caller below
            failures.append(exc)
        finally:
            filled.put(None)

    if deadline is not None and time.monotonic() > deadline:
        raise ConversionFailed("computing the image checksums timed out")
    reader = threading.Thread(target=read_and_md5, name="md5-digest", daemon=True)
    reader.start()
    size = 0
    try:
        while (item := filled.get()) is not None:
            if deadline is not None and time.monotonic() > deadline:
                raise ConversionFailed("computing the image checksums timed out")
            buffer, length = item
            with memoryview(buffer) as view:
                sha512.update(view[:length])
            if sink is not None:
                sink(buffer, length)
            free.put(buffer)
            size += length
            if progress is not None:
                progress(size)
    finally:
        stop.set()
        free.put(None)  # wakes the reader if it waits for a buffer
        reader.join()
    if failures:
        raise failures[0]
    return Digests(size=size, md5=md5.hexdigest(), sha512=sha512.hexdigest())


def digest_file(
    path: Path,
    *,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
    deadline: float | None = None,
    tee: Callable[[memoryview], None] | None = None,
) -> Digests:
    """MD5 and SHA-512 of ``path``; ``progress`` gets the bytes hashed so far.

    ``deadline`` is a time.monotonic() value after which hashing is abandoned. ``tee`` receives every
    byte, in order, in the same read pass (e.g. to upload the file while it is hashed).
    """
    with open(path, "rb", buffering=0) as source:
        return digest_stream(source, chunk=chunk, progress=progress, deadline=deadline, tee=tee)


def digest_stream(
    source: io.RawIOBase,
    *,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
    deadline: float | None = None,
    tee: Callable[[memoryview], None] | None = None,
) -> Digests:
    """``digest_file`` for any readable byte stream (``readinto``), read once, e.g. an object store's GET."""
    sink = None
    if tee is not None:
        def sink(buffer: bytearray, length: int) -> None:
            with memoryview(buffer) as view:
                tee(view[:length])

    return _digest_stream(source, chunk=chunk, progress=progress, deadline=deadline, sink=sink)


def copy_with_digests(
    src: Path,
    dst: Path,
    *,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
    deadline: float | None = None,
) -> Digests:
    """Copy ``src`` to a new file ``dst`` and hash it in the same read pass.

    All-zero chunks become holes, so a sparse raw disk stays sparse. On
    failure ``dst`` is removed.
    """
    done = False
    try:
        with open(src, "rb", buffering=0) as source, SparseWriter(dst) as target:
            digests = digest_stream(source, chunk=chunk, progress=progress, deadline=deadline, tee=target.write)
        done = True
        return digests
    finally:
        if not done:
            dst.unlink(missing_ok=True)


class SparseWriter:
    """Writes a new file from a stream of chunks, all-zero chunks as holes (a sparse raw disk stays sparse)."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by close()/__exit__
        self._size = 0
        self._zeros = b""

    def write(self, data: memoryview) -> None:
        length = len(data)
        self._size += length
        if len(self._zeros) != length:
            self._zeros = bytes(length)
        if data == self._zeros:  # compared in C, no copy
            self._file.seek(length, os.SEEK_CUR)
            return
        written = 0
        while written < length:
            count = self._file.write(data[written:])
            if count is None:  # only for non-blocking files, which this is not
                raise OSError("short write")
            written += count

    def close(self) -> None:
        # Trailing holes only moved the offset: give the file its length.
        self._file.truncate(self._size)
        self._file.close()

    def __enter__(self) -> SparseWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

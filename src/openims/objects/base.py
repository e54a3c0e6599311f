"""The one interface to users' buckets, and the naming rules every backend enforces."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

# OBS/S3 bucket names: 3-63 lower-case letters, digits, hyphens and periods, starting and ending
# with a letter or digit, not shaped like an IP address.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
BUCKET_NAME_LENGTH = (3, 63)
_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
MAX_KEY_BYTES = 1024


class InvalidObjectName(ValueError):
    """A bucket name or object key that can never be valid."""


class ObjectNotFound(LookupError):
    """The bucket or object does not exist (or is outside the bucket)."""


class ObjectExists(FileExistsError):
    """An object is already stored under the key and the write must not replace it."""


class StorageUnavailable(Exception):
    """The object store could not serve the request (unreachable, throttling, 5xx), after bounded retries.

    A passing condition: work that met it may be tried again later. Not an OSError on purpose: the
    imaging pipeline reports OSErrors as its own failures; this one must reach the worker as it is.
    """


def check_bucket_name(name: str) -> str:
    if not BUCKET_NAME.fullmatch(name) or _IPV4.fullmatch(name) or ".." in name or ".-" in name or "-." in name:
        raise InvalidObjectName(
            f"invalid bucket name {name!r}: use 3-63 lower-case letters, digits, hyphens and periods"
        )
    return name


def check_key(key: str) -> str:
    """Object keys are relative, '/'-separated paths with no empty, '.' or '..' segments."""
    if not key:
        raise InvalidObjectName("the object key is empty")
    if "\x00" in key or any(ord(c) < 32 for c in key):
        raise InvalidObjectName("the object key contains control characters")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidObjectName(f"the object key is longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/") or "\\" in key:
        raise InvalidObjectName("the object key must be a relative path")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidObjectName("the object key contains an empty, '.' or '..' path segment")
    return key


def parse_object_url(url: str) -> tuple[str, str]:
    """``bucket:path/to/key`` → (bucket, key), both checked."""
    if not isinstance(url, str) or ":" not in url:
        raise InvalidObjectName("the URL must have the form <bucket>:<object key>")
    bucket, key = url.split(":", 1)
    return check_bucket_name(bucket), check_key(key)


@dataclass(frozen=True)
class StreamedObject:
    """An object to be read once from start to end: ``probe`` is a local file of the object's size with
    (at least) its first and last bytes, for inspection; ``stream`` yields all of its bytes."""

    probe: Path
    stream: io.RawIOBase


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    modified: dt.datetime


class BucketStore(Protocol):
    """Users' buckets. Implementations: directories (``filesystem``, the embedded default) and S3 (``s3``)."""

    # Whether a bucket that exists in the store but that no account registered belongs to the
    # operator's account (a directory an operator made by hand) or to nobody (an engine bucket).
    adopts_unregistered: bool
    # Whether reading an object at random (qemu-img) needs a local copy in the scratch area first.
    needs_local_copy: bool

    def bucket_exists(self, bucket: str) -> bool: ...

    def create_bucket(self, bucket: str) -> None: ...

    def list_buckets(self) -> list[str]: ...

    def stat(self, bucket: str, key: str) -> ObjectInfo: ...

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def put(self, bucket: str, key: str, stream: BinaryIO) -> ObjectInfo: ...

    def put_file(self, bucket: str, key: str, path: Path) -> ObjectInfo:
        """Store the local file ``path`` as a new object, all at once; ObjectExists if the key is taken.

        ``path`` may be consumed (moved) by the call.
        """
        ...

    def delete(self, bucket: str, key: str) -> None: ...

    def streamed(self, bucket: str, key: str, scratch: Path | None, head: int,
                 tail: int) -> AbstractContextManager[StreamedObject]:
        """The object for one sequential read; the probe holds its first ``head`` and last ``tail`` bytes
        (in ``scratch`` when it must be fetched). The stream fails if the object changes meanwhile."""
        ...

    def local_copy(self, bucket: str, key: str, scratch: Path | None = None) -> AbstractContextManager[Path]:
        """A local, random-access path to the object for the duration of the block (qemu-img needs one).

        ``scratch`` is a reserved directory for the copy when ``needs_local_copy``.
        """
        ...

"""The two stores on an S3 engine: users' buckets (``S3Buckets``) and stored images (``S3ImageStore``),
built on ``objects.s3`` (the client, multipart writes, reads and error translation)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from openims.objects.base import (
    ObjectInfo,
    ObjectNotFound,
    StreamedObject,
    check_bucket_name,
    check_key,
)
from openims.objects.image_store import FileImageStore, temp_suffix
from openims.objects.s3 import BodyReader, MultipartWriter, S3Objects, translated


class S3Buckets:
    """Users' buckets as buckets of the engine (``OPENIMS_BUCKETS=s3``).

    Which account owns which bucket is the catalogue's business (``catalog.buckets``); an engine bucket
    no account registered belongs to nobody (``adopts_unregistered`` is False).
    """

    adopts_unregistered = False
    needs_local_copy = True

    def __init__(self, objects: S3Objects, region: str) -> None:
        self.objects = objects
        self.region = region

    def bucket_exists(self, bucket: str) -> bool:
        return self.objects.bucket_exists(check_bucket_name(bucket))

    def create_bucket(self, bucket: str) -> None:
        self.objects.create_bucket(check_bucket_name(bucket), self.region)

    def list_buckets(self) -> list[str]:
        with translated("the bucket list"):
            names = [b["Name"] for b in self.objects.client.list_buckets().get("Buckets", [])]
        return sorted(names)

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        return self.objects.head(check_bucket_name(bucket), check_key(key))

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.objects.listing(check_bucket_name(bucket), prefix)

    def put(self, bucket: str, key: str, stream: BinaryIO) -> ObjectInfo:
        writer = self.objects.writer(check_bucket_name(bucket), check_key(key))
        try:
            while chunk := stream.read(1 << 20):
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return writer.complete()

    def put_file(self, bucket: str, key: str, path: Path) -> ObjectInfo:
        try:
            return self.objects.upload_file(check_bucket_name(bucket), check_key(key), path, if_absent=True)
        finally:
            path.unlink(missing_ok=True)

    def delete(self, bucket: str, key: str) -> None:
        self.stat(bucket, key)
        self.objects.delete(bucket, key)

    @contextmanager
    def streamed(self, bucket: str, key: str, scratch: Path | None, head: int,
                 tail: int) -> Iterator[StreamedObject]:
        if scratch is None:
            raise ValueError("a streamed S3 object needs a scratch directory for its probe")
        check_bucket_name(bucket)
        what = f"object {bucket}:{key}"
        with translated(what):
            r = self.objects.client.head_object(Bucket=bucket, Key=check_key(key))
        size, etag = int(r["ContentLength"]), r["ETag"]
        probe = scratch / f"probe-{secrets.token_hex(6)}"
        # A sparse file of the object's size with its head and tail in place: the inspection sees the
        # signatures and footers where they are, at the cost of a few MiB.
        with open(probe, "wb") as f:
            f.truncate(size)
            ranges = [(0, min(size, head))]
            if size > head:
                ranges.append((max(head, size - tail), size))
            for start, end in ranges:
                f.seek(start)
                for chunk in self.objects.read(bucket, key, start, end - start, if_match=etag):
                    f.write(chunk)
        with translated(what):
            body = self.objects.client.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
        try:
            yield StreamedObject(probe, BodyReader(body, what))
        finally:
            body.close()
            probe.unlink(missing_ok=True)

    @contextmanager
    def local_copy(self, bucket: str, key: str, scratch: Path | None = None) -> Iterator[Path]:
        if scratch is None:
            raise ValueError("an S3 object needs a scratch directory to be read locally")
        info = self.stat(bucket, key)
        dest = scratch / f"source-{secrets.token_hex(6)}"  # the directory may be shared (export's check)
        self.objects.download(bucket, key, dest, expected_size=info.size)
        try:
            yield dest
        finally:
            dest.unlink(missing_ok=True)


def parse_store_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix ending in "/" unless empty)."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    return check_bucket_name(bucket), f"{prefix}/" if prefix else ""


class _S3Staging:
    """A converted image bound for the S3 store: teed into a multipart upload while it is hashed, or
    uploaded from its local file at ``seal()``. Every staging gets its own key
    (``<prefix><image id>/<token>``), so a stale attempt can never overwrite or delete a newer one's data."""

    def __init__(self, store: S3ImageStore, path: Path, image_id: str) -> None:
        self.store = store
        self.path = path
        self.key = f"{store.prefix}{image_id}/{secrets.token_hex(8)}"
        self._writer: MultipartWriter | None = None
        self._sealed = False
        self.tee: Callable[[memoryview], None] | None = self._tee

    def _tee(self, data: memoryview) -> None:
        if self._writer is None:
            self._writer = self.store.objects.writer(self.store.bucket, self.key)
        self._writer.write(data)

    def seal(self) -> None:
        if self._sealed:
            return
        if self._writer is not None:
            self._writer.complete()
        else:
            self.store.objects.upload_file(self.store.bucket, self.key, self.path)
        self._sealed = True
        self.path.unlink(missing_ok=True)

    def publish(self) -> str:
        self.seal()
        return self.store.location(self.key)

    def stored_size(self) -> int:
        return self.store.objects.head(self.store.bucket, self.key).size

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        if self._writer is not None and not self._sealed:
            self._writer.abort()
        if self._sealed:
            self.store.objects.delete(self.store.bucket, self.key)
            self._sealed = False


class _SealedCopy(_S3Staging):
    def __init__(self, store: S3ImageStore, path: Path, image_id: str) -> None:
        super().__init__(store, path, image_id)
        self._sealed = True


class S3ImageStore:
    """Stored images as objects ``<prefix><image id>/<token>`` of one engine bucket (``OPENIMS_IMAGE_STORE=s3://…``).

    Locations are ``s3://<bucket>/<key>``. Bare ids (data of a deployment that began on files and is
    being moved, ``openims store migrate``) are served from ``fallback``.
    """

    def __init__(self, objects: S3Objects, url: str, staging_dir: Path, fallback: FileImageStore,
                 region: str) -> None:
        self.objects = objects
        self.bucket, self.prefix = parse_store_url(url)
        self.staging_dir = staging_dir
        self.fallback = fallback
        self.region = region
        staging_dir.mkdir(parents=True, exist_ok=True)

    def ensure_bucket(self) -> None:
        """Create the store's bucket when it is missing (at start)."""
        if not self.objects.bucket_exists(self.bucket):
            self.objects.create_bucket(self.bucket, self.region)

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def owns(self, location: str) -> bool:
        """Whether ``location`` is an object of this store (bare ids are the fallback's, not this store's)."""
        return location.startswith(f"s3://{self.bucket}/{self.prefix}")

    def _key(self, location: str) -> str | None:
        """The object key of one of this store's locations; None for a bare id (the fallback's)."""
        if not location.startswith("s3://"):
            return None
        bucket, _, key = location.removeprefix("s3://").partition("/")
        if bucket != self.bucket or not key.startswith(self.prefix):
            raise ValueError(f"location {location!r} is not in this image store")
        return key

    def temp_path(self, job_id: str, image_id: str, suffix: str = "") -> Path:
        return self.staging_dir / f"{check_key(job_id)}-{check_key(image_id)}{temp_suffix(suffix)}"

    def staging(self, job_id: str, image_id: str) -> _S3Staging:
        return _S3Staging(self, self.temp_path(job_id, image_id), image_id)

    def copy_staging(self, location: str, job_id: str, image_id: str) -> _S3Staging:
        key = self._key(location)
        target = _SealedCopy(self, self.temp_path(job_id, image_id), image_id)
        if key is None:
            # File data not yet moved: uploaded from its file.
            with self.fallback.local_path(location, self.staging_dir) as path:
                self.objects.upload_file(self.bucket, target.key, path)
            return target
        try:
            size = self.objects.head(self.bucket, key).size
        except ObjectNotFound as exc:
            raise FileNotFoundError(location) from exc
        self.objects.copy(self.bucket, key, target.key, size)
        return target

    def server_copy(self, source: S3ImageStore, location: str, job_id: str, image_id: str) -> _S3Staging:
        """A sealed staging holding a copy of ``source``'s object at ``location``, copied by the engine
        (both stores on the same engine): no data through this process (FileNotFoundError if gone)."""
        key = source._key(location)
        if key is None:
            return self.copy_staging(location, job_id, image_id)
        try:
            size = source.objects.head(source.bucket, key).size
        except ObjectNotFound as exc:
            raise FileNotFoundError(location) from exc
        target = _SealedCopy(self, self.temp_path(job_id, image_id), image_id)
        self.objects.copy(self.bucket, key, target.key, size, source_bucket=source.bucket)
        return target

    def clear_temp(self, job_id: str) -> None:
        for p in self.staging_dir.glob(f"{check_key(job_id)}-*"):
            p.unlink(missing_ok=True)

    def exists(self, location: str) -> bool:
        key = self._key(location)
        if key is None:
            return bool(self.fallback.exists(location))
        try:
            self.objects.head(self.bucket, key)
        except ObjectNotFound:
            return False
        return True

    def size(self, location: str) -> int:
        key = self._key(location)
        if key is None:
            return int(self.fallback.size(location))
        try:
            return self.objects.head(self.bucket, key).size
        except ObjectNotFound as exc:
            raise FileNotFoundError(location) from exc

    def delete(self, location: str) -> None:
        key = self._key(location)
        if key is not None:
            self.objects.delete(self.bucket, key)
            return
        # A bare image id: whatever data of that image exists, in either store.
        self.fallback.delete(location)
        for info in list(self.objects.listing(self.bucket, f"{self.prefix}{check_key(location)}/")):
            self.objects.delete(self.bucket, info.key)

    def read(self, location: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        key = self._key(location)
        if key is None:
            it: Iterator[bytes] = self.fallback.read(location, start, length)
            return it
        try:
            self.objects.head(self.bucket, key)
        except ObjectNotFound as exc:
            raise FileNotFoundError(location) from exc
        return self.objects.read(self.bucket, key, start, length)

    @contextmanager
    def local_path(self, location: str, scratch: Path) -> Iterator[Path]:
        key = self._key(location)
        if key is None:
            with self.fallback.local_path(location, scratch) as path:
                yield path
            return
        dest = scratch / "stored"
        try:
            self.objects.download(self.bucket, key, dest)
        except ObjectNotFound as exc:
            raise FileNotFoundError(location) from exc
        try:
            yield dest
        finally:
            dest.unlink(missing_ok=True)

    def orphans(self, known: Callable[[str], bool], older_than: dt.datetime) -> int:
        removed = 0
        for info in list(self.objects.listing(self.bucket, self.prefix)):
            if info.modified < older_than and not known(self.location(info.key)):
                self.objects.delete(self.bucket, info.key)
                removed += 1
        for key, upload_id in self.objects.stale_uploads(self.bucket, self.prefix, older_than):
            self.objects.abort_upload(self.bucket, key, upload_id)
            removed += 1
        return removed + int(self.fallback.orphans(known, older_than))

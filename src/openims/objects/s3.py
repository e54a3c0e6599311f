"""Users' buckets and stored images on an S3 engine (SeaweedFS, MinIO, Ceph RGW, OBS, AWS S3), through boto3.

What every caller can rely on:
- Nothing is held whole in memory: writes go out in multipart parts (``MultipartWriter``, a few parts in
  flight), reads come back in chunks, downloads for qemu-img are parallel ranged GETs into a local file.
- An object becomes visible only when it is complete: a multipart upload is published by its
  CompleteMultipartUpload, and a create that must not replace anything is conditional
  (``If-None-Match: *``).
- Engine errors arrive as the errors of ``objects.base``: ``ObjectNotFound``, ``ObjectExists``,
  ``StorageUnavailable`` (throttled, 5xx or unreachable after boto3's bounded retries with backoff and
  jitter). Messages never carry credentials.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from openims.config import Settings
from openims.objects.base import (
    InvalidObjectName,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    StorageUnavailable,
)

log = logging.getLogger("openims.s3")

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchUpload"}
_EXISTS = {"412", "PreconditionFailed"}
# S3 allows at most this many parts per upload; the part size grows for objects that would need more.
_MAX_PARTS = 10_000
_GROW_EVERY = 1_000
_READ_CHUNK = 1 << 20


def make_client(settings: Settings) -> Any:
    """A boto3 S3 client for the configured engine (thread-safe; one per process is enough)."""
    config = Config(
        region_name=settings.s3_region,
        signature_version="s3v4",
        s3={"addressing_style": settings.s3_addressing},
        # "standard" retries: throttling, 5xx and connection errors, exponential backoff with jitter.
        retries={"mode": "standard", "max_attempts": settings.s3_max_attempts},
        connect_timeout=10,
        read_timeout=120,
        max_pool_connections=max(10, 2 * settings.s3_parallel_parts + 4),
        # Only what every engine understands: newer default checksums (CRC32 trailers) are not.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra="openims",
    )
    verify: bool | str = str(settings.s3_ca_bundle) if settings.s3_ca_bundle else settings.s3_verify_tls
    secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=settings.s3_endpoint or None,
                          aws_access_key_id=settings.s3_access_key_id or None, aws_secret_access_key=secret,
                          config=config, verify=verify)


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Engine errors as ``objects.base`` errors; ``what`` names the object for the message (no secrets)."""
    try:
        yield
    except ClientError as exc:
        code = _code(exc)
        if code in _NOT_FOUND:
            raise ObjectNotFound(f"{what} does not exist") from exc
        if code in _EXISTS:
            raise ObjectExists(f"{what} already exists") from exc
        if code in ("InvalidRange", "416"):
            raise ObjectNotFound(f"{what} changed (shrank) while it was being read") from exc
        if code in ("InvalidBucketName", "KeyTooLongError"):
            raise InvalidObjectName(f"{what}: {code}") from exc
        if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken", "InvalidToken"):
            log.error("the object store refused the service's credentials (%s) on %s: check OPENIMS_S3_*", code, what)
            raise StorageUnavailable(f"the object store refused the service's credentials on {what}") from exc
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            # Not the service's to read: for the caller the same as absent.
            raise ObjectNotFound(f"{what} is not accessible") from exc
        if _status(exc) >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout", "ServiceUnavailable"):
            raise StorageUnavailable(f"the object store failed on {what} ({code})") from exc
        raise StorageUnavailable(f"the object store refused the request on {what} ({code})") from exc
    except BotoCoreError as exc:
        # Connection refused or reset, timeouts, credentials not found: after boto3's retries.
        raise StorageUnavailable(f"the object store could not be reached for {what} ({type(exc).__name__})") from exc


def part_size_for(settings_part: int, expected: int | None) -> int:
    """The configured part size, grown so that an object of ``expected`` bytes needs at most 10,000 parts."""
    if expected is None or expected <= settings_part * (_MAX_PARTS - 1):
        return settings_part
    return -(-expected // (_MAX_PARTS - 1))


class MultipartWriter:
    """One object written in parts as the caller produces the bytes; visible only after ``complete()``.

    At most ``parallel`` parts are in flight (uploading on a small pool) plus the one being filled,
    so memory stays at about ``(parallel + 1) * part_size`` whatever the object's size (past 1,000
    parts, parts grow and fewer are in flight). A small object goes
    up as a single PUT. ``if_absent`` makes the publish conditional: ObjectExists if the key is taken.
    ``abort()`` (or a failure) removes every uploaded part.
    """

    def __init__(self, client: Any, bucket: str, key: str, *, part_size: int, parallel: int,
                 if_absent: bool = False, expected_size: int | None = None) -> None:
        self._client = client
        self.bucket = bucket
        self.key = key
        self._part_size = part_size_for(part_size, expected_size)
        self._parallel = parallel
        self._if_absent = if_absent
        self._buffer = bytearray()
        self._filled = 0
        self._upload_id: str | None = None
        self._parts: dict[int, Future[str]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(parallel)
        self.size = 0
        self._closed = False
        self._what = f"object {bucket}:{key}"

    def _next_part_size(self) -> int:
        # Parts double every 1,000 so that an object of unknown size never runs out of its 10,000 parts
        # (8 MiB parts reach 8 TiB); fewer of the bigger ones are in flight, so memory stays flat.
        return self._part_size << (len(self._parts) // _GROW_EVERY)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ValueError("write after complete or abort")
        view = memoryview(data).cast("B")
        self.size += len(view)
        # Each part is filled in place and handed over whole: no byte is copied twice.
        while view:
            if not self._buffer:
                self._buffer = bytearray(self._next_part_size())
                self._filled = 0
            n = min(len(view), len(self._buffer) - self._filled)
            self._buffer[self._filled:self._filled + n] = view[:n]
            self._filled += n
            view = view[n:]
            if self._filled == len(self._buffer):
                part, self._buffer = self._buffer, bytearray()
                self._submit(part)

    def _submit(self, data: bytes | bytearray) -> None:
        if self._upload_id is None:
            with translated(self._what):
                self._upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
            self._pool = ThreadPoolExecutor(self._parallel, thread_name_prefix="s3-part")
        self._raise_failed()
        number = len(self._parts) + 1
        # Bounds the parts in memory: as parts grow, fewer of them may be in flight at once.
        weight = min(self._parallel, 1 << ((number - 1) // _GROW_EVERY))
        for _ in range(weight):
            self._slots.acquire()
        assert self._pool is not None
        self._parts[number] = self._pool.submit(self._upload_part, number, data, weight)

    def _upload_part(self, number: int, data: bytes | bytearray, weight: int) -> str:
        try:
            with translated(self._what):
                etag: str = self._client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                                     PartNumber=number, Body=data)["ETag"]
                return etag
        finally:
            for _ in range(weight):
                self._slots.release()

    def _raise_failed(self) -> None:
        for future in self._parts.values():
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    def complete(self) -> ObjectInfo:
        """Publish the object (all at once); its info. Aborts everything on failure."""
        try:
            extra = {"IfNoneMatch": "*"} if self._if_absent else {}
            tail = bytes(memoryview(self._buffer)[:self._filled])
            self._buffer = bytearray()
            if self._upload_id is None:
                with translated(self._what):
                    self._client.put_object(Bucket=self.bucket, Key=self.key, Body=tail, **extra)
            else:
                if tail:
                    self._submit(tail)
                parts = [{"PartNumber": n, "ETag": f.result()} for n, f in sorted(self._parts.items())]
                with translated(self._what):
                    self._client.complete_multipart_upload(
                        Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                        MultipartUpload={"Parts": parts}, **extra)
            self._closed = True
            self._shutdown()
            return ObjectInfo(self.bucket, self.key, self.size, dt.datetime.now(dt.UTC))
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._closed and self._upload_id is None:
            return
        self._closed = True
        self._buffer = bytearray()
        for future in self._parts.values():
            future.cancel()
        self._shutdown()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            try:
                with translated(self._what):
                    self._client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
            except (ObjectNotFound, StorageUnavailable) as exc:
                # The engine drops it itself eventually (and the orphan sweep aborts stale uploads).
                log.warning("could not abort the multipart upload of %s: %s", self._what, exc)

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class BodyReader(io.RawIOBase):
    """A GET's body as a raw readable (``readinto``), engine errors translated."""

    def __init__(self, body: Any, what: str) -> None:
        self._body = body
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view):
            try:
                with translated(self._what):
                    chunk = self._body.read(min(len(view) - done, 8 << 20))
            except ObjectExists as exc:
                raise ObjectNotFound(f"{self._what} changed while it was being read") from exc
            if not chunk:
                break
            view[done:done + len(chunk)] = chunk
            done += len(chunk)
        return done


class S3Objects:
    """The operations both S3 stores need, on one client."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.part_size = settings.s3_part_size
        self.parallel = settings.s3_parallel_parts

    def head(self, bucket: str, key: str) -> ObjectInfo:
        with translated(f"object {bucket}:{key}"):
            r = self.client.head_object(Bucket=bucket, Key=key)
        return ObjectInfo(bucket, key, int(r["ContentLength"]), r["LastModified"])

    def writer(self, bucket: str, key: str, *, if_absent: bool = False,
               expected_size: int | None = None) -> MultipartWriter:
        return MultipartWriter(self.client, bucket, key, part_size=self.part_size, parallel=self.parallel,
                               if_absent=if_absent, expected_size=expected_size)

    def upload_file(self, bucket: str, key: str, path: Path, *, if_absent: bool = False,
                    progress: Callable[[int], None] | None = None) -> ObjectInfo:
        """A local file as a new object, read once, in parallel parts."""
        size = path.stat().st_size
        writer = self.writer(bucket, key, if_absent=if_absent, expected_size=size)
        try:
            with open(path, "rb") as f:
                while chunk := f.read(min(writer._part_size, 8 << 20)):
                    writer.write(chunk)
                    if progress is not None:
                        progress(writer.size)
        except BaseException:
            writer.abort()
            raise
        return writer.complete()

    def download(self, bucket: str, key: str, dest: Path, *, expected_size: int | None = None) -> int:
        """The object into ``dest`` with parallel ranged GETs; its size. ``dest`` is removed on failure."""
        config = TransferConfig(multipart_threshold=self.part_size, multipart_chunksize=self.part_size,
                                max_concurrency=self.parallel, use_threads=True, max_io_queue=16)
        # s3transfer would hold up to 1,000 chunks (250 MiB) received ahead of the disk: keep it to a part.
        config.max_in_memory_download_chunks = max(8, self.part_size // config.io_chunksize)
        try:
            try:
                with translated(f"object {bucket}:{key}"):
                    self.client.download_file(bucket, key, str(dest), Config=config)
            except ObjectExists as exc:  # 412: the version downloaded in parts changed underway
                raise ObjectNotFound(f"object {bucket}:{key} changed while it was being read") from exc
            size = dest.stat().st_size
            if expected_size is not None and size != expected_size:
                # Replaced or truncated while it was read.
                raise ObjectNotFound(f"object {bucket}:{key} changed while it was being read "
                                     f"({size} bytes instead of {expected_size})")
            return size
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def read(self, bucket: str, key: str, start: int = 0, length: int | None = None, *,
             if_match: str | None = None) -> Iterator[bytes]:
        """The object's bytes from ``start`` (``length`` of them, or to the end), in chunks; with
        ``if_match`` (an ETag), ObjectNotFound if the object is no longer that version."""
        extra: dict[str, str] = {"IfMatch": if_match} if if_match else {}
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            extra["Range"] = f"bytes={start}-{end}"
        what = f"object {bucket}:{key}"
        try:
            with translated(what):
                body = self.client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
        except ObjectExists as exc:  # 412: If-Match failed
            raise ObjectNotFound(f"{what} changed while it was being read") from exc
        try:
            while True:
                with translated(what):
                    chunk = body.read(_READ_CHUNK)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    def copy(self, bucket: str, src_key: str, dest_key: str, size: int, *, source_bucket: str | None = None) -> None:
        """Server-side copy into ``bucket`` from ``source_bucket`` (the same bucket by default), multipart
        beyond 5 GiB; no data through this process."""
        what = f"object {bucket}:{dest_key}"
        source = {"Bucket": source_bucket or bucket, "Key": src_key}
        if size <= 5 << 30:
            with translated(what):
                self.client.copy_object(Bucket=bucket, Key=dest_key, CopySource=source)
            return
        part = part_size_for(max(self.part_size, 1 << 30), size)
        with translated(what):
            upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=dest_key)["UploadId"]
        try:
            parts = []
            for number, offset in enumerate(range(0, size, part), start=1):
                last = min(size, offset + part) - 1
                with translated(what):
                    r = self.client.upload_part_copy(Bucket=bucket, Key=dest_key, UploadId=upload_id,
                                                     PartNumber=number, CopySourceRange=f"bytes={offset}-{last}",
                                                     CopySource=source)
                parts.append({"PartNumber": number, "ETag": r["CopyPartResult"]["ETag"]})
            with translated(what):
                self.client.complete_multipart_upload(Bucket=bucket, Key=dest_key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts})
        except BaseException:
            with translated(what):
                self.client.abort_multipart_upload(Bucket=bucket, Key=dest_key, UploadId=upload_id)
            raise

    def delete(self, bucket: str, key: str) -> None:
        with translated(f"object {bucket}:{key}"):
            self.client.delete_object(Bucket=bucket, Key=key)

    def listing(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        with translated(f"bucket {bucket}"):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for o in page.get("Contents", []):
                    yield ObjectInfo(bucket, o["Key"], int(o["Size"]), o["LastModified"])

    def stale_uploads(self, bucket: str, prefix: str, older_than: dt.datetime) -> list[tuple[str, str]]:
        """(key, upload id) of multipart uploads begun before ``older_than`` and never completed."""
        found = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        with translated(f"bucket {bucket}"):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for u in page.get("Uploads", []):
                    if u["Initiated"] < older_than:
                        found.append((u["Key"], u["UploadId"]))
        return found

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with translated(f"object {bucket}:{key}"):
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    def bucket_exists(self, bucket: str) -> bool:
        try:
            with translated(f"bucket {bucket}"):
                self.client.head_bucket(Bucket=bucket)
        except ObjectNotFound:
            return False
        return True

    def create_bucket(self, bucket: str, region: str) -> bool:
        """Create the bucket; False if it already existed (this identity's own)."""
        extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        try:
            self.client.create_bucket(Bucket=bucket, **extra)
        except ClientError as exc:
            if _code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return False
            with translated(f"bucket {bucket}"):
                raise
        except BotoCoreError:
            with translated(f"bucket {bucket}"):
                raise
        return True

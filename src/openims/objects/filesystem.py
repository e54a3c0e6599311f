"""Buckets as directories: bucket ``b`` is ``<root>/b/``; keys resolve strictly inside it."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from openims.durable import fsync_path
from openims.objects.base import (
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    StreamedObject,
    check_bucket_name,
    check_key,
)

CHUNK = 1024 * 1024


class FilesystemBuckets:
    adopts_unregistered = True
    needs_local_copy = False

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _bucket_dir(self, bucket: str) -> Path:
        return self.root / check_bucket_name(bucket)

    def _resolve(self, bucket: str, key: str) -> Path:
        """The real path of an object, refusing anything (symlinks included) that leaves the bucket."""
        base = self._bucket_dir(bucket)
        if not base.is_dir() or base.is_symlink():
            raise ObjectNotFound(f"bucket {bucket} does not exist")
        real_base = os.path.realpath(base)
        real = os.path.realpath(base / check_key(key))
        if os.path.commonpath([real_base, real]) != real_base or real == real_base:
            raise ObjectNotFound(f"object {bucket}:{key} does not exist")
        return Path(real)

    def bucket_exists(self, bucket: str) -> bool:
        d = self._bucket_dir(bucket)
        return d.is_dir() and not d.is_symlink()

    def create_bucket(self, bucket: str) -> None:
        self._bucket_dir(bucket).mkdir(exist_ok=True)

    def list_buckets(self) -> list[str]:
        out = []
        for p in sorted(self.root.iterdir()):
            try:
                check_bucket_name(p.name)
            except ValueError:
                continue
            if p.is_dir() and not p.is_symlink():
                out.append(p.name)
        return out

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        path = self._resolve(bucket, key)
        try:
            st = path.stat()
        except OSError as exc:
            raise ObjectNotFound(f"object {bucket}:{key} does not exist") from exc
        if not path.is_file():
            raise ObjectNotFound(f"object {bucket}:{key} is not a file")
        return ObjectInfo(bucket, key, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC))

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self._bucket_dir(bucket)
        if not self.bucket_exists(bucket):
            raise ObjectNotFound(f"bucket {bucket} does not exist")
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".openims-"))
            for name in sorted(filenames):
                if name.startswith(".openims-"):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(base).as_posix()
                if not key.startswith(prefix) or full.is_symlink():
                    continue
                st = full.stat()
                yield ObjectInfo(bucket, key, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC))

    def _new_object_path(self, bucket: str, key: str) -> Path:
        """Where a new object goes: inside the bucket (symlinked folders included), parents created."""
        base = self._bucket_dir(bucket)
        if not self.bucket_exists(bucket):
            raise ObjectNotFound(f"bucket {bucket} does not exist")
        target = base / check_key(key)
        real_base = os.path.realpath(base)
        parent = Path(os.path.realpath(target.parent))
        if os.path.commonpath([real_base, parent]) != real_base:
            raise ObjectNotFound(f"object {bucket}:{key} is outside the bucket")
        parent.mkdir(parents=True, exist_ok=True)
        return parent / target.name

    def put(self, bucket: str, key: str, stream: BinaryIO) -> ObjectInfo:
        final = self._new_object_path(bucket, key)
        parent = final.parent
        # Write beside the target and rename: readers never see a half-written object.
        tmp = parent / f".openims-upload-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
            fsync_path(tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return self.stat(bucket, key)

    def put_file(self, bucket: str, key: str, path: Path) -> ObjectInfo:
        final = self._new_object_path(bucket, key)
        parent = final.parent
        if os.path.lexists(final):
            raise ObjectExists(f"object {bucket}:{key} already exists")
        # A hidden name in the target directory first (a rename, or a copy when the file is on
        # another filesystem), made durable; then link(2), which publishes the complete file in one
        # step and fails if the key was taken meanwhile, where a rename would replace it.
        tmp = parent / f".openims-upload-{uuid.uuid4().hex}"
        try:
            try:
                os.rename(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
            fsync_path(tmp)
            try:
                os.link(tmp, final)
            except FileExistsError as exc:
                raise ObjectExists(f"object {bucket}:{key} already exists") from exc
            fsync_path(parent)  # the new name must survive a crash too
        finally:
            tmp.unlink(missing_ok=True)
        return self.stat(bucket, key)

    def delete(self, bucket: str, key: str) -> None:
        path = self._resolve(bucket, key)
        try:
            path.unlink()
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object {bucket}:{key} does not exist") from exc

    @contextmanager
    def streamed(self, bucket: str, key: str, scratch: Path | None, head: int,
                 tail: int) -> Iterator[StreamedObject]:
        # The file is its own probe.
        self.stat(bucket, key)
        path = self._resolve(bucket, key)
        with open(path, "rb", buffering=0) as f:
            yield StreamedObject(path, f)

    @contextmanager
    def local_copy(self, bucket: str, key: str, scratch: Path | None = None) -> Iterator[Path]:
        # Already local: no copy.
        self.stat(bucket, key)
        yield self._resolve(bucket, key)

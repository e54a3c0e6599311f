"""Several named image stores (``OPENIMS_STORES``, Glance's ``enabled_backends``) behind the one ``ImageStore``.

``ImageStores`` is itself an ``ImageStore``: new data goes to the default store (``staging``), and every
location is routed to the store that holds it — a location says which one (``file://<id>/<image>`` for
a named file store, ``s3://<bucket>/<prefix>…`` for an S3 store; a bare image id is data of before
several stores, kept in ``<data>/images`` and counted as the default store's). So everything written
for one store (imports, uploads, exports, IMS copies, the orphan sweep) works unchanged on several.

What only several stores have: their ids and descriptions (``/v2/info/stores``), a staging in a chosen
store, and ``copy_into``: an image's data from one store into another — by the engine when both are
buckets of the one S3 engine, else streamed through the target's ``Staging`` (never whole in memory)
with its size and checksums computed on the way, for the caller to compare with the image's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openims.objects.image_store import FileImageStore, ImageStore, Staging


@dataclass(frozen=True)
class StoreInfo:
    """One store as ``GET /v2/info/stores/detail`` describes it."""

    id: str
    kind: str  # "file" | "s3"
    properties: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    weight: int = 0


@dataclass(frozen=True)
class CopiedData:
    """What a copy wrote: its size, and its checksums when the bytes went through this process."""

    size: int
    md5: str | None = None
    sha512: str | None = None


class UnknownLocation(ValueError):
    """A location no configured store holds (a store removed from ``OPENIMS_STORES``)."""


def is_local(store: ImageStore, location: str | None = None) -> bool:
    """Whether the data at ``location`` (or new data, when None) is a local file: no scratch space is needed."""
    if isinstance(store, ImageStores):
        return is_local(store.default if location is None else store.holder(location))
    return isinstance(store, FileImageStore)


class ImageStores:
    """The configured stores by id, in their configured order, with one default."""

    def __init__(self, stores: dict[str, ImageStore], infos: list[StoreInfo], default: str,
                 legacy: FileImageStore) -> None:
        self.stores = stores
        self.infos = infos
        self.ids = tuple(i.id for i in infos)
        self.default_id = default
        self.default = stores[default]
        # <data>/images: bare-id data from before several stores were configured (the default store's).
        self.legacy = legacy

    def store(self, store_id: str) -> ImageStore:
        return self.stores[store_id]

    def store_of(self, location: str) -> str:
        """The id of the store holding ``location`` (UnknownLocation if none does)."""
        if self.legacy.owns(location):
            return self.default_id
        for store_id, store in self.stores.items():
            if store.owns(location):
                return store_id
        raise UnknownLocation(f"no configured image store holds {location!r}")

    def holder(self, location: str) -> ImageStore:
        """The store object that reads and deletes ``location``."""
        if self.legacy.owns(location):
            return self.legacy
        return self.stores[self.store_of(location)]

    def ordered(self, store_ids: set[str]) -> list[str]:
        """``store_ids`` in the configured order (how ``stores`` lists are rendered)."""
        return [i for i in self.ids if i in store_ids]

    def preferred(self, locations: list[str]) -> list[str]:
        """Where to read an image's data, best first: the default store's copy, then the others."""
        known = [loc for loc in locations if self._known(loc)]
        return sorted(known, key=lambda loc: self.store_of(loc) != self.default_id)

    def _known(self, location: str) -> bool:
        try:
            self.store_of(location)
        except UnknownLocation:
            return False
        return True

    # ------------------------------------------------------------ the ImageStore protocol

    def staging(self, job_id: str, image_id: str) -> Staging:
        return self.default.staging(job_id, image_id)

    def staging_in(self, store_id: str, job_id: str, image_id: str) -> Staging:
        return self.stores[store_id].staging(job_id, image_id)

    def temp_path(self, job_id: str, image_id: str, suffix: str = "") -> Path:
        return self.default.temp_path(job_id, image_id, suffix)

    def owns(self, location: str) -> bool:
        return self.legacy.owns(location) or any(s.owns(location) for s in self.stores.values())

    def copy_staging(self, location: str, job_id: str, image_id: str) -> Staging:
        """A sealed private copy of the data at ``location`` in the default store (an IMS in-region copy):
        the default store's own copy (a reflink, a server-side copy) when it holds the data, else streamed."""
        holder = self.holder(location)
        if holder is self.default or (holder is self.legacy and not isinstance(self.default, FileImageStore)):
            # An S3 default store uploads bare-id data from its fallback, <data>/images.
            return self.default.copy_staging(location, job_id, image_id)
        staging, _copied = self.copy_into(location, self.default_id, job_id, image_id)
        try:
            staging.seal()
        except BaseException:
            staging.discard()
            raise
        return staging

    def clear_temp(self, job_id: str) -> None:
        self.legacy.clear_temp(job_id)
        for store in self.stores.values():
            store.clear_temp(job_id)

    def exists(self, location: str) -> bool:
        return self.holder(location).exists(location)

    def size(self, location: str) -> int:
        return self.holder(location).size(location)

    def delete(self, location: str) -> None:
        """One copy; a bare image id: whatever data of that image any store holds."""
        if not self.legacy.owns(location):
            self.holder(location).delete(location)
            return
        self.legacy.delete(location)
        for store in self.stores.values():
            store.delete(location)

    def read(self, location: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        return self.holder(location).read(location, start, length)

    def local_path(self, location: str, scratch: Path) -> AbstractContextManager[Path]:
        return self.holder(location).local_path(location, scratch)

    def orphans(self, known: Callable[[str], bool], older_than: dt.datetime) -> int:
        # Every location names its store, so one set of known locations serves every store.
        return self.legacy.orphans(known, older_than) + sum(s.orphans(known, older_than)
                                                             for s in self.stores.values())

    # ------------------------------------------------------------ copies between stores

    def copy_into(self, location: str, store_id: str, job_id: str, image_id: str,
                  progress: Callable[[int], None] | None = None) -> tuple[Staging, CopiedData]:
        """The data at ``location`` in a staging of store ``store_id``: not yet sealed unless the engine
        copied it. The caller compares ``CopiedData`` with the image's, then seals and publishes, or discards.

        ``progress(bytes)`` is called as data streams (it may raise to stop the copy).
        FileNotFoundError when the source data is gone.
        """
        from openims.objects.s3_stores import S3ImageStore  # boto3 only when S3 is configured

        source, target = self.holder(location), self.stores[store_id]
        if isinstance(source, S3ImageStore) and isinstance(target, S3ImageStore) and source.objects is target.objects:
            copied = target.server_copy(source, location, job_id, image_id)
            try:
                return copied, CopiedData(copied.stored_size())
            except BaseException:
                copied.discard()
                raise
        staging = target.staging(job_id, image_id)
        try:
            return staging, _stream(source.read(location), staging, progress)
        except BaseException:
            staging.discard()
            raise


def _stream(chunks: Iterator[bytes], staging: Staging, progress: Callable[[int], None] | None) -> CopiedData:
    """Every chunk hashed and handed to the staging (teed to its upload, or written to its file)."""
    hashes = [hashlib.md5(usedforsecurity=False), hashlib.sha512()]
    total = 0
    out = None if staging.tee is not None else open(staging.path, "wb")  # noqa: SIM115 - closed below
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            for h in hashes:
                h.update(view)
            if staging.tee is not None:
                staging.tee(view)
            elif out is not None:
                out.write(view)
            total += len(chunk)
            if progress is not None:
                progress(total)
    finally:
        if out is not None:
            out.close()
    if total == 0 and staging.tee is not None:
        staging.path.write_bytes(b"")  # nothing was teed: the staging uploads its (empty) file
    return CopiedData(total, hashes[0].hexdigest(), hashes[1].hexdigest())


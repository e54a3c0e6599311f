"""Readiness: whether this process can serve — database, schema, keys and stores, each checked cheaply.

``/readyz`` (``api/observability_routes.py``) runs these; liveness (``/healthz``) checks nothing here on
purpose: a process that answers at all is alive, and restarting it would not bring a database back.

A check's ``detail`` is shown to anyone (the probe is unauthenticated), so it names the failure in
general words; the error itself goes to the log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openims.db import migrate
from openims.objects.base import BucketStore
from openims.objects.filesystem import FilesystemBuckets
from openims.objects.image_store import FileImageStore, ImageStore
from openims.objects.image_stores import ImageStores
from openims.runtime import Runtime

log = logging.getLogger("openims.health")


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


class NotReady(Exception):
    """A check failed; the message is safe to show."""


def checks(rt: Runtime) -> dict[str, Callable[[], str]]:
    """The checks by name, each returning what it found or raising (NotReady with a safe message)."""
    return {
        "database": lambda: _database(rt),
        "migrations": lambda: _migrations(rt),
        "keys": lambda: _keys(rt),
        "image_store": lambda: _image_store(rt.images),
        "buckets": lambda: _buckets(rt.buckets),
    }


def run(name: str, check: Callable[[], str]) -> Check:
    """One check's outcome; any error is a failure, logged in full, shown in general words."""
    try:
        return Check(True, check())
    except NotReady as exc:
        log.warning("readiness: %s: %s", name, exc)
        return Check(False, str(exc))
    except Exception as exc:
        log.warning("readiness: %s failed: %s: %s", name, type(exc).__name__, exc)
        return Check(False, f"failed ({type(exc).__name__})")


def _database(rt: Runtime) -> str:
    from sqlalchemy import text

    with rt.db.read_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return "reachable"


def _migrations(rt: Runtime) -> str:
    head, known = migrate.code_revisions()
    with rt.db.read_engine.connect() as conn:
        at = migrate.schema_revision(conn)
    if at == head:
        return f"at {at}"
    if at is not None and at not in known:
        # A newer release migrated it (a rolling upgrade): migrations are additive within a release.
        return f"at {at}, newer than this version's {head}"
    raise NotReady(f"the schema is at {at or 'no revision'}, this version needs {head}: run `openims db upgrade`")


def _keys(rt: Runtime) -> str:
    rt.codec.check_keys()
    if rt.credential_cipher.open(rt.credential_cipher.seal("ready")) != "ready":
        raise NotReady("the credential keys do not open what they seal")
    return "token and credential keys loaded"


def _directory(path: Path, what: str) -> None:
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise NotReady(f"{what} is not a writable directory")


def _image_store(store: ImageStore) -> str:
    if isinstance(store, ImageStores):
        _image_store(store.legacy)
        for one in store.stores.values():
            _image_store(one)
        return f"{len(store.stores)} stores reachable"
    if isinstance(store, FileImageStore):
        _directory(store.root, "the image store's directory")
        return "directory writable"
    return _s3_bucket(store)


def _s3_bucket(store: Any) -> str:
    # An S3ImageStore (imported only when configured: boto3 is not loaded otherwise): a HEAD of its bucket.
    if not store.objects.bucket_exists(store.bucket):
        raise NotReady("the image store's bucket does not exist")
    return "bucket reachable"


def _buckets(buckets: BucketStore) -> str:
    if isinstance(buckets, FilesystemBuckets):
        _directory(buckets.root, "the buckets' directory")
        return "directory writable"
    buckets.list_buckets()  # one request to the engine: reachable, and the credentials accepted
    return "engine reachable"

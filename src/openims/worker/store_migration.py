"""``openims store migrate``: move an embedded deployment's stored images into the S3 image store.

Image by image: upload the file (in parallel parts), point the image row at the object — only if it
still points at the file — then delete the file. Idempotent and resumable: an image already moved is
not found again; a run stopped between upload and update leaves an object no row points to, which the
orphan sweep removes, and the next run moves that image afresh.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from openims.catalog import images
from openims.db.session import after_commit
from openims.objects.s3_stores import S3ImageStore
from openims.runtime import Runtime

log = logging.getLogger("openims.migrate")

_BATCH = 100


@dataclass
class MigrationReport:
    moved: int = 0
    changed: int = 0  # the image was deleted or its data replaced meanwhile: its copy was dropped
    missing: int = 0  # the row points at a file that is not there


def migrate_to_s3(rt: Runtime, on_image: Callable[[str, str], None] | None = None) -> MigrationReport:
    """Move every image whose data is a file of ``<data>/images`` into the S3 image store: ``rt.images``, or
    with several stores the default store (the one those files belong to)."""
    store = rt.stores.default if rt.stores is not None else rt.images
    if not isinstance(store, S3ImageStore):
        raise ValueError("the image store is not S3: set OPENIMS_IMAGE_STORE=s3://<bucket>/<prefix> (or, with "
                         "OPENIMS_STORES, make an S3 store the default)")
    report = MigrationReport()
    run = uuid.uuid4().hex
    skipped: set[str] = set()
    while True:
        with rt.db.session() as s:
            batch = [(i, loc) for i, loc in images.images_stored_at(s, bare=True, limit=_BATCH + len(skipped))
                     if i not in skipped]
        if not batch:
            return report
        for image_id, location in batch:
            try:
                staging = store.copy_staging(location, run, image_id)
            except FileNotFoundError:
                log.warning("image %s: its file %s is missing; left as it is", image_id, location)
                report.missing += 1
                skipped.add(image_id)
                continue
            new = staging.publish()
            with rt.db.transaction() as s:
                if images.move_data(s, image_id, location, new):
                    # The file only: deleting by the bare id would take the new object too.
                    after_commit(s, functools.partial(store.fallback.delete, location))
                    report.moved += 1
                    outcome = "moved"
                else:
                    after_commit(s, staging.discard)
                    report.changed += 1
                    outcome = "changed meanwhile; copy dropped"
            skipped.add(image_id)
            if on_image is not None:
                on_image(image_id, outcome)

"""Which stores hold an image's data, with several image stores (``OPENIMS_STORES``).

An image's data is ``images.location`` (its first copy: where every import, upload and copy writes)
plus one ``image_copies`` row per further store holding a copy (copy-image, an import into several
stores). Each location names its store (``objects.image_stores``), so the stores holding an image are
the stores of those locations; an image of before several stores (a bare-id location) is the default
store's. With a single store nothing here is used: no store ids appear anywhere.

Copies are added only under the image's row lock by the job that holds the image (``add_copy``) and
removed with the image (the rows cascade) or one by one (``remove_copy``, Glance's
``DELETE /v2/stores/{store}/{image}``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from openims.catalog.images import ImageStatus
from openims.catalog.members import visible_to
from openims.db.models import Image, ImageCopy
from openims.errors import ImsConflict, ImsForbidden, ImsNotFound
from openims.objects.image_stores import ImageStores, UnknownLocation


def copies_of(session: Session, image_ids: Sequence[str]) -> dict[str, list[ImageCopy]]:
    """The further copies of these images, by image id (every id present)."""
    found: dict[str, list[ImageCopy]] = {i: [] for i in image_ids}
    if image_ids:
        for row in session.scalars(select(ImageCopy).where(ImageCopy.image_id.in_(list(image_ids)))
                                   .order_by(ImageCopy.created_at, ImageCopy.store_id)):
            found[row.image_id].append(row)
    return found


def locations_of(image: Image, copies: Sequence[ImageCopy]) -> list[str]:
    """Every location of the image's data: its first copy, then the others."""
    return ([image.location] if image.location else []) + [c.location for c in copies]


def held_by(stores: ImageStores, image: Image, copies: Sequence[ImageCopy]) -> list[str]:
    """The ids of the stores holding the image's data, in the configured order (none before it has data)."""
    if image.status not in (ImageStatus.ACTIVE.value, ImageStatus.DEACTIVATED.value, ImageStatus.IMPORTING.value):
        return []
    if image.status == ImageStatus.IMPORTING.value and image.checksum is None:
        return []  # the staged data of an import is not the image's yet
    held = {c.store_id for c in copies}
    if image.location:
        # A store no longer configured is not one the image can be read from.
        with contextlib.suppress(UnknownLocation):
            held.add(stores.store_of(image.location))
    return stores.ordered(held)


def stores_field(session: Session, stores: ImageStores, images: Sequence[Image]) -> dict[str, str]:
    """Glance's ``stores`` attribute of each image: the comma-joined ids of the stores holding its data."""
    copies = copies_of(session, [i.id for i in images])
    return {i.id: ",".join(held_by(stores, i, copies[i.id])) for i in images}


def add_copy(session: Session, image: Image, store_id: str, location: str, now: dt.datetime) -> None:
    """Record a copy of the (locked) image's data in ``store_id``."""
    session.add(ImageCopy(image_id=image.id, store_id=store_id, location=location, created_at=now))
    session.flush()


def drop_copies(session: Session, image_id: str) -> None:
    """Forget every further copy (the image's data is gone: a failed import; the caller removes the data)."""
    session.execute(delete(ImageCopy).where(ImageCopy.image_id == image_id))


def remove_copy(session: Session, stores: ImageStores, project_id: str, store_id: str, image_id: str,
                now: dt.datetime) -> str:
    """Glance's ``DELETE /v2/stores/{store}/{image}`` (v2.10): the image's copy in one store goes; its
    location is returned, to delete once this commits.

    Glance's answers, in its order: a store not configured 409, an image not visible 404, not active
    (or being imported or copied) 409, its only copy 403 (delete the image instead), no copy in that
    store 404.
    """
    if store_id not in stores.ids:
        raise ImsConflict(f"The selected store {store_id[:64]!r} is not available on this node.", code="IMG.0035")
    image = visible_to(session, project_id, image_id, for_update=True)
    if image.owner != project_id:
        raise ImsForbidden(f"Image {image_id} is shared with you; only its owner may delete its data.",
                           code="IMG.0047")
    task = image.properties.get("os_glance_import_task")
    if image.status != ImageStatus.ACTIVE.value or task:
        raise ImsConflict(f"Image data can be removed from a store only while the image is active "
                          f"(image {image_id} is {image.status}{', with an import running' if task else ''}).",
                          code="IMG.0035")
    copies = copies_of(session, [image.id])[image.id]
    held = held_by(stores, image, copies)
    if len(held) <= 1:
        raise ImsForbidden("Cannot delete image data from the only store containing it. Consider deleting the "
                           "image instead.", code="IMG.0026")
    if store_id not in held:
        raise ImsNotFound(f"Image {image_id} is not stored in store {store_id}.", code="IMG.0046")
    copy = next((c for c in copies if c.store_id == store_id), None)
    if copy is not None:
        session.delete(copy)
        image.updated_at = now
        return copy.location
    # The first copy goes: another copy takes its place.
    assert image.location is not None
    gone, successor = image.location, copies[0]
    image.location = successor.location
    session.delete(successor)
    image.updated_at = now
    return gone

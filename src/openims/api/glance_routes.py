"""The native OpenStack image API (Glance v2) that IMS also serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from openims.api.auth import ReaderDep, RuntimeDep, WriterDep
from openims.api.deps import SessionDep
from openims.api.ims_wire import image_body
from openims.catalog import images as image_rules
from openims.catalog.images import tags_of

router = APIRouter(tags=["glance"])


@router.get("/v2/images/{image_id}", summary="Show image details (native)")
def show_image(image_id: str, caller: ReaderDep, session: SessionDep) -> dict[str, Any]:
    image = image_rules.get_readable(session, caller.project_id, image_id)
    return image_body(image, tags_of(session, [image.id])[image.id])


@router.delete("/v2/images/{image_id}", status_code=204, summary="Delete an image (native)")
def delete_image(image_id: str, caller: WriterDep, session: SessionDep, rt: RuntimeDep) -> Response:
    location = image_rules.delete_owned(session, caller.project_id, image_id)
    if location:
        # The row is gone in this transaction; the data follows once it commits.
        session.info.setdefault("after_commit", []).append(lambda: rt.images.delete(location))
    return Response(status_code=204)

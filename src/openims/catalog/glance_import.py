"""Glance's interoperable import (``POST /v2/images/{id}/import``) and its tasks: the rules and state.

``glance-direct`` imports the data ``PUT /v2/images/{id}/stage`` stored (``catalog.uploads``): the
image goes ``uploading → importing`` and a job (``worker.import_handlers``) checks the data as
every import is checked, stores it (as it is, or converted when ``OPENIMS_IMPORT_CONVERT_TO`` says
so) and makes the image ``active``; a failure puts it back to ``queued`` without data, as Glance's
revert does. ``web-download`` fetches the data from a URL (``objects.web_download``: filtered,
every redirect re-checked) into a queued image, then goes on as glance-direct.

With several stores (``OPENIMS_STORES``) an import goes to the stores named by ``stores`` /
``all_stores`` (the default store otherwise): the first gets the import, the others a copy of it,
and the image is ``active`` once all are done. ``copy-image`` (image administrators) copies an
active image's data into further stores while the image stays ``active``. Both are the same job:
stores still to do are the job's stores minus those holding the data (``catalog.stores``) minus
those that failed, so a job taken over after a crash goes on where it was. A store that fails is
listed in ``os_glance_failed_import``; with ``all_stores_must_succeed`` (the default) it fails the
job — an import then goes back to ``queued`` without data, a copy-image keeps the copies made. With a
single store there are no store ids: ``stores`` naming any is an unknown store, and copy-image has
nothing to copy.

While the job runs the image carries Glance's reserved properties: ``os_glance_import_task`` (the
task id: a second import is refused while it is set), ``os_glance_importing_to_stores`` (the stores
still to do) and ``os_glance_failed_import`` (sorted, comma-separated; ``""`` with one store).
The job is the task: ``GET /v2/images/{id}/tasks`` renders the image's import jobs.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from openims.catalog import jobs
from openims.catalog.images import ImageStatus, transition
from openims.catalog.jobs import JobPayload, JobStatus, JobType
from openims.catalog.members import visible_to
from openims.catalog.stores import copies_of, drop_copies, held_by
from openims.db.models import Image, Job
from openims.errors import ImsBadRequest, ImsConflict, ImsForbidden
from openims.objects.image_stores import ImageStores

GLANCE_DIRECT = "glance-direct"
WEB_DOWNLOAD = "web-download"
COPY_IMAGE = "copy-image"
# What /v2/info/import and the create header advertise: the methods that work here. Glance's
# glance-download (another region's Glance) is "unknown", as a disabled method is on Glance.
METHODS: tuple[str, ...] = (GLANCE_DIRECT, WEB_DOWNLOAD, COPY_IMAGE)

LOCK = "os_glance_import_task"
IMPORTING_TO = "os_glance_importing_to_stores"
FAILED_IMPORT = "os_glance_failed_import"
TASK_TYPE = "api_image_import"
# Glance keeps a finished task this long (expires_at).
TASK_LIFETIME = dt.timedelta(hours=48)

_HELD = (ImageStatus.IMPORTING.value, ImageStatus.ACTIVE.value, ImageStatus.DEACTIVATED.value)
_TASK_STATUS = {JobStatus.INIT.value: "pending", JobStatus.RUNNING.value: "processing",
                JobStatus.SUCCESS.value: "success", JobStatus.FAIL.value: "failure"}


class ImportPayload(JobPayload):
    """The typed payload of a glance import job (the task's ``input`` and who asked)."""

    image_id: str
    method: str
    import_req: dict[str, Any]
    user_id: str
    request_id: str
    # Several stores: where the data goes, in order (an import's first store gets the import, every other
    # a copy). Empty with a single store.
    stores: list[str] = Field(default_factory=list)
    # False: a store that fails is recorded in os_glance_failed_import and the others go on.
    all_stores_must_succeed: bool = True


def _method(body: object) -> tuple[str, dict[str, Any]]:
    """The import method of a request body, checked as Glance checks it, before anything else."""
    if not isinstance(body, dict):
        raise ImsBadRequest("The import request needs a JSON object body with a method.", code="IMG.0001")
    method = body.get("method")
    if not isinstance(method, dict) or not isinstance(method.get("name"), str):
        raise ImsBadRequest("Import request requires a 'method' field with a 'name'.", code="IMG.0001")
    for flag in ("all_stores", "all_stores_must_succeed"):
        if flag in body and not isinstance(body[flag], bool):
            raise ImsBadRequest(f"{flag} must be a boolean.", code="IMG.0001")
    name = method["name"]
    if name not in METHODS:
        raise ImsBadRequest(f"Unknown import method name '{name[:64]}'.", code="IMG.0001")
    return name, body


def submit(session: Session, *, project_id: str, user_id: str, request_id: str, image_id: str, body: object,
           may_copy: bool, refused_uri: Callable[[str], str | None], now: dt.datetime,
           stores: ImageStores | None = None) -> Job | None:
    """Start an import of the image; the job, or None when nothing is left to do (202 without a task).

    Errors come in Glance's order (images.py ``import_image``): the body, the image (404), its
    status and formats (409), the policy (403), the import lock (409), the stores (409 / 400), and
    last web-download's URI (``refused_uri``: why the filter refuses it, or None) 400.
    ``stores``: the named stores, None with a single store.
    One difference: ``all_stores_must_succeed: false`` is accepted with a single store (see below).
    """
    name, req = _method(body)
    if name == WEB_DOWNLOAD and not isinstance(req["method"].get("uri"), str):
        raise ImsBadRequest("web-download needs method.uri, the URL of the image data.", code="IMG.0001")
    image = visible_to(session, project_id, image_id, for_update=True)
    status = image.status
    if name == COPY_IMAGE:
        if status != ImageStatus.ACTIVE.value:
            raise ImsConflict(f"Image {image_id} is {status}: only an active image can be copied.", code="IMG.0035")
    elif status == ImageStatus.ACTIVE.value:
        raise ImsConflict(f"Image {image_id} is active: it has its data already.", code="IMG.0035")
    elif name == WEB_DOWNLOAD and status != ImageStatus.QUEUED.value:
        raise ImsConflict(f"Image {image_id} is {status}: web-download needs a queued image.", code="IMG.0035")
    elif name == GLANCE_DIRECT and (status != ImageStatus.UPLOADING.value or image.upload_holder is not None
                                    or image.location is None):
        raise ImsConflict(f"Image needs to be staged before an import can be started (image {image_id} is "
                          f"{status}{', still receiving data' if image.upload_holder else ''}).", code="IMG.0035")
    if not image.disk_format or not image.container_format:
        raise ImsConflict("'disk_format' and 'container_format' must be set prior to importing data.",
                          code="IMG.0035")
    if name == COPY_IMAGE and not may_copy:
        raise ImsForbidden("Only an image administrator may copy an image between stores.", code="IMG.0026")
    if image.owner != project_id:
        raise ImsForbidden(f"Image {image_id} is shared with you; only its owner may import data to it.",
                           code="IMG.0047")
    if image.properties.get(LOCK):
        raise ImsConflict(f"Image {image_id} has an import in progress (task {image.properties[LOCK]}).",
                          code="IMG.0035")
    targets = _targets(session, stores, image, name, req)
    # Glance refuses all_stores_must_succeed=false without several stores (400); openstackclient's
    # `image import` sends it by default, so with one store it is accepted, and means nothing.
    if name == WEB_DOWNLOAD:
        uri = req["method"]["uri"]
        why = refused_uri(uri)
        if why is not None:
            raise ImsBadRequest(f"URI for web-download does not pass filtering: {uri[:256]} ({why}).",
                                code="IMG.0001")
    if name == COPY_IMAGE and not targets:
        if req.get("all_stores"):
            return None  # every store holds the data already: nothing to copy, no task (as Glance)
        raise ImsBadRequest("copy-image needs the stores to copy to (stores or all_stores).", code="IMG.0001")
    return _start(session, image, project_id=project_id, user_id=user_id, request_id=request_id, method=name,
                  req=req, targets=targets, now=now)


def _targets(session: Session, stores: ImageStores | None, image: Image, method: str,
             req: dict[str, Any]) -> list[str]:
    """The stores the data goes to, in order: checked as Glance checks ``stores`` and ``all_stores``."""
    named = req.get("stores")
    if named is not None:
        if not isinstance(named, list) or not all(isinstance(x, str) for x in named):
            raise ImsBadRequest("stores must be a list of store ids.", code="IMG.0001")
        if req.get("all_stores"):
            raise ImsBadRequest("all_stores cannot be combined with stores.", code="IMG.0001")
    wanted = list(dict.fromkeys(named or []))
    if stores is None:
        if wanted:
            # One store, which has no id: every id named is unknown (Glance's 409).
            raise ImsConflict(f"Unknown store {wanted[0][:64]!r}: this deployment has a single image store.",
                              code="IMG.0035")
        return []
    unknown = [x for x in wanted if x not in stores.ids]
    if unknown:
        raise ImsConflict(f"Unknown store {unknown[0][:64]!r}: the stores are {', '.join(stores.ids)}.",
                          code="IMG.0035")
    if method != COPY_IMAGE:
        return wanted or (list(stores.ids) if req.get("all_stores") else [stores.default_id])
    held = held_by(stores, image, copies_of(session, [image.id])[image.id])
    already = [x for x in wanted if x in held]
    if already:
        raise ImsBadRequest(f"Image {image.id} is already present in store {already[0]!r}.", code="IMG.0001")
    if req.get("all_stores"):
        return [x for x in stores.ids if x not in held]
    return wanted


def _start(session: Session, image: Image, *, project_id: str, user_id: str, request_id: str, method: str,
           req: dict[str, Any], targets: list[str], now: dt.datetime) -> Job:
    job_id = jobs.new_job_id()
    if method != COPY_IMAGE:
        transition(image, ImageStatus.IMPORTING, now)  # a copy-image leaves the image active
    image.properties = {**image.properties, LOCK: job_id, IMPORTING_TO: ",".join(sorted(targets)),
                        FAILED_IMPORT: ""}
    payload = ImportPayload(image_id=image.id, method=method, import_req=req, user_id=user_id,
                            request_id=request_id, stores=targets,
                            all_stores_must_succeed=req.get("all_stores_must_succeed", True))
    return jobs.submit(session, project_id=project_id, job_type=JobType.GLANCE_IMPORT, payload=payload.to_json(),
                       entities={"image_id": image.id, "process_percent": 0.0}, now=now, job_id=job_id)


def held(session: Session, image_id: str, job_id: str) -> Image | None:
    """The image, locked, while the job ``job_id`` still holds it (its lock set): ``importing`` for an
    import, ``active`` or ``deactivated`` for a copy-image."""
    image = session.scalar(select(Image).where(Image.id == image_id).with_for_update())
    if image is None or image.properties.get(LOCK) != job_id or image.status not in _HELD:
        return None
    return image


def imported(image: Image) -> bool:
    """Whether an import's data is recorded (checksums set): the import step is done and only copies are
    left. (The staged data has no checksums; the same location may hold it, a file store renames in place.)"""
    return image.checksum is not None


def failed_stores(image: Image) -> list[str]:
    return [x for x in str(image.properties.get(FAILED_IMPORT, "")).split(",") if x]


def pending(image: Image, payload: ImportPayload, held_stores: list[str]) -> list[str]:
    """The job's stores still to do, in the job's order: not holding the data, not failed."""
    failed = failed_stores(image)
    return [x for x in payload.stores if x not in held_stores and x not in failed]


def show_pending(image: Image, stores: list[str]) -> None:
    image.properties = {**image.properties, IMPORTING_TO: ",".join(sorted(stores))}


def store_failed(image: Image, store_id: str, still: list[str]) -> None:
    """``store_id`` failed: listed in os_glance_failed_import, ``still`` left to do."""
    failed = sorted({*failed_stores(image), store_id})
    image.properties = {**image.properties, FAILED_IMPORT: ",".join(failed), IMPORTING_TO: ",".join(sorted(still))}


def release(session: Session, image: Image, method: str, now: dt.datetime, *, failed: bool) -> None:
    """End the job: the lock goes, nothing is pending; the failed stores stay listed.

    A failed import leaves the image queued without data (Glance's revert; the caller removes the data);
    a copy-image, failed or not, leaves the image as it was, with the copies made.
    """
    props = {k: v for k, v in image.properties.items() if k != LOCK}
    image.properties = {**props, IMPORTING_TO: "", FAILED_IMPORT: props.get(FAILED_IMPORT, "")}
    if method == COPY_IMAGE:
        image.updated_at = now
        return
    if failed:
        drop_copies(session, image.id)
        image.location = None
        image.size = None
        image.virtual_size = None
        image.checksum = None
        image.os_hash_algo = None
        image.os_hash_value = None
        image.properties = {k: v for k, v in image.properties.items() if k != "__image_size"}
        transition(image, ImageStatus.QUEUED, now)
    else:
        transition(image, ImageStatus.ACTIVE, now)


def tasks_of(session: Session, project_id: str, image_id: str) -> tuple[Image, list[Job]]:
    """``GET /v2/images/{id}/tasks``: the image (404 if not visible) and its import jobs, oldest first."""
    image = visible_to(session, project_id, image_id)
    found = session.scalars(select(Job).where(Job.project_id == image.owner,
                                              Job.job_type == JobType.GLANCE_IMPORT.value)
                            .order_by(Job.created_at, Job.id))
    return image, [j for j in found if j.payload.get("image_id") == image.id]


def task_status(job: Job) -> str:
    return _TASK_STATUS.get(job.status, "pending")


def expires_at(job: Job) -> dt.datetime | None:
    return job.end_time + TASK_LIFETIME if job.end_time else None

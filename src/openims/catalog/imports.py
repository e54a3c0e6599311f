"""Creating images from files in buckets: request rules, submission, and the job's state changes.

Submission creates the image rows (``queued``) and the job in one transaction, so image ids are
fixed before any work starts: a job retried after a crash fills the same rows and can never yield
a second image. The worker side (``worker.handlers``) calls ``start``/``succeed``/``fail`` here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from openims.catalog import jobs, quotas, validation
from openims.catalog.images import ImageStatus, new_image_id, record_data, transition
from openims.catalog.jobs import JobPayload, JobStatus, JobType
from openims.db.models import Image, ImageTag, Job
from openims.errors import ImsBadRequest

MAX_DATA_IMAGES = 3


@dataclass
class DiskSource:
    image_url: str
    min_disk: int
    name: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    image_tags: list[dict[str, str]] | None = None


@dataclass
class FileImportRequest:
    """A create-image-from-file request, fields as the API documents them (already type-checked)."""

    source: DiskSource
    data_disk: bool = False
    os_version: str | None = None
    os_type: str | None = None
    is_config: bool = False
    is_config_init: bool = False
    image_type: str | None = None
    architecture: str | None = None
    hw_firmware_type: str | None = None
    min_ram: int | None = None
    max_ram: int | None = None
    cmk_id: str | None = None
    enterprise_project_id: str | None = None
    is_quick_import: bool = False
    data_images: list[DiskSource] = field(default_factory=list)


class DiskTask(JobPayload):
    """One disk of an import job, as stored in the job payload."""

    image_id: str
    job_id: str
    bucket: str
    key: str
    min_disk: int
    quick: bool
    data_disk: bool
    # ISO files need an OS version (IMG.0166); only the content tells whether a file is an ISO.
    has_os_version: bool = False


class ImportPayload(JobPayload):
    domain_id: str
    disks: tuple[DiskTask, ...]
    # Registration (imsNativeImportImageJob): the disk_format the queued image declared, if any.
    declared_format: str | None = None


def _reserve_quota(session: Session, project_id: str, wanted: int, quota: int) -> None:
    # ``quota`` is the deployment default; a per-project value (project_quotas) takes precedence.
    quotas.reserve_images(session, project_id, wanted, default=quota)


def submit_file_import(session: Session, *, project_id: str, domain_id: str, req: FileImportRequest,
                       quota: int, now: dt.datetime) -> Job:
    """Validate everything a request can get wrong, then create the queued images and the job."""
    src = req.source
    data = req.data_disk
    name = validation.image_name(src.name)
    descr = validation.description(src.description)
    osv = validation.os_version(req.os_version, required=req.is_quick_import and not data)
    os_type = validation.os_type(req.os_type)
    if osv is not None:
        os_type = osv.os_type
    validation.min_disk(src.min_disk, data_disk=data)
    min_ram, max_ram = validation.memory(req.min_ram, req.max_ram)
    env = "DataImage" if data else validation.virtual_env_type(req.image_type)
    arch = validation.architecture(req.architecture)
    firmware = validation.firmware(req.hw_firmware_type, arch)
    eps = validation.enterprise_project(req.enterprise_project_id)
    if req.cmk_id:
        raise ImsBadRequest("The KMS key does not exist: this deployment has no key management service, "
                            "so images cannot be encrypted.", code="IMG.0095")
    tags = validation.tags(src.tags, src.image_tags)
    bucket, key = validation.image_url(src.image_url)
    if len(req.data_images) > MAX_DATA_IMAGES:
        raise ImsBadRequest(f"At most {MAX_DATA_IMAGES} data_images may be given.", code="IMG.0001")
    if data and req.data_images:
        raise ImsBadRequest("data_images is only valid when creating a system disk image.", code="IMG.0001")

    # Data disks named in data_images inherit what they do not set themselves.
    disks: list[tuple[DiskSource, str, str, list[str], tuple[str, str]]] = [(src, name, descr, tags, (bucket, key))]
    seen_urls = {src.image_url}
    for i, d in enumerate(req.data_images, start=1):
        if d.image_url in seen_urls:
            raise ImsBadRequest(f"The image file address {d.image_url} is duplicate.", code="IMG.0123")
        seen_urls.add(d.image_url)
        validation.min_disk(d.min_disk, data_disk=True, field="data_images.min_disk")
        d_name = validation.image_name(d.name) if d.name else f"{name[:120]}-data{i}"
        d_descr = validation.description(d.description) if d.description is not None else descr
        d_tags = validation.tags(d.tags, d.image_tags) if (d.tags or d.image_tags) else tags
        disks.append((d, d_name, d_descr, d_tags, validation.image_url(d.image_url)))

    _reserve_quota(session, project_id, len(disks), quota)

    job_id = jobs.new_job_id()
    job_type = JobType.IMPORT_DATA_IMAGE if data else JobType.IMPORT_IMAGE
    tasks: list[DiskTask] = []
    for index, (d, d_name, d_descr, d_tags, (b, k)) in enumerate(disks):
        is_data = data or index > 0
        image = Image(
            id=new_image_id(), owner=project_id, name=d_name, description=d_descr,
            status=ImageStatus.QUEUED.value, visibility="private", image_type="private", protected=False,
            container_format="bare", min_disk=d.min_disk, min_ram=0 if is_data else min_ram,
            created_at=now, updated_at=now,
            properties=_properties(
                # A data disk shares the OS type of its system disk, not its OS version (it holds no OS).
                bucket=b, key=k, data_disk=is_data, osv=None if is_data else osv, os_type=os_type,
                env="DataImage" if is_data else env,
                arch=arch, firmware=firmware, eps=eps, max_ram=None if is_data else max_ram,
                is_config_init=req.is_config_init, quick=req.is_quick_import and index == 0,
                description=d_descr),
        )
        session.add(image)
        session.flush()
        for t in d_tags:
            session.add(ImageTag(image_id=image.id, tag=t))
        task_job_id = job_id if index == 0 else jobs.new_job_id()
        tasks.append(DiskTask(image_id=image.id, job_id=task_job_id, bucket=b, key=k, min_disk=d.min_disk,
                              quick=req.is_quick_import and index == 0, data_disk=is_data,
                              has_os_version=osv is not None))
    payload = ImportPayload(domain_id=domain_id, disks=tuple(tasks))
    main = tasks[0]
    entities: dict[str, Any] = {"image_id": main.image_id, "image_name": name, "process_percent": 0.0}
    if len(tasks) > 1:
        entities["sub_jobs_list"] = [t.job_id for t in tasks[1:]]
    job = jobs.submit(session, project_id=project_id, job_type=job_type, payload=payload.to_json(),
                      entities=entities, now=now, job_id=job_id)
    for i, (sub, (_, d_name, *_rest)) in enumerate(zip(tasks[1:], disks[1:], strict=True), start=1):
        # Distinct creation times keep sub-jobs listed in request order.
        jobs.submit(session, project_id=project_id, job_type=JobType.IMPORT_DATA_IMAGE, payload={},
                    entities={"image_id": sub.image_id, "image_name": d_name, "process_percent": 0.0},
                    now=now + dt.timedelta(microseconds=i), parent_id=job.id, job_id=sub.job_id)
    return job


def _properties(*, bucket: str, key: str, data_disk: bool, osv: Any, os_type: str | None, env: str, arch: str,
                firmware: str, eps: str, max_ram: int | None, is_config_init: bool, quick: bool,
                description: str) -> dict[str, Any]:
    props: dict[str, Any] = {
        "__imagetype": "private",
        "__image_source_type": "uds",
        "__data_origin": f"file,{bucket}:{key}",
        "__isregistered": "true",
        "__is_config_init": "true" if is_config_init else "false",
        "__os_type": os_type or "Linux",
        "__platform": osv.platform if osv else "Other",
        "__os_bit": osv.os_bit if osv else "64",
        "virtual_env_type": env,
        "hw_firmware_type": firmware,
        "architecture": arch,
        "enterprise_project_id": eps,
        "__support_kvm": "true",
        "__description": description,
        "__lazyloading": "false",
        "__quick_import": "true" if quick else "false",
    }
    if osv is not None:
        props["__os_version"] = osv.os_version
    if max_ram:
        props["max_ram"] = max_ram
    return props


# ---------------------------------------------------------------- worker-side state changes


def start_disk(session: Session, image_id: str, now: dt.datetime) -> Image | None:
    image = session.get(Image, image_id)
    if image is None:
        return None  # deleted by its owner meanwhile
    transition(image, ImageStatus.SAVING, now)
    return image


def finish_disk(session: Session, image_id: str, *, location: str, size: int, virtual_size: int | None,
                disk_format: str, checksum: str, sha512: str, now: dt.datetime) -> bool:
    """Record the stored data and make the image active; False if the image was deleted meanwhile."""
    image = session.get(Image, image_id)
    if image is None:
        return False
    record_data(image, location=location, size=size, virtual_size=virtual_size, disk_format=disk_format,
                checksum=checksum, os_hash_value=sha512)
    transition(image, ImageStatus.ACTIVE, now)
    return True


def remove_images(session: Session, image_ids: list[str]) -> None:
    """A failed import leaves no image behind."""
    session.execute(delete(ImageTag).where(ImageTag.image_id.in_(image_ids)))
    session.execute(delete(Image).where(Image.id.in_(image_ids)))


def set_children(session: Session, parent: Job, status: JobStatus, now: dt.datetime, *,
                 error_code: str | None = None, fail_reason: str | None = None) -> None:
    """Move the sub-jobs of an import along with their parent (they are never claimed on their own)."""
    for child in jobs.children(session, parent.id):
        if child.status in (JobStatus.SUCCESS.value, JobStatus.FAIL.value):
            continue
        child.begin_time = child.begin_time or now
        # Sub-jobs pass through RUNNING so the state machine holds even if the parent fails early.
        jobs.transition(child, JobStatus.RUNNING)
        if status != JobStatus.RUNNING:
            jobs.finish(child, status, now, error_code=error_code, fail_reason=fail_reason)
            if status == JobStatus.SUCCESS:
                child.entities = {**child.entities, "process_percent": 100.0}

"""An image's life after creation: update (IMS PATCH), registration, export and in-region copy.

Each ``submit_*`` validates the request completely, records what the job needs in a typed payload,
and creates the job in the caller's transaction; the worker side is ``worker.lifecycle_handlers``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openims.catalog import jobs, members, quotas, validation
from openims.catalog.images import ImageStatus, MemberStatus, new_image_id, transition
from openims.catalog.imports import DiskTask, ImportPayload
from openims.catalog.jobs import JobPayload, JobType
from openims.db.models import Image, ImageMember, Job
from openims.errors import ImsBadRequest
from openims.objects.base import MAX_KEY_BYTES
from openims.units import GiB

DATA_IMAGE = "DataImage"
ISO_IMAGE = "IsoImage"


def _is_data(image: Image) -> bool:
    return image.properties.get("virtual_env_type") == DATA_IMAGE


def _is_iso(image: Image) -> bool:
    return image.properties.get("virtual_env_type") == ISO_IMAGE


def _is_whole(image: Image) -> bool:
    return str(image.properties.get("__whole_image", "")).lower() == "true"


def _require_active(image: Image, action: str) -> None:
    if image.status != ImageStatus.ACTIVE.value:
        raise ImsBadRequest(f"The image is unavailable: image {image.id} is {image.status}; only active images "
                         f"can be {action}.", code="IMG.0046")


# ================================================================ update (PATCH /v2/cloudimages/{id})

PATCH_OPS = ("add", "replace", "remove")

# Attributes updating_an_image.rst lets users set to "true"/"false" (plus __support_kvm, which the
# HANA rule below makes a user remove before adding __support_xen_hana).
_FLAGS = frozenset({
    "__support_xen", "__support_kvm", "__support_largememory", "__support_diskintensive",
    "__support_highperformance", "__support_xen_hana", "__is_config_init", "__support_kvm_infiniband",
    "__support_fc_inject", "__support_amd", "__support_kvm_hi1822_hisriov", "__support_kvm_hi1822_hivirtionet",
    "hw_vif_multiqueue_enabled",
})
# Free-text capability values (GPU types).
_TEXTS = frozenset({"__support_xen_gpu_type", "__support_kvm_gpu_type"})
# Attributes with their own rules (see _apply).
_SPECIAL = frozenset({"name", "__description", "description", "min_ram", "max_ram", "min_disk", "__os_version",
                      "hw_firmware_type", "enterprise_project_id"})
# Core and service-managed attributes nobody may write through this API.
READ_ONLY = frozenset({
    "id", "status", "owner", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value", "created_at",
    "updated_at", "self", "file", "schema", "deleted", "deleted_at", "visibility", "protected", "tags",
    "container_format", "disk_format", "location", "locations", "direct_url", "virtual_env_type", "architecture",
    "os_type", "os_version",
})
# Extension attribute names: lower case (the reference forbids upper case), no "__" system prefix.
_CUSTOM_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.:\-]{0,254}$")
MAX_PROPERTIES = 128
MAX_VALUE = 255


@dataclass(frozen=True)
class PatchOp:
    op: str
    path: str
    value: Any
    has_value: bool


def _flag(attr: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    raise ImsBadRequest(f"The value of {attr} must be true or false.", code="IMG.0001")


def _integer(attr: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ImsBadRequest(f"The value of {attr} must be an integer.", code="IMG.0055")
    if isinstance(value, int):
        if abs(value) > validation.INT32_MAX:
            raise ImsBadRequest(f"The value of {attr} must be at most {validation.INT32_MAX}.", code="IMG.0055")
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,9}", value.strip()):
        return int(value.strip())
    raise ImsBadRequest(f"The value of {attr} must be an integer.", code="IMG.0055")


def _text(attr: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise ImsBadRequest(f"The value of {attr} must be a string.", code="IMG.0001")
    if len(value) > MAX_VALUE:
        raise ImsBadRequest(f"The value of {attr} is longer than {MAX_VALUE} characters.", code="IMG.0001")
    return value


def _attribute(path: str) -> str:
    if not path.startswith("/") or len(path) < 2:
        raise ImsBadRequest(f"The path {path!r} is invalid: it is '/' followed by the attribute name.",
                         code="IMG.0001")
    attr = path[1:]
    if attr in READ_ONLY:
        raise ImsBadRequest(f"The attribute {attr} cannot be changed.", code="IMG.0001")
    if attr in _FLAGS or attr in _TEXTS or attr in _SPECIAL:
        return attr
    if attr.startswith("__"):
        raise ImsBadRequest(f"The attribute {attr} is managed by the service and cannot be changed.",
                         code="IMG.0001")
    if not _CUSTOM_NAME.match(attr):
        raise ImsBadRequest(f"The attribute name {attr!r} is invalid: extension attribute names are lower-case "
                         "letters, digits, '_', '.', ':' and '-'.", code="IMG.0001")
    return attr


@dataclass
class _Draft:
    """The attributes an update may change, applied op by op and validated as a whole at the end."""

    name: str
    description: str
    min_disk: int
    min_ram: int
    properties: dict[str, Any]


def _apply(image: Image, draft: _Draft, op: PatchOp) -> None:
    attr = _attribute(op.path)
    props = draft.properties
    if op.op == "remove":
        if attr == "name":
            raise ImsBadRequest("The image name cannot be removed.", code="IMG.0013")
        if attr == "min_disk":
            raise ImsBadRequest("min_disk cannot be removed.", code="IMG.0055")
        if attr in ("__description", "description"):
            draft.description = ""
        elif attr == "min_ram":
            draft.min_ram = 0
        elif attr == "hw_firmware_type":
            props["hw_firmware_type"] = validation.firmware(None, str(props.get("architecture", "x86")))
        elif attr == "enterprise_project_id":
            props["enterprise_project_id"] = "0"
        elif attr == "__os_version":
            props.pop("__os_version", None)
            props["__platform"] = "Other"
        elif attr in props:
            props.pop(attr)
        elif attr not in _FLAGS and attr not in _TEXTS and attr != "max_ram":
            raise ImsBadRequest(f"The image has no attribute {attr} to remove.", code="IMG.0001")
        return
    if not op.has_value:
        raise ImsBadRequest(f"The {op.op} operation on {attr} needs a value.", code="IMG.0001")
    value = op.value
    if attr == "name":
        draft.name = validation.image_name(value)
    elif attr in ("__description", "description"):
        draft.description = validation.description(value)
    elif attr == "min_ram":
        draft.min_ram = _integer(attr, value)
    elif attr == "max_ram":
        props["max_ram"] = _integer(attr, value)
    elif attr == "min_disk":
        draft.min_disk = _integer(attr, value)
    elif attr == "__os_version":
        if _is_data(image):
            raise ImsBadRequest("Data disk images cannot be updated: they have no OS version.", code="IMG.0168")
        osv = validation.os_version(_text(attr, value), required=True)
        assert osv is not None
        props.update({"__os_version": osv.os_version, "__platform": osv.platform, "__os_type": osv.os_type,
                      "__os_bit": osv.os_bit})
    elif attr == "hw_firmware_type":
        props["hw_firmware_type"] = _text(attr, value)  # checked against the architecture at the end
    elif attr == "enterprise_project_id":
        props["enterprise_project_id"] = validation.enterprise_project(_text(attr, value))
    elif attr in _FLAGS:
        props[attr] = _flag(attr, value)
    else:
        props[attr] = _text(attr, value)


def _check(image: Image, draft: _Draft) -> None:
    props = draft.properties
    validation.min_disk(draft.min_disk, data_disk=_is_data(image))
    if image.virtual_size and draft.min_disk * GiB < image.virtual_size:
        need = -(-image.virtual_size // GiB)
        raise ImsBadRequest(f"min_disk {draft.min_disk} GB is smaller than the disk in the image ({need} GB).",
                         code="IMG.0055")
    max_ram = props.get("max_ram")
    validation.memory(draft.min_ram, int(max_ram) if max_ram is not None else None)
    validation.firmware(str(props.get("hw_firmware_type", "bios")), str(props.get("architecture", "x86")))

    def on(name: str) -> bool:
        return str(props.get(name, "")).lower() == "true"

    # image_attributes.rst: HANA support excludes Xen and KVM support; InfiniBand excludes Xen.
    if on("__support_xen_hana") and (on("__support_xen") or on("__support_kvm")):
        raise ImsBadRequest("__support_xen_hana cannot co-exist with __support_xen or __support_kvm.",
                         code="IMG.0035")
    if on("__support_kvm_infiniband") and on("__support_xen"):
        raise ImsBadRequest("__support_kvm_infiniband cannot co-exist with __support_xen.", code="IMG.0035")
    if len(props) > MAX_PROPERTIES:
        raise ImsBadRequest(f"An image has at most {MAX_PROPERTIES} attributes.", code="IMG.0001")


def parse_patch(items: list[dict[str, Any]]) -> list[PatchOp]:
    ops = []
    for item in items:
        op = item.get("op")
        path = item.get("path")
        if op not in PATCH_OPS:
            raise ImsBadRequest(f"op must be one of {', '.join(PATCH_OPS)}.", code="IMG.0001")
        if not isinstance(path, str):
            raise ImsBadRequest("path must be a string: '/' followed by the attribute name.", code="IMG.0001")
        ops.append(PatchOp(op, path, item.get("value"), "value" in item))
    return ops


def update_image(session: Session, project_id: str, image_id: str, ops: list[PatchOp], now: dt.datetime) -> Image:
    """Apply every operation or none (updating_an_image.rst); the image must be active and owned."""
    image = members.require_owner(session, project_id, image_id, for_update=True)
    _require_active(image, "updated")
    if not ops:
        return image
    draft = _Draft(name=image.name, description=image.description, min_disk=image.min_disk,
                   min_ram=image.min_ram, properties=dict(image.properties))
    for op in ops:
        _apply(image, draft, op)
    _check(image, draft)
    image.name = draft.name
    image.description = draft.description
    draft.properties["__description"] = draft.description
    image.min_disk = draft.min_disk
    image.min_ram = draft.min_ram
    image.properties = draft.properties
    image.updated_at = now
    session.flush()
    return image


# ================================================================ register (PUT /v1/cloudimages/{id}/upload)


def submit_register(session: Session, *, project_id: str, domain_id: str, image_id: str, image_url: str | None,
                    now: dt.datetime) -> Job:
    """Fill a queued image (native ``POST /v2/images``) from ``bucket:file`` through the import pipeline."""
    if not image_url:
        raise ImsBadRequest("image_url is required: <bucket>:<object key> of the image file.", code="IMG.0017")
    bucket, key = validation.image_url(image_url)
    image = members.require_owner(session, project_id, image_id, for_update=True)
    if image.status != ImageStatus.QUEUED.value:
        raise ImsBadRequest(f"The image is unavailable: image {image_id} is {image.status}; only a queued image "
                         "without data can be registered.", code="IMG.0046")
    if "__data_origin" in image.properties:
        # A queued image an import or copy job is about to fill: registering would race with it.
        raise ImsBadRequest(f"The image is unavailable: image {image_id} is being created by an asynchronous job.",
                         code="IMG.0046")
    # Saving from now on, so a second registration or an upload cannot start on the same image.
    transition(image, ImageStatus.SAVING, now)
    job_id = jobs.new_job_id()
    task = DiskTask(image_id=image.id, job_id=job_id, bucket=bucket, key=key, min_disk=image.min_disk, quick=False,
                    data_disk=_is_data(image), has_os_version=bool(image.properties.get("__os_version")))
    payload = ImportPayload(domain_id=domain_id, disks=(task,), declared_format=image.disk_format).to_json()
    return jobs.submit(session, project_id=project_id, job_type=JobType.NATIVE_IMPORT_IMAGE, payload=payload,
                       entities={"image_id": image.id, "process_percent": 0.0}, now=now, job_id=job_id)


# ================================================================ export (POST /v1/cloudimages/{id}/file)

EXPORT_FORMATS = ("qcow2", "vmdk", "vhd", "raw")
# Documented for IMS but made by Huawei's own tools only.
UNSUPPORTED_FORMATS = ("zvhd", "zvhd2")
_FILE_PART = re.compile(r"^[A-Za-z0-9._\-]+$")
MAX_FILE_NAME = 128


class ExportPayload(JobPayload):
    domain_id: str
    image_id: str
    bucket: str
    key: str
    file_format: str
    # The stored data to convert, as it was when the export was accepted.
    location: str
    source_format: str
    virtual_size: int


def export_url(value: object) -> tuple[str, str]:
    """``bucket:path/file`` → (bucket, key), with the export file-name rules of error_codes.rst."""
    if not isinstance(value, str) or not value:
        raise ImsBadRequest("bucket_url is required: <bucket>:<file name>.", code="IMG.0017")
    bucket, sep, key = value.partition(":")
    if not sep:
        raise ImsBadRequest("The URL format is incorrect: bucket_url must be <bucket>:<file name>.", code="IMG.0017")
    if not bucket:
        raise ImsBadRequest("The specified bucket name is empty.", code="IMG.0068")
    validation.image_url(f"{bucket}:x")  # bucket name rules (IMG.0109)
    if not key:
        raise ImsBadRequest("The name of the exported file is empty.", code="IMG.0073")
    parts = key.split("/")
    if len(parts[-1]) > MAX_FILE_NAME or len(key.encode()) > MAX_KEY_BYTES:
        raise ImsBadRequest(f"The file name length exceeds the limit of {MAX_FILE_NAME} characters.", code="IMG.0074")
    for part in parts:
        if " " in part:
            raise ImsBadRequest("The folder name and image file name cannot contain spaces.", code="IMG.0175")
        if not _FILE_PART.match(part) or part in (".", ".."):
            raise ImsBadRequest(f"The file name contains invalid characters: {key!r}; use letters, digits, '-', '.' "
                             "and '_', and '/' between folders.", code="IMG.0075")
    return bucket, key


def export_format(file_format: str | None, is_quick_export: bool) -> str:
    if is_quick_export:
        if file_format:
            raise ImsBadRequest("file_format cannot be given with is_quick_export: a quick export is always ZVHD2.",
                             code="IMG.0001")
        raise ImsBadRequest("Quick export writes ZVHD2 files, which this deployment does not support; export with "
                         f"file_format {', '.join(EXPORT_FORMATS)}.", code="IMG.0072")
    if not file_format:
        raise ImsBadRequest(f"file_format is required: one of {', '.join(EXPORT_FORMATS)}.", code="IMG.0001")
    fmt = file_format.lower()
    if fmt in UNSUPPORTED_FORMATS:
        raise ImsBadRequest(f"The specified image format {file_format} is not supported by this deployment: "
                         f"export to {', '.join(EXPORT_FORMATS)}.", code="IMG.0072")
    if fmt not in EXPORT_FORMATS:
        raise ImsBadRequest(f"The specified image format {file_format} is not supported: use "
                         f"{', '.join(EXPORT_FORMATS)}.", code="IMG.0072")
    return fmt


def _exportable(session: Session, project_id: str, image_id: str) -> Image:
    image = members.visible_to(session, project_id, image_id)
    if image.owner != project_id and image.visibility == "public":
        raise ImsBadRequest("The public image cannot be exported.", code="IMG.0077")
    # Shared with the caller: only the owner may export it (403 IMG.0047, as for every owner-only change).
    return members.require_owner(session, project_id, image_id)


def submit_export(session: Session, *, project_id: str, domain_id: str, image_id: str, bucket_url: object,
                  file_format: str | None, is_quick_export: bool, max_size: int, now: dt.datetime) -> Job:
    fmt = export_format(file_format, is_quick_export)
    bucket, key = export_url(bucket_url)
    image = _exportable(session, project_id, image_id)
    _require_active(image, "exported")
    if _is_iso(image):
        raise ImsBadRequest("This operation cannot be performed for ISO images.", code="IMG.0167")
    if _is_whole(image):
        raise ImsBadRequest("The full-ECS image cannot be exported.", code="IMG.0128")
    if image.location is None or image.disk_format is None or image.virtual_size is None:
        raise ImsBadRequest(f"The image cannot be exported: image {image_id} has no stored data.", code="IMG.0071")
    if (image.size or 0) > max_size:
        raise ImsBadRequest(f"Only images less than {max_size // GiB} GB can be exported (quick export of larger "
                         "images is not supported by this deployment).", code="IMG.0160")
    payload = ExportPayload(domain_id=domain_id, image_id=image.id, bucket=bucket, key=key, file_format=fmt,
                            location=image.location, source_format=image.disk_format,
                            virtual_size=image.virtual_size)
    return jobs.submit(session, project_id=project_id, job_type=JobType.NATIVE_EXPORT_IMAGE,
                       payload=payload.to_json(), entities={"image_id": image.id, "process_percent": 0.0}, now=now)


# ================================================================ copy (POST /v1/cloudimages/{id}/copy)


class CopyPayload(JobPayload):
    source_image_id: str
    image_id: str


# Attributes that describe one stored copy or its history, not the image: the copy gets its own.
_NOT_COPIED = ("__image_size", "__image_location", "__backup_id", "__productcode", "__data_origin",
               "__originalimagename", "__root_origin", "__lazyloading")


def _copyable(session: Session, project_id: str, image_id: str) -> Image:
    """The caller's own image, or one shared with the project that it accepted (IMG.0196 otherwise)."""
    image = members.visible_to(session, project_id, image_id)
    if image.owner != project_id and image.visibility == "public":
        raise ImsBadRequest("The image is a public image: only private images can be replicated.", code="IMG.0083")
    if image.owner != project_id:
        status = session.scalar(select(ImageMember.status).where(ImageMember.image_id == image_id,
                                                                 ImageMember.member_id == project_id))
        if status != MemberStatus.ACCEPTED.value:
            raise ImsBadRequest("The image cannot be replicated because it is not accepted by the recipient.",
                             code="IMG.0196")
    return image


def submit_copy(session: Session, *, project_id: str, image_id: str, name: object, description: object,
                cmk_id: str | None, enterprise_project_id: str | None, quota: int, now: dt.datetime) -> Job:
    """A new private image of the project with the source's data and attributes (queued until copied)."""
    new_name = validation.image_name(name)
    descr = validation.description(description)
    eps = validation.enterprise_project(enterprise_project_id)
    if cmk_id:
        raise ImsBadRequest("The KMS key does not exist: this deployment has no key management service, so "
                         "images cannot be encrypted.", code="IMG.0095")
    source = _copyable(session, project_id, image_id)
    _require_active(source, "replicated")
    if _is_iso(source):
        raise ImsBadRequest("Private images created from ISO files cannot be replicated.", code="IMG.0167")
    if _is_whole(source):
        raise ImsBadRequest("The full-ECS image cannot be exported or replicated.", code="IMG.0130")
    if source.location is None:
        raise ImsBadRequest(f"The image is unavailable: image {image_id} has no stored data.", code="IMG.0046")
    quotas.reserve_images(session, project_id, 1, default=quota)

    props = {k: v for k, v in source.properties.items() if k not in _NOT_COPIED}
    props.update({"__imagetype": "private", "__description": descr, "enterprise_project_id": eps,
                  "__originalimagename": source.id, "__data_origin": f"image,{source.id}"})
    copy = Image(id=new_image_id(), owner=project_id, name=new_name, description=descr,
                 status=ImageStatus.QUEUED.value, visibility="private", image_type="private", protected=False,
                 container_format=source.container_format, min_disk=source.min_disk, min_ram=source.min_ram,
                 created_at=now, updated_at=now, properties=props)
    session.add(copy)
    session.flush()
    payload = CopyPayload(source_image_id=source.id, image_id=copy.id)
    return jobs.submit(session, project_id=project_id, job_type=JobType.COPY_IMAGE_IN_REGION,
                       payload=payload.to_json(),
                       entities={"image_id": copy.id, "image_name": new_name, "process_percent": 0.0}, now=now)

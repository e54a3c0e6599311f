"""An image's life after creation: update (IMS PATCH), registration, export and in-region copy.

Each ``submit_*`` validates the request completely, records what the job needs in a typed payload,
and creates the job in the caller's transaction; the worker side is ``worker.lifecycle_handlers``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openims.catalog import jobs, members, native, patch, quotas, validation
from openims.catalog.images import ImageStatus, MemberStatus, new_image_id, transition
from openims.catalog.imports import DiskTask, ImportPayload
from openims.catalog.jobs import JobPayload, JobType
from openims.catalog.patch import Draft, PatchOp, Rule
from openims.db.models import Image, ImageMember, Job
from openims.errors import ImsBadRequest, ImsForbidden
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


# Why an image's data may not leave it, per action, as IMS words it: (ISO image, full-ECS image).
_UNMOVABLE = {
    "exported": (("This operation cannot be performed for ISO images.", "IMG.0167"),
                 ("The full-ECS image cannot be exported.", "IMG.0128")),
    "replicated": (("Private images created from ISO files cannot be replicated.", "IMG.0167"),
                   ("The full-ECS image cannot be exported or replicated.", "IMG.0130")),
}


def _require_movable(image: Image, action: str) -> None:
    """An active image whose data may be exported or replicated."""
    _require_active(image, action)
    iso, whole = _UNMOVABLE[action]
    for refused, (message, code) in ((_is_iso(image), iso), (_is_whole(image), whole)):
        if refused:
            raise ImsBadRequest(message, code=code)


# ================================================================ update (PATCH /v2/cloudimages/{id})

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


def _attribute(name: str) -> Rule:
    """The rule of an attribute outside the table: only well-formed extension attributes."""
    if name in READ_ONLY:
        raise ImsBadRequest(f"The attribute {name} cannot be changed.", code="IMG.0001")
    if name.startswith("__"):
        raise ImsBadRequest(f"The attribute {name} is managed by the service and cannot be changed.",
                            code="IMG.0001")
    if not _CUSTOM_NAME.fullmatch(name):
        raise ImsBadRequest(f"The attribute name {name!r} is invalid: extension attribute names are lower-case "
                            "letters, digits, '_', '.', ':' and '-'.", code="IMG.0001")
    return patch.property_rule(name, _text, missing=_no_attribute(name))


def _no_attribute(name: str) -> patch.Remove:
    return patch.refuse(lambda: ImsBadRequest(f"The image has no attribute {name} to remove.", code="IMG.0001"))


def _text(name: str, value: Any, _props: dict[str, Any] | None = None) -> str:
    return patch.text(name, value, coerce=True)


def _integer(name: str, value: Any) -> int:
    # Its own bounds are checked with the whole draft (_check); here only "a 32-bit integer".
    return patch.integer(name, value, low=-validation.INT32_MAX, strings=True)


def _set_name(d: Draft, v: Any, _i: Image) -> None:
    d.name = validation.image_name(v)


def _set_description(d: Draft, v: Any, _i: Image) -> None:
    d.description = validation.description(v)


def _clear_description(d: Draft, _i: Image) -> None:
    d.description = ""


def _set_min_ram(d: Draft, v: Any, _i: Image) -> None:
    d.min_ram = _integer("min_ram", v)


def _clear_min_ram(d: Draft, _i: Image) -> None:
    d.min_ram = 0


def _set_min_disk(d: Draft, v: Any, _i: Image) -> None:
    d.min_disk = _integer("min_disk", v)


def _set_os_version(d: Draft, v: Any, image: Image) -> None:
    if _is_data(image):
        raise ImsBadRequest("Data disk images cannot be updated: they have no OS version.", code="IMG.0168")
    osv = validation.os_version(_text("__os_version", v), required=True)
    assert osv is not None
    d.properties.update({"__os_version": osv.os_version, "__platform": osv.platform, "__os_type": osv.os_type,
                         "__os_bit": osv.os_bit})


def _clear_os_version(d: Draft, _i: Image) -> None:
    d.properties.pop("__os_version", None)
    d.properties["__platform"] = "Other"


def _default_firmware(d: Draft, _i: Image) -> None:
    d.properties["hw_firmware_type"] = validation.firmware(None, str(d.properties.get("architecture", "x86")))


def _default_project(d: Draft, _i: Image) -> None:
    d.properties["enterprise_project_id"] = "0"


def _absent_ok(_d: Draft, _i: Image) -> None:
    return None


def _flag(name: str, value: Any, _props: dict[str, Any]) -> str:
    return patch.flag(name, value)


# updating_an_image.rst, attribute by attribute. hw_firmware_type is checked against the
# architecture with the whole draft; max_ram against min_ram.
RULES: dict[str, Rule] = {
    "name": Rule(_set_name, patch.refuse(lambda: ImsBadRequest("The image name cannot be removed.",
                                                              code="IMG.0013"))),
    "__description": Rule(_set_description, _clear_description),
    "description": Rule(_set_description, _clear_description),
    "min_ram": Rule(_set_min_ram, _clear_min_ram),
    "max_ram": patch.property_rule("max_ram", lambda n, v, _p: _integer(n, v), missing=_absent_ok),
    "min_disk": Rule(_set_min_disk, patch.refuse(lambda: ImsBadRequest("min_disk cannot be removed.",
                                                                      code="IMG.0055"))),
    "__os_version": Rule(_set_os_version, _clear_os_version),
    "hw_firmware_type": Rule(patch.property_rule("hw_firmware_type", _text).assign, _default_firmware),
    "enterprise_project_id": Rule(
        patch.property_rule("enterprise_project_id",
                            lambda n, v, _p: validation.enterprise_project(_text(n, v))).assign, _default_project),
    **{name: patch.property_rule(name, _flag, missing=_absent_ok) for name in _FLAGS},
    **{name: patch.property_rule(name, _text, missing=_absent_ok) for name in _TEXTS},
}


# openims (issue 13): what the deployment's operator alone sets through this route — publishing one of
# its images (visibility public, or __imagetype gold), unpublishing it (private) and protecting it.
_PUBLISHING = frozenset({"visibility", "__imagetype"})


def _set_visibility(d: Draft, v: Any, _i: Image) -> None:
    if v not in ("public", "private"):
        raise ImsBadRequest("visibility must be public or private.", code="IMG.0001")
    d.visibility = str(v)


def _set_image_type(d: Draft, v: Any, _i: Image) -> None:
    if v not in ("gold", "private"):
        raise ImsBadRequest("__imagetype must be gold or private.", code="IMG.0024")
    d.visibility = "public" if v == "gold" else "private"


def _set_protected(d: Draft, v: Any, _i: Image) -> None:
    d.protected = patch.flag("protected", v) == "true"


def _not_removable(name: str) -> patch.Remove:
    return patch.refuse(lambda: ImsBadRequest(f"The attribute {name} cannot be removed.", code="IMG.0001"))


OPERATOR_RULES: dict[str, Rule] = {
    "visibility": Rule(_set_visibility, _not_removable("visibility")),
    "__imagetype": Rule(_set_image_type, _not_removable("__imagetype")),
    "protected": Rule(_set_protected, _not_removable("protected")),
}


def _check(image: Image, draft: Draft) -> None:
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
        if op not in patch.OPS:
            raise ImsBadRequest(f"op must be one of {', '.join(patch.OPS)}.", code="IMG.0001")
        if not isinstance(path, str):
            raise ImsBadRequest("path must be a string: '/' followed by the attribute name.", code="IMG.0001")
        if not path.startswith("/") or len(path) < 2:
            raise ImsBadRequest(f"The path {path!r} is invalid: it is '/' followed by the attribute name.",
                                code="IMG.0001")
        ops.append(PatchOp(op, path[1:], item.get("value"), "value" in item))
    return ops


def update_image(session: Session, project_id: str, image_id: str, ops: list[PatchOp], now: dt.datetime, *,
                 operator: bool = False) -> Image:
    """Apply every operation or none (updating_an_image.rst); the image must be active and owned.

    The operator also publishes, unpublishes and protects (``OPERATOR_RULES``); anyone else asking to
    publish is refused (403), as on the native route."""
    if not operator and any(op.name in _PUBLISHING for op in ops):
        raise ImsForbidden("Only the service's operator publishes public images.", code="IMG.0026")
    image = members.require_owner(session, project_id, image_id, for_update=True)
    _require_active(image, "updated")
    if not ops:
        return image
    draft = Draft.of(image)
    patch.apply(image, draft, ops, {**RULES, **OPERATOR_RULES} if operator else RULES, _attribute)
    _check(image, draft)
    native.publication(session, image, draft.visibility, operator=operator)
    draft.properties["__description"] = draft.description
    draft.write_to(image)
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
        if not _FILE_PART.fullmatch(part) or part in (".", ".."):
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
    _require_movable(image, "exported")
    if image.location is None or image.disk_format is None:
        raise ImsBadRequest(f"The image cannot be exported: image {image_id} has no stored data.", code="IMG.0071")
    # Only data nothing here could read as a disk (kept opaque at upload) lacks a virtual size.
    if image.virtual_size is None:
        raise ImsBadRequest(f"The image cannot be exported: its data ({image.container_format} container, "
                            f"{image.disk_format}) is stored as uploaded and cannot be read as a disk.",
                            code="IMG.0071")
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
    _require_movable(source, "replicated")
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

"""Rules of the native image API (Glance v2): queued images from metadata, JSON-patch updates, deletion.

Glance's semantics where IMS documents nothing else (glance ``api/v2/images.py``): read-only and
reserved attributes are refused with 403; ``replace`` of a custom property that does not exist and
``remove`` of one that does not exist are 409; core attributes may be replaced, never removed;
custom property values are strings. IMS narrows a few things (creating_image_metadata_native_openstack_api.rst,
modifying_an_image_native_openstack_api.rst): visibility is private (or shared) for users (public for
the deployment's operator alone, issue 13: ``publication``), names
follow the IMS name rules, ``__os_version`` may be given, and the ``__…`` system attributes belong
to the service.

Only the owner changes or deletes an image; an image shared with the caller is 403, an unknown one
404 (``members.require_owner``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from openims.catalog import patch, quotas, tags, validation
from openims.catalog.images import ImageStatus, new_image_id, transition
from openims.catalog.members import require_owner, visible_to
from openims.catalog.patch import Draft, PatchOp, Rule
from openims.db.models import Image, ImageCopy, ImageMember, ImageTag, Project
from openims.errors import ImsBadRequest, ImsConflict, ImsForbidden, ImsPayloadTooLarge

# Glance's default lists (glance common/config.py), IMS's zvhd2 and what else the pipeline reads (qed, qcow).
# Data in a format qemu-img reads (imaging.INSPECTABLE) is inspected on upload; the rest is stored
# opaque, as its metadata says (imaging.keep_image).
DISK_FORMATS: tuple[str, ...] = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
                                 "qed", "qcow", "zvhd2")
# Glance's defaults: only bare images are inspected (and converted by IMS operations); nothing
# here unpacks the others.
CONTAINER_FORMATS: tuple[str, ...] = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES: tuple[str, ...] = ("public", "private", "shared")

# Attributes the service computes (Glance's read-only list, plus owner: nobody re-homes images here).
READ_ONLY = frozenset({"id", "status", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
                       "owner", "created_at", "updated_at", "file", "self", "schema", "direct_url",
                       "locations", "stores"})
RESERVED = frozenset({"location", "deleted", "deleted_at"})
CORE = frozenset({"name", "min_disk", "min_ram", "protected", "os_hidden", "visibility", "tags",
                  "container_format", "disk_format"})
# The only "__" system attributes a user sets: the description and the OS version.
SYSTEM_WRITABLE = frozenset({"__description", "__os_version"})
# Attributes every IMS image has besides the "__" ones. A ``remove`` of them, or of any "__" one, is
# ignored: clients that rewrite the whole property set (openstacksdk's ``update_image(img, key=value)``
# sends a patch removing every property it was not given) would otherwise be refused outright.
KEPT_ON_REMOVE = frozenset({"virtual_env_type", "architecture", "hw_firmware_type", "enterprise_project_id"})
# Glance's own reserved namespace.
_RESERVED_PREFIXES = ("os_glance",)

# image_attributes.rst: extension attribute names are lower case (as the IMS PATCH checks them).
_CUSTOM_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.:\-]{0,254}$")
MAX_CUSTOM_PROPERTIES = 128
MAX_VALUE = 255
MAX_MIN_DISK = validation.SYSTEM_DISK_GB[1]
# IMS default when no OS version is given (creating_image_metadata_native_openstack_api.rst).
DEFAULT_OS_VERSION = "Other Linux(64 bit)"
_ENV_TYPES = ("FusionCompute", "Ironic", "DataImage", "IsoImage")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# ---------------------------------------------------------------- attribute rules


def _read_only(name: str) -> None:
    if name in READ_ONLY:
        raise ImsForbidden(f"Attribute '{name}' is read-only.", code="IMG.0105")
    if name in RESERVED or name.startswith(_RESERVED_PREFIXES):
        raise ImsForbidden(f"Attribute '{name}' is reserved.", code="IMG.0105")
    if name.startswith("__") and name not in SYSTEM_WRITABLE:
        raise ImsForbidden(f"Attribute '{name}' is managed by the service and cannot be set.", code="IMG.0105")


def _kept(name: str) -> bool:
    return (name.startswith("__") or name in KEPT_ON_REMOVE) and name not in RESERVED


def check_writable_name(name: str, op: str = "add") -> None:
    """Refuse what nobody may write, before looking at any image (Glance checks the request first)."""
    if op == "remove" and _kept(name):
        return
    _read_only(name)
    if name not in CORE and name not in SYSTEM_WRITABLE and not _CUSTOM_NAME.fullmatch(name):
        raise ImsBadRequest(f"The attribute name {name[:64]!r} is invalid: custom attribute names have 1 to 255 "
                            "lower-case letters, digits, '_', '.', ':' and '-'.", code="IMG.0001")


def _visibility(value: Any) -> str:
    # ``public`` is checked against the caller afterwards (``publication``): the rules know no caller.
    if value not in VISIBILITIES:
        raise ImsBadRequest("visibility must be private or shared.", code="IMG.0001")
    return str(value)


def publication(session: Session, image: Image, visibility: str, *, operator: bool) -> None:
    """Publishing an image (visibility ``public``, IMS ``__imagetype`` gold) and unpublishing it are the
    operator's alone (issue 13); a published image's IMS type is ``gold``, back to ``private`` when
    unpublished. Public images have no members (members.py: they cannot be shared).

    Call with the image as it was and the visibility it is to have, before writing it."""
    if (visibility == "public") == (image.visibility == "public"):
        return
    if not operator:
        raise ImsForbidden("Only the service's operator publishes public images; use private or shared.",
                           code="IMG.0026")
    if visibility == "public" and session.scalar(
            select(ImageMember.member_id).where(ImageMember.image_id == image.id).limit(1)) is not None:
        raise ImsConflict("The image has members: remove them before making it public.", code="IMG.0035")
    image.image_type = "gold" if visibility == "public" else "private"


def _format(name: str, value: Any, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise ImsBadRequest(f"{name} {str(value)[:32]!r} is not supported: use one of {', '.join(allowed)}.",
                            code="IMG.0072")
    return str(value)


def _text(name: str, value: Any) -> str:
    # Glance's additionalProperties are strings.
    return patch.text(name, value)


def stored_tags(value: Any) -> list[str]:
    """Tags as given to POST/PATCH → stored strings, one per key (tags.py storage).

    A native tag is a bare key; the ``key=value`` form of the IMS create example and the IMS
    ``key.value`` form are kept as IMS key/value tags.
    """
    if not isinstance(value, list):
        raise ImsBadRequest("tags must be a list of strings.", code="IMG.0115")
    by_key: dict[str, str] = {}
    for raw in value:
        if not isinstance(raw, str):
            raise ImsBadRequest("The image tag is invalid: tags are strings.", code="IMG.0115")
        if "=" in raw:
            key, _, val = raw.partition("=")
            key, val = tags.checked_pair(key, val)
        elif "." in raw:
            key, val = tags.checked_tag_string(raw)
        else:
            key, val = tags.checked_native(raw), ""
        by_key[key] = val
    if len(by_key) > tags.MAX_TAGS:
        raise ImsBadRequest(f"The number of image tags exceeds the quota of {tags.MAX_TAGS}.", code="IMG.0116")
    return [tags.join(k, v) for k, v in by_key.items()]


def _os_version(value: Any) -> dict[str, str]:
    text = _text("__os_version", value)
    if text == DEFAULT_OS_VERSION:
        return {"__os_version": text, "__os_type": "Linux", "__platform": "Other", "__os_bit": "64"}
    osv = validation.os_version(text, required=True)
    assert osv is not None
    return {"__os_version": osv.os_version, "__os_type": osv.os_type, "__platform": osv.platform,
            "__os_bit": osv.os_bit}


def _custom(name: str, value: Any, props: dict[str, Any]) -> Any:
    """A custom property's stored value; the IMS attributes with a meaning are checked as IMS does."""
    text = _text(name, value)
    if name == "max_ram":
        if not re.fullmatch(r"\d{1,9}", text):
            raise ImsBadRequest("max_ram must be a whole number of MB.", code="IMG.0055")
        return int(text)  # imports store it as a number
    if name == "hw_firmware_type":
        return validation.firmware(text, str(props.get("architecture", "x86")))
    if name == "architecture":
        if text not in validation.ARCHITECTURES:
            raise ImsBadRequest("The value of architecture must be x86 or arm.", code="IMG.0212")
        return text
    if name == "virtual_env_type":
        if text not in _ENV_TYPES:
            raise ImsBadRequest(f"virtual_env_type must be one of {', '.join(_ENV_TYPES)}.", code="IMG.0024")
        return text
    if name == "enterprise_project_id":
        return validation.enterprise_project(text)
    return text


# ---------------------------------------------------------------- the rule table


def _core(attr: str, check: Callable[[str, Any], Any]) -> Rule:
    """A core attribute: replaced through ``check``, never removed (403, as Glance)."""
    def assign(d: Draft, v: Any, _i: Image) -> None:
        setattr(d, attr, check(attr, v))
    return Rule(assign, patch.refuse(lambda: ImsForbidden(f"Property {attr} may not be removed.", code="IMG.0105")))


def _format_rule(attr: str, allowed: tuple[str, ...]) -> Rule:
    def assign(d: Draft, v: Any, image: Image) -> None:
        # The data is stored (or being stored) in its format: only a queued image may change it.
        if image.status != ImageStatus.QUEUED.value:
            raise ImsForbidden(f"Attribute {attr} can be only replaced for a queued image.", code="IMG.0105")
        setattr(d, attr, _format(attr, v, allowed))
    return Rule(assign, _core(attr, lambda n, v: v).remove)


def _set_tags(d: Draft, v: Any, _i: Image) -> None:
    d.tags = stored_tags(v)


def _set_description(d: Draft, v: Any, _i: Image) -> None:
    d.description = validation.description(v)
    d.properties["__description"] = d.description


def _set_os_version(d: Draft, v: Any, _i: Image) -> None:
    d.properties.update(_os_version(v))


def _ignored(_d: Draft, _i: Image) -> bool:
    return False  # see KEPT_ON_REMOVE


def _name(_n: str, v: Any) -> str:
    return validation.image_name(v, required=False) if v is not None else ""


RULES: dict[str, Rule] = {
    "name": _core("name", _name),
    "min_disk": _core("min_disk", lambda n, v: patch.integer(n, v, high=MAX_MIN_DISK)),
    "min_ram": _core("min_ram", lambda n, v: patch.integer(n, v)),
    "protected": _core("protected", patch.boolean),
    "os_hidden": _core("os_hidden", patch.boolean),
    "visibility": _core("visibility", lambda _n, v: _visibility(v)),
    "tags": Rule(_set_tags, _core("tags", lambda n, v: v).remove),
    "container_format": _format_rule("container_format", CONTAINER_FORMATS),
    "disk_format": _format_rule("disk_format", DISK_FORMATS),
    "__description": Rule(_set_description, _ignored),
    "__os_version": Rule(_set_os_version, _ignored),
}


def _custom_rule(name: str) -> Rule:
    """A custom property (names already checked by check_writable_name): a string, some with IMS meanings."""
    def missing(_d: Draft, _i: Image) -> None:
        raise ImsConflict(f"Property {name} does not exist.", code="IMG.0035")

    rule = patch.property_rule(name, _custom, missing=missing)

    def replace(d: Draft, v: Any, image: Image) -> bool | None:
        if name not in d.properties:
            missing(d, image)
        return rule.assign(d, v, image)

    return Rule(rule.assign, _ignored if _kept(name) else rule.remove, replace)


def _check(draft: Draft) -> None:
    custom = [k for k in draft.properties if not k.startswith("__")]
    if len(custom) > MAX_CUSTOM_PROPERTIES:
        raise ImsPayloadTooLarge(f"An image has at most {MAX_CUSTOM_PROPERTIES} custom properties.")
    max_ram = draft.properties.get("max_ram")
    validation.memory(draft.min_ram, int(max_ram) if max_ram is not None else None)
    validation.firmware(str(draft.properties.get("hw_firmware_type", "bios")),
                        str(draft.properties.get("architecture", "x86")))


def _replace_tags(session: Session, image_id: str, stored: list[str]) -> None:
    session.execute(delete(ImageTag).where(ImageTag.image_id == image_id))
    session.add_all(ImageTag(image_id=image_id, tag=t) for t in stored)


# ---------------------------------------------------------------- create


def _system_properties() -> dict[str, Any]:
    # The attributes IMS shows on an image created from metadata (the example response of
    # creating_image_metadata_native_openstack_api.rst), defaults as an import sets them.
    props: dict[str, Any] = {
        "__imagetype": "private",
        "__image_source_type": "uds",
        "__isregistered": "true",
        "__image_size": "0",
        "__description": "",
        "__lazyloading": "false",
        "__support_kvm": "true",
        "virtual_env_type": "FusionCompute",
        "hw_firmware_type": "bios",
        "architecture": "x86",
        "enterprise_project_id": "0",
    }
    props.update(_os_version(DEFAULT_OS_VERSION))
    return props


def create_queued(session: Session, *, project_id: str, body: dict[str, Any], quota: int,
                  now: dt.datetime, operator: bool = False) -> Image:
    """``POST /v2/images``: a queued image from metadata, counted against the project's quota.

    The operator may give it to another project (``owner``), whose quota it then counts against."""
    image = Image(id=new_image_id(), owner=project_id, name="", description="", status=ImageStatus.QUEUED.value,
                  visibility="private", image_type="private", protected=False, container_format="bare",
                  disk_format=None, min_disk=0, min_ram=0, properties=_system_properties(), created_at=now,
                  updated_at=now)
    draft = Draft.of(image)
    for name, value in body.items():
        if name == "id":
            if not isinstance(value, str) or not _UUID.fullmatch(value):
                raise ImsBadRequest("id must be a UUID (8-4-4-4-12 hexadecimal digits).", code="IMG.0066")
            image.id = value.lower()
            continue
        if name == "owner":
            if value != project_id:
                if not operator:
                    raise ImsForbidden("An image belongs to the project that creates it; owner cannot be set.",
                                       code="IMG.0105")
                if not isinstance(value, str) or session.get(Project, value) is None:
                    raise ImsBadRequest(f"owner {str(value)[:64]!r} is not a project.", code="IMG.0067")
                image.owner = value
            continue
        check_writable_name(name)
        patch.apply(image, draft, [PatchOp("add", name, value)], RULES, _custom_rule)
    if "architecture" in body and "hw_firmware_type" not in body:
        # The default boot mode follows the architecture (Arm boots UEFI only).
        draft.properties["hw_firmware_type"] = validation.firmware(None, str(draft.properties["architecture"]))
    _check(draft)
    publication(session, image, draft.visibility, operator=operator)
    quotas.reserve_images(session, image.owner, 1, quota)
    if session.get(Image, image.id) is not None:
        raise ImsConflict(f"Image with identifier {image.id} already exists.", code="IMG.0035")
    draft.write_to(image)
    session.add(image)
    session.flush()
    session.add_all(ImageTag(image_id=image.id, tag=t) for t in draft.tags or [])
    session.flush()
    return image


# ---------------------------------------------------------------- update


def update(session: Session, project_id: str, image_id: str, ops: list[PatchOp], now: dt.datetime, *,
           operator: bool = False) -> Image:
    """``PATCH /v2/images/{id}``: every operation or none, on the owner's image."""
    for op in ops:
        check_writable_name(op.name, op.op)
    image = require_owner(session, project_id, image_id, for_update=True)
    draft = Draft.of(image)
    patch.apply(image, draft, ops, RULES, _custom_rule)
    if not draft.changed:
        return image
    _check(draft)
    publication(session, image, draft.visibility, operator=operator)
    if draft.visibility != image.visibility and draft.visibility == "private":
        has_members = session.scalar(select(ImageMember.member_id).where(ImageMember.image_id == image.id).limit(1))
        if has_members is not None:
            # While it has members an image is shared (members.py); making it private would leave them dangling.
            raise ImsConflict("The image has members: remove them before making it private.", code="IMG.0035")
    draft.write_to(image)
    if draft.tags is not None:
        _replace_tags(session, image.id, draft.tags)
    image.updated_at = now
    session.flush()
    return image


# ---------------------------------------------------------------- delete


def delete_image(session: Session, project_id: str, image_id: str) -> list[str]:
    """``DELETE /v2/images/{id}``; returns the image-store keys to remove once the deletion commits: the
    image's data (or its id) and its copies in further stores.

    The store keys data by image id (ImageStore.publish), so the key is returned even when no data
    is recorded yet: an upload or import publishing meanwhile finds the row gone and removes its own
    data, and data left by a crash between publishing and recording is removed here.
    """
    image = visible_to(session, project_id, image_id, for_update=True)
    if image.owner != project_id:
        if image.visibility == "public":
            raise ImsForbidden(f"Image {image_id} is a public image and cannot be deleted.", code="IMG.0094")
        raise ImsForbidden(f"Image {image_id} is shared with you; only its owner can delete it.", code="IMG.0092")
    if image.protected:
        raise ImsForbidden(f"Image {image_id} is protected and cannot be deleted.", code="IMG.0028")
    session.execute(delete(ImageTag).where(ImageTag.image_id == image.id))
    session.execute(delete(ImageMember).where(ImageMember.image_id == image.id))
    keys = [image.location or image.id, *session.scalars(select(ImageCopy.location)
                                                          .where(ImageCopy.image_id == image.id))]
    session.delete(image)
    return keys


# ---------------------------------------------------------------- data access and deactivation


def set_deactivated(session: Session, project_id: str, image_id: str, deactivated: bool,
                    now: dt.datetime) -> None:
    """Glance's deactivate / reactivate: the owner's image, active ↔ deactivated; twice is a no-op."""
    image = require_owner(session, project_id, image_id, for_update=True)
    source, target = ((ImageStatus.ACTIVE, ImageStatus.DEACTIVATED) if deactivated
                      else (ImageStatus.DEACTIVATED, ImageStatus.ACTIVE))
    if image.status == target.value:
        return
    if image.status != source.value:
        verb = "deactivate" if deactivated else "reactivate"
        raise ImsForbidden(f"Not allowed to {verb} image in status '{image.status}'.", code="IMG.0026")
    transition(image, target, now)


def downloadable(session: Session, project_id: str, image_id: str, *, may_download: bool,
                 image_admin: bool) -> Image:
    """The image whose data the caller asks for: unknown → 404 before any refusal (as Glance), a
    role without downloads → 403, a deactivated image → 403 except for an image administrator."""
    image = visible_to(session, project_id, image_id)
    if not may_download:
        raise ImsForbidden("The role is invalid: no permission to download the data of IMS resources.")
    if image.status == ImageStatus.DEACTIVATED.value and not image_admin:
        raise ImsForbidden("The requested image has been deactivated. Image data download is forbidden.")
    return image


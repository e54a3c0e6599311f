"""Field rules from the IMS parameter reference (image_attributes.rst, image_tag_format.rst).

Each check raises BadRequest carrying the documented IMG code for that field.
"""

from __future__ import annotations

import re
import uuid

from openims.catalog.os_versions import OsVersion, describe
from openims.errors import ImsBadRequest

_NAME = re.compile(r"^[\w\-. ]+$")
_TAG_PART = re.compile(r"^[\w-]*$")
_DESCRIPTION_FORBIDDEN = re.compile(r"[\r\n<>]")

# The widest values the catalogue's integer columns hold (Integer and BigInteger on PostgreSQL):
# anything larger is refused as a client mistake before it reaches the database.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

TAG_KEY_MAX = 36
TAG_VALUE_MAX = 43
MAX_TAGS = 10
IMAGE_NAME_MAX = 128
DESCRIPTION_MAX = 1024

# The same rules as JSON Schema patterns, for the OpenAPI document (the checks below answer with their codes):
# a name is _NAME not starting or ending with a space; a description has no character of
# _DESCRIPTION_FORBIDDEN; a tag of the ``tags`` form is ``key`` or ``key.value`` (see tags()).
IMAGE_NAME_PATTERN = r"^[\w\-.](?:[\w\-. ]*[\w\-.])?$"
DESCRIPTION_PATTERN = r"^[^\r\n<>]*$"
TAG_PATTERN = rf"^[\w-]{{0,{TAG_KEY_MAX}}}(?:\.[\w-]{{0,{TAG_VALUE_MAX}}})?$"
IMAGE_TYPES = {"ECS": "FusionCompute", "FusionCompute": "FusionCompute", "BMS": "Ironic", "Ironic": "Ironic",
               "IsoImage": "IsoImage"}
OS_TYPES = ("Linux", "Windows", "Other")
ARCHITECTURES = ("x86", "arm")
FIRMWARE_TYPES = ("bios", "uefi")


def image_name(name: object, *, required: bool = True) -> str:
    if name is None or name == "":
        if required:
            raise ImsBadRequest("The image name is not specified.", code="IMG.0013")
        return ""
    if not isinstance(name, str):
        raise ImsBadRequest("The image name must be a string.", code="IMG.0003")
    if len(name) > IMAGE_NAME_MAX:
        raise ImsBadRequest(f"The image name contains more than {IMAGE_NAME_MAX} characters.", code="IMG.0002")
    if name != name.strip(" ") or not _NAME.fullmatch(name):
        raise ImsBadRequest(
            "The image name format is invalid: 1-128 letters, digits, spaces, hyphens, periods and "
            "underscores, not starting or ending with a space.", code="IMG.0003")
    return name


def description(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ImsBadRequest("The description must be a string.", code="IMG.0054")
    if len(value) > DESCRIPTION_MAX:
        raise ImsBadRequest(f"The description contains more than {DESCRIPTION_MAX} characters.", code="IMG.0004")
    if _DESCRIPTION_FORBIDDEN.search(value):
        raise ImsBadRequest("The description must not contain carriage returns or angle brackets.",
                            code="IMG.0054")
    return value


def os_version(value: str | None, *, required: bool = False) -> OsVersion | None:
    if not value:
        if required:
            raise ImsBadRequest("os_version is required for this kind of import.", code="IMG.0056")
        return None
    found = describe(value)
    if found is None:
        raise ImsBadRequest(f"Invalid OS version {value!r}; GET /v1/cloudimages/os_version lists the supported "
                            "values.", code="IMG.0056")
    return found


def os_type(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in OS_TYPES:
        raise ImsBadRequest("The OS type is invalid: use Linux, Windows or Other.", code="IMG.0122")
    return value


# min_disk of IMS images, GB (creating_a_system_disk_image…, creating_a_data_disk_image…): the
# native API (Glance) accepts 0 up to the same system-disk maximum.
SYSTEM_DISK_GB = (1, 1024)
DATA_DISK_GB = (40, 2048)


def min_disk(value: int, *, data_disk: bool, field: str = "min_disk") -> int:
    low, high = DATA_DISK_GB if data_disk else SYSTEM_DISK_GB
    if not low <= value <= high:
        raise ImsBadRequest(f"{field} must be between {low} and {high} GB.", code="IMG.0055")
    return value


def memory(min_ram: int | None, max_ram: int | None) -> tuple[int, int | None]:
    lo = min_ram or 0
    if lo < 0 or (max_ram is not None and max_ram < 0):
        raise ImsBadRequest("min_ram and max_ram must not be negative.", code="IMG.0055")
    if lo > INT32_MAX or (max_ram is not None and max_ram > INT32_MAX):
        raise ImsBadRequest(f"min_ram and max_ram must be at most {INT32_MAX} (MB).", code="IMG.0055")
    if max_ram and lo > max_ram:
        raise ImsBadRequest("min_ram must not exceed max_ram.", code="IMG.0055")
    return lo, max_ram


def virtual_env_type(image_type: str | None) -> str:
    if image_type is None:
        return "FusionCompute"
    if image_type not in IMAGE_TYPES:
        raise ImsBadRequest("type must be ECS, BMS, FusionCompute, IsoImage or Ironic.", code="IMG.0024")
    return IMAGE_TYPES[image_type]


def architecture(value: str | None) -> str:
    if value is None:
        return "x86"
    if value not in ARCHITECTURES:
        raise ImsBadRequest("architecture must be x86 or arm.", code="IMG.0001")
    return value


def firmware(value: str | None, arch: str) -> str:
    if value is None:
        return "uefi" if arch == "arm" else "bios"
    if value not in FIRMWARE_TYPES:
        raise ImsBadRequest("The value of hw_firmware_type is not uefi or bios.", code="IMG.0141")
    if arch == "arm" and value != "uefi":
        raise ImsBadRequest("Arm images boot in UEFI mode only.", code="IMG.0141")
    return value


def enterprise_project(value: str | None) -> str:
    if value is None or value in ("", "0"):
        return "0"
    try:
        uuid.UUID(value)
    except ValueError as exc:
        raise ImsBadRequest("enterprise_project_id must be 0 or a UUID.", code="IMG.0155") from exc
    return value


def _tag_part(text: str, limit: int, what: str) -> str:
    if len(text) > limit or not _TAG_PART.fullmatch(text):
        raise ImsBadRequest(f"The image tag is invalid: the {what} must have at most {limit} letters, digits, "
                            "underscores or hyphens.", code="IMG.0115")
    return text


def tags(tag_list: list[str] | None, image_tags: list[dict[str, str]] | None) -> list[str]:
    """Both documented tag forms → stored ``key.value`` strings, one per key (the last one wins)."""
    if tag_list and image_tags:
        raise ImsBadRequest("Use either tags or image_tags, not both.", code="IMG.0115")
    pairs: dict[str, str] = {}
    for raw in tag_list or []:
        if not isinstance(raw, str) or not raw:
            raise ImsBadRequest("The image tag is invalid: tags are 'key.value' strings.", code="IMG.0115")
        key, _, value = raw.partition(".")
        pairs[_tag_part(key, TAG_KEY_MAX, "key")] = _tag_part(value, TAG_VALUE_MAX, "value")
    for item in image_tags or []:
        if not isinstance(item, dict) or "key" not in item:
            raise ImsBadRequest("The image tag is invalid: image_tags items are {key, value}.", code="IMG.0115")
        key = str(item["key"]).strip()
        value = str(item.get("value") or "").strip()
        if not key:
            raise ImsBadRequest("The image tag is invalid: the key is empty.", code="IMG.0115")
        pairs[_tag_part(key, TAG_KEY_MAX, "key")] = _tag_part(value, TAG_VALUE_MAX, "value")
    if len(pairs) > MAX_TAGS:
        raise ImsBadRequest(f"The number of image tags exceeds the quota of {MAX_TAGS}.", code="IMG.0116")
    return [f"{k}.{v}" for k, v in pairs.items()]


def image_url(value: str) -> tuple[str, str]:
    """Split ``bucket:key`` at submission; the key itself is resolved (and refused) by the job."""
    from openims.objects.base import InvalidObjectName, check_bucket_name

    bucket, sep, key = value.partition(":")
    if not sep or not bucket or not key:
        raise ImsBadRequest("The URL format is incorrect: image_url must be <bucket>:<object key>.",
                            code="IMG.0017")
    try:
        check_bucket_name(bucket)
    except InvalidObjectName as exc:
        raise ImsBadRequest(f"The bucket name contains invalid characters: {exc}.", code="IMG.0109") from exc
    return bucket, key

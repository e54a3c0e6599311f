"""The one update engine: JSON-patch-style operations applied to a draft of an image, all or none.

Both update APIs use it — IMS ``PATCH /v2/cloudimages/{id}`` (``catalog.lifecycle``) and Glance
``PATCH /v2/images/{id}`` (``catalog.native``). What differs between them is stated in their rule
tables: per attribute, what ``add``/``replace`` does with a value and what ``remove`` does (a
``Rule``), plus a default rule for custom attributes. Values are checked by the one set of checks
below; the tables choose how strict (IMS accepts ``"40"`` for an integer and ``true`` for a string,
as its SDK sends them; Glance's schema types values, so it does not).

``apply`` runs every operation on a ``Draft``; the caller validates the draft as a whole, then
``Draft.write_to`` copies it onto the image — so a request with one bad operation changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from openims.catalog import validation
from openims.db.models import Image
from openims.errors import ImsBadRequest, ServiceError

Op = Literal["add", "replace", "remove"]
OPS: tuple[Op, ...] = ("add", "replace", "remove")
MAX_VALUE = 255
_DIGITS = re.compile(r"-?\d{1,10}")


@dataclass(frozen=True)
class PatchOp:
    """One operation on a top-level attribute (neither API allows deeper paths)."""

    op: Op
    name: str
    value: Any = None
    # Whether the operation carried a value at all (``"value": null`` is a value).
    has_value: bool = True


@dataclass
class Draft:
    """The editable state of one image, changed op by op and validated as a whole at the end."""

    name: str
    description: str
    min_disk: int
    min_ram: int
    protected: bool
    os_hidden: bool
    visibility: str
    container_format: str | None
    disk_format: str | None
    properties: dict[str, Any]
    tags: list[str] | None = None  # None: unchanged
    changed: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, image: Image) -> Draft:
        return cls(name=image.name, description=image.description, min_disk=image.min_disk,
                   min_ram=image.min_ram, protected=image.protected, os_hidden=image.os_hidden,
                   visibility=image.visibility,
                   container_format=image.container_format, disk_format=image.disk_format,
                   properties=dict(image.properties))

    def write_to(self, image: Image) -> None:
        image.name = self.name
        image.description = self.description
        image.min_disk = self.min_disk
        image.min_ram = self.min_ram
        image.protected = self.protected
        image.os_hidden = self.os_hidden
        image.visibility = self.visibility
        image.container_format = self.container_format
        image.disk_format = self.disk_format
        image.properties = self.properties


# A rule returns False when the operation left the draft as it was (e.g. a remove Glance ignores).
Assign = Callable[[Draft, Any, Image], "bool | None"]
Remove = Callable[[Draft, Image], "bool | None"]


@dataclass(frozen=True)
class Rule:
    """What one attribute accepts: ``assign`` for add (and replace, unless ``replace`` is given), ``remove``."""

    assign: Assign
    remove: Remove
    replace: Assign | None = None


def apply(image: Image, draft: Draft, ops: list[PatchOp], rules: Mapping[str, Rule],
          custom: Callable[[str], Rule]) -> None:
    """Every operation on the draft, in order; ``custom`` gives the rule of attributes not in ``rules``."""
    for op in ops:
        rule = rules.get(op.name) or custom(op.name)
        if op.op == "remove":
            changed = rule.remove(draft, image)
        elif not op.has_value:
            raise ImsBadRequest(f"The {op.op} operation on {op.name} needs a value.", code="IMG.0001")
        elif op.op == "replace" and rule.replace is not None:
            changed = rule.replace(draft, op.value, image)
        else:
            changed = rule.assign(draft, op.value, image)
        if changed is not False:
            draft.changed.add(op.name)


# ---------------------------------------------------------------- value checks


def integer(name: str, value: Any, *, low: int = 0, high: int = validation.INT32_MAX, strings: bool = False) -> int:
    """A whole number in [low, high]; ``strings`` also takes its decimal string form."""
    if isinstance(value, str) and strings and _DIGITS.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ImsBadRequest(f"{name} must be an integer.", code="IMG.0055")
    if not low <= value <= high:
        raise ImsBadRequest(f"{name} must be between {low} and {high}.", code="IMG.0055")
    return value


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ImsBadRequest(f"{name} must be true or false.", code="IMG.0001")
    return value


def flag(name: str, value: Any) -> str:
    """A ``"true"``/``"false"`` property, given as a JSON boolean or as either string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    raise ImsBadRequest(f"The value of {name} must be true or false.", code="IMG.0001")


def text(name: str, value: Any, *, coerce: bool = False) -> str:
    """A string of at most MAX_VALUE characters; ``coerce`` also takes booleans and numbers as strings."""
    if coerce and isinstance(value, bool):
        value = "true" if value else "false"
    elif coerce and isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise ImsBadRequest(f"The value of {name} must be a string.", code="IMG.0001")
    if len(value) > MAX_VALUE:
        raise ImsBadRequest(f"The value of {name} is longer than {MAX_VALUE} characters.", code="IMG.0001")
    return value


# ---------------------------------------------------------------- rules used by both tables


def refuse(error: Callable[[], ServiceError]) -> Remove:
    """A ``remove`` that is always refused with the error ``error()`` makes."""
    def remove(_draft: Draft, _image: Image) -> None:
        raise error()
    return remove


PropertyCheck = Callable[[str, Any, dict[str, Any]], Any]


def property_rule(name: str, check: PropertyCheck, *, missing: Remove | None = None) -> Rule:
    """A plain property: stored as ``check`` returns it; removing one that is not there calls ``missing``."""
    def assign(draft: Draft, value: Any, _image: Image) -> None:
        draft.properties[name] = check(name, value, draft.properties)

    def remove(draft: Draft, image: Image) -> bool | None:
        if name in draft.properties:
            del draft.properties[name]
            return None
        return missing(draft, image) if missing is not None else False
    return Rule(assign, remove)

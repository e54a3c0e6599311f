"""Identifier formats: IAM ids are 32 hex characters, as Keystone and Huawei IAM issue them."""

from __future__ import annotations

import re
import uuid

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    return uuid.uuid4().hex


def looks_like_id(value: str) -> bool:
    return bool(_HEX32.fullmatch(value))

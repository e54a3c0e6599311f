"""Schemathesis hooks for the fuzz run (loaded through SCHEMATHESIS_HOOKS=tests.fuzz.hooks).

Glance's image update takes a JSON patch under its own media types, which schemathesis does not know:
they are JSON on the wire.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/openstack-images-v2.1-json-patch",
                         "application/openstack-images-v2.0-json-patch")
def json_patch(ctx: Any, value: Any) -> bytes:
    return json.dumps(value).encode()

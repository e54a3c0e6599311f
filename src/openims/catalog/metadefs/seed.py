"""The shipped metadata definitions, loaded at the first start (``runtime.bootstrap_runtime``).

``shipped/`` holds one namespace per JSON file, in the shape ``POST /v2/metadefs/namespaces`` takes
(checked by the same rules), and ``resource_types.json``, the list of resource types known from
the start. The namespaces are public, protected and owned by the service's own project.

Each shipped namespace is loaded once: ``metadef_seeds`` remembers it, so one an administrator
deleted does not come back at the next start, and one added by a later release is loaded by the
first start of that release. Processes starting at once on an empty database take turns
(``serialized``), and all but the first find everything done.
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openims.catalog.metadefs import namespaces
from openims.catalog.metadefs.definitions import NamespaceSpec, name, namespace_spec
from openims.catalog.metadefs.resource_types import ensure_resource_type
from openims.db.models import MetadefNamespace, MetadefSeed
from openims.db.session import serialized

_RESOURCE_TYPES = "resource_types.json"


def _data() -> list[tuple[str, Any]]:
    folder = resources.files("openims.catalog.metadefs").joinpath("shipped")
    return sorted((entry.name, json.loads(entry.read_text(encoding="utf-8"))) for entry in folder.iterdir()
                  if entry.name.endswith(".json"))


def shipped() -> tuple[list[str], list[NamespaceSpec]]:
    """The shipped resource types and namespaces, checked as an API request would be."""
    types: list[str] = []
    specs: list[NamespaceSpec] = []
    for file_name, doc in _data():
        if file_name == _RESOURCE_TYPES:
            types = [name(t, "resource type name") for t in doc["resource_types"]]
        else:
            specs.append(namespace_spec(doc))
    return types, specs


def seed(session: Session, owner: str, now: dt.datetime) -> list[str]:
    """Load what is not loaded yet; the names of the namespaces this call created."""
    serialized(session, "metadefs-seed")
    types, specs = shipped()
    for type_name in types:
        ensure_resource_type(session, type_name, now, protected=True)
    loaded = set(session.scalars(select(MetadefSeed.name)))
    created: list[str] = []
    for spec in specs:
        if spec.namespace in loaded:
            continue
        # A namespace of that name made by hand before this release shipped one wins.
        if session.scalar(select(MetadefNamespace.id).where(MetadefNamespace.namespace == spec.namespace)) is None:
            namespaces.insert(session, spec, owner, now)
            created.append(spec.namespace)
        session.add(MetadefSeed(name=spec.namespace, loaded_at=now))
    session.flush()
    return created

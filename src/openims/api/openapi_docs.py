"""Pieces of route metadata for the generated OpenAPI document (``/openapi.json``).

Routes that build their answer by hand (a ``JSONResponse`` on the hot read paths, a body read by a
dependency) give FastAPI nothing to describe; these helpers let their decorators say what they answer
and accept, so the document stays truthful (tests/unit/test_openapi.py walks it; tests/fuzz drives
schemathesis against it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from openims.api.errors import is_iam_path

Schema = dict[str, Any]
Responses = dict[int | str, dict[str, Any]]  # a decorator's ``responses=``

OBJECT: Schema = {"type": "object"}


def obj(*required: str, **properties: Schema) -> Schema:
    """A JSON object with these properties (others allowed), ``required`` among them."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def json_response(description: str, schema: Schema) -> dict[str, Any]:
    """A ``responses`` entry: a JSON body of this schema."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: Schema, *, description: str = "", media_types: tuple[str, ...] = ("application/json",),
              required: bool = True) -> dict[str, Any]:
    """An ``openapi_extra`` declaring a request body the route reads by hand."""
    body: dict[str, Any] = {"required": required,
                            "content": {media: {"schema": schema} for media in media_types}}
    if description:
        body["description"] = description
    return {"requestBody": body}


def query(*params: tuple[str, Schema, str]) -> list[dict[str, Any]]:
    """Query parameters a route reads off ``request.query_params``: (name, schema, description)."""
    return [{"name": name, "in": "query", "required": False, "schema": schema, "description": description}
            for name, schema, description in params]


def rule(regex: re.Pattern[str] | str, length: tuple[int, int] | None = None) -> Callable[[Schema], None]:
    """A string rule checked by hand (so that its error keeps the route's own code), for the document only.

    Given as ``json_schema_extra`` of a ``Path``/``Field``: FastAPI and pydantic put it in the schema but do
    not validate it; the route's own check (whose regex and limits these are) answers. On an optional field
    the rule goes to the string branch of its ``anyOf``.
    """
    said: Schema = {"pattern": regex if isinstance(regex, str) else regex.pattern}
    if length is not None:
        said["minLength"], said["maxLength"] = length

    def extra(schema: Schema) -> None:
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") == "string":
                branch.update(said)

    return extra


# A parameter the route requires by hand (so that its absence keeps the route's own error), marked in its
# schema by ``required_rule`` and declared required by ``complete``.
_REQUIRED_MARK = "x-openims-required"


def required_rule(**said: Any) -> Schema:
    """A ``json_schema_extra`` for a ``Query``: the parameter is required (checked by hand), with these rules."""
    return {_REQUIRED_MARK: True, **said}


def model_rules(*required: str, **rules: Schema) -> Callable[[Schema], None]:
    """A body model's rules checked by hand, for the document only (a model's ``json_schema_extra``).

    ``required``: fields the route's own checks require (with their codes, so pydantic must not); ``rules``:
    constraints added to a field's schema (to its non-null branch when optional).
    """

    def extra(schema: Schema) -> None:
        if required:
            schema["required"] = list(dict.fromkeys([*schema.get("required", []), *required]))
        for name, said in rules.items():
            prop = schema["properties"][name]
            for branch in prop.get("anyOf", [prop]):
                if branch.get("type") != "null":
                    branch.update(said)

    return extra


# What int() reads from a query parameter's text (or an empty one, left out): for routes that parse it so.
INT_TEXT = r"^(?:\s*[+-]?\d+(?:_\d+)*\s*)?$"

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
LINKS: Schema = array(obj("rel", "href", rel=STRING, href=STRING))


# ---------------------------------------------------------------- what every route can answer

_IMS_ERROR: Schema = obj("error", error=obj("code", "message", code=STRING, message=STRING))
_KEYSTONE_ERROR: Schema = obj("error", error=obj("code", "title", "message", code=INTEGER, title=STRING,
                                                  message=STRING))
ERROR_SCHEMAS: dict[str, Schema] = {"ImsError": _IMS_ERROR, "KeystoneError": _KEYSTONE_ERROR}
_IMS_REF: Schema = {"$ref": "#/components/schemas/ImsError"}
_KEYSTONE_REF: Schema = {"$ref": "#/components/schemas/KeystoneError"}

# Answered without a caller (version discovery, probes); every other route authenticates the caller first.
PUBLIC_PATHS = frozenset({"/", "/v1", "/v2", "/image", "/versions", "/identity", "/v3", "/healthz", "/readyz",
                          "/metrics", "/v3/auth/tokens"})


def _error_schema(path: str, status: str) -> Schema:
    # api.errors.render: Keystone's shape on IAM paths and for every 401; elsewhere IMS's, except an IAM error
    # raised by a shared check (Keystone's).
    if is_iam_path(path) or status == "401":
        return _KEYSTONE_REF
    return {"anyOf": [_IMS_REF, _KEYSTONE_REF]}


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    """Add to every operation what the central layers answer (api.errors, the middlewares), in place.

    FastAPI documents a 422 for request validation: api.errors answers those 400 in the family's shape.
    Every authenticated route may answer 401 (no or a bad credential) and 403 (a role that does not allow
    it, another project's path); a ``{param}`` names something that may not exist (404); a body may be over
    the size limit (413); any route may find the database or the object store away for a moment (503).
    Error answers without a body schema get the family's.
    """
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(ERROR_SCHEMAS)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for path, item in doc.get("paths", {}).items():
        for op in item.values():
            for param in op.get("parameters", []):
                if param.get("schema", {}).pop(_REQUIRED_MARK, False):
                    param["required"] = True
            responses: dict[str, Any] = op.setdefault("responses", {})
            responses.pop("422", None)
            extra = {"503": "The database or the object store is unavailable for a moment (Retry-After: 1)"}
            if op.get("parameters") or op.get("requestBody"):
                extra["400"] = "Invalid request"
            if op.get("requestBody"):
                extra["413"] = "The body is larger than the deployment allows"
            if path not in PUBLIC_PATHS:
                extra["401"] = "Missing, invalid or expired credentials"
                extra["403"] = "Not permitted to the caller's roles"
            if "{" in path:
                extra["404"] = "Not found (or not visible to the caller)"
            for status, description in extra.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status[0] in "45" and not response.get("content"):
                    response["content"] = {"application/json": {"schema": _error_schema(path, status)}}
    return doc


def install(app: FastAPI) -> None:
    """Serve ``complete``'s document at ``/openapi.json`` (built once, on first use, as FastAPI does)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

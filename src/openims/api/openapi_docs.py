"""Pieces of route metadata for the generated OpenAPI document (``/openapi.json``).

Routes that build their answer by hand (a ``JSONResponse`` on the hot read paths, a body read by a
dependency) give FastAPI nothing to describe; these helpers let their decorators say what they answer
and accept, so the document stays truthful (tests/unit/test_openapi.py walks it; tests/fuzz drives
schemathesis against it).
"""

from __future__ import annotations

from typing import Any

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


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
LINKS: Schema = array(obj("rel", "href", rel=STRING, href=STRING))

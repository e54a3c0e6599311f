"""Check one real answer against the service's own OpenAPI document (what schemathesis checks, in one case).

The regression tests of the fuzzing findings (tests/fuzz) use it: the status must be documented for the
operation, and the body must conform to the schema documented for that status.
"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema


def assert_documented(document: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    """``response`` (to ``method`` on the templated ``path``) is what ``document`` says the operation answers."""
    operation = document["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{method} {path}: {status} is not documented ({sorted(operation['responses'])}): {response.text[:300]}")
    content = operation["responses"][status].get("content") or {}
    schema = (content.get("application/json") or {}).get("schema")
    if schema and response.content:
        # The document's components resolve the schema's "#/components/…" references.
        jsonschema.validate(response.json(), {**schema, "components": document.get("components", {})})

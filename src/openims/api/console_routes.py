"""The web console (``/console/``): static files shipped in the package (``openims/console``), no build step.

Mounted (not routed): it has no operations for the OpenAPI document. The console talks to the same
HTTP API as every client, holding its token in ``sessionStorage`` and sending it as ``X-Auth-Token``
(never a cookie: the browser authenticates no request on its own, so there is nothing to forge).
Its answers carry a strict Content-Security-Policy: scripts, styles and connections from this
origin only, no inline script or style, no framing.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

PREFIX = "/console"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Small files, changed with each release: revalidated, never served stale.
    "Cache-Control": "no-cache",
}
# Served with these types whatever the platform's mimetypes table says (a module script needs a JS type).
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}


class ConsoleFiles(StaticFiles):
    """The package's console files, with the security headers; the package's Python files are not served."""

    def __init__(self) -> None:
        super().__init__(packages=[("openims", "console")], html=True)

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.endswith((".py", ".pyc")) or "__pycache__" in path:
            raise HTTPException(404)
        response = await super().get_response(path, scope)
        suffix = os.path.splitext(path if "." in os.path.basename(path) else "index.html")[1]
        if suffix in _TYPES and response.status_code == 200:
            response.headers["content-type"] = _TYPES[suffix]
        response.headers.update(SECURITY_HEADERS)
        return response


def install(app: FastAPI, **_: Any) -> None:
    app.mount(PREFIX, ConsoleFiles(), name="console")

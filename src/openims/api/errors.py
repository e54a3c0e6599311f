"""Central error rendering: one handler per exception family, the wire shape chosen by route family."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from openims.db.session import unavailable
from openims.errors import ApigError, IamError, IamUnauthorized, ServiceError, ServiceUnavailable, title_of
from openims.objects.base import StorageUnavailable

log = logging.getLogger("openims.api")

_IAM_PREFIXES = ("/v3/", "/v3-ext/", "/v3.0/", "/v5/")


def is_iam_path(path: str) -> bool:
    return path == "/v3" or path.startswith(_IAM_PREFIXES)


def keystone_body(status: int, title: str, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "title": title, "message": message}}


def ims_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def render(request: Request, status: int, *, ims_code: str, title: str, message: str,
           keystone: bool | None = None, retry_after: int | None = None) -> JSONResponse:
    use_keystone = is_iam_path(request.url.path) if keystone is None else keystone
    body = keystone_body(status, title, message) if use_keystone else ims_body(ims_code, message)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Keystone uri="/v3"'
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(body, status_code=status, headers=headers or None)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "header"))
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            return "The request body is not valid JSON."
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "Invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        if isinstance(exc, ApigError):
            # Signed (AK/SK) requests are refused as the API gateway does; the id is also a header.
            body = {"error_code": exc.code, "error_msg": exc.message,
                    "request_id": getattr(request.state, "request_id", None)}
            retry = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
            return JSONResponse(body, status_code=exc.status, headers=retry)
        # Unauthorized is an IAM artefact wherever it happens; so is every IamError.
        keystone = True if isinstance(exc, IamError | IamUnauthorized) else None
        if isinstance(exc, ServiceUnavailable):
            log.warning("%s %s answered 503: %s", request.method, request.url.path, exc.message)
        response = render(request, exc.status, ims_code=exc.code, title=exc.title, message=exc.message,
                          keystone=keystone, retry_after=exc.retry_after)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # A database that is busy or unreachable is a passing condition the client can retry;
        # anything else from the database layer is a bug.
        busy = unavailable(exc)
        if busy is None:
            return await _unexpected(request, exc)
        return await _service_error(request, busy)

    @app.exception_handler(StorageUnavailable)
    async def _storage(request: Request, exc: StorageUnavailable) -> JSONResponse:
        # The object store failed past its bounded retries: passing, like a busy database.
        return await _service_error(request, ServiceUnavailable(f"The object store is unavailable: {exc}"))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return render(request, 400, ims_code="IMG.0001", title="Bad Request", message=_describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = str(exc.detail) if exc.detail else title_of(status)
        if status == 404 and exc.detail == "Not Found":
            message = f"The resource {request.url.path} could not be found."
        if status == 405:
            message = f"The method {request.method} is not allowed on {request.url.path}."
        response = render(request, status, ims_code="IMG.0001", title=title_of(status),
                          message=message)
        if exc.headers:
            response.headers.update(exc.headers)
        if status == 405:
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(request, 500, ims_code="IMG.0061", title="Internal Server Error",
                      message="An unexpected error occurred; it has been logged.")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path: Starlette names only the first route's."""
    methods: set[str] = set()
    for route in request.app.state.api_routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)

"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from openims import __version__
from openims.api import (
    access_key_routes,
    audit_routes,
    console_routes,
    errors,
    glance_import_routes,
    glance_routes,
    iam_admin_routes,
    iam_routes,
    ims_lifecycle_routes,
    ims_routes,
    job_routes,
    legacy_routes,
    metadef_routes,
    obs_routes,
    observability_routes,
    openapi_docs,
    sharing_routes,
    tag_routes,
    token_routes,
    version_routes,
)
from openims.api.auditing import Auditor
from openims.api.auth import SignedPayloadMiddleware
from openims.api.middleware import BodyLimitMiddleware, ObservedMiddleware, PrefixMiddleware, RequestIdMiddleware
from openims.runtime import Runtime


def create_app(rt: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = rt.settings.api_threads
        yield

    # No redirect for a trailing slash: Glance answers 404 there (GET /v2/images/); the version
    # documents that clients ask for with a slash have their own routes.
    app = FastAPI(title="openims", version=__version__, docs_url="/docs", redoc_url=None, redirect_slashes=False,
                  openapi_url="/openapi.json", lifespan=lifespan)
    app.state.runtime = rt
    errors.install(app)
    openapi_docs.install(app)  # what the central layers answer, on every operation
    # Starlette matches routes in order, one by one: the hot read paths go first (a request to a
    # route near the end pays for every route before it).
    modules = (glance_routes, ims_routes, version_routes, token_routes, ims_lifecycle_routes, tag_routes,
               sharing_routes, job_routes, glance_import_routes, metadef_routes, obs_routes, iam_routes,
               iam_admin_routes, access_key_routes, legacy_routes, observability_routes, audit_routes)
    for module in modules:
        app.include_router(module.router)
    # For the Allow header of a 405 (api.errors), which Starlette fills from one route only.
    app.state.api_routes = [route for module in modules for route in module.router.routes]
    console_routes.install(app)  # the web console's static files, at /console/
    # Outermost first: ids on every response (errors included), then prefixes, then the access log and
    # metrics (inside the prefixes: they read the matched route off the routed scope), then size limit.
    # Innermost: checks streamed bodies against the hash their signature declared (api.auth).
    app.add_middleware(SignedPayloadMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=rt.settings.max_request_body)
    app.add_middleware(ObservedMiddleware, auditor=Auditor(rt), access_log=rt.settings.access_log)
    app.add_middleware(PrefixMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app

"""The ASGI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from openims import __version__
from openims.api import (
    errors,
    iam_admin_routes,
    iam_routes,
    ims_routes,
    obs_routes,
    token_routes,
    version_routes,
)
from openims.api.middleware import BodyLimitMiddleware, PrefixMiddleware, RequestIdMiddleware
from openims.runtime import Runtime


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="openims", version=__version__, docs_url="/docs", redoc_url=None,
                  openapi_url="/openapi.json")
    app.state.runtime = rt
    errors.install(app)
    for router in (version_routes.router, token_routes.router, iam_routes.router, ims_routes.router,
                   obs_routes.router):
        app.include_router(router)
    app.include_router(iam_admin_routes.router)
    # Outermost first: ids on every response (errors included), then prefixes, then size limit.
    app.add_middleware(BodyLimitMiddleware, limit=rt.settings.max_request_body)
    app.add_middleware(PrefixMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app

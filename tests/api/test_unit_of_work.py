"""api.deps: a request's write transaction begins and ends in its endpoint's thread (issue 15)."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from openims.api import errors
from openims.api.deps import SessionDep, api_router
from openims.db.session import after_commit
from openims.runtime import Runtime


def early(session: SessionDep) -> None:
    session.execute(text("select 1"))  # begins the write transaction in the dependency's thread


def _app(runtime: Runtime) -> tuple[FastAPI, dict[str, Any]]:
    seen: dict[str, Any] = {}
    router = api_router()

    @router.post("/write")
    def write(session: SessionDep) -> dict[str, str]:
        seen["endpoint"] = threading.get_ident()
        session.execute(text("select 1"))
        pool: Any = runtime.db.engine.pool
        seen["lane_held"] = runtime.db.is_sqlite and pool.holder == threading.get_ident()
        after_commit(session, lambda: seen.setdefault("committed", threading.get_ident()))
        return {"ok": "yes"}

    @router.post("/fails")
    def fails(session: SessionDep) -> None:
        session.execute(text("select 1"))
        raise RuntimeError("boom")

    @router.post("/early")
    def early_write(_: Annotated[None, Depends(early)], session: SessionDep) -> None:
        session.execute(text("select 1"))

    app = FastAPI()
    app.state.runtime = runtime
    errors.install(app)
    app.include_router(router)
    return app, seen


def test_the_commit_runs_in_the_endpoints_thread_and_frees_the_lane(runtime: Runtime) -> None:
    app, seen = _app(runtime)
    with TestClient(app) as client:
        assert client.post("/write").status_code == 200
    assert seen["committed"] == seen["endpoint"]
    if runtime.db.is_sqlite:
        assert seen["lane_held"] is True
        assert runtime.db.engine.pool.holder is None  # type: ignore[attr-defined]
        with runtime.db.transaction() as s:  # free at once
            s.execute(text("select 1"))


def test_a_failing_endpoint_rolls_back_and_frees_the_lane(runtime: Runtime) -> None:
    app, _ = _app(runtime)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/fails").status_code == 500
        assert client.post("/write").status_code == 200


def test_a_dependency_that_begins_the_write_transaction_is_refused(runtime: Runtime) -> None:
    app, _ = _app(runtime)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/early").status_code == 500
        assert client.post("/write").status_code == 200  # and it left nothing held


def test_an_async_endpoint_with_a_write_session_is_refused_when_the_app_is_built() -> None:
    router = api_router()
    with pytest.raises(TypeError, match="event loop"):
        @router.post("/async-write")
        async def async_write(session: SessionDep) -> None:
            pass

    @router.get("/async-read")  # reading on the loop is fine
    async def async_read(session: SessionDep) -> None:
        pass


def test_every_route_of_the_app_ends_its_transaction_in_its_thread(runtime: Runtime) -> None:
    from fastapi.routing import APIRoute

    from openims.api.app import create_app
    from openims.api.deps import UnitOfWorkRoute

    def walk(routes: list[Any]) -> list[APIRoute]:
        found: list[APIRoute] = []
        for r in routes:
            if isinstance(r, APIRoute):
                found.append(r)
            elif hasattr(r, "original_router"):  # FastAPI keeps included routers as one node
                found += walk(r.original_router.routes)
        return found

    routes = walk(create_app(runtime).routes)
    assert len(routes) > 100
    assert [r.path for r in routes if not isinstance(r, UnitOfWorkRoute)] == []
    writes = [r for r in routes if r.methods - {"GET", "HEAD"} and hasattr(r.endpoint, "__wrapped__")]
    assert len(writes) > 40  # the sync write endpoints, wrapped to commit where they ran

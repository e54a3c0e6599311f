"""The request's unit of work: one session per request, and where its transaction begins and ends.

A write transaction never waits for a thread (docs/architecture.md, "Transactions and the write
lane"). A sync endpoint runs in a pool thread; ``UnitOfWorkRoute`` commits (or rolls back) its
session and closes it in that same thread, before the thread is given back. So the transaction —
on SQLite the write lane, on PostgreSQL a pooled connection — is taken at the endpoint's first
statement and released before anything else is awaited. (Committing afterwards, in a second trip
to the pool, made a writer that held the lock wait for a thread while the threads waited for the
lock: issue 15.) Dependencies therefore must not touch the write session: a dependency that needs
the database reads through a session of its own.

Async endpoints only read (run on the event loop or handed to the pool by ``run_read``); a route
that would give one a write session is refused when the app is built.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar, get_args, get_origin

from fastapi import APIRouter, Depends, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from openims.db.session import Database
from openims.runtime import Runtime

_SAFE = frozenset({"GET", "HEAD"})
T = TypeVar("T")


async def db_session(request: Request) -> AsyncIterator[Session]:
    """The request's session: read-only for safe methods (never takes SQLite's write lane).

    Async on purpose: a sync generator dependency costs two thread-pool hops per request. Creating
    the session does no I/O (it connects on first use). A sync endpoint ends the transaction in its
    own thread; what is left here is an async endpoint's read, ended on the loop (no lock to wait for).
    """
    rt: Runtime = request.app.state.runtime  # not a sub-dependency: each node costs per request
    readonly = request.method in _SAFE
    session = rt.db.new_session(readonly=readonly)
    session.info["request_write"] = not readonly
    try:
        yield session
        if session.in_transaction():
            rt.db.finish(session)
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(db_session, scope="function")]


def _is_session(hint: Any) -> bool:
    return get_origin(hint) is Annotated and any(
        isinstance(m, DependsParam) and m.dependency is db_session for m in get_args(hint)[1:])


def _session_parameter(endpoint: Callable[..., Any]) -> str | None:
    """The endpoint's ``SessionDep`` parameter, if it has one."""
    found = inspect.getmodule(endpoint)
    module = vars(found) if found is not None else {}
    for name, param in inspect.signature(endpoint).parameters.items():
        hint = param.annotation
        if isinstance(hint, str):
            # A postponed annotation: the session is always declared by a module-level name.
            hint = module.get(hint) if hint.isidentifier() else None
        if _is_session(hint):
            return name
    return None


def _unit_of_work(endpoint: Callable[..., Any], session_name: str) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        session: Session = kwargs[session_name]
        if session.info.get("request_write") and session.in_transaction():
            # It would hold the write lane across the hop from the dependency to this thread.
            raise RuntimeError(f"{endpoint.__qualname__}: a dependency began the request's write transaction; "
                               "dependencies read through a session of their own")
        try:
            result = endpoint(*args, **kwargs)
            Database.finish(session)
            return result
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    return run


class UnitOfWorkRoute(APIRoute):
    """A route whose sync endpoint commits its request session in the thread it ran in."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        name = _session_parameter(endpoint)
        if name is not None:
            methods = {m.upper() for m in kwargs.get("methods") or ()}
            if not inspect.iscoroutinefunction(endpoint):
                endpoint = _unit_of_work(endpoint, name)
            elif methods - _SAFE:
                raise TypeError(f"{endpoint.__qualname__}: an async endpoint would run its write transaction on "
                                "the event loop; make it sync, or use a transaction of its own in a thread")
        super().__init__(path, endpoint, **kwargs)


def api_router(**kwargs: Any) -> APIRouter:
    """Every router of the API: their routes end their transactions as ``UnitOfWorkRoute`` does."""
    return APIRouter(route_class=UnitOfWorkRoute, **kwargs)


async def run_read(request: Request, session: Session, fn: Callable[..., T], *args: Any) -> T:
    """Run a read-only handler body, then end ``session``'s transaction where it ran.

    Inline on SQLite: its reads are in-process and hold the GIL, so a thread gives them no
    parallelism, only a hop and GIL hand-offs that cost more than the read (the hot routes serve
    twice the requests inline). In the pool on PostgreSQL, which releases the GIL while it waits;
    the pooled connection is given back in that thread too, never held across the hop back.
    """
    rt: Runtime = request.app.state.runtime

    def read() -> T:
        try:
            result = fn(*args)
            Database.finish(session)
            return result
        finally:
            session.close()

    if rt.db.is_sqlite:
        return read()
    return await run_in_threadpool(read)

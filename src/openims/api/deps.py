"""Shared request dependencies: the per-request database transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from openims.runtime import Runtime

_SAFE = ("GET", "HEAD")
T = TypeVar("T")


async def db_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request, committed before the response is sent (scope="function").

    Async on purpose: a sync generator dependency costs two thread-pool hops per request. Creating
    the session does no I/O (it connects on first use, inside the handler's thread); ending a
    read-only transaction is cheap enough for the event loop, a write's commit goes to a thread.
    Safe methods also read without taking SQLite's write lock.
    """
    rt: Runtime = request.app.state.runtime  # not a sub-dependency: each node costs per request
    readonly = request.method in _SAFE
    session = rt.db.new_session(readonly=readonly)
    try:
        yield session
    except BaseException:
        await run_in_threadpool(session.rollback) if not readonly else session.rollback()
        session.close()
        raise
    try:
        if readonly:
            rt.db.finish(session)
        else:
            await run_in_threadpool(rt.db.finish, session)
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(db_session, scope="function")]


async def run_read(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run a read-only handler body: inline on SQLite, in the handler thread pool otherwise.

    SQLite reads are in-process and hold the GIL: a thread gives them no parallelism, only a hop
    and GIL hand-offs that cost more than the read (the hot routes serve twice the requests
    inline). A network database releases the GIL while it waits, so there the pool pays off.
    """
    rt: Runtime = request.app.state.runtime
    if rt.db.is_sqlite:
        return fn(*args)
    return await run_in_threadpool(fn, *args)

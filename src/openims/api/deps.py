"""Shared request dependencies: the per-request database transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from openims.api.auth import RuntimeDep


def db_session(request: Request, rt: RuntimeDep) -> Iterator[Session]:
    # One transaction per request, committed before the response is sent (scope="function").
    # Safe methods read without taking SQLite's write lock.
    with rt.db.transaction(readonly=request.method in ("GET", "HEAD")) as session:
        yield session


SessionDep = Annotated[Session, Depends(db_session, scope="function")]

"""Processes started at once on an empty database: migrations and the first-start bootstrap take turns,
every process comes up, and the admin account (and the shipped metadata definitions) exist once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from openims.catalog.metadefs import seed
from openims.db.models import Domain, MetadefNamespace, Role, User
from tests.conftest import DB_KINDS, PG_ADMIN_URL
from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-startup")]

AT_ONCE = 3


@pytest.fixture(params=DB_KINDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    name = f"openims_start_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_servers_started_together_on_an_empty_database(empty_database: str, tmp_path: Path) -> None:
    servers = [ServerProcess(tmp_path / f"node{i}" / "data", database_url=empty_database) for i in range(AT_ONCE)]
    failures: list[BaseException] = []

    def start(server: ServerProcess) -> None:
        try:
            server.start(timeout=60)
        except BaseException as exc:  # reported below, with the server's log
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        assert failures == [], failures
        for server in servers:
            Api(server.url)  # every node logs the admin in
        engine = create_engine(empty_database)
        with engine.connect() as c:
            assert c.scalar(select(func.count()).select_from(Domain).where(Domain.name == "admin")) == 1
            assert c.scalar(select(func.count()).select_from(User).where(User.name == "admin")) == 1
            roles = list(c.scalars(select(Role.name)))
            assert len(roles) == len(set(roles))
            # The shipped metadata definitions, loaded once.
            assert c.scalar(select(func.count()).select_from(MetadefNamespace)) == len(seed.shipped()[1])
        engine.dispose()
    finally:
        for server in servers:
            server.stop()

"""End-to-end fixtures: one real server process per module, on SQLite (and PostgreSQL when reachable)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Api, ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("e2e") / "data"
    with ServerProcess(data, env={"OPENIMS_JOB_LEASE_SECONDS": "5"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Api:
    return Api(server.url)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")

"""End-to-end fixtures: one real server process per module, on SQLite (and PostgreSQL when reachable).

A module that sets ``STORES = ("file", "s3")`` runs against both storage set-ups (directories, and a
real SeaweedFS engine for users' buckets and the image store); others use the file store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Api, ServerProcess
from tests.support.stores import Stores, make_stores


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_kind" in metafunc.fixturenames:
        metafunc.parametrize("store_kind", getattr(metafunc.module, "STORES", ("file",)), scope="module")


@pytest.fixture(scope="module")
def stores(store_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    s = make_stores(store_kind, tmp_path_factory.mktemp(f"stores-{store_kind}"))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def server(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("e2e") / "data"
    with ServerProcess(data, env={"OPENIMS_JOB_LEASE_SECONDS": "5", **stores.env()}) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Api:
    return Api(server.url)


@pytest.fixture(scope="module")
def files(store_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp(f"files-{store_kind}")

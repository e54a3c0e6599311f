"""Shared fixtures: a Runtime on SQLite and (when reachable) PostgreSQL, an HTTP client, logins."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from openims.api.app import create_app
from openims.clock import ManualClock
from openims.config import Settings
from openims.db import migrate
from openims.db.models import Base
from openims.runtime import Runtime, bootstrap_runtime, build_runtime
from tests.support.tenants import USER_PASSWORD, add_user

PG_ADMIN_URL = os.environ.get("OPENIMS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ADMIN_PASSWORD = "Admin-Pass-1234"


def _pg_reachable() -> bool:
    if os.environ.get("OPENIMS_TEST_NO_PG"):
        return False
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as c:
            c.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


PG = _pg_reachable()
DB_KINDS = ["sqlite", "postgresql"] if PG else ["sqlite"]


def _databases_line() -> str:
    if PG:
        return "openims databases under test: sqlite, postgresql (127.0.0.1:5432)"
    return "openims databases under test: sqlite only (PostgreSQL not reachable)"


def pytest_report_header(config: pytest.Config) -> str:
    return _databases_line()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    # Also at the end, where `pytest -q` output shows it.
    terminalreporter.write_line(_databases_line())


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """One throw-away PostgreSQL database per test session (and per xdist worker), migrated once."""
    if not PG:
        yield None
        return
    name = f"openims_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate.upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate(url: str) -> None:
    # DELETE, not TRUNCATE: on a handful of rows it is ~40 times faster (TRUNCATE swaps every table's files),
    # and this runs before every PostgreSQL test. Children first, so no foreign key is ever violated.
    # A test that left a transaction open would make it wait forever: fail it instead.
    engine = create_engine(url, connect_args={"options": "-c lock_timeout=20000"})
    with engine.begin() as c:
        for table in reversed(Base.metadata.sorted_tables):
            c.execute(table.delete())
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SQLite databases made once per session (and xdist worker) and copied for each test's runtime:
    ``migrated`` (the schema only, as the PostgreSQL database is) and ``bootstrapped`` (also the first
    start's rows — admin account, roles, shipped metadefs — for the default settings). Migrations and the
    first start themselves are tested in tests/unit/db and by every server process the e2e tests start."""
    root = tmp_path_factory.mktemp("sqlite-templates")
    migrated, bootstrapped = root / "migrated.db", root / "bootstrapped.db"
    migrate.upgrade(f"sqlite:///{migrated}")
    _copy_sqlite(migrated, bootstrapped)
    rt = build_runtime(make_settings(root / "data", f"sqlite:///{bootstrapped}"), ManualClock(), upgrade=False)
    bootstrap_runtime(rt)
    rt.close()
    return {"migrated": migrated, "bootstrapped": bootstrapped}


def _copy_sqlite(template: Path, target: Path) -> None:
    # SQLite's backup API copies the pages whatever journal mode the template was left in.
    source, dest = sqlite3.connect(template), sqlite3.connect(target)
    try:
        source.backup(dest)
    finally:
        source.close()
        dest.close()


# What the first start's rows depend on: a runtime with other values starts from the migrated template.
_BOOTSTRAP_SETTINGS = ("region", "admin_password", "argon2_time_cost", "argon2_memory_kib")


def make_settings(data_dir: Path, database_url: str = "", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "admin_password": ADMIN_PASSWORD,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "workers": 0,
        "port": 8080,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(params=DB_KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'openims.db'}"
    url: str = request.getfixturevalue("pg_database")
    _truncate(url)
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its runtime."""
    return {}


@pytest.fixture
def runtime(request: pytest.FixtureRequest, tmp_path: Path, db_url: str, clock: ManualClock,
            settings_overrides: dict[str, Any]) -> Iterator[Runtime]:
    settings = make_settings(tmp_path / "data", db_url, **settings_overrides)
    if db_url.startswith("sqlite"):
        templates: dict[str, Path] = request.getfixturevalue("sqlite_templates")
        default = make_settings(settings.data_dir)
        same = all(getattr(settings, k) == getattr(default, k) for k in _BOOTSTRAP_SETTINGS)
        _copy_sqlite(templates["bootstrapped" if same else "migrated"], Path(db_url.removeprefix("sqlite:///")))
    rt = build_runtime(settings, clock, upgrade=False)
    bootstrap_runtime(rt)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as c:
        yield c


def password_auth(user: str, password: str, *, domain: str = "admin", project: str | None = "local-1",
                  scope_domain: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "password": password, "domain": {"name": domain}}}}}}
    if project is not None:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"name": domain}}}
    elif scope_domain is not None:
        body["auth"]["scope"] = {"domain": {"name": scope_domain}}
    return body


def login(client: TestClient, user: str = "admin", password: str = ADMIN_PASSWORD, **kw: Any) -> str:
    r = client.post("/v3/auth/tokens", json=password_auth(user, password, **kw))
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


@pytest.fixture
def admin_token(client: TestClient) -> str:
    return login(client)


@pytest.fixture
def admin_headers(admin_token: str) -> dict[str, str]:
    return {"X-Auth-Token": admin_token}


def new_tenant(client: TestClient, runtime: Runtime, name: str, *, role: str = "te_admin", domain: str | None = None,
               project: str = "local-1") -> dict[str, str]:
    """Headers of a user of another account (created here, with ``role`` on ``project``): the second
    tenant of isolation and sharing tests."""
    domain = domain or f"{name}-account"
    add_user(runtime.db, name=name, role=role, domain_name=domain, project_name=project)
    return {"X-Auth-Token": login(client, name, USER_PASSWORD, domain=domain, project=project)}

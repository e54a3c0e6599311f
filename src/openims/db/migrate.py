"""Run Alembic migrations programmatically (``openims db upgrade`` and embedded start-up)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from openims.durable import exclusive_lock

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("openims.db")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # '%' must be escaped for ConfigParser interpolation.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to ``revision``; processes doing it at once take turns (the later ones find nothing to do).

    PostgreSQL: an advisory lock, taken in the migration environment. SQLite (one host): a file lock
    beside the database, since SQLite's DDL is not transactional for alembic.

    A schema already migrated by a later release is left as it is: migrations are additive within a
    release, so during a rolling upgrade the previous version keeps running (and restarting) beside it.
    """
    with _sqlite_lock(url):
        cfg = alembic_config(url)
        at = current(url)
        if revision == "head" and at is not None and not _known(cfg, at):
            log.warning("the database schema is at revision %s, newer than this version knows (%s): "
                        "running on it unchanged (a rolling upgrade)", at, _head(cfg))
            return
        command.upgrade(cfg, revision)


def _known(cfg: Config, revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(cfg).get_revision(revision) is not None
    except CommandError:
        return False


def _head(cfg: Config) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(cfg).get_current_head()


@functools.cache
def code_revisions() -> tuple[str | None, frozenset[str]]:
    """The newest revision this code knows and every revision it has a script for (read once per process)."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return scripts.get_current_head(), frozenset(r.revision for r in scripts.walk_revisions())


def schema_revision(conn: Connection) -> str | None:
    """The database's schema revision (alembic's version table; None when it has none)."""
    value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


@contextmanager
def _sqlite_lock(url: str) -> Iterator[None]:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        yield
        return
    lock = Path(parsed.database + ".migrate-lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(lock):
        yield


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()

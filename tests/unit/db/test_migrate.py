"""Schema migrations: idempotent, and a schema a later release migrated is run on, not refused."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import create_engine, text

from openims.db import migrate


def _set_revision(url: str, revision: str) -> None:
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def test_a_schema_from_a_later_release_is_left_as_it_is(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    migrate.upgrade(db_url)
    head = migrate.current(db_url)
    migrate.upgrade(db_url)  # again: nothing to do
    assert migrate.current(db_url) == head
    # A rolling upgrade: the next release migrated to its revision; this version restarts beside it.
    _set_revision(db_url, "9999_next_release")
    with caplog.at_level(logging.WARNING, logger="openims.db"):
        migrate.upgrade(db_url)
    assert migrate.current(db_url) == "9999_next_release"
    assert "newer than this version knows" in caplog.text
    _set_revision(db_url, head or "")

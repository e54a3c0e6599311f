"""Alembic environment: the URL comes from the Config object built by openims.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from openims.db.models import Base

config = context.config
target_metadata = Base.metadata
# pg_advisory_lock key of schema migrations (any constant all openims processes agree on).
MIGRATION_LOCK = 0x6F70656E696D73  # "openims"


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Processes starting at once on an empty database take turns: the first migrates, the
            # others then find the schema at head. A session lock, so it spans alembic's transaction.
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
        # batch mode: SQLite cannot ALTER most things in place.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        # Closing the connection releases the advisory lock.
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

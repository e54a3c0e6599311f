"""Persistence: ORM models, engine/session factory, Alembic migrations."""

"""Bucket ownership: a bucket belongs to one account; to others it reads as missing, but its name is taken."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from openims.db.models import Bucket, Domain
from openims.db.session import Database
from openims.errors import ImsConflict, ImsNotFound
from openims.iam.service import ADMIN_NAME
from openims.objects.base import BucketStore, check_bucket_name


def owner_of(session: Session, store: BucketStore, bucket: str) -> str | None:
    """The owning account's id; a directory an operator made by hand belongs to ``admin``, an engine
    bucket nobody registered to nobody."""
    row = session.get(Bucket, bucket)
    if row is not None:
        return row.domain_id
    if store.adopts_unregistered and store.bucket_exists(bucket):
        return session.scalar(select(Domain.id).where(Domain.name == ADMIN_NAME))
    return None


def require_own(session: Session, store: BucketStore, domain_id: str, bucket: str) -> None:
    if owner_of(session, store, bucket) != domain_id or not store.bucket_exists(bucket):
        raise ImsNotFound(f"Bucket {bucket} does not exist.", code="IMG.0069")


def create(db: Database, store: BucketStore, domain_id: str, bucket: str, now: dt.datetime) -> bool:
    """Create a bucket for the account; True if new, False if it already was the account's.

    The engine is asked outside any transaction (a slow or unreachable engine must not hold the
    database's write lane), and the name is registered after, in a short write transaction of its own.
    """
    check_bucket_name(bucket)
    with db.transaction(readonly=True) as session:
        owner = owner_of(session, store, bucket)
    if owner is not None and owner != domain_id:
        raise ImsConflict(f"The bucket name {bucket} is taken.", code="IMG.0038")
    created = not store.bucket_exists(bucket)
    if owner is None and not created:
        # On the engine but nobody's: claiming it would hand its data to whoever asked first.
        raise ImsConflict(f"The bucket name {bucket} is taken (it exists on the object store but belongs to "
                          "no account; an operator may adopt it).", code="IMG.0038")
    store.create_bucket(bucket)
    with db.transaction() as session:
        row = session.get(Bucket, bucket)
        if row is None:
            session.add(Bucket(name=bucket, domain_id=domain_id, created_at=now))
        elif row.domain_id != domain_id:
            # Another account registered the name meanwhile; the bucket on the engine is now its.
            raise ImsConflict(f"The bucket name {bucket} is taken.", code="IMG.0038")
    return created


def list_for(session: Session, store: BucketStore, domain_id: str) -> list[str]:
    return [b for b in store.list_buckets() if owner_of(session, store, b) == domain_id]


def adopt(session: Session, store: BucketStore, bucket: str, domain_id: str, now: dt.datetime) -> None:
    """Register an existing store bucket as the account's (operators only: ``openims obs adopt``)."""
    check_bucket_name(bucket)
    if not store.bucket_exists(bucket):
        raise ImsNotFound(f"Bucket {bucket} does not exist on the object store.", code="IMG.0069")
    row = session.get(Bucket, bucket)
    if row is not None and row.domain_id != domain_id:
        raise ImsConflict(f"Bucket {bucket} already belongs to another account.", code="IMG.0038")
    if row is None:
        session.add(Bucket(name=bucket, domain_id=domain_id, created_at=now))

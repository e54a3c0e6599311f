"""``openims store`` and ``openims obs adopt``: storage administration on this machine (operators).

These run beside the server with its settings and direct access to the database and the stores, as
``openims keys`` does; they are not HTTP commands, so only whoever runs the service can use them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from openims.cli.common import out as console
from openims.cli.server import DataOpt, DbOpt, local_runtime

app = typer.Typer(help="Storage administration on this machine: move data, sweep leftovers.", no_args_is_help=True)


@app.command("migrate")
def store_migrate(to: Annotated[str, typer.Option("--to", help="the target store: s3 (OPENIMS_IMAGE_STORE)")],
                  data_dir: DataOpt = None, database_url: DbOpt = None) -> None:
    """Copy every stored image from files into the S3 image store and update its location (resumable)."""
    from openims.worker.store_migration import migrate_to_s3

    if to != "s3":
        raise typer.BadParameter("only --to s3 is supported", param_hint="--to")
    with local_runtime(data_dir, database_url) as rt:
        report = migrate_to_s3(rt, on_image=lambda image_id, outcome: console.print(f"{image_id}: {outcome}"))
    console.print(f"moved {report.moved}, changed meanwhile {report.changed}, missing files {report.missing}")
    if report.missing:
        raise typer.Exit(1)


@app.command("sweep")
def store_sweep(data_dir: DataOpt = None, database_url: DbOpt = None) -> None:
    """Remove stored data no image points to (older than OPENIMS_ORPHAN_GRACE_SECONDS) now."""
    from openims.worker.runner import Worker

    with local_runtime(data_dir, database_url) as rt:
        removed = Worker(rt).sweep_orphans()
    console.print(f"removed {removed} orphaned object(s)")


def obs_adopt(bucket: Annotated[str, typer.Argument(help="a bucket that exists on the S3 engine")],
              account: Annotated[str, typer.Option("--account", help="the account (domain) name to own it")],
              data_dir: DataOpt = None, database_url: DbOpt = None) -> None:
    """(Operators, on the server) Register an existing engine bucket as an account's."""
    from sqlalchemy import select

    from openims.catalog import buckets
    from openims.db.models import Domain

    with local_runtime(data_dir, database_url) as rt, rt.db.transaction() as s:
        domain_id = s.scalar(select(Domain.id).where(Domain.name == account))
        if domain_id is None:
            raise typer.BadParameter(f"no account named {account!r}", param_hint="--account")
        buckets.adopt(s, rt.buckets, bucket, domain_id, rt.clock())
    console.print(f"bucket {bucket} now belongs to account {account}")

"""``openims obs``: buckets holding image files (put, ls, mb), over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from openims.cli.common import (
    JsonOpt,
    err,
    ims_client,
    out,
    print_json,
    split_url,
)

app = typer.Typer(help="Buckets holding image files.", no_args_is_help=True)


@app.command("put")
def obs_put(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
            target: Annotated[str, typer.Argument(help="BUCKET:KEY")]) -> None:
    """Upload FILE to BUCKET:KEY (streamed, with a progress bar)."""
    bucket, key = split_url(target)
    size = file.stat().st_size
    with ims_client() as ims, Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                    TransferSpeedColumn(), TimeRemainingColumn(), console=err) as bar:
        task = bar.add_task(f"upload {file.name}", total=size)
        info = ims.put_object(file, bucket, key, progress=lambda n: bar.advance(task, n))
    out.print(f"{info['bucket']}:{info['key']}  {info['size']} bytes")


@app.command("ls")
def obs_ls(bucket: Annotated[str | None, typer.Argument()] = None,
           prefix: Annotated[str, typer.Option(help="only keys starting with this")] = "",
           as_json: JsonOpt = False) -> None:
    """List the account's buckets, or the objects in BUCKET."""
    with ims_client() as ims:
        if bucket is None:
            names = ims.list_buckets()
            if as_json:
                print_json(names)
            else:
                for n in names:
                    out.print(n)
            return
        objects = ims.list_objects(bucket, prefix)
    if as_json:
        print_json(objects)
        return
    table = Table("key", "size", "last modified")
    for o in objects:
        table.add_row(o["key"], str(o["size"]), o["last_modified"])
    out.print(table)


@app.command("mb")
def obs_mb(bucket: str) -> None:
    """Make a bucket for your account."""
    with ims_client() as ims:
        ims.make_bucket(bucket)
    out.print(f"bucket {bucket} ready")

"""``openims obs|image|job``: the seed scenario from a shell, over HTTP."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from openims.client.ims import DataDisk, ImsClient, JobFailed
from openims.client.session import ApiError, Credentials, Session

obs_app = typer.Typer(help="Buckets holding image files.", no_args_is_help=True)
image_app = typer.Typer(help="Images: import from a bucket, list, show, delete.", no_args_is_help=True)
job_app = typer.Typer(help="Asynchronous jobs.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@contextmanager
def _client() -> Iterator[ImsClient]:
    try:
        with Session(Credentials.from_env()) as session:
            yield ImsClient(session)
    except ApiError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except JobFailed as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _split_url(url: str) -> tuple[str, str]:
    bucket, sep, key = url.partition(":")
    if not sep or not bucket or not key:
        err.print(f"[red]error:[/red] {url!r} is not BUCKET:KEY")
        raise typer.Exit(2)
    return bucket, key


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------- obs


@obs_app.command("put")
def obs_put(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
            target: Annotated[str, typer.Argument(help="BUCKET:KEY")]) -> None:
    """Upload FILE to BUCKET:KEY (streamed, with a progress bar)."""
    bucket, key = _split_url(target)
    size = file.stat().st_size
    with _client() as ims, Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                    TransferSpeedColumn(), TimeRemainingColumn(), console=err) as bar:
        task = bar.add_task(f"upload {file.name}", total=size)
        info = ims.put_object(file, bucket, key, progress=lambda n: bar.advance(task, n))
    console.print(f"{info['bucket']}:{info['key']}  {info['size']} bytes")


@obs_app.command("ls")
def obs_ls(bucket: Annotated[str | None, typer.Argument()] = None,
           prefix: Annotated[str, typer.Option(help="only keys starting with this")] = "",
           as_json: JsonOpt = False) -> None:
    """List the account's buckets, or the objects in BUCKET."""
    with _client() as ims:
        if bucket is None:
            names = ims.list_buckets()
            if as_json:
                _print_json(names)
            else:
                for n in names:
                    console.print(n)
            return
        objects = ims.list_objects(bucket, prefix)
    if as_json:
        _print_json(objects)
        return
    table = Table("key", "size", "last modified")
    for o in objects:
        table.add_row(o["key"], str(o["size"]), o["last_modified"])
    console.print(table)


@obs_app.command("mb")
def obs_mb(bucket: str) -> None:
    """Make a bucket for your account."""
    with _client() as ims:
        ims.make_bucket(bucket)
    console.print(f"bucket {bucket} ready")


# ---------------------------------------------------------------- image / job


def _follow(ims: ImsClient, job_id: str) -> dict[str, Any]:
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  console=err) as bar:
        task = bar.add_task(f"job {job_id[:8]}", total=100)

        def show(job: dict[str, Any]) -> None:
            bar.update(task, completed=float(job.get("entities", {}).get("process_percent") or 0),
                       description=f"job {job_id[:8]} {job['status']}")

        return ims.wait_job(job_id, progress=show)


@image_app.command("import")
def image_import(
    image_url: Annotated[str, typer.Option("--image-url", help="BUCKET:KEY of the image file")],
    name: Annotated[str, typer.Option("--name")],
    min_disk: Annotated[int, typer.Option("--min-disk", help="GB")],
    os_version: Annotated[str | None, typer.Option("--os-version")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    data_disk: Annotated[list[str] | None, typer.Option("--data-disk", help="BUCKET:KEY:SIZE_GB, repeatable")] = None,
    data: Annotated[bool, typer.Option("--data", help="create a data disk image instead")] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="key.value, repeatable")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="quick import (raw files, no conversion)")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job and print the image")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a private image from a file in a bucket."""
    try:
        disks = [DataDisk.parse(d) for d in data_disk or []]
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    extra: dict[str, Any] = {}
    if description:
        extra["description"] = description
    if tag:
        extra["tags"] = tag
    with _client() as ims:
        if data:
            job_id = ims.create_data_image(image_url=image_url, name=name, min_disk=min_disk, **extra)
        else:
            if quick:
                extra["is_quick_import"] = True
            job_id = ims.create_image(image_url=image_url, name=name, min_disk=min_disk, os_version=os_version,
                                      data_disks=disks, **extra)
        if not wait:
            _print_json({"job_id": job_id}) if as_json else console.print(f"job {job_id} submitted")
            return
        job = _follow(ims, job_id)
        image = ims.show_image(job["entities"]["image_id"])
    _print_json(image) if as_json else _image_table([image])


def _image_table(images: list[dict[str, Any]]) -> None:
    table = Table("id", "name", "status", "disk_format", "size", "min_disk", "os_version", "created_at")
    for i in images:
        table.add_row(i["id"], i["name"], i["status"], str(i.get("disk_format") or ""), str(i.get("size") or ""),
                      str(i["min_disk"]), str(i.get("__os_version") or ""), i["created_at"])
    console.print(table)


@image_app.command("list")
def image_list(name: Annotated[str | None, typer.Option()] = None,
               status: Annotated[str | None, typer.Option()] = None,
               imagetype: Annotated[str | None, typer.Option("--imagetype", help="private, shared, gold")] = None,
               as_json: JsonOpt = False) -> None:
    """List images you can see."""
    with _client() as ims:
        images = ims.list_images(name=name, status=status, __imagetype=imagetype)
    _print_json(images) if as_json else _image_table(images)


@image_app.command("show")
def image_show(image_id: str) -> None:
    """Show one image (JSON)."""
    with _client() as ims:
        _print_json(ims.show_image(image_id))


@image_app.command("delete")
def image_delete(image_id: str) -> None:
    """Delete one of your images and its data."""
    with _client() as ims:
        ims.delete_image(image_id)
    console.print(f"image {image_id} deleted")


@job_app.command("show")
def job_show(job_id: str, wait: Annotated[bool, typer.Option("--wait")] = False) -> None:
    """Show a job (JSON); with --wait follow it to the end."""
    with _client() as ims:
        _print_json(_follow(ims, job_id) if wait else ims.show_job(job_id))



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
image_app = typer.Typer(help="Images: import, list, show, update, export, copy, download, delete.",
                        no_args_is_help=True)
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
        # The whole id: it is what `openims job show` takes.
        task = bar.add_task(f"job {job_id}", total=100)

        def show(job: dict[str, Any]) -> None:
            bar.update(task, completed=float(job.get("entities", {}).get("process_percent") or 0),
                       description=f"job {job_id} {job['status']}")

        return ims.wait_job(job_id, progress=show)


@image_app.command("import")
def image_import(
    image_url: Annotated[str, typer.Option("--image-url", help="BUCKET:KEY of the image file")],
    name: Annotated[str, typer.Option("--name")],
    min_disk: Annotated[int, typer.Option("--min-disk", help="GB")],
    os_version: Annotated[str | None, typer.Option("--os-version")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    data_disk: Annotated[list[str] | None, typer.Option(
        "--data-disk", help="data disk as BUCKET:OBJECT-KEY:GB (min_disk), repeatable")] = None,
    data: Annotated[bool, typer.Option("--data", help="create a data disk image instead")] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="key.value, repeatable")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="quick import (raw files, no conversion)")] = False,
    wait: Annotated[bool, typer.Option(
        "--wait", help="follow the job and print its images (with --json: the image, or a list with data disks)")
    ] = False,
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
        images = [ims.show_image(image_id) for image_id in _job_image_ids(job)]
    if as_json:
        # One image stays one object, as before data disks came along; several are a list.
        _print_json(images[0] if len(images) == 1 else images)
    else:
        _image_table(images)


def _job_image_ids(job: dict[str, Any]) -> list[str]:
    """The image a finished import made, then those of its data disks (sub-jobs), in order."""
    ids = [job["entities"]["image_id"]]
    for sub in job["entities"].get("sub_jobs_result") or []:
        image_id = (sub.get("entities") or {}).get("image_id")
        if image_id and image_id not in ids:
            ids.append(image_id)
    return ids


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


def _parse_props(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            err.print(f"[red]error:[/red] {item!r} is not KEY=VALUE")
            raise typer.Exit(2)
        out[key] = value
    return out


@image_app.command("update")
def image_update(
    image_id: str,
    name: Annotated[str | None, typer.Option("--name")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    min_disk: Annotated[int | None, typer.Option("--min-disk", help="GB")] = None,
    min_ram: Annotated[int | None, typer.Option("--min-ram", help="MB")] = None,
    max_ram: Annotated[int | None, typer.Option("--max-ram", help="MB")] = None,
    os_version: Annotated[str | None, typer.Option("--os-version")] = None,
    firmware: Annotated[str | None, typer.Option("--firmware", help="bios or uefi")] = None,
    prop: Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE attribute, repeatable")] = None,
    unset: Annotated[list[str] | None, typer.Option("--unset", help="attribute to remove, repeatable")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an image's name, description, sizes, OS version or extension attributes."""
    changes: dict[str, Any] = _parse_props(prop)
    for key, value in (("name", name), ("__description", description), ("min_disk", min_disk),
                       ("min_ram", min_ram), ("max_ram", max_ram), ("__os_version", os_version),
                       ("hw_firmware_type", firmware)):
        if value is not None:
            changes[key] = value
    if not changes and not unset:
        err.print("[red]error:[/red] nothing to change: give at least one option")
        raise typer.Exit(2)
    with _client() as ims:
        image = ims.update_image(image_id, changes, unset)
    _print_json(image) if as_json else _image_table([image])


def _finish(ims: ImsClient, job_id: str, wait: bool, as_json: bool) -> dict[str, Any] | None:
    if not wait:
        _print_json({"job_id": job_id}) if as_json else console.print(f"job {job_id} submitted")
        return None
    return _follow(ims, job_id)


@image_app.command("export")
def image_export(
    image_id: str,
    to: Annotated[str, typer.Option("--to", help="BUCKET:KEY of the file to create")],
    file_format: Annotated[str, typer.Option("--format", help="qcow2, vmdk, vhd or raw")] = "qcow2",
    wait: Annotated[bool, typer.Option("--wait", help="follow the job to the end")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export an image into a file in one of your buckets."""
    _split_url(to)
    with _client() as ims:
        job = _finish(ims, ims.export_image(image_id, to, file_format), wait, as_json)
    if job is not None:
        _print_json(job) if as_json else console.print(f"exported image {image_id} to {to} ({file_format})")


@image_app.command("copy")
def image_copy(
    image_id: str,
    name: Annotated[str, typer.Option("--name")],
    description: Annotated[str | None, typer.Option("--description")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job and print the new image")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy an image (yours, or one shared with you and accepted) into a new private image."""
    with _client() as ims:
        job = _finish(ims, ims.copy_image(image_id, name, description), wait, as_json)
        if job is None:
            return
        image = ims.show_image(job["entities"]["image_id"])
    _print_json(image) if as_json else _image_table([image])


@image_app.command("register")
def image_register(
    image_id: str,
    image_url: Annotated[str, typer.Option("--image-url", help="BUCKET:KEY of the image file")],
    wait: Annotated[bool, typer.Option("--wait", help="follow the job and print the image")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fill a queued image (created with POST /v2/images) from a file in a bucket."""
    _split_url(image_url)
    with _client() as ims:
        job = _finish(ims, ims.register_image(image_id, image_url), wait, as_json)
        if job is None:
            return
        image = ims.show_image(image_id)
    _print_json(image) if as_json else _image_table([image])


def _transfer_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=err)


@image_app.command("download")
def image_download(
    image_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write", dir_okay=False)],
) -> None:
    """Download an image's stored data (streamed, with a progress bar; checked against its checksum)."""
    with _client() as ims, _transfer_bar() as bar:
        task = bar.add_task(f"download {image_id[:8]}", total=None)

        def show(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        size = ims.download_image(image_id, output, progress=show)
    console.print(f"{output}  {size} bytes")


@image_app.command("upload")
def image_upload(
    image_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Upload FILE as the data of a queued image (native PUT /v2/images/ID/file, streamed)."""
    with _client() as ims, _transfer_bar() as bar:
        task = bar.add_task(f"upload {file.name}", total=file.stat().st_size)
        ims.upload_image(image_id, file, progress=lambda n: bar.advance(task, n))
    console.print(f"uploaded {file.name} to image {image_id}")


# ---------------------------------------------------------------- quota

quota_app = typer.Typer(help="Private-image quotas.", no_args_is_help=True)


def _quota_line(quota: dict[str, Any], project: str | None) -> None:
    for r in quota["quotas"]["resources"]:
        who = f"project {project}: " if project else ""
        console.print(f"{who}{r['type']}: {r['used']} used of {r['quota']} (settable {r['min']}-{r['max']})")


@quota_app.command("show")
def quota_show(project: Annotated[str | None, typer.Option("--project", help="another project (administrators)")]
               = None, as_json: JsonOpt = False) -> None:
    """Show the image quota and its use."""
    with _client() as ims:
        quota = ims.show_quota(project)
    _print_json(quota) if as_json else _quota_line(quota, project)


@quota_app.command("set")
def quota_set(
    images: Annotated[int | None, typer.Option("--images", help="private images allowed")] = None,
    project: Annotated[str | None, typer.Option("--project", help="project id or name (default: yours)")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="back to the deployment default")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set a project's image quota (account administrators)."""
    if (images is None) == (not reset):
        err.print("[red]error:[/red] give either --images N or --reset")
        raise typer.Exit(2)
    with _client() as ims:
        quota = ims.set_quota(None if reset else images, project)
    _print_json(quota) if as_json else _quota_line(quota, project)


@job_app.command("show")
def job_show(job_id: str, wait: Annotated[bool, typer.Option("--wait")] = False, as_json: JsonOpt = False) -> None:
    """Show a job (always JSON; --json is accepted like elsewhere); with --wait follow it to the end."""
    with _client() as ims:
        _print_json(_follow(ims, job_id) if wait else ims.show_job(job_id))



"""``openims image``: import, list, show, update, export, copy, register, download, upload, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from openims.cli.common import (
    JsonOpt,
    err,
    finish_job,
    follow_job,
    ims_client,
    out,
    print_json,
    split_url,
)
from openims.client.ims import DataDisk

app = typer.Typer(help="Images: import, list, show, update, export, copy, download, delete.",
                        no_args_is_help=True)


@app.command("import")
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
    with ims_client() as ims:
        if data:
            job_id = ims.create_data_image(image_url=image_url, name=name, min_disk=min_disk, **extra)
        else:
            if quick:
                extra["is_quick_import"] = True
            job_id = ims.create_image(image_url=image_url, name=name, min_disk=min_disk, os_version=os_version,
                                      data_disks=disks, **extra)
        if not wait:
            print_json({"job_id": job_id}) if as_json else out.print(f"job {job_id} submitted")
            return
        job = follow_job(ims, job_id)
        images = [ims.show_image(image_id) for image_id in _job_image_ids(job)]
    if as_json:
        # One image stays one object, as before data disks came along; several are a list.
        print_json(images[0] if len(images) == 1 else images)
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
    out.print(table)


@app.command("list")
def image_list(name: Annotated[str | None, typer.Option()] = None,
               status: Annotated[str | None, typer.Option()] = None,
               imagetype: Annotated[str | None, typer.Option("--imagetype", help="private, shared, gold")] = None,
               as_json: JsonOpt = False) -> None:
    """List images you can see."""
    with ims_client() as ims:
        images = ims.list_images(name=name, status=status, __imagetype=imagetype)
    print_json(images) if as_json else _image_table(images)


@app.command("show")
def image_show(image_id: str) -> None:
    """Show one image (JSON)."""
    with ims_client() as ims:
        print_json(ims.show_image(image_id))


@app.command("delete")
def image_delete(image_id: str) -> None:
    """Delete one of your images and its data."""
    with ims_client() as ims:
        ims.delete_image(image_id)
    out.print(f"image {image_id} deleted")


def _parse_props(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            err.print(f"[red]error:[/red] {item!r} is not KEY=VALUE")
            raise typer.Exit(2)
        out[key] = value
    return out


@app.command("update")
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
    with ims_client() as ims:
        image = ims.update_image(image_id, changes, unset)
    print_json(image) if as_json else _image_table([image])


@app.command("export")
def image_export(
    image_id: str,
    to: Annotated[str, typer.Option("--to", help="BUCKET:KEY of the file to create")],
    file_format: Annotated[str, typer.Option("--format", help="qcow2, vmdk, vhd or raw")] = "qcow2",
    wait: Annotated[bool, typer.Option("--wait", help="follow the job to the end")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export an image into a file in one of your buckets."""
    split_url(to)
    with ims_client() as ims:
        job = finish_job(ims, ims.export_image(image_id, to, file_format), wait, as_json)
    if job is not None:
        print_json(job) if as_json else out.print(f"exported image {image_id} to {to} ({file_format})")


@app.command("copy")
def image_copy(
    image_id: str,
    name: Annotated[str, typer.Option("--name")],
    description: Annotated[str | None, typer.Option("--description")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job and print the new image")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy an image (yours, or one shared with you and accepted) into a new private image."""
    with ims_client() as ims:
        job = finish_job(ims, ims.copy_image(image_id, name, description), wait, as_json)
        if job is None:
            return
        image = ims.show_image(job["entities"]["image_id"])
    print_json(image) if as_json else _image_table([image])


@app.command("register")
def image_register(
    image_id: str,
    image_url: Annotated[str, typer.Option("--image-url", help="BUCKET:KEY of the image file")],
    wait: Annotated[bool, typer.Option("--wait", help="follow the job and print the image")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fill a queued image (created with POST /v2/images) from a file in a bucket."""
    split_url(image_url)
    with ims_client() as ims:
        job = finish_job(ims, ims.register_image(image_id, image_url), wait, as_json)
        if job is None:
            return
        image = ims.show_image(image_id)
    print_json(image) if as_json else _image_table([image])


def _transfer_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=err)


@app.command("download")
def image_download(
    image_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write", dir_okay=False)],
) -> None:
    """Download an image's stored data (streamed, with a progress bar; checked against its checksum)."""
    with ims_client() as ims, _transfer_bar() as bar:
        task = bar.add_task(f"download {image_id[:8]}", total=None)

        def show(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        size = ims.download_image(image_id, output, progress=show)
    out.print(f"{output}  {size} bytes")


@app.command("upload")
def image_upload(
    image_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Upload FILE as the data of a queued image (native PUT /v2/images/ID/file, streamed)."""
    with ims_client() as ims, _transfer_bar() as bar:
        task = bar.add_task(f"upload {file.name}", total=file.stat().st_size)
        ims.upload_image(image_id, file, progress=lambda n: bar.advance(task, n))
    out.print(f"uploaded {file.name} to image {image_id}")

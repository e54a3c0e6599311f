"""``openims image tag|share|unshare|accept|reject|members``: tags and sharing from a shell, over HTTP.

Registered onto ``cli_ims.image_app`` when ``openims.cli`` imports this module.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from openims.cli_ims import image_app
from openims.client import sharing
from openims.client.ims import JobFailed
from openims.client.session import ApiError, Credentials, Session

tag_app = typer.Typer(help="Image tags (key=value).", no_args_is_help=True)
image_app.add_typer(tag_app, name="tag")
console = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
ImagesArg = Annotated[list[str], typer.Argument(help="image ids")]
ProjectsOpt = Annotated[list[str], typer.Option("--project", "-p", help="member project id, repeatable")]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="print the job id instead of following the job")]


@contextmanager
def _session() -> Iterator[Session]:
    try:
        with Session(Credentials.from_env()) as session:
            yield session
    except ApiError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except JobFailed as exc:
        _print_failures(exc.job)
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _print_failures(job: dict[str, Any]) -> None:
    for item in sharing.failed_items(job):
        err.print(f"[red]failed:[/red] image {item.get('image_id')} / project {item.get('project_id')}: "
                  f"{item.get('error_code')}: {item.get('fail_reason')}")


def _parse_tag(spec: str) -> tuple[str, str]:
    # "key=value" as the current IMS spelling; "key.value" as the older one; "key" for no value.
    for sep in ("=", "."):
        if sep in spec:
            key, _, value = spec.partition(sep)
            return key, value
    return spec, ""


def _report(job: dict[str, Any], as_json: bool, what: str) -> None:
    """Print a finished batch job; exit 1 when any item failed (the job itself may be SUCCESS)."""
    if as_json:
        _print_json(job)
    failures = sharing.failed_items(job)
    if failures:
        _print_failures(job)
        raise typer.Exit(1)
    if not as_json:
        console.print(f"{what}: job {job['job_id']} {job['status']}")


# ---------------------------------------------------------------- tags


@tag_app.command("add")
def tag_add(image_id: str,
            tags: Annotated[list[str], typer.Argument(help="KEY=VALUE (or KEY), one or more")]) -> None:
    """Add or update tags of one of your images."""
    pairs = dict(_parse_tag(t) for t in tags)
    with _session() as s:
        sharing.add_tags(s, image_id, pairs)
    console.print(f"image {image_id}: {len(pairs)} tag(s) set")


@tag_app.command("delete")
def tag_delete(image_id: str, keys: Annotated[list[str], typer.Argument(help="tag keys")]) -> None:
    """Delete tags of one of your images by key (an absent key is an error)."""
    with _session() as s:
        for key in keys:
            sharing.delete_tag(s, image_id, key)
    console.print(f"image {image_id}: {len(keys)} tag(s) deleted")


@tag_app.command("list")
def tag_list(image_id: str, as_json: JsonOpt = False) -> None:
    """List the tags of an image."""
    with _session() as s:
        tags = sharing.list_tags(s, image_id)
    if as_json:
        _print_json(tags)
        return
    table = Table("key", "value")
    for t in tags:
        table.add_row(t["key"], t["value"])
    console.print(table)


# ---------------------------------------------------------------- sharing


@image_app.command("share")
def image_share(images: ImagesArg, projects: ProjectsOpt, no_wait: NoWaitOpt = False, as_json: JsonOpt = False) -> None:
    """Share your images with other projects (of any account); they accept or reject them."""
    with _session() as s:
        job = sharing.share(s, images, projects, wait=not no_wait)
    _report(job, as_json, "shared")


@image_app.command("unshare")
def image_unshare(images: ImagesArg, projects: ProjectsOpt, no_wait: NoWaitOpt = False,
                  as_json: JsonOpt = False) -> None:
    """Stop sharing your images with projects."""
    with _session() as s:
        job = sharing.unshare(s, images, projects, wait=not no_wait)
    _report(job, as_json, "unshared")


@image_app.command("accept")
def image_accept(images: ImagesArg, no_wait: NoWaitOpt = False, as_json: JsonOpt = False) -> None:
    """Accept images shared with your project: they then show in your image list."""
    with _session() as s:
        job = sharing.answer(s, images, "accepted", wait=not no_wait)
    _report(job, as_json, "accepted")


@image_app.command("reject")
def image_reject(images: ImagesArg, no_wait: NoWaitOpt = False, as_json: JsonOpt = False) -> None:
    """Reject images shared with your project: they leave your image list."""
    with _session() as s:
        job = sharing.answer(s, images, "rejected", wait=not no_wait)
    _report(job, as_json, "rejected")


@image_app.command("members")
def image_members(image_id: str, as_json: JsonOpt = False) -> None:
    """List the projects an image is shared with, and their answers."""
    with _session() as s:
        found = sharing.members(s, image_id)
    if as_json:
        _print_json(found)
        return
    table = Table("member (project)", "status", "created_at", "updated_at")
    for m in found:
        table.add_row(m["member_id"], m["status"], m["created_at"], m["updated_at"])
    console.print(table)

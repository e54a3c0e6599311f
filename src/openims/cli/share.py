"""``openims image tag|share|unshare|accept|reject|members``: tags and sharing, over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openims.cli.common import (
    JsonOpt,
    out,
    print_failures,
    print_json,
    print_rows,
    session,
)
from openims.client import sharing

# The sharing commands of ``openims image`` (share, unshare, accept, reject, members); merged into
# that group by ``openims.cli``.
image_commands = typer.Typer()
tag_app = typer.Typer(help="Image tags (key=value).", no_args_is_help=True)


ImagesArg = Annotated[list[str], typer.Argument(help="image ids")]


ProjectsOpt = Annotated[list[str], typer.Option("--project", "-p", help="member project id, repeatable")]


NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="print the job id instead of following the job")]


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
        print_json(job)
    failures = sharing.failed_items(job)
    if failures:
        print_failures(job)
        raise typer.Exit(1)
    if not as_json:
        out.print(f"{what}: job {job['job_id']} {job['status']}")


@tag_app.command("add")
def tag_add(image_id: str,
            tags: Annotated[list[str], typer.Argument(help="KEY=VALUE (or KEY), one or more")]) -> None:
    """Add or update tags of one of your images."""
    pairs = dict(_parse_tag(t) for t in tags)
    with session() as s:
        sharing.add_tags(s, image_id, pairs)
    out.print(f"image {image_id}: {len(pairs)} tag(s) set")


@tag_app.command("delete")
def tag_delete(image_id: str, keys: Annotated[list[str], typer.Argument(help="tag keys")]) -> None:
    """Delete tags of one of your images by key (an absent key is an error)."""
    with session() as s:
        for key in keys:
            sharing.delete_tag(s, image_id, key)
    out.print(f"image {image_id}: {len(keys)} tag(s) deleted")


@tag_app.command("list")
def tag_list(image_id: str, as_json: JsonOpt = False) -> None:
    """List the tags of an image."""
    with session() as s:
        tags = sharing.list_tags(s, image_id)
    print_rows(tags, (("key", "key"), ("value", "value")), as_json)


@image_commands.command("share")
def image_share(images: ImagesArg, projects: ProjectsOpt, no_wait: NoWaitOpt = False, as_json: JsonOpt = False) -> None:
    """Share your images with other projects (of any account); they accept or reject them."""
    with session() as s:
        job = sharing.share(s, images, projects, wait=not no_wait)
    _report(job, as_json, "shared")


@image_commands.command("unshare")
def image_unshare(images: ImagesArg, projects: ProjectsOpt, no_wait: NoWaitOpt = False,
                  as_json: JsonOpt = False) -> None:
    """Stop sharing your images with projects."""
    with session() as s:
        job = sharing.unshare(s, images, projects, wait=not no_wait)
    _report(job, as_json, "unshared")


@image_commands.command("accept")
def image_accept(images: ImagesArg, no_wait: NoWaitOpt = False, as_json: JsonOpt = False) -> None:
    """Accept images shared with your project: they then show in your image list."""
    with session() as s:
        job = sharing.answer(s, images, "accepted", wait=not no_wait)
    _report(job, as_json, "accepted")


@image_commands.command("reject")
def image_reject(images: ImagesArg, no_wait: NoWaitOpt = False, as_json: JsonOpt = False) -> None:
    """Reject images shared with your project: they leave your image list."""
    with session() as s:
        job = sharing.answer(s, images, "rejected", wait=not no_wait)
    _report(job, as_json, "rejected")


@image_commands.command("members")
def image_members(image_id: str, as_json: JsonOpt = False) -> None:
    """List the projects an image is shared with, and their answers."""
    with session() as s:
        found = sharing.members(s, image_id)
    print_rows(found, (("member (project)", "member_id"), ("status", "status"), ("created_at", "created_at"),
                       ("updated_at", "updated_at")), as_json)

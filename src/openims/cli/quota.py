"""``openims quota``: private-image quotas."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openims.cli.common import (
    JsonOpt,
    err,
    ims_client,
    out,
    print_json,
)

app = typer.Typer(help="Private-image quotas.", no_args_is_help=True)


def _quota_line(quota: dict[str, Any], project: str | None) -> None:
    for r in quota["quotas"]["resources"]:
        who = f"project {project}: " if project else ""
        out.print(f"{who}{r['type']}: {r['used']} used of {r['quota']} (settable {r['min']}-{r['max']})")


@app.command("show")
def quota_show(project: Annotated[str | None, typer.Option("--project", help="another project (administrators)")]
               = None, as_json: JsonOpt = False) -> None:
    """Show the image quota and its use."""
    with ims_client() as ims:
        quota = ims.show_quota(project)
    print_json(quota) if as_json else _quota_line(quota, project)


@app.command("set")
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
    with ims_client() as ims:
        quota = ims.set_quota(None if reset else images, project)
    print_json(quota) if as_json else _quota_line(quota, project)

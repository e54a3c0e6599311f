"""``openims job``: asynchronous jobs."""

from __future__ import annotations

from typing import Annotated

import typer

from openims.cli.common import (
    JsonOpt,
    follow_job,
    ims_client,
    print_json,
)

app = typer.Typer(help="Asynchronous jobs.", no_args_is_help=True)


@app.command("show")
def job_show(job_id: str, wait: Annotated[bool, typer.Option("--wait")] = False, as_json: JsonOpt = False) -> None:
    """Show a job (always JSON; --json is accepted like elsewhere); with --wait follow it to the end."""
    with ims_client() as ims:
        print_json(follow_job(ims, job_id) if wait else ims.show_job(job_id))

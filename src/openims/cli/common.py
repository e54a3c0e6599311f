"""What every client-side command shares: the session, error handling and output.

One error idiom for every command: ``handled()`` (or the ``handles_errors`` decorator) prints an
API error, a client-side mistake (``CliError``) or a failed job as one clear line on stderr and
exits 1 — never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from openims.client import sharing
from openims.client.ims import ImsClient, JobFailed
from openims.client.session import ApiError, Credentials, Session

out = Console()
err = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


class CliError(Exception):
    """A user mistake found on the client side (e.g. an ambiguous or unknown name)."""


@contextmanager
def handled() -> Iterator[None]:
    try:
        yield
    except (ApiError, CliError) as exc:
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except JobFailed as exc:
        print_failures(exc.job)
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None


def print_failures(job: dict[str, Any]) -> None:
    """The items of a batch job that failed, one line each (nothing for other jobs)."""
    for item in sharing.failed_items(job):
        err.print(f"[red]failed:[/red] image {item.get('image_id')} / project {item.get('project_id')}: "
                  f"{item.get('error_code')}: {item.get('fail_reason')}")


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """``handled()`` around a whole command."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with handled():
            return fn(*args, **kwargs)

    return wrapper


@contextmanager
def session() -> Iterator[Session]:
    """A logged-in session from the OPENIMS_* variables, errors handled."""
    with handled(), Session(Credentials.from_env()) as s:
        yield s


@contextmanager
def ims_client() -> Iterator[ImsClient]:
    with session() as s:
        yield ImsClient(s)


def print_json(data: Any, *, sort_keys: bool = False) -> None:
    # Plain print: rich would wrap long lines and break the JSON for pipes.
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")


def table(rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
    t = Table()
    for header, key in columns:
        if key in ("id", "field"):
            # Ids are copied into the next command: keep them whole on one line.
            t.add_column(header, no_wrap=True, min_width=32 if key == "id" else None)
        else:
            t.add_column(header, overflow="fold")
    for row in rows:
        t.add_row(*(_cell(row.get(key)) for _, key in columns))
    out.print(t)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escape(str(value))


def print_rows(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]], as_json: bool) -> None:
    """A list as JSON (``--json``) or as a table of ``columns``."""
    if as_json:
        print_json(rows, sort_keys=True)
    else:
        table(rows, columns)


def show(obj: dict[str, Any], keys: Sequence[str], as_json: bool) -> None:
    if as_json:
        print_json(obj, sort_keys=True)
        return
    rows = ({"field": k, "value": obj.get(k)} for k in keys if k in obj)
    table(rows, (("Field", "field"), ("Value", "value")))


def split_url(url: str) -> tuple[str, str]:
    bucket, sep, key = url.partition(":")
    if not sep or not bucket or not key:
        err.print(f"[red]error:[/red] {url!r} is not BUCKET:KEY")
        raise typer.Exit(2)
    return bucket, key


def follow_job(ims: ImsClient, job_id: str) -> dict[str, Any]:
    """Wait for a job with a progress bar on stderr; its final state."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  console=err) as bar:
        # The whole id: it is what `openims job show` takes.
        task = bar.add_task(f"job {job_id}", total=100)

        def progress(job: dict[str, Any]) -> None:
            bar.update(task, completed=float(job.get("entities", {}).get("process_percent") or 0),
                       description=f"job {job_id} {job['status']}")

        return ims.wait_job(job_id, progress=progress)


def finish_job(ims: ImsClient, job_id: str, wait: bool, as_json: bool) -> dict[str, Any] | None:
    """Follow the job when asked to; otherwise print its id."""
    if not wait:
        if as_json:
            print_json({"job_id": job_id})
        else:
            out.print(f"job {job_id} submitted")
        return None
    return follow_job(ims, job_id)

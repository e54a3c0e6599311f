"""``openims audit``: the audit trail (CTS traces), for account administrators and the operator."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import typer

from openims.cli.common import CliError, JsonOpt, handled, print_rows, session
from openims.client.audit import AuditClient

app = typer.Typer(help="The audit trail: who changed what (CTS traces).", no_args_is_help=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+)([smhd])$")
COLUMNS = (("Time", "when"), ("Service", "service_type"), ("Action", "trace_name"), ("Rating", "trace_rating"),
           ("Code", "code"), ("User", "who"), ("Resource", "resource_type"), ("Resource id", "resource_id"),
           ("Name", "resource_name"), ("Source", "source_ip"))


def parse_since(text: str) -> dt.timedelta:
    """``30s``, ``15m``, ``1h``, ``7d`` → a timedelta."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise CliError(f"--since {text!r}: give a number and a unit s, m, h or d (1h, 30m, 7d)")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _row(trace: dict[str, Any]) -> dict[str, Any]:
    user = trace.get("user") or {}
    domain = user.get("domain") or {}
    who = "/".join(p for p in (domain.get("name"), user.get("name")) if p)
    when = dt.datetime.fromtimestamp(trace["time"] / 1000, dt.UTC).isoformat(timespec="seconds")
    return {**trace, "when": when, "who": who}


@app.command("list")
def audit_list(since: Annotated[str, typer.Option(help="how far back: 30m, 1h, 7d")] = "1h",
               resource_id: Annotated[str | None, typer.Option("--resource-id")] = None,
               action: Annotated[str | None, typer.Option("--action", help="trace name, e.g. createImage")] = None,
               rating: Annotated[str | None, typer.Option(help="normal, warning or incident")] = None,
               user: Annotated[str | None, typer.Option(help="user name")] = None,
               limit: Annotated[int, typer.Option(min=1, help="at most this many traces")] = 100,
               as_json: JsonOpt = False) -> None:
    """List the traces of the account (every account's, for the operator), newest first."""
    with handled():
        back = parse_since(since)
    since_ms = int((dt.datetime.now(dt.UTC) - back).timestamp() * 1000)
    with session() as s:
        traces = AuditClient(s).list_traces(since_ms=since_ms, limit=limit, resource_id=resource_id,
                                            trace_name=action, trace_rating=rating, user=user)
    if as_json:
        print_rows(traces, COLUMNS, True)
        return
    print_rows([_row(t) for t in traces], COLUMNS, False)

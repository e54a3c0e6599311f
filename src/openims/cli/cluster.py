"""``openims cluster``: the scaled-out topology on this machine, to try it (``make cluster``)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from openims.cli.common import err
from openims.cli.server import say, say_user_uploads

PortsOpt = Annotated[list[int] | None, typer.Option("--api-port", help="an API process on this port (repeat)")]
PgOpt = Annotated[str, typer.Option("--postgres", help="auto | local (127.0.0.1:5432) | embedded (<root>/pg)")]


def cluster(root: Annotated[Path, typer.Option("--root", help="where every process keeps its data")] = Path(
                "./data/cluster"),
            api_port: PortsOpt = None,
            workers: Annotated[int, typer.Option("--workers", help="worker processes")] = 2,
            s3_port: Annotated[int, typer.Option("--s3-port", help="the S3 engine's port")] = 8333,
            postgres: PgOpt = "auto",
            pg_port: Annotated[int, typer.Option("--pg-port", help="port of the embedded PostgreSQL")] = 55432,
            ) -> None:
    """PostgreSQL, SeaweedFS, API processes (8080, 8081) and workers, on 127.0.0.1; Ctrl-C stops them all.

    Each process has its own data directory: they share only the database (which also holds the keys,
    under a master key) and the S3 engine, as they would on separate hosts.
    """
    from openims.localcluster import ClusterError, LocalCluster

    if postgres not in ("auto", "local", "embedded"):
        raise typer.BadParameter("auto, local or embedded", param_hint="--postgres")
    ports = tuple(api_port or (8080, 8081))
    c = LocalCluster(root.expanduser().resolve(), api_ports=ports, workers=workers, s3_port=s3_port,
                     postgres=postgres, pg_port=pg_port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        c.start()
    except ClusterError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(1) from None
    try:
        assert c.engine is not None and c.user_secret_file is not None
        pg = f"{c.pg.root} (embedded)" if c.pg else "the local server"
        say(f"openims cluster in {c.root} — logs in {c.root / 'logs'}")
        say(f"  PostgreSQL: {c.database_url} ({pg})")
        say(f"  S3 engine:  {c.engine.endpoint} (SeaweedFS)")
        for p in c.processes:
            say(f"  {p.name}: pid {p.proc.pid}" + (f", [bold]{p.url}[/bold]" if p.url else ""))
        say(f"  admin: domain admin, user admin, project local-1, password [bold]{c.admin_password}[/bold] "
            f"(in {c.root / 'admin-password'})")
        say(f"  try: OPENIMS_ENDPOINT=http://127.0.0.1:{ports[-1]} OPENIMS_PASSWORD=$(cat {c.root / 'admin-password'}) "
            "openims image list")
        say_user_uploads(c.engine.endpoint, c.user_access_key, c.user_secret_file)
        say("Ctrl-C stops everything.")
        reported: set[str] = set()
        while not stop.wait(1.0):
            for p in c.dead():
                if p.name not in reported:
                    reported.add(p.name)
                    err.print(f"[bold red]{p.name} exited with {p.proc.returncode}[/bold red]; see {p.log}")
    finally:
        say("stopping: workers hand back their jobs")
        c.stop()

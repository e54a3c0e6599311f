"""``openims serve``, ``openims worker`` and ``openims db``: the server side, on this machine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from openims.cli.common import out as console
from openims.config import Settings

db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)


def settings_from(**overrides: object) -> Settings:
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]


HostOpt = Annotated[str | None, typer.Option("--host", help="listen address [OPENIMS_HOST]")]
PortOpt = Annotated[int | None, typer.Option("--port", help="listen port [OPENIMS_PORT]")]
DataOpt = Annotated[Path | None, typer.Option("--data-dir", help="data directory [OPENIMS_DATA_DIR]")]
DbOpt = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL [OPENIMS_DATABASE_URL]")]


def serve(host: HostOpt = None, port: PortOpt = None, data_dir: DataOpt = None, database_url: DbOpt = None,
          workers: Annotated[int | None, typer.Option(help="in-process job worker threads")] = None,
          no_worker: Annotated[bool, typer.Option("--no-worker", help="API only")] = False) -> None:
    """Run the API (and, by default, an in-process job worker)."""
    import uvicorn

    from openims.api.app import create_app
    from openims.runtime import bootstrap_runtime, build_runtime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from(host=host, port=port, data_dir=data_dir, database_url=database_url,
                         workers=0 if no_worker else workers)
    rt = build_runtime(settings)
    boot = bootstrap_runtime(rt)
    console.print(f"openims listening on [bold]{settings.base_url}[/bold] (region {settings.region})")
    console.print(f"  data: {settings.data_dir}   database: {_redact(settings.database_url_resolved)}")
    if boot.password is not None:
        console.print("  admin account created: domain [bold]admin[/bold], user [bold]admin[/bold], "
                      f"project [bold]{settings.region}[/bold]")
        console.print(f"  admin password: [bold]{boot.password}[/bold]  "
                      f"(also in {settings.data_dir / 'admin-credentials'}, mode 0600)")
    else:
        console.print(f"  admin credentials: {settings.data_dir / 'admin-credentials'}")
    console.print(f"  token: curl -i -X POST {settings.base_url}/v3/auth/tokens -H 'Content-Type: "
                  "application/json' -d @- (see README)")
    api = create_app(rt)
    worker = None
    if settings.workers > 0:
        from openims.worker.runner import Worker

        worker = Worker(rt, threads=settings.workers)
        worker.start()
        console.print(f"  job worker: {settings.workers} thread(s) in this process")
    try:
        uvicorn.run(api, host=settings.host, port=settings.port, log_level="info", access_log=False)
    finally:
        if worker is not None:
            worker.stop()
        rt.close()


def worker_command(data_dir: DataOpt = None, database_url: DbOpt = None,
                   threads: Annotated[int, typer.Option(help="job threads")] = 1,
                   once: Annotated[bool, typer.Option("--once", help="run runnable jobs, then exit")] = False) -> None:
    """Run job workers only (scale-out: many of these beside ``serve --no-worker``)."""
    import signal
    import threading

    from openims.runtime import build_runtime
    from openims.worker.runner import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rt = build_runtime(settings_from(data_dir=data_dir, database_url=database_url))
    worker = Worker(rt, threads=threads)
    try:
        if once:
            console.print(f"ran {worker.run_until_idle()} job(s)")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        worker.start()
        console.print(f"openims worker: {threads} thread(s); Ctrl-C to stop")
        stop.wait()
        worker.stop()
    finally:
        rt.close()


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def db_upgrade(database_url: DbOpt = None, data_dir: DataOpt = None,
               revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply schema migrations."""
    from openims.db import migrate

    settings = settings_from(database_url=database_url, data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url_resolved, revision)
    console.print(f"database at revision {migrate.current(settings.database_url_resolved)}")



"""``openims serve``, ``openims worker`` and ``openims db``: the server side, on this machine."""

from __future__ import annotations

import logging
import os
import signal
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from openims import logs
from openims.cli.common import err
from openims.cli.common import out as console
from openims.config import Settings
from openims.memory import return_big_buffers

if TYPE_CHECKING:
    from openims.runtime import Runtime

db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)


def settings_from(**overrides: object) -> Settings:
    """The settings of this process; a setting that cannot be used stops it with one line per problem."""
    from pydantic import ValidationError

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)  # type: ignore[arg-type]
    except ValidationError as exc:
        for problem in exc.errors():
            where = "_".join(str(part) for part in problem["loc"]).upper()
            message = problem["msg"].removeprefix("Value error, ")
            err.print(f"[bold red]error:[/bold red] {f'OPENIMS_{where}: ' if where else ''}{message}",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@contextmanager
def local_runtime(data_dir: Path | None, database_url: str | None) -> Iterator[Runtime]:
    """This machine's runtime for one command; a refusal (bad setting, service rule, unreadable keys) is
    one line, exit 1."""
    from openims.errors import ServiceError
    from openims.iam.keys import KeyStoreError
    from openims.runtime import build_runtime

    rt: Runtime | None = None
    try:
        rt = build_runtime(settings_from(data_dir=data_dir, database_url=database_url))
        yield rt
    except (ServiceError, KeyStoreError, ValueError) as exc:
        err.print(f"[bold red]error:[/bold red] {getattr(exc, 'message', exc)}")
        raise typer.Exit(1) from None
    finally:
        if rt is not None:
            rt.close()


HostOpt = Annotated[str | None, typer.Option("--host", help="listen address [OPENIMS_HOST]")]
PortOpt = Annotated[int | None, typer.Option("--port", help="listen port [OPENIMS_PORT]")]
DataOpt = Annotated[Path | None, typer.Option("--data-dir", help="data directory [OPENIMS_DATA_DIR]")]
DbOpt = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL [OPENIMS_DATABASE_URL]")]


def serve(host: HostOpt = None, port: PortOpt = None, data_dir: DataOpt = None, database_url: DbOpt = None,
          workers: Annotated[int | None, typer.Option(help="in-process job worker threads")] = None,
          no_worker: Annotated[bool, typer.Option("--no-worker", help="API only")] = False,
          tls_cert: Annotated[Path | None, typer.Option(
              "--tls-cert", help="PEM certificate chain: serve HTTPS [OPENIMS_TLS_CERT_FILE]")] = None,
          tls_key: Annotated[Path | None, typer.Option(
              "--tls-key", help="PEM private key of --tls-cert [OPENIMS_TLS_KEY_FILE]")] = None) -> None:
    """Run the API (and, by default, an in-process job worker)."""
    import uvicorn

    from openims.api.app import create_app
    from openims.runtime import bootstrap_runtime

    settings = settings_from(host=host, port=port, data_dir=data_dir, database_url=database_url,
                             workers=0 if no_worker else workers, tls_cert_file=tls_cert, tls_key_file=tls_key)
    logs.configure(settings.log_format)
    say = _announcer(settings)
    tls = _tls_context_or_exit(settings)
    return_big_buffers()
    rt = _runtime_or_exit(settings)
    boot = bootstrap_runtime(rt)
    say(f"openims listening on [bold]{settings.base_url}[/bold] (region {settings.region})")
    say(f"  data: {settings.data_dir}   database: {_redact(settings.database_url_resolved)}")
    if boot.password is not None:
        say("  admin account created: domain [bold]admin[/bold], user [bold]admin[/bold], "
            f"project [bold]{settings.region}[/bold]")
        if settings.log_format == "json":
            # Log collectors keep what they are given: the password stays in its file only.
            say(f"  admin password: in {settings.data_dir / 'admin-credentials'} (mode 0600)")
        else:
            say(f"  admin password: [bold]{boot.password}[/bold]  "
                f"(also in {settings.data_dir / 'admin-credentials'}, mode 0600)")
    else:
        say(f"  admin credentials: {settings.data_dir / 'admin-credentials'}")
    say(f"  token: curl -i -X POST {settings.base_url}/v3/auth/tokens -H 'Content-Type: "
        "application/json' -d @- (see README)")
    api = create_app(rt)
    worker = None
    if settings.workers > 0:
        from openims.worker.runner import Worker

        worker = Worker(rt, threads=settings.workers)
        worker.start()
        say(f"  job worker: {settings.workers} thread(s) in this process")
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the handler it found:
    # this one, so that the clean-up below runs instead of the process dying at once.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        # log_config=None: uvicorn's own lines go through the handler configured above (JSON or text);
        # its access log stays off, ObservedMiddleware writes one line per request instead.
        # The context is built above (a bad certificate stops the start before anything runs); uvicorn
        # only wraps its socket with it.
        uvicorn.run(api, host=settings.host, port=settings.port, log_level="info", access_log=False,
                    log_config=None, ssl_context_factory=None if tls is None else (lambda _config, _default: tls))
    finally:
        if worker is not None:
            worker.stop(grace=settings.worker_grace_seconds)
        rt.close()


def _announcer(settings: Settings) -> Callable[[str], None]:
    """Where start-up messages go: the console (rich markup), or with JSON logs a log line each, so that
    the output stays one JSON object per line."""
    if settings.log_format != "json":
        return console.print

    def to_log(markup: str) -> None:
        from rich.text import Text

        logging.getLogger("openims").info("%s", Text.from_markup(markup).plain.strip())

    return to_log


def _runtime_or_exit(settings: Settings) -> Runtime:
    """The process's runtime; keys it cannot read (a wrong master key, say) stop it with one line."""
    from openims.iam.keys import KeyStoreError
    from openims.runtime import build_runtime

    try:
        return build_runtime(settings)
    except KeyStoreError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(1) from None


def _tls_context_or_exit(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context when a certificate is configured (it follows renewals of the files); one that
    cannot be used stops the start."""
    from openims.tls import ReloadingContext, TlsSetupError

    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    try:
        return ReloadingContext(settings.tls_cert_file, settings.tls_key_file).listening
    except TlsSetupError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def worker_command(data_dir: DataOpt = None, database_url: DbOpt = None,
                   concurrency: Annotated[int | None, typer.Option(
                       "--concurrency", "--threads", min=1, help="jobs at once [default: one per two cores]")] = None,
                   once: Annotated[bool, typer.Option("--once", help="run runnable jobs, then exit")] = False) -> None:
    """Run job workers only (scale-out: many of these beside ``serve --no-worker``)."""
    import threading

    from openims.worker.runner import Worker

    settings = settings_from(data_dir=data_dir, database_url=database_url)
    logs.configure(settings.log_format)
    say = _announcer(settings)
    return_big_buffers()
    rt = _runtime_or_exit(settings)
    threads = concurrency or max(1, (os.cpu_count() or 2) // 2)
    worker = Worker(rt, threads=threads)
    try:
        if once:
            say(f"ran {worker.run_until_idle()} job(s)")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        worker.start()
        say(f"openims worker: {threads} job(s) at once; Ctrl-C to stop")
        stop.wait()
        say(f"stopping: running jobs get {rt.settings.worker_grace_seconds:g} s to finish")
        worker.stop(grace=rt.settings.worker_grace_seconds)
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




def say(text: str) -> None:
    console.print(text, soft_wrap=True)  # commands to copy: never wrapped


def say_user_uploads(endpoint: str, access_key: str, creds_file: Path) -> None:
    """How a user puts image files into their bucket on the trial engine with the engine's own tools."""
    say("  make your bucket through the service first (it records you as its owner):")
    say("    openims obs mb my-images")
    say("  then upload with the engine's own tools, as user credentials an operator hands out:")
    say(f"    AWS_ACCESS_KEY_ID={access_key} AWS_SECRET_ACCESS_KEY=<in {creds_file}> \\")
    say(f"      aws --endpoint-url {endpoint} s3 cp disk.qcow2 s3://my-images/disk.qcow2")
    say(f"    boto3.client('s3', endpoint_url='{endpoint}', aws_access_key_id=..., "
        "aws_secret_access_key=...).upload_file('disk.qcow2', 'my-images', 'disk.qcow2')")


def serve_s3(host: HostOpt = None, port: PortOpt = None, data_dir: DataOpt = None,
             s3_port: Annotated[int, typer.Option("--s3-port", help="the engine's S3 port")] = 8333) -> None:
    """Run the service on a local SeaweedFS engine (users' buckets and the image store on S3): for trials.

    The engine keeps its data and its credentials in <data>/seaweedfs; it stops when the server does.
    """
    from openims.objects.seaweed import service_env, trial_engine

    settings = settings_from(data_dir=data_dir)
    root = settings.data_dir / "seaweedfs"
    engine, service, user, creds_file = trial_engine(root, s3_port=s3_port)
    engine.start()
    try:
        os.environ.update(service_env(engine, service))
        say(f"SeaweedFS S3 engine on [bold]{engine.endpoint}[/bold] (data in {root})")
        say_user_uploads(engine.endpoint, user.access_key, creds_file)
        serve(host=host, port=port, data_dir=data_dir)
    finally:
        engine.stop()

"""A scaled-out openims on one machine, for trying it (``make cluster``) and for crash tests.

PostgreSQL (the local server, or a throw-away cluster of its own), SeaweedFS, N API processes and M
workers, each a separate process with its own data directory — they share only the database and the
S3 engine, with the keys in the database under a master key, as they would on separate hosts.
Everything binds to 127.0.0.1. Not a production supervisor: a process that dies is reported, not
restarted.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from openims.objects.seaweed import SeaweedFS, die_with_parent, service_env, trial_engine

LOCAL_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class ClusterError(RuntimeError):
    """A part of the cluster could not be started."""


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps the server tools out of PATH, per major version; the newest wins.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise ClusterError(f"{name} not found: install PostgreSQL's server package (Debian: postgresql)")
    return candidates[-1]


def reachable(admin_url: str) -> bool:
    engine = create_engine(admin_url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect():
            return True
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()


class LocalPostgres:
    """A throw-away PostgreSQL cluster in ``root`` (initdb, pg_ctl): TCP on 127.0.0.1:``port`` only, trust
    authentication. Run as root, the server runs as the ``postgres`` user (it refuses root), so ``root``
    must lie where that user can reach it."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.log = root / "postgres.log"
        self._user = "postgres" if os.geteuid() == 0 else None

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(list(args), user=self._user, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise ClusterError(f"{Path(args[0]).name} failed: {(done.stderr or done.stdout).strip()[-2000:]}")

    def start(self) -> LocalPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            shutil.chown(self.root, self._user, self._user)
        if not (self.data / "PG_VERSION").exists():
            self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--no-sync")
        if (self.data / "postmaster.pid").exists() and reachable(self.admin_url):
            return self  # still running from a cluster command that was killed: use it
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options,
                  "start")
        return self

    def restart(self) -> None:
        """A real restart (fast shutdown: every connection is cut, running transactions abort)."""
        # With the log file again: the new server would otherwise write to (and hold open) our pipe.
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-m", "fast",
                  "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "-m", "fast", "stop")


def ensure_database(admin_url: str, name: str) -> str:
    """Create database ``name`` if missing; its URL."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            if c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                c.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _secret_file(path: Path, make: str) -> str:
    """A value kept across runs of the cluster (mode 0600: most are secrets), made on the first."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make + "\n")
    return path.read_text().strip()


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str | None = None


@dataclass
class LocalCluster:
    root: Path
    api_ports: tuple[int, ...] = (8080, 8081)
    workers: int = 2
    s3_port: int | None = None
    # "auto": the local server on 127.0.0.1:5432 when it answers, else a throw-away one in <root>/pg.
    postgres: str = "auto"
    pg_port: int = 55432
    admin_url: str = LOCAL_PG_ADMIN_URL
    extra_env: Mapping[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    pg: LocalPostgres | None = None
    engine: SeaweedFS | None = None
    env: dict[str, str] = field(default_factory=dict)
    admin_password: str = ""
    database_url: str = ""
    user_access_key: str = ""
    user_secret_file: Path | None = None

    def start(self) -> LocalCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._start_postgres()
            self._start_engine()
            self._environment()
            for port in self.api_ports:
                self._spawn(f"api-{port}", ["serve", "--no-worker", "--port", str(port)], url=f"http://127.0.0.1:{port}")
            for i in range(1, self.workers + 1):
                self._spawn(f"worker-{i}", ["worker"])
            self._wait_apis()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_postgres(self) -> None:
        local = self.postgres == "local" or (self.postgres == "auto" and reachable(self.admin_url))
        if self.postgres == "local" and not reachable(self.admin_url):
            raise ClusterError(f"no PostgreSQL answers at {self.admin_url}")
        if not local:
            self.pg = LocalPostgres(self.root / "pg", self.pg_port).start()
            self.admin_url = self.pg.admin_url
        # Named once per root: another cluster on the same server (another root, another master key)
        # gets its own database.
        name = _secret_file(self.root / "database-name", f"openims_cluster_{secrets.token_hex(4)}")
        self.database_url = ensure_database(self.admin_url, name)

    def _start_engine(self) -> None:
        engine, service, user, creds = trial_engine(self.root / "seaweedfs", s3_port=self.s3_port)
        self.engine = engine.start()
        self.user_access_key, self.user_secret_file = user.access_key, creds
        self.env = service_env(self.engine, service)

    def _environment(self) -> None:
        master = self.root / "master-key"
        _secret_file(master, Fernet.generate_key().decode("ascii"))
        self.admin_password = _secret_file(self.root / "admin-password", "Adm1n-" + secrets.token_urlsafe(12))
        self.env |= {"OPENIMS_DATABASE_URL": self.database_url, "OPENIMS_KEY_STORE": "database",
                     "OPENIMS_MASTER_KEY_FILE": str(master), "OPENIMS_ADMIN_PASSWORD": self.admin_password,
                     "OPENIMS_HOST": "127.0.0.1", **self.extra_env}

    def _spawn(self, name: str, args: list[str], url: str | None = None) -> Process:
        data = self.root / name
        data.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "OPENIMS_DATA_DIR": str(data)}
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        with open(log, "ab") as out:
            # SIGTERM when the cluster command dies, however it dies: nothing outlives it.
            proc = subprocess.Popen([sys.executable, "-m", "openims.cli", *args], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=die_with_parent())
        p = Process(name, proc, log, url)
        self.processes.append(p)
        return p

    def _wait_apis(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        waiting = [p for p in self.processes if p.url]
        while waiting:
            for p in list(waiting):
                if p.proc.poll() is not None:
                    raise ClusterError(f"{p.name} exited with {p.proc.returncode}; see {p.log}:\n"
                                       f"{p.log.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{p.url}/", timeout=1).status_code == 300:
                        waiting.remove(p)
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                raise ClusterError(f"{', '.join(p.name for p in waiting)} did not come up in {timeout:.0f} s")
            time.sleep(0.2)

    def dead(self) -> list[Process]:
        return [p for p in self.processes if p.proc.poll() is not None]

    def stop(self, grace: float = 40) -> None:
        """SIGTERM to every process (workers hand back their jobs), SIGKILL past ``grace``; then the engine
        and the throw-away PostgreSQL — those whatever happened before."""
        try:
            for p in self.processes:
                if p.proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            for p in self.processes:
                try:
                    p.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.proc.pid, signal.SIGKILL)
                    p.proc.wait(10)
            self.processes.clear()
        finally:
            try:
                if self.engine is not None:
                    self.engine.stop()
                    self.engine = None
            finally:
                if self.pg is not None:
                    self.pg.stop()
                    self.pg = None

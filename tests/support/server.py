"""A real ``openims serve`` process for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ADMIN_PASSWORD = "Admin-Pass-1234"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    def __init__(self, data_dir: Path, *, database_url: str = "", port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.database_url = database_url
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ServerProcess:
        env = dict(os.environ)
        env.update({
            "OPENIMS_DATA_DIR": str(self.data_dir), "OPENIMS_PORT": str(self.port), "OPENIMS_HOST": "127.0.0.1",
            "OPENIMS_ADMIN_PASSWORD": ADMIN_PASSWORD, "OPENIMS_DATABASE_URL": self.database_url,
            "OPENIMS_ARGON2_TIME_COST": "1", "OPENIMS_ARGON2_MEMORY_KIB": "8",
            # The load tests log in as admin from one address far more often than a person would: the
            # rate limits stay on, above what any test does (tests/api/test_rate_limits.py tests them).
            **{f"OPENIMS_RATE_{name}": "100000/min" for name in (
                "LOGIN_PER_USER", "LOGIN_PER_SOURCE", "SIGNATURE_FAILURES_PER_KEY", "SIGNATURE_FAILURES_PER_SOURCE",
                "TOKENS_PER_USER")},
        })
        env.update(self.extra_env)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "openims.cli", "serve"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if self.ready():
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not come up:\n{self.log.read_text()[-3000:]}")

    def ready(self) -> bool:
        """Whether the server answers (its versions document)."""
        return httpx.get(self.url + "/", timeout=1).status_code == 300

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Api:
    """A tiny token-holding HTTP helper for tests (the real client is openims.client)."""

    def __init__(self, base: str, user: str = "admin", password: str = ADMIN_PASSWORD, project: str = "local-1",
                 domain: str = "admin") -> None:
        self.http = httpx.Client(base_url=base, timeout=60)
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"name": domain}}}},
            "scope": {"project": {"name": project, "domain": {"name": domain}}}}}
        r = self.http.post("/v3/auth/tokens?nocatalog=1", json=body)
        r.raise_for_status()
        self.token = r.headers["X-Subject-Token"]
        self.project_id: str = r.json()["token"]["project"]["id"]
        self.http.headers["X-Auth-Token"] = self.token

    def upload(self, bucket: str, key: str, path: Path) -> None:
        with open(path, "rb") as f:
            r = self.http.put(f"/obs/{bucket}/{key}", content=f)
        assert r.status_code == 201, r.text

    def create(self, **body: Any) -> str:
        r = self.http.post("/v2/cloudimages/action", json=body)
        assert r.status_code == 200, r.text
        job_id: str = r.json()["job_id"]
        return job_id

    def wait_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.http.get(f"/v1/{self.project_id}/jobs/{job_id}")
            if r.status_code == 503:  # the database away for a moment (Retry-After): ask again
                time.sleep(0.5)
                continue
            assert r.status_code == 200, r.text
            job: dict[str, Any] = r.json()
            if job["status"] in ("SUCCESS", "FAIL"):
                return job
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} did not finish")

    def wait_image(self, image_id: str, timeout: float = 120) -> dict[str, Any]:
        """The native image once it left Glance's transfer statuses (saving, uploading, importing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.http.get(f"/v2/images/{image_id}")
            assert r.status_code == 200, r.text
            image: dict[str, Any] = r.json()
            if image["status"] not in ("saving", "uploading", "importing"):
                return image
            time.sleep(0.2)
        raise TimeoutError(f"image {image_id} is still {image['status']}")

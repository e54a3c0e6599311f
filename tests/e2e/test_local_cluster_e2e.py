"""``openims cluster`` (``make cluster``) as a user runs it: a throw-away PostgreSQL, SeaweedFS, two API
processes and two workers. The seed scenario works through either API port; PostgreSQL restarted twice
in the middle of imports loses and duplicates nothing; Ctrl-C stops every process it started."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openims.localcluster import LocalPostgres
from tests.support.images import MiB, make_image
from tests.support.server import Api, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-local-cluster")]

IMPORTS = 8


class PortTaken(RuntimeError):
    pass


class Running:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = [free_port(), free_port()]
        self.pg_port, self.s3_port = free_port(), free_port()
        self.out = root / "cluster.out"
        args = [sys.executable, "-m", "openims.cli", "cluster", "--root", str(root), "--postgres", "embedded",
                "--pg-port", str(self.pg_port), "--s3-port", str(self.s3_port), "--workers", "2",
                *(a for p in self.ports for a in ("--api-port", str(p)))]
        env = {**os.environ, "OPENIMS_JOB_LEASE_SECONDS": "10", "OPENIMS_ARGON2_TIME_COST": "1",
               "OPENIMS_ARGON2_MEMORY_KIB": "8"}
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while "Ctrl-C stops everything" not in self.text():
            if self.proc.poll() is not None and "address already in use" in self.text():
                # Another test took a port between free_port() and the bind: try other ports.
                LocalPostgres(root / "pg", self.pg_port).stop()
                raise PortTaken(self.text())
            assert self.proc.poll() is None, self.text()
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.2)

    def text(self) -> str:
        return self.out.read_text() if self.out.exists() else ""

    def api(self, n: int) -> Api:
        return Api(f"http://127.0.0.1:{self.ports[n]}", password=(self.root / "admin-password").read_text().strip())

    def pids(self) -> list[int]:
        return [int(p) for p in re.findall(r": pid (\d+)", self.text())]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Running]:
    # Not under pytest's temp dir (mode 0700): run as root, the embedded server runs as postgres.
    for attempt in range(3):
        root = Path(tempfile.mkdtemp(prefix="openims-cluster-"))
        root.chmod(0o755)
        running: Running | None = None
        try:
            running = Running(root)
        except PortTaken:
            if attempt == 2:
                raise
            continue
        finally:
            if running is None:
                subprocess.run(["pkill", "-KILL", "-f", f"weed mini -dir={root}"], check=False)
                shutil.rmtree(root, ignore_errors=True)
        break
    assert running is not None
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            os.killpg(running.proc.pid, signal.SIGKILL)
        for pid in running.pids():  # whatever outlived it (nothing should)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        subprocess.run(["pkill", "-KILL", "-f", f"weed mini -dir={root}"], check=False)
        LocalPostgres(root / "pg", running.pg_port).stop()
        if not os.environ.get("KEEP_CLUSTER"):
            shutil.rmtree(root, ignore_errors=True)


def test_the_seed_scenario_through_either_api_port(cluster: Running, tmp_path: Path) -> None:
    a, b = cluster.api(0), cluster.api(1)
    assert "PostgreSQL: postgresql+psycopg://postgres@127.0.0.1:" in cluster.text()
    src = make_image(tmp_path, "qcow2", seed=93)
    a.upload("mybucket", "disk.qcow2", src)
    job_id = b.create(name="seed", image_url="mybucket:disk.qcow2", min_disk=1, os_version="CentOS 7.0 64bit")
    job = a.wait_job(job_id)
    assert job["status"] == "SUCCESS", job
    image_id = job["entities"]["image_id"]
    listed = b.http.get("/v2/cloudimages", params={"id": image_id}).json()["images"]
    assert [i["id"] for i in listed] == [image_id] and listed[0]["status"] == "active"
    assert a.http.get(f"/v2/images/{image_id}").json()["disk_format"] == "qcow2"
    # A token from one process is good at the other (keys in the database, nothing shared on disk).
    assert b.http.get(f"/v2/images/{image_id}", headers={"X-Auth-Token": a.token}).status_code == 200
    assert not list(cluster.root.glob("*/fernet-keys"))


def _status(api: Api, job_id: str) -> str | None:
    r = api.http.get(f"/v1/{api.project_id}/jobs/{job_id}")
    return None if r.status_code == 503 else str(r.raise_for_status().json()["status"])  # 503: database away


def test_postgres_restarted_mid_import_loses_nothing(cluster: Running, tmp_path: Path) -> None:
    a, b = cluster.api(0), cluster.api(1)
    src = tmp_path / "random.raw"  # incompressible: each import takes a while (download, convert, upload)
    with open(src, "wb") as f:
        for _ in range(96):
            f.write(os.urandom(MiB))
    a.upload("mybucket", "slow.raw", src)
    jobs = [(a, b)[i % 2].create(name=f"pg-{i}", image_url="mybucket:slow.raw", min_disk=1,
                                 os_version="CentOS 7.0 64bit") for i in range(IMPORTS)]
    pg = LocalPostgres(cluster.root / "pg", cluster.pg_port)
    caught: set[str] = set()  # jobs running when the database went away
    for _ in range(2):
        # Wait until a job is running, then cut every connection with a real restart.
        deadline = time.monotonic() + 120
        running: list[str] = []
        while not running and time.monotonic() < deadline:
            running = [j for j in jobs if _status(a, j) == "RUNNING"]
            time.sleep(0.05)
        pg.restart()
        caught.update(running)
        time.sleep(1.0)
    finished = [a.wait_job(j, timeout=300) for j in jobs]
    assert [j["status"] for j in finished] == ["SUCCESS"] * IMPORTS, [
        (j["error_code"], j["fail_reason"]) for j in finished if j["status"] != "SUCCESS"]
    image_ids = {j["entities"]["image_id"] for j in finished}
    assert len(image_ids) == IMPORTS
    listed = b.http.get("/v2/cloudimages", params={"limit": 100}).json()["images"]
    assert sorted(i["id"] for i in listed if i["name"].startswith("pg-")) == sorted(image_ids)  # no duplicates
    # The restarts did hit imports in flight (whether a worker noticed depends on whether it was talking
    # to the database during the outage; the logs usually show a heartbeat or a claim failing).
    assert caught


def test_one_address_in_front_with_the_documented_haproxy_config(cluster: Running, tmp_path: Path) -> None:
    """deploy/haproxy.cfg, as documented, with this cluster's ports: requests through the balancer reach
    both processes, and keep working when one API process dies."""
    lb_port = free_port()
    config = (Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg").read_text()
    config = (config.replace("127.0.0.1:8000", f"127.0.0.1:{lb_port}")
              .replace("127.0.0.1:8080", f"127.0.0.1:{cluster.ports[0]}")
              .replace("127.0.0.1:8081", f"127.0.0.1:{cluster.ports[1]}"))
    (tmp_path / "haproxy.cfg").write_text(config)
    lb = subprocess.Popen(["haproxy", "-db", "-f", str(tmp_path / "haproxy.cfg")], stdout=subprocess.DEVNULL,
                          stderr=subprocess.STDOUT)
    try:
        api = None
        deadline = time.monotonic() + 20
        while api is None:
            try:
                api = Api(f"http://127.0.0.1:{lb_port}", password=(cluster.root / "admin-password").read_text().strip())
            except Exception:
                assert time.monotonic() < deadline and lb.poll() is None
                time.sleep(0.2)
        # Both processes answer through the balancer (leastconn spreads the requests), each with the
        # same catalogue: the image list is the same whichever process served it.
        direct = cluster.api(0).http.get("/v2/cloudimages", params={"limit": 100})
        assert direct.status_code == 200, direct.text
        expected = sorted(i["id"] for i in direct.json()["images"])
        for _ in range(6):
            r = api.http.get("/v2/cloudimages", params={"limit": 100})
            # The cluster's log first: a truncated CI log keeps the end of the message, the answer.
            assert r.status_code == 200 and sorted(i["id"] for i in r.json()["images"]) == expected, (
                f"cluster log: {cluster.text()[-3000:]}\n\ndirectly: {expected}; token project "
                f"{api.project_id}; through the balancer: {r.status_code} {r.text[:2000]}")
        assert lb.poll() is None
        # One API process dies (SIGKILL): the balancer retries elsewhere, nobody sees an error.
        victim = cluster.pids()[0]
        os.killpg(victim, signal.SIGKILL)
        statuses = [api.http.get("/v2/cloudimages", params={"limit": 1}).status_code for _ in range(40)]
        assert statuses == [200] * 40, statuses
    finally:
        lb.terminate()
        lb.wait(10)


def test_ctrl_c_stops_every_process(cluster: Running) -> None:
    pids = cluster.pids()
    assert len(pids) == 4
    cluster.proc.send_signal(signal.SIGINT)
    assert cluster.proc.wait(90) == 0, cluster.text()[-3000:]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (cluster.root / "pg" / "data" / "postmaster.pid").exists()  # the embedded server stopped
    weed = subprocess.run(["pgrep", "-f", f"weed mini -dir={cluster.root}"], capture_output=True)
    assert weed.returncode == 1  # no engine process left

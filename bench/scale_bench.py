"""Scale-out benchmark on this machine: PostgreSQL + SeaweedFS, separate API and worker processes.

Usage: python bench/scale_bench.py [--parts imports api claims] [--imports 24] [--duration 10]

- imports: imports per minute with 1, 2 and 3 (``--workers``) worker processes (``openims worker --concurrency 1``),
  the same small images each time (16 MiB of incompressible data, qcow2), submitted at once through one
  API process; ratio against one worker.
- api: req/s of ``GET /v2/images/{id}`` and a 25-image list with one and with two API processes
  (``serve --no-worker``) on PostgreSQL. The load generator is the same in both runs — two wrk
  processes of 4 connections each, aimed at the one process or one at each — so only the server side
  changes; ratio two/one.
- claims: how many empty jobs per second the queue turns over (claim, run a no-op, record SUCCESS)
  with one and two claiming threads, against a baseline of empty write transactions in the same run.

Prints the figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, select, text
from tests.support.server import Api, ServerProcess
from tests.support.stores import S3Stores

from openims.catalog import jobs
from openims.catalog.jobs import JobStatus
from openims.db import migrate
from openims.db.models import Job, Project
from openims.db.session import Database
from openims.localcluster import LOCAL_PG_ADMIN_URL, ensure_database
from openims.runtime import bootstrap_runtime, build_runtime
from openims.worker import runner
from openims.worker.context import JobContext

MiB = 1 << 20
_REQS = re.compile(r"Requests/sec:\s+([\d.]+)")


def _database(admin_url: str) -> str:
    return ensure_database(admin_url, f"openims_bench_{uuid.uuid4().hex[:8]}")


def _drop(admin_url: str, url: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


def _worker(data: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "OPENIMS_DATA_DIR": str(data)}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "openims.cli", "worker", "--concurrency", "1"], env=full,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def bench_imports(work: Path, admin_url: str, count: int, workers: list[int]) -> None:
    print(f"\nimports per minute: {count} imports of the same 16 MiB qcow2 (incompressible), PostgreSQL + SeaweedFS")
    src = work / "disk.raw"
    with open(src, "wb") as f:
        f.write(os.urandom(16 * MiB))
    qcow2 = work / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(src), str(qcow2)], check=True)
    print(f"{'workers':>8} {'seconds':>9} {'imports/min':>12} {'vs 1 worker':>12}")
    baseline = None
    for n in workers:
        stores = S3Stores(work / f"s3-{n}")
        url = _database(admin_url)
        data = work / f"imports-{n}"
        env = {**stores.env(), "OPENIMS_DATABASE_URL": url, "OPENIMS_WORKERS": "0"}
        procs: list[subprocess.Popen[bytes]] = []
        try:
            with ServerProcess(data / "api", database_url=url, env=env) as server:
                api = Api(server.url)
                api.upload("bench", "disk.qcow2", qcow2)
                procs = [_worker(data / f"w{i}", env, work / f"worker-{n}-{i}.log") for i in range(n)]
                time.sleep(3)  # the workers are up and polling
                start = time.monotonic()
                ids = [api.create(name=f"b-{i}", image_url="bench:disk.qcow2", min_disk=1,
                                  os_version="CentOS 7.0 64bit") for i in range(count)]
                done = [api.wait_job(j, timeout=1800) for j in ids]
                elapsed = time.monotonic() - start
                assert all(j["status"] == "SUCCESS" for j in done), [j for j in done if j["status"] != "SUCCESS"]
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(60)
            stores.close()
            _drop(admin_url, url)
        rate = count / elapsed * 60
        baseline = baseline or rate
        print(f"{n:8d} {elapsed:9.1f} {rate:12.1f} {rate / baseline:11.2f}x", flush=True)
    print("(the first worker count's rate is the baseline)")


def _wrk(url: str, token: str, duration: int, connections: int) -> subprocess.Popen[str]:
    return subprocess.Popen(["wrk", "-H", f"X-Auth-Token: {token}", "-t", "1", "-c", str(connections),
                             "-d", f"{duration}s", url], stdout=subprocess.PIPE, text=True)


def _rps(procs: list[subprocess.Popen[str]]) -> float:
    total = 0.0
    for p in procs:
        out, _ = p.communicate()
        if "Non-2xx" in out:
            raise SystemExit(f"non-2xx responses from {p.args[-1]}:\n{out}")
        total += float(_REQS.search(out).group(1))  # type: ignore[union-attr]
    return total


def bench_api(work: Path, admin_url: str, duration: int) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk (make bench-api installs it)")
    url = _database(admin_url)
    # Separate data dirs, as on separate hosts: the keys live in the database.
    env = {"OPENIMS_WORKERS": "0", "OPENIMS_KEY_STORE": "database",
           "OPENIMS_MASTER_KEY": Fernet.generate_key().decode()}
    servers = [ServerProcess(work / f"api-{i}", database_url=url, env=env) for i in range(2)]
    try:
        servers[0].start()
        servers[1].start()
        api = Api(servers[0].url)
        for i in range(30):
            r = api.http.post("/v2/images", json={"name": f"img-{i:02d}", "disk_format": "qcow2",
                                                  "container_format": "bare"})
            r.raise_for_status()
        one = r.json()["id"]
        print(f"\nAPI req/s on PostgreSQL, 2 wrk x 4 connections, {duration} s per run")
        print(f"{'route':28} {'1 process':>10} {'2 processes':>12} {'ratio':>7}")
        for name, path in (("GET /v2/images/{id}", f"/v2/images/{one}"), ("GET /v2/images?limit=25",
                                                                           "/v2/images?limit=25")):
            single = _rps([_wrk(servers[0].url + path, api.token, duration, 4) for _ in range(2)])
            double = _rps([_wrk(s.url + path, api.token, duration, 4) for s in servers])
            print(f"{name:28} {single:10.0f} {double:12.0f} {double / single:6.2f}x", flush=True)
    finally:
        for s in servers:
            s.stop()
        _drop(admin_url, url)


class _Noop:
    """An empty job: nothing but recording its success, in the one fenced transaction every handler uses."""

    def run(self, ctx: JobContext) -> None:
        with ctx.fenced() as (_s, job):
            jobs.finish(job, JobStatus.SUCCESS, ctx.rt.clock())


def bench_claims(work: Path, admin_url: str, count: int = 2000) -> None:
    from tests.conftest import make_settings

    url = _database(admin_url)
    migrate.upgrade(url)
    rt = build_runtime(make_settings(work / "claims", url), upgrade=False)
    bootstrap_runtime(rt)
    runner.HANDLERS["benchNoopJob"] = _Noop()  # type: ignore[assignment]
    try:
        with rt.db.transaction() as s:
            project_id = s.scalars(select(Project.id)).first()
        assert project_id is not None
        db = Database(url)
        start = time.monotonic()
        for _ in range(count):
            with db.transaction() as s:
                s.execute(text("SELECT 1"))
        empty = count / (time.monotonic() - start)
        db.dispose()
        print(f"\nqueue turnover on PostgreSQL: {count} empty jobs (claim, no-op, record SUCCESS)")
        print(f"{'claimers':>9} {'jobs/s':>8} {'vs empty transactions/s':>24}")
        print(f"{'baseline':>9} {empty:8.0f} {'(' + format(empty, '.0f') + ' empty write transactions/s)':>24}")
        for threads in (1, 2):
            with rt.db.transaction() as s:
                for _ in range(count):
                    job = jobs.submit(s, project_id=project_id, job_type=jobs.JobType.IMPORT_IMAGE, payload={},
                                      entities={}, now=rt.clock())
                    job.job_type = "benchNoopJob"
            start = time.monotonic()
            pool = [threading.Thread(target=runner.Worker(rt).run_until_idle) for _ in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            rate = count / (time.monotonic() - start)
            with rt.db.transaction(readonly=True) as s:
                left = s.scalar(select(Job.id).where(Job.status != JobStatus.SUCCESS.value).limit(1))
            assert left is None, "a job did not end SUCCESS"
            print(f"{threads:9d} {rate:8.0f} {rate / empty:23.2f}x", flush=True)
    finally:
        rt.close()
        _drop(admin_url, url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["imports", "api", "claims"], choices=["imports", "api", "claims"])
    ap.add_argument("--imports", type=int, default=24)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3], help="worker processes per run")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--postgres", default=LOCAL_PG_ADMIN_URL, help="admin URL of the PostgreSQL server to use")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="openims-scalebench-"))
    print(f"{os.cpu_count()} cores")
    try:
        if "claims" in args.parts:
            bench_claims(work, args.postgres)
        if "api" in args.parts:
            bench_api(work, args.postgres, args.duration)
        if "imports" in args.parts:
            bench_imports(work, args.postgres, args.imports, args.workers)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

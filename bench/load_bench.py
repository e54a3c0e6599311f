"""Load benchmark (issue 16, item 8): N concurrent clients for S seconds against the scaled shape.

Usage:
  python bench/load_bench.py [--clients 200] [--duration 60] [--api-processes 2]
                             [--mix login=1,list=4,show=3,poll=3,import=1,direct=1]
                             [--postgres ADMIN_URL] [--drain-seconds 120]

It makes a throw-away database on the PostgreSQL server (``--postgres``, the local one of ``make
cluster`` by default) and starts ``--api-processes`` ``openims serve`` processes (``OPENIMS_WORKERS=0``,
keys in the database, argon2 at ``make run``'s cost) and one ``openims worker``, all on 127.0.0.1 and
one data directory (buckets and image store on this machine's disk; the cluster's S3 engine is left
out so that the figures are the API's). Client ``i`` talks to process ``i % N``, as behind a balancer.

Every client is a closed loop (one request at a time) of the mix: token requests (POST
/v3/auth/tokens), image lists (GET /v2/cloudimages), image shows (GET /v2/images/{id}), job polls
(GET /v1/{project}/jobs/{id}), IMS imports of a small qcow2 made with qemu-img at run time (POST
/v2/cloudimages/action; the worker converts them), and Glance direct uploads (POST /v2/images, PUT
…/file, 64 KiB). It prints per kind the count, errors, p50/p99/max; the total rate; the resident
memory of every server process at the start of the load, at its end and its peak; then how the import
jobs ended after at most ``--drain-seconds``. It asserts nothing (exit status 0 unless it could not run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from tests.support.load import KINDS, Load, Results, login_body, wait_jobs
from tests.support.server import ADMIN_PASSWORD, Api, ServerProcess

from openims.localcluster import LOCAL_PG_ADMIN_URL, ensure_database, reachable

# make run hashes passwords at the Settings defaults; the test helper lowers them, so restore them.
MAKE_RUN_HASHING = {"OPENIMS_ARGON2_TIME_COST": "3", "OPENIMS_ARGON2_MEMORY_KIB": "65536"}
DEFAULT_MIX = "login=1,list=4,show=3,poll=3,import=1,direct=1"


def parse_mix(text: str) -> dict[str, int]:
    mix: dict[str, int] = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind not in KINDS or not weight.isdigit():
            raise SystemExit(f"--mix: {part!r} is not KIND=WEIGHT with KIND one of {', '.join(KINDS)}")
        if int(weight):
            mix[kind] = int(weight)
    return mix


def rss_kib(pid: int) -> int | None:
    """Resident memory of a process and its children (uvicorn's worker, qemu-img), in KiB."""
    total, found = 0, False
    pending = [pid]
    while pending:
        p = pending.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
                found = True
        pending += [int(c) for c in children]
    return total if found else None


class MemoryWatch:
    """Samples each process's RSS every ``interval`` seconds: first, last and peak."""

    def __init__(self, pids: dict[str, int], interval: float = 2.0) -> None:
        self.pids = pids
        self.interval = interval
        self.first: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        for name, pid in self.pids.items():
            kib = rss_kib(pid)
            if kib is None:
                continue
            self.first.setdefault(name, kib)
            self.last[name] = kib
            self.peak[name] = max(kib, self.peak.get(name, 0))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemoryWatch:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def start_worker(data: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "OPENIMS_DATA_DIR": str(data)}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "openims.cli", "worker", "--concurrency", "1"], env=full,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def drop_database(admin_url: str, url: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


def prepare(base: str, work: Path) -> tuple[Api, str, str]:
    """Quota for every import of the run, the qcow2 in a bucket, one image to show from the start."""
    api = Api(base)
    r = api.http.put("/v1/cloudimages/quota", json={"quotas": {"resources": [{"type": "image", "quota": 100_000}]}})
    r.raise_for_status()
    disk = work / "load.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    api.upload("loadimages", "load.qcow2", disk)
    r = api.http.post("/v2/images", json={"name": "seed", "disk_format": "raw", "container_format": "bare"})
    r.raise_for_status()
    image_id: str = r.json()["id"]
    r = api.http.put(f"/v2/images/{image_id}/file", content=b"\0" * 65536,
                     headers={"Content-Type": "application/octet-stream"})
    r.raise_for_status()
    return api, "loadimages:load.qcow2", image_id


def report(results: Results, clients: int, memory: MemoryWatch) -> None:
    print(f"\n{clients} clients, {results.wall:.1f} s")
    print(f"{'kind':<8}{'count':>8}{'errors':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for row in results.table():
        print(f"{row['kind']:<8}{row['count']:>8}{row['errors']:>8}{row['p50_ms']:>10}{row['p99_ms']:>10}"
              f"{row['max_ms']:>10}")
    total = len(results.samples)
    print(f"{total} requests in {results.wall:.1f} s = {total / results.wall:.0f} req/s; "
          f"{len(results.errors())} errors")
    for line in results.summary().splitlines():
        if line.startswith("  "):  # the kinds of error seen, most frequent first
            print(line)
    print(f"\n{'process':<10}{'RSS start MiB':>15}{'RSS end MiB':>13}{'peak MiB':>10}")
    for name in memory.pids:
        if name in memory.first:
            print(f"{name:<10}{memory.first[name] / 1024:>15.0f}{memory.last[name] / 1024:>13.0f}"
                  f"{memory.peak[name] / 1024:>10.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--duration", type=float, default=60, help="seconds of load")
    ap.add_argument("--api-processes", type=int, default=2)
    ap.add_argument("--mix", default=DEFAULT_MIX)
    ap.add_argument("--postgres", default=LOCAL_PG_ADMIN_URL, help="admin URL of the PostgreSQL server to use")
    ap.add_argument("--drain-seconds", type=float, default=120,
                    help="how long to wait for the import jobs after the load")
    args = ap.parse_args()
    if not 1 <= args.clients <= 2000 or not 0 < args.duration <= 3600 or not 1 <= args.api_processes <= 8:
        raise SystemExit("--clients 1..2000, --duration up to 3600 s, --api-processes 1..8")
    mix = parse_mix(args.mix)
    if not reachable(args.postgres):
        raise SystemExit(f"PostgreSQL is not reachable at {args.postgres}: start it (the Debian service, or "
                         "make cluster) or name another with --postgres")
    work = Path(tempfile.mkdtemp(prefix="openims-loadbench-"))
    url = ensure_database(args.postgres, f"openims_load_{uuid.uuid4().hex[:8]}")
    env = {"OPENIMS_WORKERS": "0", "OPENIMS_KEY_STORE": "database",
           "OPENIMS_MASTER_KEY": Fernet.generate_key().decode(), **MAKE_RUN_HASHING}
    data = work / "data"
    servers = [ServerProcess(data, database_url=url, env=env) for _ in range(args.api_processes)]
    worker: subprocess.Popen[bytes] | None = None
    try:
        for server in servers:  # one after the other: the first migrates and bootstraps
            server.start(timeout=90)
        worker = start_worker(data, {**env, "OPENIMS_DATABASE_URL": url}, work / "worker.log")
        bases = [s.url for s in servers]
        api, image_url, seed = prepare(bases[0], work)
        print(f"openims load benchmark: {args.api_processes} API processes + 1 worker on PostgreSQL, 127.0.0.1; "
              f"{args.clients} clients for {args.duration:.0f} s; mix {mix}")
        pids = {f"api-{i + 1}": s.proc.pid for i, s in enumerate(servers) if s.proc is not None}
        pids["worker"] = worker.pid
        load = Load(bases, password=ADMIN_PASSWORD, image_url=image_url, request_timeout=120, image_ids=[seed])
        with MemoryWatch(pids) as memory:
            results = load.mixed(args.clients, args.duration, mix)
        report(results, args.clients, memory)
        started = time.monotonic()
        counts = wait_jobs(bases[0], api.token, api.project_id, results.job_ids, timeout=args.drain_seconds)
        print(f"\nimport jobs: {len(results.job_ids)} submitted, {counts} "
              f"({time.monotonic() - started:.0f} s after the load; INIT/RUNNING: still queued at --drain-seconds)")
        relogin = httpx.post(bases[-1] + "/v3/auth/tokens?nocatalog=1", json=login_body("admin", ADMIN_PASSWORD),
                             timeout=30)
        alive = all(httpx.get(b + "/v2", timeout=5).status_code == 200 for b in bases) and relogin.status_code == 201
        print(f"servers still serving (GET /v2 on each, a login): {'yes' if alive else 'NO'}")
    finally:
        for server in servers:
            server.stop()
        if worker is not None:
            stop_worker(worker)
        drop_database(args.postgres, url)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

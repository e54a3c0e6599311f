"""Load benchmark: N concurrent clients for S seconds with a configurable mix of requests.

Usage:
  python bench/load_bench.py [--clients 50 200] [--seconds 60] [--mix login=1,import=1,upload=1,list=4,poll=3]
                             [--database-url URL] [--url URL --password PW]

Without ``--url`` it starts one ``openims serve`` process with ``make run``'s defaults (SQLite, or
``--database-url``; the in-process worker; argon2 at its default cost). With ``--url`` it drives
a server that is already running (e.g. ``make run``; the password of its ``admin`` user is in
``data/admin-credentials``), and reports the server's memory only when it runs on this machine
(``--server-pid``, found by the port otherwise).

Every client is a closed loop of the mix: logins (POST /v3/auth/tokens), image imports (POST
/v2/cloudimages/action of a small qcow2), object uploads (PUT /obs/…, 64 KiB), image lists (GET
/v2/cloudimages) and job polls (GET /v1/{project}/jobs/{id}). First one client runs the same mix
alone for ``--baseline-seconds`` — the in-run baseline — then each client count runs for
``--seconds``. Per kind it prints count, errors, p50/p99/max and p50 relative to the lone
client's; then throughput, the server's RSS (now and peak) and whether every import job reached
SUCCESS. The exit status is 1 when any request failed or any job did not succeed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from tests.support.load import DEFAULT_MIX, KINDS, Load, Results, login_body, wait_jobs
from tests.support.server import ADMIN_PASSWORD, Api, ServerProcess

# make run hashes passwords at the Settings defaults; the test helper lowers them, so restore them.
MAKE_RUN_HASHING = {"OPENIMS_ARGON2_TIME_COST": "3", "OPENIMS_ARGON2_MEMORY_KIB": "65536"}


def parse_mix(text: str) -> dict[str, int]:
    mix: dict[str, int] = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind not in KINDS or not weight.isdigit():
            raise SystemExit(f"--mix: {part!r} is not KIND=WEIGHT with KIND one of {', '.join(KINDS)}")
        if int(weight):
            mix[kind] = int(weight)
    return mix


def rss_kib(pid: int | None) -> tuple[int, int] | None:
    """(current, peak) resident memory of the server process, in KiB."""
    if pid is None:
        return None
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except OSError:
        return None
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def pid_listening_on(port: int) -> int | None:
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    marker = "pid="
    if marker in out:
        return int(out.split(marker, 1)[1].split(",", 1)[0])
    return None


def prepare(base: str, password: str, work: Path) -> tuple[Api, str]:
    api = Api(base, password=password)
    # Enough image quota for every import the run submits (the default is 100 per project).
    r = api.http.put("/v1/cloudimages/quota", json={"quotas": {"resources": [{"type": "image", "quota": 100_000}]}})
    r.raise_for_status()
    disk = work / "load.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    api.upload("loadimages", "load.qcow2", disk)
    return api, "loadimages:load.qcow2"


def report(title: str, results: Results, baseline: dict[str, float], pid: int | None) -> None:
    print(f"\n{title}")
    print(f"{'kind':<8}{'count':>8}{'errors':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'p50 vs 1':>10}")
    for row in results.table():
        alone = baseline.get(row["kind"])
        ratio = f"{row['p50_ms'] / alone:9.1f}x" if alone else f"{'-':>10}"
        print(f"{row['kind']:<8}{row['count']:>8}{row['errors']:>8}{row['p50_ms']:>10}{row['p99_ms']:>10}"
              f"{row['max_ms']:>10}{ratio}")
    total = len(results.samples)
    print(f"{total} requests in {results.wall:.1f} s = {total / results.wall:.0f} req/s; "
          f"{len(results.errors())} errors")
    memory = rss_kib(pid)
    if memory:
        print(f"server RSS {memory[0] / 1024:.0f} MiB (peak {memory[1] / 1024:.0f} MiB)")
    for line in results.summary().splitlines():
        if line.startswith("  "):  # the kinds of error seen, most frequent first
            print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--baseline-seconds", type=float, default=10)
    ap.add_argument("--mix", default=",".join(f"{k}={w}" for k, w in DEFAULT_MIX.items()))
    ap.add_argument("--database-url", default="", help="for the server this script starts (default: SQLite)")
    ap.add_argument("--url", default="", help="drive this running server instead of starting one")
    ap.add_argument("--password", default=ADMIN_PASSWORD, help="the admin password of --url")
    ap.add_argument("--server-pid", type=int, default=None, help="the process of --url, for its memory")
    args = ap.parse_args()
    mix = parse_mix(args.mix)
    work = Path(tempfile.mkdtemp(prefix="openims-loadbench-"))
    server: ServerProcess | None = None
    failed = False
    try:
        if args.url:
            base, pid = args.url.rstrip("/"), args.server_pid or pid_listening_on(int(args.url.rsplit(":", 1)[1]))
            where = args.url
        else:
            server = ServerProcess(work / "data", database_url=args.database_url, env=MAKE_RUN_HASHING)
            server.start(timeout=60)
            base = server.url
            pid = server.proc.pid if server.proc else None
            where = "one openims serve process, " + ("PostgreSQL" if args.database_url else "SQLite")
        api, image_url = prepare(base, args.password, work)
        print(f"openims load benchmark: {where}; mix {mix}")

        def load() -> Load:
            return Load(base, password=args.password, image_url=image_url, request_timeout=120)

        alone = load().mixed(1, args.baseline_seconds, mix)
        baseline = {row["kind"]: row["p50_ms"] for row in alone.table()}
        report(f"baseline: 1 client, {args.baseline_seconds:.0f} s", alone, {}, pid)
        job_ids = list(alone.job_ids)
        for clients in args.clients:
            results = load().mixed(clients, args.seconds, mix)
            report(f"{clients} clients, {args.seconds:.0f} s", results, baseline, pid)
            job_ids += results.job_ids
            failed = failed or bool(results.errors())
        started = time.monotonic()
        counts = wait_jobs(base, api.token, api.project_id, job_ids, timeout=1800)
        print(f"\nimport jobs: {counts} (queue drained {time.monotonic() - started:.0f} s after the last client)")
        failed = failed or counts.get("SUCCESS", 0) != len(job_ids)
        relogin = httpx.post(base + "/v3/auth/tokens?nocatalog=1", json=login_body("admin", args.password), timeout=30)
        alive = httpx.get(base + "/v2", timeout=5).status_code == 200 and relogin.status_code == 201
        print(f"server still serving (GET /v2, a login): {'yes' if alive else 'NO'}")
        failed = failed or not alive
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

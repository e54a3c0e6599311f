"""API benchmark: read throughput and latency of one server process at 1,000 and 100,000 images.

Usage: python bench/api_bench.py [--sizes 1000 100000] [--duration 10] [--connections 8] [--database-url URL]

For each catalogue size, seeds that many images straight into the database, starts one
``openims serve`` process, and drives with ``wrk`` (8 keep-alive connections, 10 s each):

- ``GET /v2`` (IMS version document: no auth, no database) — the in-run baseline of the same server
- ``GET /v2/images/{id}`` (one image, native API)
- ``GET /v2/cloudimages?id=…`` (one image, IMS query)
- ``GET /v2/images?limit=25`` (first page) and the same from a marker half-way through

and prints req/s, p50 and p99 latency, and each route's throughput relative to the baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, insert, select
from tests.support.server import Api, ServerProcess

from openims.db.models import Image, Project


def seed(database_url: str, count: int) -> None:
    engine = create_engine(database_url)
    with engine.begin() as c:
        project_id = c.execute(select(Project.id).where(Project.name == "local-1")).scalar_one()
        base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        batch = []
        for i in range(count):
            t = base + dt.timedelta(seconds=i)
            batch.append({
                "id": str(uuid.uuid4()), "owner": project_id, "name": f"image-{i:06d}", "description": "",
                "status": "active", "visibility": "private", "image_type": "private", "protected": False,
                "disk_format": "qcow2", "container_format": "bare", "size": 1024 * 1024, "virtual_size": 1 << 30,
                "min_disk": 40, "min_ram": 0, "checksum": "0" * 32, "os_hash_algo": "sha512",
                "os_hash_value": "0" * 128, "location": None, "created_at": t, "updated_at": t,
                "properties": {"__os_type": "Linux", "__platform": "CentOS", "__os_version": "CentOS 7.0 64bit",
                               "__imagetype": "private", "__os_bit": "64", "virtual_env_type": "FusionCompute"},
            })
            if len(batch) == 5000:
                c.execute(insert(Image), batch)
                batch = []
        if batch:
            c.execute(insert(Image), batch)
    engine.dispose()


_REQS = re.compile(r"Requests/sec:\s+([\d.]+)")
_PCT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk(url: str, token: str | None, duration: int, connections: int) -> tuple[float, float, float]:
    cmd = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency", url]
    if token:
        cmd[1:1] = ["-H", f"X-Auth-Token: {token}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses from {url}:\n{out}")
    rps = float(_REQS.search(out).group(1))  # type: ignore[union-attr]
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    pct = {m.group(1): float(m.group(2)) * scale[m.group(3)] for m in _PCT.finditer(out)}
    return rps, pct["50"], pct["99"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--database-url", default="", help="default: SQLite in a temporary data dir")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk (make bench-api installs it)")
    work = Path(tempfile.mkdtemp(prefix="openims-apibench-"))
    try:
        for size in args.sizes:
            data = work / f"data-{size}"
            url = args.database_url or f"sqlite:///{data / 'openims.db'}"
            # First start creates the schema and the admin; then seed, then measure a fresh process.
            with ServerProcess(data, database_url=args.database_url, env={"OPENIMS_WORKERS": "0"}):
                pass
            seed(url, size)
            with ServerProcess(data, database_url=args.database_url, env={"OPENIMS_WORKERS": "0"}) as server:
                api = Api(server.url)
                ids = [i["id"] for i in api.http.get("/v2/cloudimages", params={"limit": 1000}).json()["images"]]
                middle = api.http.get("/v2/cloudimages", params={"limit": 1, "sort_key": "name", "sort_dir": "asc",
                                                                  "name": f"image-{size // 2:06d}"}).json()["images"]
                one = ids[len(ids) // 2]
                routes = [
                    ("GET /v2 (baseline)", f"{server.url}/v2", None),
                    ("GET /v2/images/{id}", f"{server.url}/v2/images/{one}", api.token),
                    ("GET /v2/cloudimages?id=", f"{server.url}/v2/cloudimages?id={one}", api.token),
                    ("GET /v2/images?limit=25", f"{server.url}/v2/images?limit=25", api.token),
                    ("GET /v2/images?limit=25&marker=mid", f"{server.url}/v2/images?limit=25&marker={middle[0]['id']}",
                     api.token),
                ]
                print(f"\n{size:,} images, one server process, {args.connections} keep-alive connections, "
                      f"{args.duration} s per route ({'PostgreSQL' if args.database_url else 'SQLite'})")
                print(f"{'route':38} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs baseline':>12}")
                baseline = None
                for name, target, token in routes:
                    rps, p50, p99 = wrk(target, token, args.duration, args.connections)
                    baseline = baseline or rps
                    print(f"{name:38} {rps:9.0f} {p50:8.2f} {p99:8.2f} {rps / baseline:11.2f}x", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

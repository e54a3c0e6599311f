"""Import benchmark: our end-to-end import vs plain ``qemu-img convert`` + one sha512 pass, same file, same run.

Usage: python bench/import_bench.py [--store file|s3] [--size-mib 1024] [--rounds 7] [--warmup 1] [--keep DIR]

Prints the times, the ratio import / baseline and the peak RSS of the server process (API +
in-process worker) and of the qemu-img children it ran (target < 200 MiB).

``--store file`` (default): the file in a bucket directory, the image store on files; the baseline is
convert + hash (target ≤ 1.10). ``--store s3``: the file on a local SeaweedFS engine and the image
store on it too; the baseline adds the S3 GET of the object (boto3's parallel download) before the
convert (target ≤ 1.25).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.server import Api, ServerProcess
from tests.support.stores import S3Stores

MiB = 1024 * 1024


def make_source(d: Path, size_mib: int) -> Path:
    raw = d / "bench.raw"
    with open(raw, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MiB))
    out = d / "bench.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(out)], check=True)
    raw.unlink()
    return out


def sha512_pass(path: Path) -> str:
    h = hashlib.sha512()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def s3_get(stores: S3Stores, work: Path) -> tuple[Path, float]:
    """The baseline's first step on S3: download the object (boto3's parallel ranged GETs)."""
    dest = work / "downloaded.qcow2"
    t0 = time.perf_counter()
    stores.client().download_file("bench", "bench.qcow2", str(dest))
    return dest, time.perf_counter() - t0


def s3_put(stores: S3Stores, path: Path) -> float:
    """Not in the baseline the target is set against, printed beside it: storing the converted image on
    the engine (boto3's parallel multipart upload), which an import into an S3 store must also do."""
    t0 = time.perf_counter()
    stores.client().upload_file(str(path), "bench", "baseline-output.qcow2")
    return time.perf_counter() - t0


def baseline(src: Path, work: Path, put: Callable[[Path], float] | None = None) -> tuple[float, float, float]:
    """Plain ``qemu-img convert`` of the source, then one sha512 pass over its output.

    Also times an fsync of the output afterwards: what the baseline would add to be as durable as
    an import, which is on disk before its job says SUCCESS.
    """
    out = work / "baseline.qcow2"
    # Start from a clean page cache state: with a GiB written per step, the kernel's writeback
    # of the previous step would otherwise decide the result.
    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", str(src), str(out)], check=True)
    t_convert = time.perf_counter() - t0
    t0 = time.perf_counter()
    sha512_pass(out)
    t_hash = time.perf_counter() - t0
    t0 = time.perf_counter()
    fd = os.open(out, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    t_sync = time.perf_counter() - t0
    if put is not None:
        t_sync = put(out)  # on S3, what the output costs to keep is its upload, not an fsync
    out.unlink()
    return t_convert, t_hash, t_sync


def import_once(api: Api, round_no: int) -> float:
    """POST the import and wait for the job's SUCCESS; delete the image again.

    The time is from just before the POST to the job's own ``end_time`` (milliseconds, same clock):
    polling every 50 ms would add up to one interval of latency and its CPU would compete with the
    import on this 2-core machine, so the job is polled only slowly, to learn that it ended.
    """
    subprocess.run(["sync"], check=True)
    posted = time.time()
    job_id = api.create(name=f"bench-{round_no}", image_url="bench:bench.qcow2", min_disk=40,
                        os_version="Ubuntu 18.04 server 64bit")
    while True:
        time.sleep(0.5)
        job = api.http.get(f"/v1/{api.project_id}/jobs/{job_id}").json()
        if job["status"] in ("SUCCESS", "FAIL"):
            break
    if job["status"] != "SUCCESS":
        raise SystemExit(f"import failed: {job}")
    ended = dt.datetime.strptime(job["end_time"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    api.http.delete(f"/v2/images/{job['entities']['image_id']}")
    return ended - posted


_STAGES = re.compile(r"stored as \w+ in [\d.]+ s \((?P<stages>[^)]*)\)")


def stage_medians(log: Path, *, skip: int) -> dict[str, float]:
    """Median seconds per pipeline stage, from the worker's "stored as" log lines."""
    per_stage: dict[str, list[float]] = {}
    lines = [m["stages"] for m in map(_STAGES.search, log.read_text().splitlines()) if m]
    for stages in lines[skip:]:
        for part in stages.split(", "):
            name, seconds, _ = part.rsplit(" ", 2)
            per_stage.setdefault(name, []).append(float(seconds))
    return {name: statistics.median(values) for name, values in per_stage.items()}


def cpu_jiffies() -> tuple[int, int]:
    """(all CPU time, stolen CPU time) of the machine so far, from /proc/stat, in jiffies."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[7]


def _rss_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return out


class ChildRssSampler(threading.Thread):
    """Samples the RSS of the server's child processes (qemu-img) while the import runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            for child in _children(self.pid):
                self.peak_kib = max(self.peak_kib, _rss_kib(child, "VmRSS"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024, help="allocated random data in the qcow2")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1, help="uncounted rounds first")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    ap.add_argument("--store", choices=("file", "s3"), default="file")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="openims-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"making a qcow2 with {args.size_mib} MiB of random data …", flush=True)
        src = make_source(work, args.size_mib)
        print(f"  {src} ({src.stat().st_size / MiB:.0f} MiB)")

        stores = S3Stores(work / "s3") if args.store == "s3" else None
        env = {**stores.env(), "OPENIMS_S3_PART_SIZE": str(8 * MiB)} if stores else {}
        with ServerProcess(work / "data", env=env) as server:
            assert server.proc is not None
            api = Api(server.url)
            if stores is not None:
                assert api.http.put("/obs/bench").status_code in (200, 201)
                stores.client().upload_file(str(src), "bench", "bench.qcow2")  # with the engine's own tools
            else:
                bucket_dir = server.data_dir / "obs" / "bench"
                bucket_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, bucket_dir / "bench.qcow2")  # an operator dropping the file in place
            gets: list[float] = []
            sampler = ChildRssSampler(server.proc.pid)
            sampler.start()
            converts: list[float] = []
            hashes: list[float] = []
            syncs: list[float] = []
            imports: list[float] = []
            # The first round(s) warm the page cache and the allocator and are not counted. Baseline
            # and import alternate which goes first, so a drift in the machine's speed hits both.
            for round_no in range(-args.warmup, args.rounds):
                if round_no == 0:
                    cpu_start = cpu_jiffies()
                def base() -> tuple[float, float, float, float]:
                    if stores is None:
                        return (0.0, *baseline(src, work))
                    got, t_get = s3_get(stores, work)
                    try:
                        return (t_get, *baseline(got, work, lambda p: s3_put(stores, p)))
                    finally:
                        got.unlink()

                if round_no % 2 == 0:
                    t_get, t_convert, t_hash, t_sync = base()
                    t_import = import_once(api, round_no)
                else:
                    t_import = import_once(api, round_no)
                    t_get, t_convert, t_hash, t_sync = base()
                label = "warm-up" if round_no < 0 else f"round {round_no + 1}"
                print(f"  {label}: get {t_get:.2f} s, convert {t_convert:.2f} s, sha512 {t_hash:.2f} s, "
                      f"import {t_import:.2f} s (ratio {t_import / (t_get + t_convert + t_hash):.2f})", flush=True)
                if round_no >= 0:
                    gets.append(t_get)
                    converts.append(t_convert)
                    hashes.append(t_hash)
                    syncs.append(t_sync)
                    imports.append(t_import)
            cpu_end = cpu_jiffies()
            sampler.stop.set()
            sampler.join()
            server_peak = _rss_kib(server.proc.pid, "VmHWM")
            stages = stage_medians(server.log, skip=args.warmup)

        if stores is not None:
            stores.close()
        t_convert, t_hash, t_import = statistics.median(converts), statistics.median(hashes), statistics.median(imports)
        t_get = statistics.median(gets)
        ratios = [i / (g + c + h) for g, c, h, i in zip(gets, converts, hashes, imports, strict=True)]
        target = 1.25 if stores is not None else 1.10
        print(f"\nmedians of {args.rounds} rounds ({args.store} store):")
        if stores is not None:
            print(f"S3 GET of the object (baseline) {t_get:7.2f} s")
        print(f"qemu-img convert (baseline)     {t_convert:7.2f} s")
        print(f"sha512 pass (baseline)          {t_hash:7.2f} s")
        print(f"baseline total                  {t_get + t_convert + t_hash:7.2f} s")
        print(f"openims import, POST → SUCCESS  {t_import:7.2f} s")
        for name, seconds in stages.items():
            print(f"  of which {name:<21s}{seconds:7.2f} s" + ("   (runs during checksum)" if name == "fsync" else ""))
        ratio = t_import / (t_get + t_convert + t_hash)
        print(f"ratio of the medians            {ratio:7.2f}   (target ≤ {target:.2f})")
        print(f"median of the round ratios      {statistics.median(ratios):7.2f}")
        t_sync = statistics.median(syncs)
        if stores is None:
            print(f"\nfsync of the baseline's output  {t_sync:7.2f} s   (an import is on disk before SUCCESS)")
            print(f"import / (baseline + fsync)     {t_import / (t_get + t_convert + t_hash + t_sync):7.2f}")
        else:
            print(f"\nS3 PUT of the baseline's output {t_sync:7.2f} s   (an import stores its image on the engine)")
            print(f"import / (baseline + PUT)       {t_import / (t_get + t_convert + t_hash + t_sync):7.2f}")
        total, stolen = (end - start for end, start in zip(cpu_end, cpu_start, strict=True))
        print(f"CPU time stolen by the hypervisor during the rounds: {100 * stolen / max(total, 1):.1f} %"
              " (a noisy neighbour slows both sides unevenly)")
        print(f"server peak RSS (API + worker)  {server_peak / 1024:7.1f} MiB")
        print(f"qemu-img peak RSS               {sampler.peak_kib / 1024:7.1f} MiB   (target < 200 MiB each)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

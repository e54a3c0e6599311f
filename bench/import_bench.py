"""Import benchmark: our end-to-end import vs plain ``qemu-img convert`` + one sha512 pass, same file, same run.

Usage: python bench/import_bench.py [--size-mib 1024] [--keep DIR]

Prints the times, the ratio import / (convert + hash) (target ≤ 1.1) and the peak RSS of the
server process (API + in-process worker) and of the qemu-img children it ran (target < 200 MiB).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.server import Api, ServerProcess

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
        while not self.stop.wait(0.02):
            for child in _children(self.pid):
                self.peak_kib = max(self.peak_kib, _rss_kib(child, "VmRSS"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024, help="allocated random data in the qcow2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="openims-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"making a qcow2 with {args.size_mib} MiB of random data …", flush=True)
        src = make_source(work, args.size_mib)
        print(f"  {src} ({src.stat().st_size / MiB:.0f} MiB)")

        with ServerProcess(work / "data") as server:
            assert server.proc is not None
            api = Api(server.url)
            bucket_dir = server.data_dir / "obs" / "bench"
            bucket_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, bucket_dir / "bench.qcow2")  # an operator dropping the file in place
            sampler = ChildRssSampler(server.proc.pid)
            sampler.start()
            converts, hashes, imports = [], [], []
            # Alternate baseline and import, flushing dirty pages first each time: with a GiB
            # written per step, the kernel's writeback state would otherwise decide the result.
            for round_no in range(args.rounds):
                out = work / "baseline.qcow2"
                subprocess.run(["sync"], check=True)
                t0 = time.perf_counter()
                subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", str(src), str(out)],
                               check=True)
                converts.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                sha512_pass(out)
                hashes.append(time.perf_counter() - t0)
                out.unlink()
                subprocess.run(["sync"], check=True)
                t0 = time.perf_counter()
                job_id = api.create(name=f"bench-{round_no}", image_url="bench:bench.qcow2", min_disk=40,
                                    os_version="Ubuntu 18.04 server 64bit")
                while True:
                    job = api.http.get(f"/v1/{api.project_id}/jobs/{job_id}").json()
                    if job["status"] in ("SUCCESS", "FAIL"):
                        break
                    time.sleep(0.05)
                imports.append(time.perf_counter() - t0)
                if job["status"] != "SUCCESS":
                    raise SystemExit(f"import failed: {job}")
                api.http.delete(f"/v2/images/{job['entities']['image_id']}")
                print(f"  round {round_no + 1}: convert {converts[-1]:.2f} s, sha512 {hashes[-1]:.2f} s, "
                      f"import {imports[-1]:.2f} s", flush=True)
            sampler.stop.set()
            sampler.join()
            server_peak = _rss_kib(server.proc.pid, "VmHWM")

        t_convert, t_hash, t_import = statistics.median(converts), statistics.median(hashes), statistics.median(imports)
        print(f"\nmedians of {args.rounds} rounds:")
        baseline = t_convert + t_hash
        print(f"qemu-img convert (baseline)     {t_convert:7.2f} s")
        print(f"sha512 pass (baseline)          {t_hash:7.2f} s")
        print(f"convert + hash                  {baseline:7.2f} s")
        print(f"openims import, POST → SUCCESS  {t_import:7.2f} s")
        print(f"ratio import / (convert + hash) {t_import / baseline:7.2f}   (target ≤ 1.10)")
        print(f"server peak RSS (API + worker)  {server_peak / 1024:7.1f} MiB")
        print(f"qemu-img peak RSS               {sampler.peak_kib / 1024:7.1f} MiB   (target < 200 MiB each)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

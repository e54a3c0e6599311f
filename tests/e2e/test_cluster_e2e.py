"""Scaled out on one machine: two API processes and three workers on PostgreSQL and SeaweedFS.

Every process shares the catalogue (PostgreSQL), the image data (S3) and the token keys (one key
directory, as a shared mount would be); none keeps anything the others need.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG, PG_ADMIN_URL
from tests.support.images import MiB, make_image
from tests.support.server import Api, ServerProcess
from tests.support.stores import IMAGE_BUCKET, S3Stores

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-cluster"),
              pytest.mark.skipif(not PG, reason="needs PostgreSQL on 127.0.0.1:5432")]

IMPORTS = 30
UPLOAD_LEASE = 4  # seconds; the workers' sweep runs every 2 s


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.db_name = f"openims_cluster_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        self.db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.db_name}"
        self.stores = S3Stores(root / "s3")
        self.data = root / "data"
        self.env = {**self.stores.env(), "OPENIMS_JOB_LEASE_SECONDS": "10", "OPENIMS_WORKERS": "0",
                    "OPENIMS_UPLOAD_LEASE_SECONDS": str(UPLOAD_LEASE)}
        self.apis = [ServerProcess(self.data, database_url=self.db_url, env=self.env) for _ in range(2)]
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self) -> Cluster:
        for api in self.apis:
            api.start()
        for i in range(3):
            self.start_worker(i)
        return self

    def start_worker(self, i: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env, "OPENIMS_DATA_DIR": str(self.data), "OPENIMS_DATABASE_URL": self.db_url}
        with open(self.root / f"worker-{i}.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "openims.cli", "worker"], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(60)
        for api in self.apis:
            api.stop()
        self.stores.close()
        with self.admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c.start()
    finally:
        c.stop()


def test_imports_through_both_api_processes_each_succeed_once(cluster: Cluster, tmp_path: Path) -> None:
    apis = [Api(a.url) for a in cluster.apis]
    src = make_image(tmp_path, "qcow2", seed=90)
    apis[0].upload("cluster-bucket", "disk.qcow2", src)
    job_ids: list[str] = []
    lock = threading.Lock()

    def submit(i: int) -> None:
        job_id = apis[i % 2].create(name=f"c-{i}", image_url="cluster-bucket:disk.qcow2", min_disk=1,
                                    os_version="Ubuntu 18.04 server 64bit")
        with lock:
            job_ids.append(job_id)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(IMPORTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(set(job_ids)) == IMPORTS
    jobs = [apis[n % 2].wait_job(job_id, timeout=180) for n, job_id in enumerate(job_ids)]
    assert [j["status"] for j in jobs] == ["SUCCESS"] * IMPORTS, [j for j in jobs if j["status"] != "SUCCESS"]
    image_ids = {j["entities"]["image_id"] for j in jobs}
    assert len(image_ids) == IMPORTS
    # One image per job, each stored once, nothing else in the store.
    listed = apis[1].http.get("/v2/cloudimages", params={"limit": 100}).json()["images"]
    assert {i["id"] for i in listed if i["name"].startswith("c-")} == image_ids
    assert sorted(cluster.stores.stored_images(cluster.data)) == sorted(image_ids)
    # The work was shared: more than one worker ran jobs.
    ran = [p for p in sorted(cluster.root.glob("worker-*.log")) if "finished" in p.read_text()]
    assert len(ran) >= 2, [p.name for p in ran]


KILLS = 20


def _busy_worker_pids(cluster: Cluster) -> set[int]:
    """Pids of worker processes holding a job lease now."""
    engine = create_engine(cluster.db_url)
    try:
        with engine.connect() as c:
            owners = c.execute(text("SELECT lease_owner FROM jobs "
                                    "WHERE status = 'RUNNING' AND lease_owner IS NOT NULL"))
            return {int(owner.split(":")[1]) for (owner,) in owners}
    finally:
        engine.dispose()


def test_workers_killed_mid_import_lose_and_duplicate_nothing(cluster: Cluster, tmp_path: Path) -> None:
    api = Api(cluster.apis[0].url)
    src = make_image(tmp_path, "qcow2", size=48 * 1024 * 1024, seed=91)  # long enough to be killed in
    api.upload("cluster-bucket", "slow.qcow2", src)
    def submit() -> str:
        return api.create(name=f"k-{len(job_ids)}", image_url="cluster-bucket:slow.qcow2", min_disk=1,
                          os_version="Ubuntu 18.04 server 64bit")

    job_ids: list[str] = []
    job_ids.extend(submit() for _ in range(KILLS))
    rng = random.Random(7)
    kills = 0
    deadline = time.monotonic() + 240
    while kills < KILLS and time.monotonic() < deadline:
        alive = {p.pid: p for p in cluster.workers if p.poll() is None}
        busy = sorted(_busy_worker_pids(cluster) & set(alive))
        if not busy:
            if all(api.http.get(f"/v1/{api.project_id}/jobs/{j}").json()["status"] in ("SUCCESS", "FAIL")
                   for j in job_ids[-3:]):
                job_ids.append(submit())  # keep imports in flight until every kill is made
            time.sleep(0.05)
            continue
        victim = alive[rng.choice(busy)]
        time.sleep(rng.uniform(0.0, 0.3))  # somewhere in the download, conversion or upload
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(30)
        kills += 1
        cluster.start_worker(100 + kills)
    assert kills == KILLS
    jobs = [api.wait_job(job_id, timeout=300) for job_id in job_ids]
    assert [j["status"] for j in jobs] == ["SUCCESS"] * len(job_ids), [
        (j["error_code"], j["fail_reason"]) for j in jobs if j["status"] != "SUCCESS"]
    image_ids = {j["entities"]["image_id"] for j in jobs}
    listed = api.http.get("/v2/cloudimages", params={"limit": 100}).json()["images"]
    assert sorted(i["id"] for i in listed if i["name"].startswith("k-")) == sorted(image_ids)  # no duplicates

    # What the killed workers left in the store (objects sealed but never recorded, open multipart
    # uploads) is removed by the orphan sweep; every image keeps exactly its own object.
    env = {**os.environ, **cluster.env, "OPENIMS_DATA_DIR": str(cluster.data),
           "OPENIMS_DATABASE_URL": cluster.db_url, "OPENIMS_ORPHAN_GRACE_SECONDS": "0"}
    sweep = subprocess.run([sys.executable, "-m", "openims.cli", "store", "sweep"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert sweep.returncode == 0, sweep.stderr
    every_image = {i["id"] for i in api.http.get("/v2/cloudimages", params={"limit": 100}).json()["images"]}
    stored = cluster.stores.stored_images(cluster.data)
    assert sorted(stored) == sorted(every_image)  # one object per image, no other
    assert cluster.stores.client().list_multipart_uploads(Bucket=IMAGE_BUCKET).get("Uploads", []) == []
    # The scratch space of the killed workers was given back by the workers started after them.
    reservations = cluster.data / "scratch" / ".reservations"
    live = {p.pid for p in cluster.workers if p.poll() is None}
    held = [json.loads(r.read_text())["pid"] for r in reservations.iterdir() if not r.name.startswith(".")]
    assert set(held) <= live, held
    work = cluster.data / "scratch" / "work"
    assert not work.exists() or len(list(work.iterdir())) <= len(held)


def test_api_process_killed_mid_upload_shows_no_partial_image(cluster: Cluster, tmp_path: Path) -> None:
    """A direct upload (PUT /v2/images/{id}/file) through one API process, which is SIGKILLed in the
    middle: the other process never shows the image active or serves its data, and the workers give it
    back (queued) within the upload lease, so the owner uploads again through the other process."""
    victim, other = cluster.apis
    api, watcher = Api(victim.url), Api(other.url)
    image_id = api.http.post("/v2/images", json={"name": "interrupted", "disk_format": "raw",
                                                  "container_format": "bare"}).raise_for_status().json()["id"]
    sent = [0]

    def slow_body() -> Iterator[bytes]:
        chunk = bytes(MiB)
        for _ in range(400):
            sent[0] += 1
            yield chunk
            time.sleep(0.01)

    outcome: list[object] = []

    def put() -> None:
        try:
            outcome.append(httpx.put(f"{victim.url}/v2/images/{image_id}/file", content=slow_body(), timeout=60,
                                     headers={"X-Auth-Token": api.token, "Content-Type": "application/octet-stream"}))
        except httpx.TransportError as exc:
            outcome.append(exc)

    uploader = threading.Thread(target=put, daemon=True)
    uploader.start()
    try:
        deadline = time.monotonic() + 60
        while sent[0] < 48 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert watcher.http.get(f"/v2/images/{image_id}").json()["status"] == "saving"
        victim.kill()
        killed_at = time.monotonic()
        uploader.join(30)
        assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError), outcome
        seen: set[str] = set()
        while time.monotonic() - killed_at < 4 * UPLOAD_LEASE + 10:
            image = watcher.http.get(f"/v2/images/{image_id}").json()
            seen.add(image["status"])
            if image["status"] == "queued":
                break
            # Never a partial image: no data is served while it is being given back.
            assert watcher.http.get(f"/v2/images/{image_id}/file").status_code != 200
            time.sleep(0.1)
        assert image["status"] == "queued" and seen <= {"saving", "queued"}, seen
        assert image["size"] is None and image["checksum"] is None
        assert time.monotonic() - killed_at < UPLOAD_LEASE + UPLOAD_LEASE / 2 + 5  # within the lease (+ a sweep)
        assert watcher.http.get(f"/v2/images/{image_id}/file").status_code == 204  # no data, as Glance

        disk = make_image(tmp_path, "raw", size=8 * MiB, seed=92)
        with open(disk, "rb") as f:
            r = watcher.http.put(f"/v2/images/{image_id}/file", content=f,
                                 headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        image = watcher.http.get(f"/v2/images/{image_id}").json()
        assert image["status"] == "active" and image["virtual_size"] == 8 * MiB
    finally:
        victim.start()  # the next tests have both API processes again
    # The dead process's multipart upload is aborted by the sweep; the image has its one object.
    assert [k for k in cluster.stores.stored_images(cluster.data) if k == image_id] == [image_id]

"""Concurrent clients against a real server: logins, imports, uploads, lists and job polls.

Shared by the concurrency tests (tests/e2e/test_concurrency_e2e.py) and ``bench/load_bench.py``.
Every client is a closed loop (one request at a time, the next as soon as the answer is in), so N
clients keep N requests in flight. Each request is recorded with its kind, status and latency; a
request counts as an error when its status is not the one the API documents for success, or when
it is not answered within ``request_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

KINDS = ("login", "import", "upload", "list", "poll", "show", "direct")
# Expected status per kind: anything else is an error. ``show`` is GET /v2/images/{id} of an image the
# run made; ``direct`` a Glance direct upload (POST /v2/images, then PUT …/file: its status is the PUT's,
# or the POST's when that failed).
EXPECTED = {"login": 201, "import": 200, "upload": 201, "list": 200, "poll": 200, "show": 200, "direct": 204}
DEFAULT_MIX = {"login": 1, "import": 1, "upload": 1, "list": 4, "poll": 3}


@dataclass
class Sample:
    kind: str
    status: int  # 0: no answer (timeout or connection error)
    seconds: float
    detail: str = ""


@dataclass
class Results:
    samples: list[Sample] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    image_ids: list[str] = field(default_factory=list)  # made by ``direct``, shown by ``show``
    wall: float = 0.0

    def errors(self) -> list[Sample]:
        return [s for s in self.samples if s.status != EXPECTED[s.kind]]

    def by_kind(self) -> dict[str, list[Sample]]:
        out: dict[str, list[Sample]] = defaultdict(list)
        for s in self.samples:
            out[s.kind].append(s)
        return out

    def slowest(self) -> float:
        return max((s.seconds for s in self.samples), default=0.0)

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for kind, samples in sorted(self.by_kind().items()):
            times = sorted(s.seconds for s in samples)
            rows.append({
                "kind": kind, "count": len(samples),
                "errors": sum(1 for s in samples if s.status != EXPECTED[kind]),
                "p50_ms": round(percentile(times, 50) * 1000, 1), "p99_ms": round(percentile(times, 99) * 1000, 1),
                "max_ms": round(times[-1] * 1000, 1) if times else 0.0,
            })
        return rows

    def summary(self) -> str:
        lines = [f"{'kind':<8}{'count':>8}{'errors':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}"]
        for r in self.table():
            lines.append(f"{r['kind']:<8}{r['count']:>8}{r['errors']:>8}{r['p50_ms']:>10}{r['p99_ms']:>10}"
                         f"{r['max_ms']:>10}")
        errors = self.errors()
        if errors:
            seen: dict[str, int] = defaultdict(int)
            for e in errors:
                seen[f"{e.kind} {e.status} {e.detail[:160]}"] += 1
            lines += [f"  {n} x {what}" for what, n in sorted(seen.items(), key=lambda x: -x[1])[:10]]
        return "\n".join(lines)


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[min(98, max(0, int(pct) - 1))] \
        if pct < 100 else sorted_values[-1]


def login_body(user: str, password: str, domain: str = "admin", project: str = "local-1") -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "password": password, "domain": {"name": domain}}}},
        "scope": {"project": {"name": project, "domain": {"name": domain}}}}}


class Load:
    """N clients of one user against ``base`` (several: client i talks to ``base[i % len]``, as behind a
    balancer); the image file ``bucket:key`` must already exist."""

    def __init__(self, base: str | list[str], *, password: str, image_url: str, user: str = "admin",
                 request_timeout: float = 60.0, upload_bytes: int = 64 * 1024,
                 image_ids: list[str] | None = None) -> None:
        self.bases = [base] if isinstance(base, str) else list(base)
        self.base = self.bases[0]
        self.password = password
        self.user = user
        self.image_url = image_url
        self.request_timeout = request_timeout
        self.upload_payload = random.Random(7).randbytes(upload_bytes)
        self.results = Results(image_ids=list(image_ids or []))
        self._token = ""
        self._project = ""
        self._counter = 0

    async def _prepare(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/v3/auth/tokens?nocatalog=1", json=login_body(self.user, self.password))
        r.raise_for_status()
        self._token = r.headers["X-Subject-Token"]
        self._project = r.json()["token"]["project"]["id"]

    async def _one(self, client: httpx.AsyncClient, kind: str, rng: random.Random) -> None:
        headers = {"X-Auth-Token": self._token}
        self._counter += 1
        n = self._counter
        start = time.perf_counter()
        status, detail = 0, ""
        try:
            if kind == "login":
                r = await client.post("/v3/auth/tokens?nocatalog=1", json=login_body(self.user, self.password))
            elif kind == "import":
                r = await client.post("/v2/cloudimages/action", headers=headers, json={
                    "name": f"load-{n}", "image_url": self.image_url, "min_disk": 1, "os_version": "CentOS 7.0 64bit"})
                if r.status_code == 200:
                    self.results.job_ids.append(r.json()["job_id"])
            elif kind == "upload":
                r = await client.put(f"/obs/loadbucket/obj-{n % 50}", headers=headers, content=self.upload_payload)
            elif kind == "show":
                image_ids = self.results.image_ids
                if image_ids:
                    r = await client.get(f"/v2/images/{rng.choice(image_ids)}", headers=headers)
                else:
                    r = await client.get("/v2/images", headers=headers, params={"limit": 5})
            elif kind == "direct":
                r = await client.post("/v2/images", headers=headers, json={
                    "name": f"direct-{n}", "disk_format": "raw", "container_format": "bare"})
                if r.status_code == 201:
                    image_id = r.json()["id"]
                    r = await client.put(f"/v2/images/{image_id}/file", content=self.upload_payload,
                                         headers={**headers, "Content-Type": "application/octet-stream"})
                    if r.status_code == 204:
                        self.results.image_ids.append(image_id)
            elif kind == "list":
                r = await client.get("/v2/cloudimages", headers=headers, params={"limit": 20})
            else:
                job_ids = self.results.job_ids
                if job_ids:
                    r = await client.get(f"/v1/{self._project}/jobs/{rng.choice(job_ids)}", headers=headers)
                else:
                    r = await client.get("/v2/images", headers=headers, params={"limit": 5})
            status = r.status_code
            if status != EXPECTED[kind]:
                detail = r.text
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}"
        self.results.samples.append(Sample(kind, status, time.perf_counter() - start, detail))

    async def _client(self, index: int, kinds: list[str], deadline: float | None, burst: str | None) -> None:
        rng = random.Random(index)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        base = self.bases[index % len(self.bases)]
        async with httpx.AsyncClient(base_url=base, timeout=self.request_timeout, limits=limits) as client:
            if burst is not None:
                await self._one(client, burst, rng)
                return
            while deadline is not None and time.monotonic() < deadline:
                await self._one(client, rng.choice(kinds), rng)

    async def _run(self, clients: int, seconds: float, mix: dict[str, int], burst: str | None) -> Results:
        async with httpx.AsyncClient(base_url=self.base, timeout=self.request_timeout) as c:
            await self._prepare(c)
        kinds = [k for k, weight in mix.items() for _ in range(weight)]
        start = time.monotonic()
        deadline = None if burst else start + seconds
        await asyncio.gather(*(self._client(i, kinds, deadline, burst) for i in range(clients)))
        self.results.wall = time.monotonic() - start
        return self.results

    def burst(self, clients: int, kind: str) -> Results:
        """``clients`` requests of one kind, all sent at the same moment."""
        return asyncio.run(self._run(clients, 0, {}, kind))

    def mixed(self, clients: int, seconds: float, mix: dict[str, int] | None = None) -> Results:
        return asyncio.run(self._run(clients, seconds, mix or DEFAULT_MIX, None))


def wait_jobs(base: str, token: str, project_id: str, job_ids: list[str], timeout: float) -> dict[str, int]:
    """Poll until every job has ended; how many ended in each status (RUNNING/INIT left at timeout)."""
    pending = set(job_ids)
    done: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=30, headers={"X-Auth-Token": token}) as c:
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                r = c.get(f"/v1/{project_id}/jobs/{job_id}")
                r.raise_for_status()
                status = r.json()["status"]
                if status in ("SUCCESS", "FAIL"):
                    done[job_id] = status
                    pending.discard(job_id)
            if pending:
                time.sleep(0.3)
        for job_id in pending:
            done[job_id] = c.get(f"/v1/{project_id}/jobs/{job_id}").json()["status"]
    counts: dict[str, int] = defaultdict(int)
    for status in done.values():
        counts[status] += 1
    return dict(counts)

"""Operations: ``/metrics`` (Prometheus), ``/healthz`` (alive) and ``/readyz`` (ready to serve).

All three are unauthenticated: balancers, orchestrators and Prometheus call them without a token.
``/metrics`` may be limited to source networks (``OPENIMS_METRICS_ALLOW``). docs/operations.md says
what each answers and how to use it.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable

import anyio
import anyio.to_thread
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from openims import __version__, health, metrics
from openims.api.auth import RuntimeDep
from openims.api.deps import api_router
from openims.api.openapi_docs import OBJECT, STRING, array, json_response, obj
from openims.catalog import jobs
from openims.errors import ImsForbidden, ServiceUnavailable
from openims.runtime import Runtime

router = api_router(tags=["operations"])
log = logging.getLogger("openims.api")

# /readyz answers within this long: a check still running then (an engine that does not answer, a
# database connection hanging in connect) counts as failed and is left to finish in its thread.
READY_TIMEOUT = 5.0
# Threads the checks may hold at once, apart from the request handlers' (a hanging check must not
# take the API's threads).
_PROBE_THREADS = 8


class _AtScrape:
    """What is read when Prometheus scrapes: the build, and the job queue from the database."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("openims_build_info", "The running version (always 1).", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        try:
            with self.rt.db.session() as s:
                depth = jobs.queue_depth(s, self.rt.clock())
        except (SQLAlchemyError, ServiceUnavailable) as exc:
            # The rest of the scrape still answers; /readyz tells the database is away.
            log.warning("metrics: the job queue could not be read (%s)", type(exc).__name__)
            return
        queued = GaugeMetricFamily("openims_jobs_queued", "Top-level jobs by status: INIT waits for a worker, "
                                   "RUNNING is held by one (read from the database at scrape time).",
                                   labels=["status"])
        oldest = GaugeMetricFamily("openims_jobs_oldest_age_seconds", "Age of the oldest top-level job in each "
                                   "status, since it was submitted (0 when there is none).", labels=["status"])
        for status, (count, age) in depth.items():
            queued.add_metric([status.value], count)
            oldest.add_metric([status.value], age)
        yield queued
        yield oldest


def _allowed(rt: Runtime, request: Request) -> bool:
    networks = rt.settings.metrics_networks
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # an IPv4 peer on a dual-stack socket
    return any(address in network for network in networks)


_READINESS = obj("status", "failed", "checks", status={"type": "string", "enum": ["ok", "unavailable"]},
                 failed=array(STRING), checks=OBJECT)


@router.get("/metrics", summary="Prometheus metrics (text exposition format)", response_class=Response,
            responses={200: {"description": "The metrics", "content": {"text/plain": {"schema": STRING}}},
                       403: {"description": "Not available to this address (OPENIMS_METRICS_ALLOW)"}})
async def prometheus_metrics(request: Request, rt: RuntimeDep) -> Response:
    if not _allowed(rt, request):
        raise ImsForbidden("The metrics are not available to this address.")
    body, content_type = await run_in_threadpool(metrics.exposition, [_AtScrape(rt)])
    return Response(body, media_type=content_type)


@router.get("/healthz", summary="Liveness: the process answers (no database access)",
            responses={200: json_response("Alive", obj("status", status={"type": "string", "enum": ["ok"]}))})
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: database, schema, keys and stores usable (503 naming what is not)",
            responses={200: json_response("Ready", _READINESS),
                       503: json_response("Not ready: what failed", _READINESS)})
async def readyz(request: Request, rt: RuntimeDep) -> JSONResponse:
    state = request.app.state
    if getattr(state, "probe_limiter", None) is None:
        state.probe_limiter = anyio.CapacityLimiter(_PROBE_THREADS)
    results: dict[str, health.Check] = {}

    async def run(name: str, check: Callable[[], str]) -> None:
        results[name] = await anyio.to_thread.run_sync(health.run, name, check, abandon_on_cancel=True,
                                                       limiter=state.probe_limiter)

    checks = health.checks(rt)
    with anyio.move_on_after(READY_TIMEOUT):
        async with anyio.create_task_group() as tg:
            for name, check in checks.items():
                tg.start_soon(run, name, check)
    for name in checks:
        if name not in results:
            log.warning("readiness: %s did not answer within %.0f s", name, READY_TIMEOUT)
            results[name] = health.Check(False, f"no answer within {READY_TIMEOUT:g} s")
    failed = [name for name in checks if not results[name].ok]
    body = {"status": "unavailable" if failed else "ok", "failed": failed,
            "checks": {name: {"ok": results[name].ok, "detail": results[name].detail} for name in checks}}
    return JSONResponse(body, status_code=503 if failed else 200)

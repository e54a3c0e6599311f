"""The service's Prometheus metrics: every metric object, in one place, and their exposition.

A leaf like ``units``: it imports nothing of ours, so any layer may count (the API's middleware and
auth, the catalog's job state machine, the worker). What is counted is decided at those boundaries;
``imaging`` and ``objects`` count nothing themselves. docs/operations.md lists every metric.

Label values are always bounded: route *templates* (``/v2/images/{image_id}``), job types, a fixed
set of methods and causes — never a raw path, an id or a user-supplied string.

Several processes on one host (``openims serve`` beside ``openims worker``s) share their counters
through prometheus-client's multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set before the
process starts (prometheus-client reads it at import): each process writes its values to files in
that directory, and any API process of the host serves the sum of all of them. Without it, each
process keeps its own values in memory (the default registry, with the process and GC metrics).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# The HTTP methods that get their own label value; anything else a client sends counts as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The route label of a request no route matched (404s for unknown paths, 413s refused before routing).
UNMATCHED = "<unmatched>"

HTTP_REQUESTS = Counter(
    "openims_http_requests", "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "openims_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response (streamed bodies included), by method, "
    "route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0))

JOBS_STARTED = Counter(
    "openims_jobs_started", "Job attempts a worker started (a job retried after a crash counts again).",
    ["job_type"])
JOBS_FINISHED = Counter(
    "openims_jobs_finished", "Jobs that ended, by type and final status (SUCCESS or FAIL), counted once committed.",
    ["job_type", "status"])
JOB_DURATION = Histogram(
    "openims_job_duration_seconds", "Time from a job's first claim to its end (all attempts and waits), by type.",
    ["job_type"],
    buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0))
JOBS_INTERRUPTED = Counter(
    "openims_job_attempts_interrupted",
    "Job attempts that ended without ending their job, by type and reason: database or storage (retried "
    "later), deferred (waits, e.g. for scratch space), handed_back (worker stopping), lease_lost.",
    ["job_type", "reason"])

IMPORTED_BYTES = Counter(
    "openims_imported_bytes", "Bytes of image data stored by imports that succeeded, by job type.", ["job_type"])
EXPORTED_BYTES = Counter("openims_exported_bytes", "Bytes of image files exported into buckets.")
UPLOADED_BYTES = Counter(
    "openims_upload_received_bytes",
    "Bytes received by direct uploads: kind file (PUT /v2/images/{id}/file) or stage (PUT …/stage).", ["kind"])
QEMU_FAILURES = Counter(
    "openims_qemu_img_failures",
    "qemu-img runs that failed, by cause (missing, timeout, cpu_limit, output_limit, crashed, write_error, "
    "refused, bad_output).", ["cause"])

TOKENS_ISSUED = Counter("openims_tokens_issued", "Tokens issued by POST /v3/auth/tokens, by method.", ["method"])
AUTH_FAILURES = Counter(
    "openims_auth_failures", "Refused authentications, by method: password, token, signature.", ["method"])
RATE_LIMITED = Counter(
    "openims_rate_limited",
    "Requests refused by a rate limit (429), by limit: login_user, login_source, signature_key, signature_source, "
    "token_user.", ["limit"])
AUDIT_FAILURES_NOT_TRACED = Counter(
    "openims_audit_failures_not_traced",
    "Failed authentications left out of the audit trail, their source over OPENIMS_AUDIT_FAILED_AUTH_PER_SOURCE.")
RATE_LIMIT_ERRORS = Counter(
    "openims_rate_limit_store_errors",
    "Rate-limit counter reads or writes that failed (the request was let through).")


def method_label(method: str) -> str:
    return method if method in _METHODS else "other"


# The children of the two request metrics per label set, found once: ``labels()`` costs more than the
# counting itself, on every request. Bounded as the label values are.
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method_label(method), route, status)
    children = _request_children.get(key)
    if children is None:
        labels = (key[0], route, str(status))
        children = _request_children[key] = (HTTP_REQUESTS.labels(*labels), HTTP_DURATION.labels(*labels))
    children[0].inc()
    children[1].observe(seconds)


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode, when this process runs in it."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _ThisProcess(Collector):
    """The default registry (this process's metrics, process and GC), as part of one scrape."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def exposition(extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The text of one scrape and its content type: the counters (of this process, or of every process
    of the host in multiprocess mode) and ``extra`` collectors read at scrape time (queue depth …)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST

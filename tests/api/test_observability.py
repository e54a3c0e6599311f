"""/metrics, /healthz, /readyz and the access log, through HTTP (worker run in-process).

The counters are the process's own (prometheus-client's default registry), shared by every test of
the session: each test compares a scrape after with a scrape before.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from openims import logs
from openims.api.app import create_app
from openims.clock import ManualClock
from openims.runtime import Runtime, build_runtime
from openims.worker.runner import Worker
from tests.api.test_images_api import VALID, create, upload
from tests.api.test_signed_requests import Signed, new_key, user_id_of
from tests.conftest import login, make_settings, password_auth
from tests.support.images import make_image
from tests.support.server import free_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


class TestMetrics:
    def test_requests_tokens_and_jobs_are_counted(self, client: TestClient, runtime: Runtime,
                                                  tmp_path: Path) -> None:
        before = scrape(client)
        token = login(client)
        headers = {"X-Auth-Token": token}
        assert client.get("/v2/cloudimages", headers=headers).status_code == 200
        missing = "0123456789abcdef0123456789abcdef"
        assert client.get(f"/v2/images/{missing}", headers=headers).status_code == 404
        assert client.get("/no/such/path").status_code == 404
        # Refused logins and tokens, each counted by its method.
        assert client.post("/v3/auth/tokens", json=password_auth("admin", "wrong")).status_code == 401
        assert client.get("/v2/cloudimages", headers={"X-Auth-Token": "not-a-token"}).status_code == 401
        # An import, run by the worker.
        upload(client, headers, "bkt", "disk.qcow2", make_image(tmp_path / "src", "qcow2"))
        assert create(client, headers, **VALID).status_code == 200
        assert Worker(runtime).run_until_idle() == 1
        after = scrape(client)

        counter = "openims_http_requests_total"
        assert moved(before, after, counter, method="POST", route="/v3/auth/tokens", status="201") == 1
        assert moved(before, after, counter, method="GET", route="/v2/cloudimages", status="200") == 1
        assert moved(before, after, counter, method="GET", route="/v2/images/{image_id}", status="404") == 1
        assert moved(before, after, counter, method="GET", route="<unmatched>", status="404") == 1
        assert moved(before, after, counter, method="PUT", route="/obs/{bucket}/{key}", status="201") == 1
        assert moved(before, after, "openims_http_request_duration_seconds_count", method="GET",
                     route="/v2/images/{image_id}", status="404") == 1
        assert moved(before, after, "openims_http_request_duration_seconds_bucket", method="GET",
                     route="/v2/images/{image_id}", status="404", le="+Inf") == 1
        # Route templates only: no label carries an id or a raw path.
        routes = {dict(labels).get("route") for (name, labels) in after if name == counter}
        assert not any(missing in r or r.startswith("/no/") for r in routes if r)

        assert moved(before, after, "openims_tokens_issued_total", method="password") == 1
        assert moved(before, after, "openims_auth_failures_total", method="password") == 1
        assert moved(before, after, "openims_auth_failures_total", method="token") == 1

        job = "imsImportImageJob"
        assert moved(before, after, "openims_jobs_started_total", job_type=job) == 1
        assert moved(before, after, "openims_jobs_finished_total", job_type=job, status="SUCCESS") == 1
        assert moved(before, after, "openims_job_duration_seconds_count", job_type=job) == 1
        assert moved(before, after, "openims_imported_bytes_total", job_type=job) > 0
        assert value(after, "openims_build_info", version=runtime_version()) == 1

    def test_failed_jobs_and_signatures_are_counted(self, client: TestClient, runtime: Runtime,
                                                    admin_headers: dict[str, str], tmp_path: Path) -> None:
        before = scrape(client)
        client.put("/obs/bkt", headers=admin_headers)
        # A file qemu-img refuses: a qcow2 header on nothing.
        damaged = make_image(tmp_path / "src", "qcow2")
        data = damaged.read_bytes()
        upload(client, admin_headers, "bkt", "disk.qcow2", _truncated(tmp_path, data))
        create(client, admin_headers, **VALID)
        Worker(runtime).run_until_idle()
        ak, sk = new_key(client, admin_headers, user_id_of(runtime, "admin"))
        project_id = client.get("/v3/auth/projects", headers=admin_headers).json()["projects"][0]["id"]
        signed = Signed(client, runtime, ak, sk, project_id=project_id)
        assert signed("GET", "/v2/cloudimages").status_code == 200
        assert Signed(client, runtime, ak, "wrong-secret", project_id=project_id)(
            "GET", "/v2/cloudimages").status_code == 401
        after = scrape(client)

        assert moved(before, after, "openims_jobs_finished_total", job_type="imsImportImageJob", status="FAIL") == 1
        assert moved(before, after, "openims_auth_failures_total", method="signature") == 1
        assert sum(moved(before, after, "openims_qemu_img_failures_total", cause=c)
                   for c in ("refused", "output_limit")) == 1

    def test_queue_depth_is_read_at_scrape_time(self, client: TestClient, runtime: Runtime,
                                                admin_headers: dict[str, str], clock: ManualClock) -> None:
        assert create(client, admin_headers, **VALID).status_code == 200
        clock.advance(90)
        samples = scrape(client)
        assert value(samples, "openims_jobs_queued", status="INIT") == 1
        assert value(samples, "openims_jobs_queued", status="RUNNING") == 0
        assert value(samples, "openims_jobs_oldest_age_seconds", status="INIT") == pytest.approx(90, abs=1)

    def test_allow_list_refuses_other_networks(self, runtime: Runtime) -> None:
        runtime.settings.metrics_allow = "10.0.0.0/8, 2001:db8::/32"
        app = create_app(runtime)
        with TestClient(app, client=("192.168.1.5", 40000), raise_server_exceptions=False) as outside:
            r = outside.get("/metrics")
            assert r.status_code == 403
            assert r.json()["error"]["code"] == "IMG.0026" and "metrics" in r.json()["error"]["message"]
            assert "X-Request-Id" in r.headers
            # The probes stay open.
            assert outside.get("/healthz").status_code == 200
        with TestClient(app, client=("testclient", 40000), raise_server_exceptions=False) as unknown:
            assert unknown.get("/metrics").status_code == 403
        for address in ("10.1.2.3", "::ffff:10.9.9.9", "2001:db8::1"):
            with TestClient(app, client=(address, 40000), raise_server_exceptions=False) as inside:
                assert inside.get("/metrics").status_code == 200, address

    def test_allow_list_must_be_networks(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="not-a-net"):
            make_settings(tmp_path, metrics_allow="10.0.0.0/8,not-a-net")


def _truncated(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "cut.qcow2"
    path.write_bytes(data[: len(data) // 2])
    return path


def runtime_version() -> str:
    from openims import __version__

    return __version__


@contextmanager
def schema_revision(runtime: Runtime, revision: str | None) -> Iterator[None]:
    """The database's schema revision set to ``revision`` (None: its version table gone) for the block.

    Put back after: the PostgreSQL test database is shared by the session (its tables are only emptied).
    """
    with runtime.db.transaction() as s:
        at = s.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        if revision is None:
            s.execute(text("ALTER TABLE alembic_version RENAME TO alembic_version_away"))
        else:
            s.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    try:
        yield
    finally:
        with runtime.db.transaction() as s:
            if revision is None:
                s.execute(text("ALTER TABLE alembic_version_away RENAME TO alembic_version"))
            else:
                s.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": at})


class TestProbes:
    def test_healthz_touches_nothing(self, client: TestClient) -> None:
        r = client.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}

    def test_readyz_reports_each_check(self, client: TestClient) -> None:
        r = client.get("/readyz")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "ok" and body["failed"] == []
        assert set(body["checks"]) == {"database", "migrations", "keys", "image_store", "buckets"}
        assert all(c["ok"] for c in body["checks"].values())

    def test_readyz_503_when_the_schema_is_behind(self, client: TestClient, runtime: Runtime) -> None:
        with schema_revision(runtime, "0001"):
            r = client.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable" and body["failed"] == ["migrations"]
        assert "0001" in body["checks"]["migrations"]["detail"]
        assert "openims db upgrade" in body["checks"]["migrations"]["detail"]

    def test_readyz_accepts_a_newer_schema(self, client: TestClient, runtime: Runtime) -> None:
        # A rolling upgrade: a newer release migrated the database while this one still serves.
        with schema_revision(runtime, "ffff_future"):
            r = client.get("/readyz")
        assert r.status_code == 200, r.text
        assert "newer" in r.json()["checks"]["migrations"]["detail"]

    def test_readyz_503_when_the_version_table_is_gone(self, client: TestClient, runtime: Runtime) -> None:
        with schema_revision(runtime, None):
            r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["failed"] == ["migrations"]

    def test_readyz_503_when_the_image_store_is_gone(self, client: TestClient, runtime: Runtime) -> None:
        root = runtime.settings.image_dir
        root.rename(root.with_name("images-moved"))
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["failed"] == ["image_store"]

    def test_readyz_503_when_the_database_is_unreachable(self, tmp_path: Path) -> None:
        # Nothing listens on that port: every connection is refused.
        url = f"postgresql+psycopg://openims@127.0.0.1:{free_port()}/openims"
        rt = build_runtime(make_settings(tmp_path / "data", url), upgrade=False)
        try:
            with TestClient(create_app(rt), raise_server_exceptions=False) as c:
                assert c.get("/healthz").status_code == 200
                r = c.get("/readyz")
                assert r.status_code == 503, r.text
                body = r.json()
                assert {"database", "migrations"} <= set(body["failed"])
                assert body["checks"]["keys"]["ok"] and body["checks"]["image_store"]["ok"]
                # What failed is said in general words: no host, port or driver message to anyone.
                assert "127.0.0.1" not in r.text
                # The scrape still answers, without the queue it cannot read.
                metrics = c.get("/metrics")
                assert metrics.status_code == 200 and "openims_jobs_queued" not in metrics.text
        finally:
            rt.close()


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """The access log as JSON lines (the formatter of OPENIMS_LOG_FORMAT=json)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("openims.access")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


class TestAccessLog:
    def test_one_line_per_request_with_who_and_what(self, client: TestClient, admin_headers: dict[str, str],
                                                    access_lines: io.StringIO) -> None:
        r = client.get("/v2/images/0123456789abcdef0123456789abcdef", headers=admin_headers)
        assert r.status_code == 404
        client.get("/image/v2/images", headers=admin_headers)
        lines = [json.loads(line) for line in access_lines.getvalue().splitlines()]
        assert len(lines) == 2
        first, second = lines
        assert first["logger"] == "openims.access" and first["level"] == "INFO"
        assert first["method"] == "GET" and first["route"] == "/v2/images/{image_id}" and first["status"] == 404
        assert first["request_id"] == r.headers["X-Request-Id"]
        assert first["duration_ms"] >= 0 and "time" in first and first["message"].startswith("GET /v2/images/")
        assert first["user_id"] and first["account"] and first["project"]
        # A prefixed path is logged by the route it reached.
        assert second["route"] == "/v2/images" and second["status"] == 200

    def test_login_lines_name_the_user_and_probes_are_quiet(self, client: TestClient,
                                                            access_lines: io.StringIO) -> None:
        login(client)
        client.get("/healthz")
        login_line, probe = (json.loads(line) for line in access_lines.getvalue().splitlines())
        assert login_line["route"] == "/v3/auth/tokens" and login_line["user_id"] and login_line["account"]
        assert probe["route"] == "/healthz" and probe["level"] == "DEBUG"

    def test_access_log_off_writes_no_line_but_still_counts(self, tmp_path: Path, access_lines: io.StringIO) -> None:
        # OPENIMS_ACCESS_LOG=off: for a deployment whose balancer logs each request already.
        settings = make_settings(tmp_path / "quiet", f"sqlite:///{tmp_path / 'quiet.db'}", access_log=False)
        rt = build_runtime(settings, upgrade=True)
        try:
            with TestClient(create_app(rt)) as c:
                assert c.get("/v2").status_code == 200
                assert 'route="/v2",status="200"' in c.get("/metrics").text
        finally:
            rt.close()
        assert access_lines.getvalue() == ""

"""The audit trail through HTTP: what is traced and with which fields, GET /v3/{project_id}/traces (filters,
paging, who may read), no secrets in traces, a failing trace writer, retention."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text

from openims.api.app import create_app
from openims.audit.trail import AuditTrail
from openims.clock import ManualClock
from openims.db.models import AuditTrace, Domain, Grant, Group, GroupMember, Role
from openims.iam.ids import new_id
from openims.runtime import Runtime, build_runtime
from openims.worker.runner import Worker
from tests.api.test_images_api import VALID, create, upload
from tests.api.test_tags import new_images, project_of
from tests.conftest import ADMIN_PASSWORD, login, make_settings, new_tenant, password_auth
from tests.support.images import make_image
from tests.support.openapi import assert_documented
from tests.support.tenants import USER_PASSWORD, add_user

H = dict[str, str]


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"audit_log": str(tmp_path / "audit.jsonl")}


@pytest.fixture
def pid(client: TestClient, admin_headers: H) -> str:
    return project_of(client, admin_headers)


def traces(client: TestClient, headers: H, pid: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"/v3/{pid}/traces", params={"trace_type": "system", **params}, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def named(client: TestClient, headers: H, pid: str, trace_name: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = traces(client, headers, pid, trace_name=trace_name, limit=200, **params)["traces"]
    return found


def account_admin(client: TestClient, runtime: Runtime, name: str, domain: str) -> H:
    """An administrator of a new account: te_admin granted on the account (domain) itself."""
    add_user(runtime.db, name=name, role="te_admin", domain_name=domain, project_name=f"local-1_{domain}")
    with runtime.db.transaction() as s:
        account = s.scalars(select(Domain).where(Domain.name == domain)).one()
        group = Group(id=new_id(), name=f"{name}-admins", domain_id=account.id, created_at=dt.datetime.now(dt.UTC))
        s.add(group)
        s.flush()
        user_id = s.execute(text("SELECT id FROM users WHERE name = :n"), {"n": name}).scalar_one()
        s.add(GroupMember(group_id=group.id, user_id=user_id))
        role = s.scalars(select(Role).where(Role.name == "te_admin")).one()
        s.add(Grant(group_id=group.id, role_id=role.id, target_type="domain", target_id=account.id))
    return {"X-Auth-Token": login(client, name, USER_PASSWORD, domain=domain, project=f"local-1_{domain}")}


@pytest.fixture
def source(client: TestClient, admin_headers: H, tmp_path: Path) -> None:
    upload(client, admin_headers, "bkt", "disk.qcow2", make_image(tmp_path / "src", "qcow2"))


class TestRecorded:
    def test_import_is_traced_with_its_job(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str,
                                           source: None) -> None:
        image_id = new_images(client, admin_headers, runtime, "audited")[0]
        [created] = named(client, admin_headers, pid, "createImage", service_type="IMS", resource_type="job")
        admin = "admin"
        assert created["code"] == "200" and created["trace_rating"] == "normal" and created["trace_type"] == "ApiCall"
        assert created["user"]["name"] == admin and created["user"]["id"] and created["user"]["domain"]["name"]
        assert created["user"]["domain"]["id"] == created["user"]["account_id"]
        assert created["request_id"] and created["source_ip"] and isinstance(created["time"], int)
        job_id = created["resource_id"]
        job = client.get(f"/v1/{pid}/jobs/{job_id}", headers=admin_headers).json()
        assert job["entities"]["image_id"] == image_id
        # The worker's start and end of that job, as system actions of the same account.
        [start] = named(client, admin_headers, pid, "startJob", resource_id=job_id)
        [end] = named(client, admin_headers, pid, "endJob", resource_id=job_id)
        assert start["trace_type"] == end["trace_type"] == "SystemAction"
        assert end["code"] == "SUCCESS" and end["resource_name"] == "imsImportImageJob"
        # The upload before it.
        assert named(client, admin_headers, pid, "putObject", resource_id="bkt", resource_name="disk.qcow2")

    def test_a_failed_job_ends_with_its_error_code(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                                   pid: str) -> None:
        client.put("/obs/bkt", headers=admin_headers)
        job_id = create(client, admin_headers, **VALID).json()["job_id"]
        Worker(runtime).run_until_idle()
        [end] = named(client, admin_headers, pid, "endJob", resource_id=job_id)
        assert end["code"] == "IMG.0057" and end["trace_rating"] == "warning" and end["trace_type"] == "SystemAction"
        assert end["user"] is None  # the worker's, not a user's

    def test_update_delete_share(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str,
                                 source: None) -> None:
        image_id = new_images(client, admin_headers, runtime, "changed")[0]
        r = client.patch(f"/v2/cloudimages/{image_id}", json=[{"op": "replace", "path": "/name", "value": "new"}],
                         headers=admin_headers)
        assert r.status_code == 200, r.text
        bob = new_tenant(client, runtime, "bob", domain="partner", project="local-1_partner")
        r = client.post("/v1/cloudimages/members", json={"images": [image_id], "projects": [project_of(client, bob)]},
                        headers=admin_headers)
        assert r.status_code == 200, r.text
        Worker(runtime).run_until_idle()
        assert client.delete(f"/v2/images/{image_id}", headers=admin_headers).status_code == 204
        [updated] = named(client, admin_headers, pid, "updateImage")
        assert updated["resource_id"] == image_id and updated["resource_type"] == "image"
        [shared] = named(client, admin_headers, pid, "addImageMembers")
        assert shared["resource_type"] == "image_member" and shared["resource_id"]  # the sharing job
        [deleted] = named(client, admin_headers, pid, "deleteImage")
        assert deleted["resource_id"] == image_id and deleted["code"] == "204"
        # A refused call is traced too, rated warning.
        assert client.delete(f"/v2/images/{image_id}", headers=admin_headers).status_code == 404
        again = named(client, admin_headers, pid, "deleteImage", trace_rating="warning")
        assert [t["code"] for t in again] == ["404"]

    def test_access_key_and_failed_login(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                         pid: str) -> None:
        admin_id = client.get("/v3/auth/tokens", headers={**admin_headers, "X-Subject-Token":
                              admin_headers["X-Auth-Token"]}).json()["token"]["user"]["id"]
        r = client.post("/v3.0/OS-CREDENTIAL/credentials", json={"credential": {"user_id": admin_id}},
                        headers=admin_headers)
        assert r.status_code == 201
        ak = r.json()["credential"]["access"]
        [created] = named(client, admin_headers, pid, "createAccessKey")
        assert created["resource_id"] == ak and created["service_type"] == "IAM"
        r = client.post("/v3/auth/tokens", json=password_auth("admin", "Not-The-Password-1"))
        assert r.status_code == 401
        [failed] = named(client, admin_headers, pid, "login")
        assert failed["trace_rating"] == "warning" and failed["code"] == "401"
        assert failed["user"]["name"] == "admin" and failed["user"]["id"] == admin_id
        # A bad token on an ordinary route: a failed authentication.
        assert client.get("/v2/cloudimages", headers={"X-Auth-Token": "nope"}).status_code == 401
        rows = _rows(runtime)
        assert any(r.trace_name == "authenticate" and r.code == "401" for r in rows)
        # A refused signature: traced with the access key it named.
        date = runtime.clock().strftime("%Y%m%dT%H%M%SZ")
        r = client.get("/v2/cloudimages", headers={
            "Authorization": "SDK-HMAC-SHA256 Access=AKNOTAKEY0000000000X, SignedHeaders=host;x-sdk-date, "
                             "Signature=" + "0" * 64, "X-Sdk-Date": date})
        assert r.status_code == 401, r.text
        assert any(t.trace_name == "authenticate" and t.access_key_id == "AKNOTAKEY0000000000X" for t in _rows(runtime))

    def test_a_flood_of_bad_credentials_is_counted_not_written(self, runtime: Runtime, tmp_path: Path,
                                                              clock: ManualClock) -> None:
        # OPENIMS_AUDIT_FAILED_AUTH_PER_SOURCE: each trace is a database write; a source sending bad tokens
        # as fast as it can gets that many written a window, and a metric counts the rest.
        settings = make_settings(tmp_path / "flood", runtime.settings.database_url,
                                 audit_failed_auth_per_source="3/min")
        rt = build_runtime(settings, clock, upgrade=False)
        try:
            with TestClient(create_app(rt)) as c:
                before = _not_traced(c)
                for _ in range(5):
                    assert c.get("/v2/cloudimages", headers={"X-Auth-Token": "nope"}).status_code == 401
                assert c.post("/v3/auth/tokens", json=password_auth("admin", "Not-The-Password-1")).status_code == 401
                failures = [r for r in _rows(rt) if r.trace_name in ("authenticate", "login")]
                assert len(failures) == 3 and _not_traced(c) - before == 3
                clock.advance(60)  # the next window
                assert c.get("/v2/cloudimages", headers={"X-Auth-Token": "nope"}).status_code == 401
                assert len([r for r in _rows(rt) if r.trace_name == "authenticate"]) == 4
        finally:
            rt.close()

    def test_no_secrets_in_traces(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str,
                                  tmp_path: Path) -> None:
        admin_id = client.get("/v3/auth/projects", headers=admin_headers) and _admin_id(client, admin_headers)
        secret = client.post("/v3.0/OS-CREDENTIAL/credentials", json={"credential": {"user_id": admin_id}},
                             headers=admin_headers).json()["credential"]["secret"]
        r = client.post("/v3/users", json={"user": {"name": "carol", "password": "Hidden-Secret-9876",
                                                     "domain_id": _domain_id(client, admin_headers)}},
                        headers=admin_headers)
        assert r.status_code == 201, r.text
        client.post("/v3/auth/tokens", json=password_auth("admin", "Wrong-Password-5555"))
        token = admin_headers["X-Auth-Token"]
        stored = json.dumps([{c.name: getattr(row, c.name) for c in AuditTrace.__table__.columns}
                             for row in _rows(runtime)])
        lines = (tmp_path / "audit.jsonl").read_text()
        assert "createUser" in stored and "createUser" in lines and "carol" in lines
        for text_ in (stored, lines):
            for leaked in (ADMIN_PASSWORD, "Hidden-Secret-9876", "Wrong-Password-5555", secret, token):
                assert leaked not in text_
        # One JSON object per line, in the API's trace shape.
        first = json.loads(lines.splitlines()[0])
        assert {"trace_id", "trace_name", "trace_rating", "trace_type", "time", "user", "code"} <= first.keys()


def _rows(runtime: Runtime) -> list[AuditTrace]:
    with runtime.db.session() as s:
        return list(s.scalars(select(AuditTrace)))


def _admin_id(client: TestClient, headers: H) -> str:
    r = client.get("/v3/auth/tokens", headers={**headers, "X-Subject-Token": headers["X-Auth-Token"]})
    return str(r.json()["token"]["user"]["id"])


def _domain_id(client: TestClient, headers: H) -> str:
    r = client.get("/v3/auth/tokens", headers={**headers, "X-Subject-Token": headers["X-Auth-Token"]})
    return str(r.json()["token"]["user"]["domain"]["id"])


class TestQuery:
    def _make(self, client: TestClient, headers: H, runtime: Runtime, n: int) -> None:
        for i in range(n):
            runtime.clock.advance(1)  # type: ignore[attr-defined]
            assert client.put(f"/obs/bucket-{i}", headers=headers).status_code in (200, 201)

    def test_paging_with_the_marker(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str) -> None:
        self._make(client, admin_headers, runtime, 5)
        seen: list[str] = []
        marker = None
        for _ in range(5):
            params: dict[str, Any] = {"trace_name": "createBucket", "limit": 2}
            if marker:
                params["next"] = marker
            page = traces(client, admin_headers, pid, **params)
            assert page["meta_data"]["count"] == len(page["traces"])
            seen += [t["resource_id"] for t in page["traces"]]
            marker = page["meta_data"]["marker"]
            if marker is None:
                break
        assert seen == [f"bucket-{i}" for i in reversed(range(5))]  # newest first, each once

    def test_from_to_and_filters(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str) -> None:
        self._make(client, admin_headers, runtime, 3)
        all_ = named(client, admin_headers, pid, "createBucket")
        times = sorted(t["time"] for t in all_)
        middle = named(client, admin_headers, pid, "createBucket", **{"from": times[0], "to": times[2]})
        assert [t["resource_id"] for t in middle] == ["bucket-1"]  # both bounds exclusive, as CTS
        assert [t["resource_id"] for t in named(client, admin_headers, pid, "createBucket",
                                                resource_id="bucket-2")] == ["bucket-2"]
        assert named(client, admin_headers, pid, "createBucket", user="nobody") == []
        assert len(named(client, admin_headers, pid, "createBucket", user="admin")) == 3
        assert named(client, admin_headers, pid, "createBucket", service_type="IAM") == []
        # Older than the default hour: only with from.
        runtime.clock.advance(7200)  # type: ignore[attr-defined]
        assert named(client, admin_headers, pid, "createBucket") == []
        assert len(named(client, admin_headers, pid, "createBucket", **{"from": 0})) == 3

    def test_bad_parameters_in_cts_shape(self, client: TestClient, admin_headers: H, pid: str) -> None:
        for params in ({}, {"trace_type": "data"}, {"trace_type": "system", "limit": 201},
                       {"trace_type": "system", "from": "x"}, {"trace_type": "system", "next": "unknown"},
                       {"trace_type": "system", "to": str(2 ** 64)}, {"trace_type": "system", "from": "-1"},
                       {"trace_type": "system", "from": "2000", "to": "1000"},
                       {"trace_type": "system", "trace_rating": "bad"}):
            r = client.get(f"/v3/{pid}/traces", params=params, headers=admin_headers)
            assert r.status_code == 400, (params, r.text)
            assert set(r.json()) == {"error_code", "error_msg"}

    def test_who_may_read(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str) -> None:
        boss = account_admin(client, runtime, "boss", "acme")
        acme_pid = project_of(client, boss)
        assert client.put("/obs/acme-bucket", headers=boss).status_code in (200, 201)
        assert client.put("/obs/admin-bucket", headers=admin_headers).status_code in (200, 201)
        # The account's administrator: its own traces only.
        own = named(client, boss, acme_pid, "createBucket")
        assert [t["resource_id"] for t in own] == ["acme-bucket"]
        # Another account's project: 404; a member or reader: 403.
        r = client.get(f"/v3/{pid}/traces", params={"trace_type": "system"}, headers=boss)
        assert r.status_code == 404 and r.json()["error_code"]
        member = new_tenant(client, runtime, "mem", role="member", domain="acme", project="local-1_acme")
        r = client.get(f"/v3/{acme_pid}/traces", params={"trace_type": "system"}, headers=member)
        assert r.status_code == 403 and r.json()["error_code"]
        assert client.get(f"/v3/{acme_pid}/traces", params={"trace_type": "system"}).status_code == 401
        # The operator: every account from its own project, one account from that account's project.
        everyone = {t["resource_id"] for t in named(client, admin_headers, pid, "createBucket")}
        assert everyone == {"acme-bucket", "admin-bucket"}
        acme = {t["resource_id"] for t in named(client, admin_headers, acme_pid, "createBucket")}
        assert acme == {"acme-bucket"}


class TestRobustness:
    def test_a_failing_trace_writer_fails_no_request(self, client: TestClient, admin_headers: H,
                                                      runtime: Runtime) -> None:
        # The table gone (renamed away, and back after: the PostgreSQL database is shared by the session).
        with runtime.db.transaction() as s:
            s.execute(text("ALTER TABLE audit_traces RENAME TO audit_traces_gone"))
        try:
            r = client.put("/obs/still-works", headers=admin_headers)
            assert r.status_code in (200, 201), r.text
            assert client.post("/v3/auth/tokens", json=password_auth("admin", "Bad-Password-1")).status_code == 401
        finally:
            with runtime.db.transaction() as s:
                s.execute(text("ALTER TABLE audit_traces_gone RENAME TO audit_traces"))

    def test_a_raising_recorder_fails_no_request(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
        def broken(*_: Any) -> None:
            raise RuntimeError("the audit store is on fire")

        monkeypatch.setattr(runtime.audit, "record", broken)
        assert client.put("/obs/also-works", headers=admin_headers).status_code in (200, 201)

    def test_retention(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str) -> None:
        assert client.put("/obs/old", headers=admin_headers).status_code in (200, 201)
        runtime.clock.advance(6 * 86400)  # type: ignore[attr-defined]
        assert client.put("/obs/recent", headers={"X-Auth-Token": login(client)}).status_code in (200, 201)
        assert Worker(runtime).prune_audit() == 0  # within the default 7 days
        runtime.clock.advance(2 * 86400)  # type: ignore[attr-defined]
        assert Worker(runtime).prune_audit() >= 1  # "old" (and the logins of its time) are past the retention
        left = {r.resource_id for r in _rows(runtime) if r.trace_name == "createBucket"}
        assert left == {"recent"}
        assert AuditTrail(runtime.db, runtime.clock, retention_days=1).prune() >= 1


def test_errors_are_documented_in_their_shapes(client: TestClient, admin_headers: H) -> None:
    # Fuzzing finding: GET /v3/0/traces answered CTS's {"error_code", "error_msg"} where /openapi.json
    # promised Keystone's error; a request-validation 400 on this IAM path is Keystone's.
    doc = client.get("/openapi.json").json()
    missing = client.get("/v3/0/traces", params={"trace_type": "system"}, headers=admin_headers)
    assert missing.status_code == 404 and missing.json()["error_code"]
    assert_documented(doc, "GET", "/v3/{project_id}/traces", missing)
    too_long = client.get("/v3/0/traces", params={"trace_type": "0" * 17}, headers=admin_headers)
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == 400
    assert_documented(doc, "GET", "/v3/{project_id}/traces", too_long)


def _not_traced(client: TestClient) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        if family.name == "openims_audit_failures_not_traced":
            return sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
    return 0.0

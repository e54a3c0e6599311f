"""POST/GET/HEAD/DELETE /v3/auth/tokens and token use on service routes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from openims.clock import ManualClock
from tests.conftest import ADMIN_PASSWORD, login, password_auth


class TestIssue:
    def test_project_scoped_token_has_documented_body(self, client: TestClient) -> None:
        r = client.post("/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD))
        assert r.status_code == 201
        assert r.headers["X-Subject-Token"]
        assert r.headers["X-Request-Id"]
        tok = r.json()["token"]
        assert tok["methods"] == ["password"]
        assert tok["project"]["name"] == "local-1"
        assert tok["user"]["name"] == "admin" and tok["user"]["domain"]["name"] == "admin"
        assert "te_admin" in {role["name"] for role in tok["roles"]}
        types = {svc["type"]: svc for svc in tok["catalog"]}
        assert {"identity", "ims", "image"} <= set(types)
        ifaces = {e["interface"] for e in types["image"]["endpoints"]}
        assert ifaces == {"public", "internal"}
        assert all(e["region"] == "local-1" for e in types["image"]["endpoints"])

    def test_nocatalog(self, client: TestClient) -> None:
        r = client.post("/v3/auth/tokens?nocatalog=true", json=password_auth("admin", ADMIN_PASSWORD))
        assert r.status_code == 201 and "catalog" not in r.json()["token"]

    def test_domain_scoped_and_unscoped(self, client: TestClient) -> None:
        r = client.post("/v3/auth/tokens",
                        json=password_auth("admin", ADMIN_PASSWORD, project=None, scope_domain="admin"))
        assert r.status_code == 201
        assert r.json()["token"]["domain"]["name"] == "admin"
        r = client.post("/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD, project=None))
        assert r.status_code == 201
        body = r.json()["token"]
        assert "project" not in body and "domain" not in body and body["roles"] == []

    def test_by_user_id_and_project_id(self, client: TestClient) -> None:
        first = client.post("/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD)).json()["token"]
        body = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"id": first["user"]["id"], "password": ADMIN_PASSWORD}}},
            "scope": {"project": {"id": first["project"]["id"]}}}}
        r = client.post("/v3/auth/tokens", json=body)
        assert r.status_code == 201
        assert r.json()["token"]["project"]["id"] == first["project"]["id"]

    def test_wrong_password_unknown_user_unknown_project(self, client: TestClient) -> None:
        for body in (
            password_auth("admin", "wrong-password"),
            password_auth("nobody", ADMIN_PASSWORD),
            password_auth("admin", ADMIN_PASSWORD, project="no-such-project"),
            password_auth("admin", ADMIN_PASSWORD, domain="no-such-domain"),
        ):
            r = client.post("/v3/auth/tokens", json=body)
            assert r.status_code == 401, body
            err = r.json()["error"]
            assert err["code"] == 401 and err["title"] == "Unauthorized" and err["message"]

    def test_repeated_failures_are_throttled(self, client: TestClient, clock: ManualClock) -> None:
        for _ in range(5):
            assert client.post("/v3/auth/tokens", json=password_auth("admin", "bad")).status_code == 401
        # Locked now, even with the right password.
        r = client.post("/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD))
        assert r.status_code == 429
        clock.advance(301)
        assert client.post("/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD)).status_code == 201

    def test_malformed_bodies_are_400(self, client: TestClient) -> None:
        for raw in (b"{", b"[]", b'{"auth": 1}', b'{"auth": {"identity": {"methods": []}}}',
                    b'{"auth": {"identity": {"methods": ["password"]}}}',
                    b'{"auth": {"identity": {"methods": ["totp"]}}}'):
            r = client.post("/v3/auth/tokens", content=raw, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (raw, r.text)
            assert r.json()["error"]["code"] == 400

    def test_rescope_with_token_method(self, client: TestClient) -> None:
        unscoped = login(client, project=None)
        body = {"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                         "scope": {"project": {"name": "local-1", "domain": {"name": "admin"}}}}}
        r = client.post("/v3/auth/tokens", json=body)
        assert r.status_code == 201 and r.json()["token"]["project"]["name"] == "local-1"


class TestValidateAndRevoke:
    def test_validate_head_delete(self, client: TestClient) -> None:
        token = login(client)
        other = login(client)
        h = {"X-Auth-Token": token, "X-Subject-Token": other}
        r = client.get("/v3/auth/tokens", headers=h)
        assert r.status_code == 200 and r.json()["token"]["project"]["name"] == "local-1"
        assert client.head("/v3/auth/tokens", headers=h).status_code == 204
        assert client.delete("/v3/auth/tokens", headers=h).status_code == 204
        assert client.head("/v3/auth/tokens", headers=h).status_code == 404
        # The revoked token is refused everywhere.
        r = client.get("/v2/cloudimages", headers={"X-Auth-Token": other})
        assert r.status_code == 401 and r.json()["error"]["title"] == "Unauthorized"
        # The other one still works.
        assert client.get("/v3/auth/projects", headers={"X-Auth-Token": token}).status_code == 200

    def test_expired_token_is_401(self, client: TestClient, clock: ManualClock) -> None:
        token = login(client)
        clock.advance(24 * 3600 + 1)
        r = client.get("/v3/auth/projects", headers={"X-Auth-Token": token})
        assert r.status_code == 401
        assert "expired" in r.json()["error"]["message"]

    def test_tampered_token_is_401(self, client: TestClient) -> None:
        token = login(client)
        mid = len(token) // 2
        tampered = token[:mid] + ("A" if token[mid] != "A" else "B") + token[mid + 1:]
        for bad in (tampered, "garbage", "x" * 5000, token + "x"):
            r = client.get("/v3/auth/projects", headers={"X-Auth-Token": bad})
            assert r.status_code == 401, bad[:20]
            assert r.json()["error"]["code"] == 401

    def test_missing_token_is_401(self, client: TestClient) -> None:
        r = client.get("/v3/auth/projects")
        assert r.status_code == 401
        assert r.headers["X-Request-Id"]

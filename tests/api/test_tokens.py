"""POST/GET/HEAD/DELETE /v3/auth/tokens and token use on service routes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from openims.clock import ManualClock
from openims.runtime import Runtime
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
        checked = client.head("/v3/auth/tokens", headers=h)
        assert checked.status_code == 200 and checked.headers["X-Subject-Token"] == h["X-Subject-Token"]
        assert checked.content == b""
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


class TestAccountsAndProjects:
    def test_another_account_has_its_own_region_project_and_cannot_cross(self, client: TestClient,
                                                                          runtime: Runtime,
                                                                          admin_headers: dict[str, str]) -> None:
        from tests.support.tenants import add_user

        add_user(runtime.db, name="bob", role="te_admin", domain_name="acme", project_name="local-1")
        bob = login(client, "bob", "User-Pass-1234", domain="acme", project="local-1")
        bob_project = client.get("/v3/auth/projects", headers={"X-Auth-Token": bob}).json()["projects"]
        admin_project = client.get("/v3/auth/projects", headers=admin_headers).json()["projects"]
        assert bob_project[0]["name"] == admin_project[0]["name"] == "local-1"
        assert bob_project[0]["id"] != admin_project[0]["id"]
        # The admin's token on bob's project path is refused, and vice versa.
        r = client.get(f"/v1/{bob_project[0]['id']}/jobs/{'0' * 32}", headers=admin_headers)
        assert r.status_code == 403
        r = client.get(f"/v1/{admin_project[0]['id']}/jobs/{'0' * 32}", headers={"X-Auth-Token": bob})
        assert r.status_code == 403
        # Discovery by name answers exactly the caller's own project (the official SDK relies on it).
        projects = client.get("/v3/projects", params={"name": "local-1"}, headers={"X-Auth-Token": bob}).json()
        assert [p["id"] for p in projects["projects"]] == [bob_project[0]["id"]]
        # And bob cannot log in to the admin account's project by its id.
        body = password_auth("bob", "User-Pass-1234", domain="acme")
        body["auth"]["scope"] = {"project": {"id": admin_project[0]["id"]}}
        assert client.post("/v3/auth/tokens", json=body).status_code == 401

    def test_tokens_of_a_disabled_project_stop_working(self, client: TestClient, runtime: Runtime,
                                                       admin_headers: dict[str, str], clock: ManualClock) -> None:
        from openims.db.models import Project

        r = client.post("/v3/projects", json={"project": {"name": "local-1_dev"}}, headers=admin_headers)
        assert r.status_code == 201, r.text
        project_id = r.json()["project"]["id"]
        group = client.get("/v3/groups", params={"name": "admin"}, headers=admin_headers).json()["groups"][0]
        role = client.get("/v3/roles", params={"name": "te_admin"}, headers=admin_headers).json()["roles"][0]
        r = client.put(f"/v3/projects/{project_id}/groups/{group['id']}/roles/{role['id']}", headers=admin_headers)
        assert r.status_code == 204
        clock.advance(1)
        dev = {"X-Auth-Token": login(client, project="local-1_dev")}
        assert client.get("/v2/cloudimages", headers=dev).status_code == 200
        r = client.patch(f"/v3/projects/{project_id}", json={"project": {"enabled": False}}, headers=admin_headers)
        assert r.status_code == 200, r.text
        r = client.get("/v2/cloudimages", headers=dev)
        assert r.status_code == 401
        with runtime.db.session() as s:
            assert s.get(Project, project_id) is not None

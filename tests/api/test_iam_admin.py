"""IAM administration through HTTP: projects, users, passwords, groups, roles, grants."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openims.clock import ManualClock
from openims.db.models import Domain, Group, Project, User
from openims.iam.ids import new_id
from openims.runtime import Runtime
from tests.conftest import ADMIN_PASSWORD, login, password_auth
from tests.support.openapi import assert_documented

H = dict[str, str]
PASSWORD = "Secret-pass-42"


# ---------------------------------------------------------------- helpers


def _id_of(client: TestClient, headers: H, kind: str, name: str) -> str:
    r = client.get(f"/v3/{kind}", params={"name": name}, headers=headers)
    assert r.status_code == 200, r.text
    items = r.json()[kind]
    assert len(items) == 1, items
    return str(items[0]["id"])


def _create_user(client: TestClient, headers: H, name: str, password: str = PASSWORD, **extra: Any) -> str:
    r = client.post(
        "/v3/users", json={"user": {"name": name, "password": password, **extra}}, headers=headers
    )
    assert r.status_code == 201, r.text
    return str(r.json()["user"]["id"])


def _create_group(client: TestClient, headers: H, name: str) -> str:
    r = client.post("/v3/groups", json={"group": {"name": name}}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["group"]["id"])


def _create_project(client: TestClient, headers: H, name: str) -> str:
    r = client.post("/v3/projects", json={"project": {"name": name}}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["project"]["id"])


def _grant_project(client: TestClient, headers: H, project_id: str, group_id: str, role: str) -> None:
    role_id = _id_of(client, headers, "roles", role)
    r = client.put(f"/v3/projects/{project_id}/groups/{group_id}/roles/{role_id}", headers=headers)
    assert r.status_code == 204, r.text


def _user_with_role(client: TestClient, headers: H, name: str, role: str, project: str = "local-1") -> str:
    """A user in a fresh group holding ``role`` on ``project``; returns its project-scoped token."""
    user_id = _create_user(client, headers, name)
    group_id = _create_group(client, headers, f"{name}-group")
    assert client.put(f"/v3/groups/{group_id}/users/{user_id}", headers=headers).status_code == 204
    _grant_project(client, headers, _id_of(client, headers, "projects", project), group_id, role)
    return login(client, name, PASSWORD, project=project)


@pytest.fixture
def reader_headers(client: TestClient, admin_headers: H) -> H:
    return {"X-Auth-Token": _user_with_role(client, admin_headers, "reader", "readonly")}


@pytest.fixture
def tenant_admin_headers(client: TestClient, admin_headers: H) -> H:
    """An administrator of the bootstrap account as a tenant has one (its ``admin`` group: te_admin and
    secu_admin on the account, te_admin on its projects) without the bootstrap user's operator role:
    what confines administrators to their account is tested with it."""
    user_id = _create_user(client, admin_headers, "tenantadmin")
    group_id = _id_of(client, admin_headers, "groups", "admin")
    assert client.put(f"/v3/groups/{group_id}/users/{user_id}", headers=admin_headers).status_code == 204
    return {"X-Auth-Token": login(client, "tenantadmin", PASSWORD)}


@pytest.fixture
def other_account(runtime: Runtime) -> dict[str, str]:
    """Another account (domain) with a project, a user and a group, made directly in the database."""
    now = runtime.clock()
    ids = {"domain": new_id(), "project": new_id(), "user": new_id(), "group": new_id()}
    with runtime.db.transaction() as s:
        s.add(Domain(id=ids["domain"], name="other-account", enabled=True, created_at=now))
        s.flush()
        s.add(Project(id=ids["project"], name="local-1_other", domain_id=ids["domain"], created_at=now))
        s.add(
            User(
                id=ids["user"],
                name="stranger",
                domain_id=ids["domain"],
                password_hash=runtime.hashing.hash(PASSWORD),
                enabled=True,
                created_at=now,
            )
        )
        s.add(Group(id=ids["group"], name="strangers", domain_id=ids["domain"], created_at=now))
    return ids


def _keystone_error(r: Any, status: int) -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == status and err["title"] and err["message"]


# ---------------------------------------------------------------- projects


class TestProjects:
    def test_requires_token(self, client: TestClient) -> None:
        _keystone_error(client.post("/v3/projects", json={"project": {"name": "local-1_x"}}), 401)
        _keystone_error(client.delete(f"/v3/projects/{new_id()}"), 401)

    def test_reader_is_forbidden(self, client: TestClient, reader_headers: H) -> None:
        r = client.post("/v3/projects", json={"project": {"name": "local-1_x"}}, headers=reader_headers)
        _keystone_error(r, 403)

    def test_create_show_update_delete(self, client: TestClient, admin_headers: H) -> None:
        r = client.post(
            "/v3/projects",
            json={"project": {"name": "local-1_dev", "description": "dev"}},
            headers=admin_headers,
        )
        assert r.status_code == 201, r.text
        body = r.json()["project"]
        assert body["name"] == "local-1_dev" and body["description"] == "dev" and body["enabled"] is True
        assert body["is_domain"] is False and body["links"]["self"].endswith(body["id"])
        pid = body["id"]
        assert (
            client.get(f"/v3/projects/{pid}", headers=admin_headers).json()["project"]["name"]
            == "local-1_dev"
        )
        r = client.patch(
            f"/v3/projects/{pid}",
            json={"project": {"name": "local-1_test", "description": "t"}},
            headers=admin_headers,
        )
        assert r.status_code == 200 and r.json()["project"]["name"] == "local-1_test"
        assert r.json()["project"]["description"] == "t"
        names = {p["name"] for p in client.get("/v3/projects", headers=admin_headers).json()["projects"]}
        assert names == {"local-1", "local-1_test"}
        assert client.delete(f"/v3/projects/{pid}", headers=admin_headers).status_code == 204
        _keystone_error(client.get(f"/v3/projects/{pid}", headers=admin_headers), 404)
        _keystone_error(client.delete(f"/v3/projects/{pid}", headers=admin_headers), 404)

    def test_name_rules_and_duplicates(self, client: TestClient, admin_headers: H) -> None:
        for bad in ("dev", "local-2_dev", "local-1_", "local-1_a b", "local-1_" + "x" * 60, "", "local-1_dev\n"):
            r = client.post("/v3/projects", json={"project": {"name": bad}}, headers=admin_headers)
            _keystone_error(r, 400)
        bad_bodies: list[Any] = [
            {},
            {"project": {}},
            {"project": {"name": 5}},
            {"project": "x"},
            {"project": {"name": "local-1_ok", "enabled": "yes"}},
        ]
        for bad_body in bad_bodies:
            _keystone_error(client.post("/v3/projects", json=bad_body, headers=admin_headers), 400)
        _create_project(client, admin_headers, "local-1_dev")
        r = client.post("/v3/projects", json={"project": {"name": "local-1_dev"}}, headers=admin_headers)
        _keystone_error(r, 409)
        pid = _create_project(client, admin_headers, "local-1_qa")
        r = client.patch(
            f"/v3/projects/{pid}", json={"project": {"name": "local-1_dev"}}, headers=admin_headers
        )
        _keystone_error(r, 409)
        _keystone_error(client.patch(f"/v3/projects/{pid}", json={"project": {}}, headers=admin_headers), 400)

    def test_other_domain_is_404(
        self, client: TestClient, tenant_admin_headers: H, other_account: dict[str, str]
    ) -> None:
        pid = other_account["project"]
        _keystone_error(
            client.patch(
                f"/v3/projects/{pid}", json={"project": {"description": "x"}}, headers=tenant_admin_headers
            ),
            404,
        )
        _keystone_error(client.delete(f"/v3/projects/{pid}", headers=tenant_admin_headers), 404)
        _keystone_error(client.get(f"/v3-ext/projects/{pid}", headers=tenant_admin_headers), 404)
        r = client.post(
            "/v3/projects",
            json={"project": {"name": "local-1_x", "domain_id": other_account["domain"]}},
            headers=tenant_admin_headers,
        )
        _keystone_error(r, 403)

    def test_default_project_is_protected(self, client: TestClient, admin_headers: H) -> None:
        pid = _id_of(client, admin_headers, "projects", "local-1")
        _keystone_error(client.delete(f"/v3/projects/{pid}", headers=admin_headers), 400)
        r = client.patch(
            f"/v3/projects/{pid}", json={"project": {"name": "local-1_x"}}, headers=admin_headers
        )
        _keystone_error(r, 400)
        r = client.put(
            f"/v3-ext/projects/{pid}", json={"project": {"status": "suspended"}}, headers=admin_headers
        )
        _keystone_error(r, 400)

    def test_status_suspend_blocks_scoping(self, client: TestClient, admin_headers: H) -> None:
        pid = _create_project(client, admin_headers, "local-1_dev")
        r = client.put(
            f"/v3-ext/projects/{pid}", json={"project": {"status": "suspended"}}, headers=admin_headers
        )
        assert r.status_code == 204, r.text
        r = client.get(f"/v3-ext/projects/{pid}", headers=admin_headers)
        assert r.status_code == 200 and r.json()["project"]["status"] == "suspended"
        assert r.json()["project"]["enabled"] is False
        r = client.post("/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD, project="local-1_dev"))
        assert r.status_code == 401
        r = client.put(
            f"/v3-ext/projects/{pid}", json={"project": {"status": "normal"}}, headers=admin_headers
        )
        assert r.status_code == 204
        assert login(client, project="local-1_dev")
        for bad in ({"project": {"status": "frozen"}}, {"status": "normal"}, None):
            _keystone_error(client.put(f"/v3-ext/projects/{pid}", json=bad, headers=admin_headers), 400)


# ---------------------------------------------------------------- users


class TestUsers:
    def test_requires_token(self, client: TestClient) -> None:
        _keystone_error(client.get("/v3/users"), 401)
        _keystone_error(client.post("/v3/users", json={"user": {"name": "alice"}}), 401)

    def test_reader_is_forbidden(self, client: TestClient, reader_headers: H) -> None:
        _keystone_error(client.get("/v3/users", headers=reader_headers), 403)
        r = client.post(
            "/v3/users", json={"user": {"name": "alice", "password": PASSWORD}}, headers=reader_headers
        )
        _keystone_error(r, 403)

    def test_create_list_update_delete(self, client: TestClient, admin_headers: H) -> None:
        r = client.post(
            "/v3/users",
            json={
                "user": {
                    "name": "alice",
                    "password": PASSWORD,
                    "description": "ops",
                    "email": "alice@example.com",
                }
            },
            headers=admin_headers,
        )
        assert r.status_code == 201, r.text
        user = r.json()["user"]
        assert user["name"] == "alice" and user["enabled"] is True and "password" not in user
        assert user["password_expires_at"] is None and user["links"]["self"].endswith(user["id"])
        _create_user(client, admin_headers, "bobby", enabled=False)
        names = [u["name"] for u in client.get("/v3/users", headers=admin_headers).json()["users"]]
        assert names == ["admin", "alice", "bobby"]
        r = client.get("/v3/users", params={"enabled": "false"}, headers=admin_headers)
        assert [u["name"] for u in r.json()["users"]] == ["bobby"]
        r = client.get("/v3/users", params={"name": "alice"}, headers=admin_headers)
        assert [u["id"] for u in r.json()["users"]] == [user["id"]]
        r = client.get("/v3/users", params={"domain_id": new_id()}, headers=admin_headers)
        assert r.json()["users"] == []
        r = client.patch(
            f"/v3/users/{user['id']}",
            json={"user": {"name": "alice2", "description": "dev"}},
            headers=admin_headers,
        )
        assert r.status_code == 200 and r.json()["user"]["name"] == "alice2"
        assert (
            client.get(f"/v3/users/{user['id']}", headers=admin_headers).json()["user"]["description"]
            == "dev"
        )
        assert client.delete(f"/v3/users/{user['id']}", headers=admin_headers).status_code == 204
        _keystone_error(client.get(f"/v3/users/{user['id']}", headers=admin_headers), 404)

    def test_validation_and_conflicts(self, client: TestClient, admin_headers: H) -> None:
        for bad in (
            {"name": "abc", "password": PASSWORD},
            {"name": "1alice", "password": PASSWORD},
            {"name": "al ice", "password": PASSWORD},
            {"name": "alice", "password": "short"},
            {"name": "alice", "password": "alllowercase"},
            {"name": "alice", "password": "Alice-1234"},
            {"name": "alice", "password": PASSWORD, "enabled": "no"},
            {"name": "alice", "password": PASSWORD, "email": "not-an-email"},
            {"name": "alice", "password": PASSWORD, "email": "a@b.example\n"},
            {"name": "alice\n", "password": PASSWORD},  # `$` alone lets a final newline through
            {"password": PASSWORD},
        ):
            _keystone_error(client.post("/v3/users", json={"user": bad}, headers=admin_headers), 400)
        uid = _create_user(client, admin_headers, "alice")
        _keystone_error(
            client.post("/v3/users", json={"user": {"name": "alice"}}, headers=admin_headers), 409
        )
        _keystone_error(
            client.patch(f"/v3/users/{uid}", json={"user": {"name": "admin"}}, headers=admin_headers), 409
        )
        _keystone_error(
            client.patch(f"/v3/users/{uid}", json={"user": {"password": "weak"}}, headers=admin_headers), 400
        )

    def test_other_domain_is_404(
        self, client: TestClient, tenant_admin_headers: H, other_account: dict[str, str]
    ) -> None:
        uid = other_account["user"]
        _keystone_error(client.get(f"/v3/users/{uid}", headers=tenant_admin_headers), 404)
        _keystone_error(
            client.patch(f"/v3/users/{uid}", json={"user": {"enabled": False}}, headers=tenant_admin_headers), 404
        )
        _keystone_error(client.delete(f"/v3/users/{uid}", headers=tenant_admin_headers), 404)
        _keystone_error(client.get(f"/v3/users/{uid}/groups", headers=tenant_admin_headers), 404)
        names = {u["name"] for u in client.get("/v3/users", headers=tenant_admin_headers).json()["users"]}
        assert "stranger" not in names

    def test_cannot_delete_or_disable_self(self, client: TestClient, admin_headers: H) -> None:
        uid = _id_of(client, admin_headers, "users", "admin")
        _keystone_error(client.delete(f"/v3/users/{uid}", headers=admin_headers), 400)
        _keystone_error(
            client.patch(f"/v3/users/{uid}", json={"user": {"enabled": False}}, headers=admin_headers), 400
        )

    def test_disable_and_delete_revoke_tokens(
        self, client: TestClient, admin_headers: H, clock: ManualClock
    ) -> None:
        token = _user_with_role(client, admin_headers, "carol", "readonly")
        uid = _id_of(client, admin_headers, "users", "carol")
        assert client.get(f"/v3/users/{uid}", headers={"X-Auth-Token": token}).status_code == 200
        r = client.patch(f"/v3/users/{uid}", json={"user": {"enabled": False}}, headers=admin_headers)
        assert r.status_code == 200 and r.json()["user"]["enabled"] is False
        _keystone_error(client.get(f"/v3/users/{uid}", headers={"X-Auth-Token": token}), 401)
        r = client.post("/v3/auth/tokens", json=password_auth("carol", PASSWORD))
        assert r.status_code == 401
        clock.advance(1)
        assert (
            client.patch(
                f"/v3/users/{uid}", json={"user": {"enabled": True}}, headers=admin_headers
            ).status_code
            == 200
        )
        token = login(client, "carol", PASSWORD)
        assert client.delete(f"/v3/users/{uid}", headers=admin_headers).status_code == 204
        _keystone_error(client.get("/v3/auth/projects", headers={"X-Auth-Token": token}), 401)

    def test_admin_sets_password(self, client: TestClient, admin_headers: H, clock: ManualClock) -> None:
        token = _user_with_role(client, admin_headers, "dave1", "readonly")
        uid = _id_of(client, admin_headers, "users", "dave1")
        r = client.patch(
            f"/v3/users/{uid}", json={"user": {"password": "Other-pass-77"}}, headers=admin_headers
        )
        assert r.status_code == 200
        _keystone_error(client.get("/v3/auth/projects", headers={"X-Auth-Token": token}), 401)
        clock.advance(1)
        assert login(client, "dave1", "Other-pass-77")

    def test_last_admin_cannot_be_removed(self, client: TestClient, admin_headers: H) -> None:
        # A second administrator: removing the first is fine while the second remains.
        helper = _create_user(client, admin_headers, "helper")
        admin_group = _id_of(client, admin_headers, "groups", "admin")
        assert (
            client.put(f"/v3/groups/{admin_group}/users/{helper}", headers=admin_headers).status_code == 204
        )
        helper_headers = {"X-Auth-Token": login(client, "helper", PASSWORD)}
        admin_id = _id_of(client, admin_headers, "users", "admin")
        r = client.delete(f"/v3/groups/{admin_group}/users/{admin_id}", headers=helper_headers)
        assert r.status_code == 204
        # That revoked admin's tokens (their roles changed).
        _keystone_error(client.get("/v3/users", headers=admin_headers), 401)
        # The helper is now the only administrator; leaving the group would lock the account out.
        r = client.delete(f"/v3/groups/{admin_group}/users/{helper}", headers=helper_headers)
        _keystone_error(r, 409)
        _keystone_error(client.delete(f"/v3/groups/{admin_group}", headers=helper_headers), 409)
        assert client.get("/v3/users", headers=helper_headers).status_code == 200


# ---------------------------------------------------------------- password change


class TestPasswordChange:
    def _change(self, client: TestClient, token: str, user_id: str, old: str, new: str) -> Any:
        return client.post(
            f"/v3/users/{user_id}/password",
            headers={"X-Auth-Token": token},
            json={"user": {"password": new, "original_password": old}},
        )

    def test_requires_token(self, client: TestClient) -> None:
        r = client.post(
            f"/v3/users/{new_id()}/password",
            json={"user": {"password": "New-pass-1234", "original_password": PASSWORD}},
        )
        _keystone_error(r, 401)

    def test_change_revokes_old_tokens(
        self, client: TestClient, admin_headers: H, clock: ManualClock
    ) -> None:
        token = _user_with_role(client, admin_headers, "erin1", "readonly")
        uid = _id_of(client, admin_headers, "users", "erin1")
        other_token = login(client, "erin1", PASSWORD, project=None)
        assert self._change(client, token, uid, PASSWORD, "New-pass-1234").status_code == 204
        for old in (token, other_token):
            _keystone_error(client.get("/v3/auth/projects", headers={"X-Auth-Token": old}), 401)
        assert client.post("/v3/auth/tokens", json=password_auth("erin1", PASSWORD)).status_code == 401
        # Revocation covers tokens issued up to the change; a later login is a new token.
        clock.advance(1)
        new_token = login(client, "erin1", "New-pass-1234")
        assert client.get("/v3/auth/projects", headers={"X-Auth-Token": new_token}).status_code == 200

    def test_rules(self, client: TestClient, admin_headers: H) -> None:
        token = _user_with_role(client, admin_headers, "frank", "readonly")
        uid = _id_of(client, admin_headers, "users", "frank")
        _keystone_error(self._change(client, token, uid, "Wrong-pass-1", "New-pass-1234"), 401)
        _keystone_error(self._change(client, token, uid, PASSWORD, "weak"), 400)
        _keystone_error(self._change(client, token, uid, PASSWORD, PASSWORD), 400)
        _keystone_error(self._change(client, token, uid, PASSWORD, "Frank-pass-1"), 400)
        r = client.post(f"/v3/users/{uid}/password", headers={"X-Auth-Token": token}, json={"user": {}})
        _keystone_error(r, 400)
        # Someone else's password: not even an administrator may use this route.
        _keystone_error(
            self._change(client, admin_headers["X-Auth-Token"], uid, PASSWORD, "New-pass-1234"), 403
        )
        # The old password still works after all those failures.
        assert login(client, "frank", PASSWORD)

    def test_other_domain_is_404(
        self, client: TestClient, tenant_admin_headers: H, other_account: dict[str, str]
    ) -> None:
        r = self._change(
            client, tenant_admin_headers["X-Auth-Token"], other_account["user"], PASSWORD, "New-pass-1234"
        )
        _keystone_error(r, 404)


# ---------------------------------------------------------------- groups


class TestGroups:
    def test_requires_token(self, client: TestClient) -> None:
        _keystone_error(client.get("/v3/groups"), 401)
        _keystone_error(client.put(f"/v3/groups/{new_id()}/users/{new_id()}"), 401)

    def test_reader_is_forbidden(self, client: TestClient, reader_headers: H) -> None:
        _keystone_error(client.get("/v3/groups", headers=reader_headers), 403)
        _keystone_error(client.post("/v3/groups", json={"group": {"name": "g"}}, headers=reader_headers), 403)

    def test_crud(self, client: TestClient, admin_headers: H) -> None:
        r = client.post(
            "/v3/groups", json={"group": {"name": "devs", "description": "developers"}}, headers=admin_headers
        )
        assert r.status_code == 201, r.text
        group = r.json()["group"]
        assert group["name"] == "devs" and group["description"] == "developers"
        assert isinstance(group["create_time"], int) and group["links"]["self"].endswith(group["id"])
        gid = group["id"]
        assert client.get(f"/v3/groups/{gid}", headers=admin_headers).json()["group"]["name"] == "devs"
        names = [g["name"] for g in client.get("/v3/groups", headers=admin_headers).json()["groups"]]
        assert names == ["admin", "devs"]
        r = client.get("/v3/groups", params={"name": "devs"}, headers=admin_headers)
        assert [g["id"] for g in r.json()["groups"]] == [gid]
        r = client.patch(f"/v3/groups/{gid}", json={"group": {"name": "developers"}}, headers=admin_headers)
        assert r.status_code == 200 and r.json()["group"]["name"] == "developers"
        _keystone_error(
            client.post("/v3/groups", json={"group": {"name": "admin"}}, headers=admin_headers), 409
        )
        _keystone_error(client.post("/v3/groups", json={"group": {"name": ""}}, headers=admin_headers), 400)
        _keystone_error(
            client.post("/v3/groups", json={"group": {"name": "x" * 65}}, headers=admin_headers), 400
        )
        assert client.delete(f"/v3/groups/{gid}", headers=admin_headers).status_code == 204
        _keystone_error(client.get(f"/v3/groups/{gid}", headers=admin_headers), 404)

    def test_membership(self, client: TestClient, admin_headers: H) -> None:
        gid = _create_group(client, admin_headers, "devs")
        uid = _create_user(client, admin_headers, "grace")
        path = f"/v3/groups/{gid}/users/{uid}"
        assert client.head(path, headers=admin_headers).status_code == 404
        assert client.put(path, headers=admin_headers).status_code == 204
        assert client.put(path, headers=admin_headers).status_code == 204  # idempotent
        assert client.head(path, headers=admin_headers).status_code == 204
        users = client.get(f"/v3/groups/{gid}/users", headers=admin_headers).json()["users"]
        assert [u["name"] for u in users] == ["grace"]
        groups = client.get(f"/v3/users/{uid}/groups", headers=admin_headers).json()["groups"]
        assert [g["name"] for g in groups] == ["devs"]
        assert client.delete(path, headers=admin_headers).status_code == 204
        _keystone_error(client.delete(path, headers=admin_headers), 404)
        assert client.get(f"/v3/groups/{gid}/users", headers=admin_headers).json()["users"] == []

    def test_own_groups_visible_to_user(
        self, client: TestClient, admin_headers: H, reader_headers: H
    ) -> None:
        uid = _id_of(client, admin_headers, "users", "reader")
        r = client.get(f"/v3/users/{uid}/groups", headers=reader_headers)
        assert r.status_code == 200 and [g["name"] for g in r.json()["groups"]] == ["reader-group"]
        admin_id = _id_of(client, admin_headers, "users", "admin")
        _keystone_error(client.get(f"/v3/users/{admin_id}/groups", headers=reader_headers), 403)

    def test_other_domain_is_404(
        self, client: TestClient, tenant_admin_headers: H, other_account: dict[str, str]
    ) -> None:
        gid, uid = other_account["group"], other_account["user"]
        own_group = _create_group(client, tenant_admin_headers, "devs")
        own_user = _create_user(client, tenant_admin_headers, "henry")
        for method, path in (
            ("GET", f"/v3/groups/{gid}"),
            ("DELETE", f"/v3/groups/{gid}"),
            ("GET", f"/v3/groups/{gid}/users"),
            ("PUT", f"/v3/groups/{gid}/users/{own_user}"),
            ("PUT", f"/v3/groups/{own_group}/users/{uid}"),
            ("HEAD", f"/v3/groups/{own_group}/users/{uid}"),
        ):
            r = client.request(method, path, headers=tenant_admin_headers)
            assert r.status_code == 404, (method, path, r.text)
        r = client.patch(f"/v3/groups/{gid}", json={"group": {"name": "x"}}, headers=tenant_admin_headers)
        _keystone_error(r, 404)
        assert "strangers" not in {
            g["name"] for g in client.get("/v3/groups", headers=tenant_admin_headers).json()["groups"]
        }


# ---------------------------------------------------------------- roles


class TestRoles:
    def test_requires_token(self, client: TestClient) -> None:
        _keystone_error(client.get("/v3/roles"), 401)

    def test_reader_is_forbidden(self, client: TestClient, reader_headers: H) -> None:
        _keystone_error(client.get("/v3/roles", headers=reader_headers), 403)

    def test_list_filter_show(self, client: TestClient, admin_headers: H) -> None:
        r = client.get("/v3/roles", headers=admin_headers)
        assert r.status_code == 200
        roles = {role["name"]: role for role in r.json()["roles"]}
        assert {"te_admin", "secu_admin", "readonly", "ims_fullaccess"} <= set(roles)
        assert r.json()["total_number"] == len(roles)
        ro = roles["readonly"]
        assert ro["display_name"] == "Tenant Guest" and ro["type"] == "AA" and ro["catalog"] == "BASE"
        assert ro["policy"]["Version"] == "1.0" and ro["policy"]["Statement"]
        assert {"id", "description", "links", "domain_id"} <= set(ro)
        r = client.get("/v3/roles", params={"name": "secu_admin"}, headers=admin_headers)
        assert [x["name"] for x in r.json()["roles"]] == ["secu_admin"]
        r = client.get("/v3/roles", params={"display_name": "Tenant Guest"}, headers=admin_headers)
        assert [x["name"] for x in r.json()["roles"]] == ["readonly"]
        r = client.get(f"/v3/roles/{ro['id']}", headers=admin_headers)
        assert r.status_code == 200 and r.json()["role"]["name"] == "readonly"
        _keystone_error(client.get(f"/v3/roles/{new_id()}", headers=admin_headers), 404)


# ---------------------------------------------------------------- grants


class TestGrants:
    def test_requires_token(self, client: TestClient) -> None:
        _keystone_error(client.put(f"/v3/projects/{new_id()}/groups/{new_id()}/roles/{new_id()}"), 401)
        _keystone_error(client.get("/v3/role_assignments"), 401)

    def test_reader_is_forbidden(self, client: TestClient, admin_headers: H, reader_headers: H) -> None:
        pid = _id_of(client, admin_headers, "projects", "local-1")
        gid = _id_of(client, admin_headers, "groups", "reader-group")
        rid = _id_of(client, admin_headers, "roles", "te_admin")
        _keystone_error(
            client.put(f"/v3/projects/{pid}/groups/{gid}/roles/{rid}", headers=reader_headers), 403
        )
        _keystone_error(client.get("/v3/role_assignments", headers=reader_headers), 403)

    def test_project_grant_gives_scoped_token(self, client: TestClient, admin_headers: H) -> None:
        pid = _create_project(client, admin_headers, "local-1_dev")
        uid = _create_user(client, admin_headers, "ivan1")
        gid = _create_group(client, admin_headers, "dev-readers")
        assert client.put(f"/v3/groups/{gid}/users/{uid}", headers=admin_headers).status_code == 204
        # Without a role on the project the user cannot scope a token to it.
        r = client.post("/v3/auth/tokens", json=password_auth("ivan1", PASSWORD, project="local-1_dev"))
        _keystone_error(r, 401)
        rid = _id_of(client, admin_headers, "roles", "readonly")
        grant = f"/v3/projects/{pid}/groups/{gid}/roles/{rid}"
        assert client.head(grant, headers=admin_headers).status_code == 404
        assert client.put(grant, headers=admin_headers).status_code == 204
        assert client.put(grant, headers=admin_headers).status_code == 204  # idempotent
        assert client.head(grant, headers=admin_headers).status_code == 204
        roles = client.get(f"/v3/projects/{pid}/groups/{gid}/roles", headers=admin_headers).json()["roles"]
        assert [r["name"] for r in roles] == ["readonly"] and roles[0]["policy"]
        r = client.post("/v3/auth/tokens", json=password_auth("ivan1", PASSWORD, project="local-1_dev"))
        assert r.status_code == 201, r.text
        tok = r.json()["token"]
        assert tok["project"]["id"] == pid and [x["name"] for x in tok["roles"]] == ["readonly"]
        user_headers = {"X-Auth-Token": r.headers["X-Subject-Token"]}
        # Readonly on a project is no IAM administrator.
        _keystone_error(client.get("/v3/users", headers=user_headers), 403)
        _keystone_error(
            client.post("/v3/projects", json={"project": {"name": "local-1_x"}}, headers=user_headers), 403
        )
        # ... and still has no role on the default project.
        r = client.post("/v3/auth/tokens", json=password_auth("ivan1", PASSWORD, project="local-1"))
        _keystone_error(r, 401)
        # Revoking the grant revokes the member's tokens.
        assert client.delete(grant, headers=admin_headers).status_code == 204
        _keystone_error(client.get("/v3/auth/projects", headers=user_headers), 401)
        _keystone_error(client.delete(grant, headers=admin_headers), 404)

    def test_project_te_admin_is_no_account_admin(self, client: TestClient, admin_headers: H) -> None:
        """te_admin on one project runs that project; IAM is account-wide and needs an account grant."""
        _create_project(client, admin_headers, "local-1_team")
        token = _user_with_role(client, admin_headers, "teamlead", "te_admin", project="local-1_team")
        tok = client.get("/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}).json()[
            "token"
        ]
        assert [r["name"] for r in tok["roles"]] == ["te_admin"]
        headers = {"X-Auth-Token": token}
        _keystone_error(client.get("/v3/users", headers=headers), 403)
        gid = _id_of(client, admin_headers, "groups", "teamlead-group")
        rid = _id_of(client, admin_headers, "roles", "te_admin")
        pid = _id_of(client, admin_headers, "projects", "local-1")
        _keystone_error(client.put(f"/v3/projects/{pid}/groups/{gid}/roles/{rid}", headers=headers), 403)

    def test_domain_and_inherited_grants(
        self, client: TestClient, admin_headers: H, clock: ManualClock
    ) -> None:
        did = client.get("/v3/auth/domains", headers=admin_headers).json()["domains"][0]["id"]
        pid = _create_project(client, admin_headers, "local-1_dev")
        uid = _create_user(client, admin_headers, "judy1")
        gid = _create_group(client, admin_headers, "auditors")
        assert client.put(f"/v3/groups/{gid}/users/{uid}", headers=admin_headers).status_code == 204
        secu = _id_of(client, admin_headers, "roles", "secu_admin")
        ims = _id_of(client, admin_headers, "roles", "ims_readonly")
        dom = f"/v3/domains/{did}/groups/{gid}/roles/{secu}"
        assert client.put(dom, headers=admin_headers).status_code == 204
        assert client.head(dom, headers=admin_headers).status_code == 204
        roles = client.get(f"/v3/domains/{did}/groups/{gid}/roles", headers=admin_headers).json()["roles"]
        assert [r["name"] for r in roles] == ["secu_admin"]
        # A project-level (XA) role cannot be granted on the domain, nor an AX role on a project.
        _keystone_error(client.put(f"/v3/domains/{did}/groups/{gid}/roles/{ims}", headers=admin_headers), 400)
        _keystone_error(
            client.put(f"/v3/projects/{pid}/groups/{gid}/roles/{secu}", headers=admin_headers), 400
        )
        inh = f"/v3/OS-INHERIT/domains/{did}/groups/{gid}/roles/{ims}/inherited_to_projects"
        assert client.head(inh, headers=admin_headers).status_code == 404
        assert client.put(inh, headers=admin_headers).status_code == 204
        assert client.head(inh, headers=admin_headers).status_code == 204
        r = client.get(
            f"/v3/OS-INHERIT/domains/{did}/groups/{gid}/roles/inherited_to_projects", headers=admin_headers
        )
        assert [x["name"] for x in r.json()["roles"]] == ["ims_readonly"]
        # Inherited to every project, including one created later.
        tok = client.post(
            "/v3/auth/tokens", json=password_auth("judy1", PASSWORD, project="local-1_dev")
        ).json()
        assert [x["name"] for x in tok["token"]["roles"]] == ["ims_readonly"]
        _create_project(client, admin_headers, "local-1_new")
        assert login(client, "judy1", PASSWORD, project="local-1_new")
        # The domain grant gives a domain-scoped administrator.
        judy = {"X-Auth-Token": login(client, "judy1", PASSWORD, project=None, scope_domain="admin")}
        assert client.get("/v3/users", headers=judy).status_code == 200
        # role_assignments
        r = client.get("/v3/role_assignments", params={"group.id": gid}, headers=admin_headers)
        assert r.status_code == 200
        got = r.json()["role_assignments"]
        assert {(a["role"]["id"], a["scope"].get("OS-INHERIT:inherited_to")) for a in got} == {
            (secu, None),
            (ims, "projects"),
        }
        assert all(a["group"]["id"] == gid and a["scope"]["domain"]["id"] == did for a in got)
        assert all(a["links"]["assignment"].startswith("http") for a in got)
        r = client.get(
            "/v3/role_assignments",
            params={"scope.domain.id": did, "role.id": ims, "scope.OS-INHERIT:inherited_to": "projects"},
            headers=admin_headers,
        )
        assert [a["group"]["id"] for a in r.json()["role_assignments"]] == [gid]
        admin_pid = _id_of(client, admin_headers, "projects", "local-1")
        r = client.get("/v3/role_assignments", params={"scope.project.id": admin_pid}, headers=admin_headers)
        assert [a["role"]["id"] for a in r.json()["role_assignments"]] == [
            _id_of(client, admin_headers, "roles", "te_admin")
        ]
        r = client.get("/v3/role_assignments", params={"user.id": uid}, headers=admin_headers)
        assert len(r.json()["role_assignments"]) == 2
        r = client.get(
            "/v3/role_assignments",
            params={"scope.project.id": pid, "scope.domain.id": did},
            headers=admin_headers,
        )
        _keystone_error(r, 400)
        assert client.delete(inh, headers=admin_headers).status_code == 204
        assert client.delete(dom, headers=admin_headers).status_code == 204
        clock.advance(1)
        r = client.post("/v3/auth/tokens", json=password_auth("judy1", PASSWORD, project="local-1_dev"))
        _keystone_error(r, 401)

    def test_bootstrap_admin_grants_cannot_all_go(
        self, client: TestClient, admin_headers: H, clock: ManualClock
    ) -> None:
        did = client.get("/v3/auth/domains", headers=admin_headers).json()["domains"][0]["id"]
        pid = _id_of(client, admin_headers, "projects", "local-1")
        gid = _id_of(client, admin_headers, "groups", "admin")
        te = _id_of(client, admin_headers, "roles", "te_admin")
        # The inherited grant still makes admin an administrator of local-1 ...
        assert (
            client.delete(f"/v3/projects/{pid}/groups/{gid}/roles/{te}", headers=admin_headers).status_code
            == 204
        )
        # ... the members' tokens went with the grant; a new login still has te_admin.
        _keystone_error(client.get("/v3/users", headers=admin_headers), 401)
        clock.advance(1)
        fresh = {"X-Auth-Token": login(client)}
        # Removing the inherited grant too would lock the account out.
        inh = f"/v3/OS-INHERIT/domains/{did}/groups/{gid}/roles/{te}/inherited_to_projects"
        _keystone_error(client.delete(inh, headers=fresh), 409)
        assert client.head(inh, headers=fresh).status_code == 204

    def test_other_domain_is_404(
        self, client: TestClient, tenant_admin_headers: H, other_account: dict[str, str]
    ) -> None:
        own_pid = _id_of(client, tenant_admin_headers, "projects", "local-1")
        own_gid = _id_of(client, tenant_admin_headers, "groups", "admin")
        rid = _id_of(client, tenant_admin_headers, "roles", "readonly")
        other = other_account
        for path in (
            f"/v3/projects/{other['project']}/groups/{own_gid}/roles/{rid}",
            f"/v3/projects/{own_pid}/groups/{other['group']}/roles/{rid}",
            f"/v3/domains/{other['domain']}/groups/{own_gid}/roles/{rid}",
            f"/v3/OS-INHERIT/domains/{other['domain']}/groups/{own_gid}/roles/{rid}/inherited_to_projects",
            f"/v3/projects/{own_pid}/groups/{own_gid}/roles/{new_id()}",
        ):
            for method in ("PUT", "HEAD", "DELETE"):
                r = client.request(method, path, headers=tenant_admin_headers)
                assert r.status_code == 404, (method, path, r.text)
        r = client.get(f"/v3/projects/{other['project']}/groups/{own_gid}/roles", headers=tenant_admin_headers)
        _keystone_error(r, 404)
        r = client.get("/v3/role_assignments", params={"group.id": other["group"]}, headers=tenant_admin_headers)
        assert r.json()["role_assignments"] == []


def test_other_account_rows_untouched(
    runtime: Runtime, client: TestClient, tenant_admin_headers: H, other_account: dict[str, str]
) -> None:
    """Nothing an administrator does through the API reaches into another account."""
    client.delete(f"/v3/users/{other_account['user']}", headers=tenant_admin_headers)
    client.delete(f"/v3/groups/{other_account['group']}", headers=tenant_admin_headers)
    with runtime.db.session() as s:
        assert s.scalar(select(User.name).where(User.id == other_account["user"])) == "stranger"
        assert s.scalar(select(Group.name).where(Group.id == other_account["group"])) == "strangers"


def test_create_errors_are_documented_in_keystones_shape(client: TestClient, admin_headers: H) -> None:
    # Fuzzing findings: these answers were right but missing from /openapi.json (only 201 and 422 were).
    doc = client.get("/openapi.json").json()
    _create_group(client, admin_headers, "fz-group")
    taken = client.post("/v3/groups", json={"group": {"name": "fz-group"}}, headers=admin_headers)
    assert taken.status_code == 409
    assert_documented(doc, "POST", "/v3/groups", taken)
    for kind, body in (("users", {"name": "fz-user", "password": PASSWORD, "domain_id": "0" * 63}),
                       ("projects", {"name": "local-1_fz", "domain_id": ""}),
                       ("groups", {"name": "fz-other", "domain_id": "0" * 63})):
        missing = client.post(f"/v3/{kind}", json={kind[:-1]: body}, headers=admin_headers)
        assert missing.status_code == 404, missing.text
        assert_documented(doc, "POST", f"/v3/{kind}", missing)
    client.post("/v3/domains", json={"domain": {"name": "fz-domain"}}, headers=admin_headers)
    again = client.post("/v3/domains", json={"domain": {"name": "fz-domain"}}, headers=admin_headers)
    assert again.status_code == 409
    assert_documented(doc, "POST", "/v3/domains", again)
    # Request validation is a 400 in Keystone's shape, as documented (not FastAPI's 422).
    invalid = client.post("/v3/groups", json={"group": {"name": 7}}, headers=admin_headers)
    assert invalid.status_code == 400
    assert_documented(doc, "POST", "/v3/groups", invalid)

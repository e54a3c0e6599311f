"""Keystone's default roles and direct user grants, and the native API's RBAC and deactivation (Glance's rules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openims.runtime import Runtime
from tests.api.test_glance_data import put_file
from tests.api.test_glance_images import create
from tests.conftest import login, new_tenant, password_auth
from tests.support.images import make_image

H = dict[str, str]
PASSWORD = "Secret-pass-42"


def _id_of(client: TestClient, headers: H, kind: str, name: str) -> str:
    items = client.get(f"/v3/{kind}", params={"name": name}, headers=headers).json()[kind]
    assert len(items) == 1, items
    return str(items[0]["id"])


def _user(client: TestClient, headers: H, name: str) -> str:
    r = client.post("/v3/users", json={"user": {"name": name, "password": PASSWORD}}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["user"]["id"])


def _grant(client: TestClient, headers: H, user_id: str, role: str, project: str = "local-1") -> str:
    """Grant ``role`` to the user directly on ``project``, as ``openstack role add --user`` does; the grant's path."""
    path = (f"/v3/projects/{_id_of(client, headers, 'projects', project)}/users/{user_id}/roles/"
            f"{_id_of(client, headers, 'roles', role)}")
    r = client.put(path, headers=headers)
    assert r.status_code == 204 and r.content == b"", r.text
    return path


def _token_roles(client: TestClient, token: str) -> list[str]:
    body = client.get("/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}).json()
    return sorted(r["name"] for r in body["token"]["roles"])


def _with_role(client: TestClient, headers: H, name: str, role: str) -> H:
    _grant(client, headers, _user(client, headers, name), role)
    return {"X-Auth-Token": login(client, name, PASSWORD)}


class TestKeystoneRoles:
    def test_default_roles_exist_beside_the_huawei_ones(self, client: TestClient, admin_headers: H) -> None:
        names = {r["name"] for r in client.get("/v3/roles", headers=admin_headers).json()["roles"]}
        assert {"admin", "member", "reader", "te_admin", "readonly"} <= names
        # openstackclient looks a role up by id first: a name is 404, not an error.
        assert client.get("/v3/roles/member", headers=admin_headers).status_code == 404

    @pytest.mark.parametrize(("role", "implied"), [
        ("admin", ["admin", "member", "reader"]), ("member", ["member", "reader"]), ("reader", ["reader"])])
    def test_tokens_carry_the_implied_roles(self, client: TestClient, admin_headers: H, role: str,
                                            implied: list[str]) -> None:
        headers = _with_role(client, admin_headers, f"holder-{role}", role)
        assert _token_roles(client, headers["X-Auth-Token"]) == implied

    def test_user_grant_lifecycle(self, client: TestClient, admin_headers: H) -> None:
        user_id = _user(client, admin_headers, "direct1")
        # No role on the project: no token for it.
        assert client.post("/v3/auth/tokens", json=password_auth("direct1", PASSWORD)).status_code == 401
        path = _grant(client, admin_headers, user_id, "member")
        assert client.put(path, headers=admin_headers).status_code == 204  # idempotent
        assert client.head(path, headers=admin_headers).status_code == 204
        listing = path.rsplit("/", 1)[0]
        assert [r["name"] for r in client.get(listing, headers=admin_headers).json()["roles"]] == ["member"]
        token = login(client, "direct1", PASSWORD)
        assert _token_roles(client, token) == ["member", "reader"]
        assigned = client.get("/v3/role_assignments", params={"user.id": user_id}, headers=admin_headers).json()
        assert [(a["user"]["id"], a["scope"]["project"]["id"]) for a in assigned["role_assignments"]] == [
            (user_id, path.split("/")[3])]
        assert assigned["role_assignments"][0]["links"]["assignment"].endswith(path)
        # openstackclient's --names: Keystone's include_names.
        named = client.get("/v3/role_assignments", params={"user.id": user_id, "include_names": "1"},
                           headers=admin_headers).json()["role_assignments"][0]
        assert named["role"]["name"] == "member" and named["user"]["name"] == "direct1"
        assert named["scope"]["project"]["name"] == "local-1" and named["user"]["domain"]["name"] == "admin"
        # Revoking it ends the user's tokens at once.
        assert client.delete(path, headers=admin_headers).status_code == 204
        assert client.head(path, headers=admin_headers).status_code == 404
        assert client.delete(path, headers=admin_headers).status_code == 404
        assert client.get("/v2/images", headers={"X-Auth-Token": token}).status_code == 401

    def test_domain_user_grant_scopes_a_domain_token(self, client: TestClient, admin_headers: H) -> None:
        user_id = _user(client, admin_headers, "domainwide")
        me = client.get("/v3/auth/tokens", headers={**admin_headers, "X-Subject-Token": admin_headers["X-Auth-Token"]})
        domain_id = me.json()["token"]["user"]["domain"]["id"]
        role_id = _id_of(client, admin_headers, "roles", "admin")
        path = f"/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}"
        assert client.put(path, headers=admin_headers).status_code == 204
        r = client.post("/v3/auth/tokens", json=password_auth("domainwide", PASSWORD, project=None,
                                                              scope_domain="admin"))
        assert r.status_code == 201, r.text
        assert sorted(x["name"] for x in r.json()["token"]["roles"]) == ["admin", "member", "reader"]
        # An admin role on the account administers IAM.
        headers = {"X-Auth-Token": r.headers["X-Subject-Token"]}
        assert client.get("/v3/users", headers=headers).status_code == 200

    def test_only_administrators_grant_and_only_in_their_account(self, client: TestClient, admin_headers: H,
                                                                  runtime: Runtime) -> None:
        member = _with_role(client, admin_headers, "plainmember", "member")
        victim = _user(client, admin_headers, "victim1")
        role_id = _id_of(client, admin_headers, "roles", "admin")
        project_id = _id_of(client, admin_headers, "projects", "local-1")
        r = client.put(f"/v3/projects/{project_id}/users/{victim}/roles/{role_id}", headers=member)
        assert r.status_code == 403
        # Another account's user is not found, never forbidden.
        r = client.put(f"/v3/projects/{project_id}/users/nonexistent-user/roles/{role_id}", headers=admin_headers)
        assert r.status_code == 404

    def test_last_administrator_grant_cannot_go(self, client: TestClient, admin_headers: H) -> None:
        """The lock-out guard counts direct grants like group grants."""
        me = client.get("/v3/auth/tokens", headers={**admin_headers, "X-Subject-Token": admin_headers["X-Auth-Token"]})
        admin_id, domain_id = me.json()["token"]["user"]["id"], me.json()["token"]["user"]["domain"]["id"]
        second = _user(client, admin_headers, "secondadmin")
        role_id = _id_of(client, admin_headers, "roles", "admin")
        on_domain = f"/v3/domains/{domain_id}/users/{second}/roles/{role_id}"
        assert client.put(on_domain, headers=admin_headers).status_code == 204
        on_project = _grant(client, admin_headers, second, "admin")
        headers = {"X-Auth-Token": login(client, "secondadmin", PASSWORD)}
        # The bootstrap admin leaves its groups: the direct grants keep an administrator.
        for group in client.get(f"/v3/users/{admin_id}/groups", headers=headers).json()["groups"]:
            assert client.delete(f"/v3/groups/{group['id']}/users/{admin_id}", headers=headers).status_code == 204
        r = client.delete(on_project, headers=headers)
        assert r.status_code == 409 and "without any enabled user" in r.text
        assert client.head(on_project, headers=headers).status_code == 204


class TestNativeRbac:
    """The sheet's §8 on the native routes, for the Keystone roles of a project."""

    def test_reader_reads_but_neither_creates_nor_downloads(self, client: TestClient, admin_headers: H,
                                                            tmp_path: Path) -> None:
        image = create(client, admin_headers, name="readable", disk_format="qcow2")
        data = make_image(tmp_path, "qcow2").read_bytes()
        assert put_file(client, admin_headers, image["id"], data).status_code == 204
        reader = _with_role(client, admin_headers, "reader1", "reader")
        assert client.get(f"/v2/images/{image['id']}", headers=reader).status_code == 200
        assert image["id"] in [i["id"] for i in client.get("/v2/images", headers=reader).json()["images"]]
        assert client.post("/v2/images", json={"name": "x"}, headers=reader).status_code == 403
        r = client.get(f"/v2/images/{image['id']}/file", headers=reader)
        assert r.status_code == 403 and "download" in r.json()["error"]["message"]
        # An image it cannot see is 404, not a hint that it exists.
        assert client.get("/v2/images/00000000-0000-0000-0000-000000000000/file", headers=reader).status_code == 404
        r = client.patch(f"/v2/images/{image['id']}", json=[{"op": "replace", "path": "/name", "value": "y"}],
                         headers={**reader, "Content-Type": "application/openstack-images-v2.1-json-patch"})
        assert r.status_code == 403
        assert client.delete(f"/v2/images/{image['id']}", headers=reader).status_code == 403

    def test_member_creates_uploads_downloads_but_cannot_publicize(self, client: TestClient, admin_headers: H,
                                                                   tmp_path: Path) -> None:
        member = _with_role(client, admin_headers, "member1", "member")
        image = create(client, member, name="mine", disk_format="qcow2")
        data = make_image(tmp_path, "qcow2").read_bytes()
        assert put_file(client, member, image["id"], data).status_code == 204
        assert client.get(f"/v2/images/{image['id']}/file", headers=member).content == data
        assert client.post("/v2/images", json={"name": "pub", "visibility": "public"},
                           headers=member).status_code == 403
        assert client.post("/v2/images", json={"name": "other", "owner": "someone-else"},
                           headers=member).status_code == 403
        assert client.delete(f"/v2/images/{image['id']}", headers=member).status_code == 204


def _active(client: TestClient, headers: H, tmp_path: Path, name: str = "to-deactivate") -> tuple[str, bytes]:
    image = create(client, headers, name=name, disk_format="qcow2")
    data = make_image(tmp_path, "qcow2").read_bytes()
    assert put_file(client, headers, image["id"], data).status_code == 204
    return image["id"], data


def _action(client: TestClient, headers: H, image_id: str, action: str) -> Any:
    return client.post(f"/v2/images/{image_id}/actions/{action}", headers=headers)


class TestDeactivate:
    def test_deactivate_and_reactivate(self, client: TestClient, admin_headers: H, tmp_path: Path) -> None:
        image_id, data = _active(client, admin_headers, tmp_path)
        member = _with_role(client, admin_headers, "owner-member", "member")
        r = _action(client, member, image_id, "deactivate")
        assert r.status_code == 204 and r.content == b""
        assert _action(client, member, image_id, "deactivate").status_code == 204  # no-op
        # The metadata stays readable.
        got = client.get(f"/v2/images/{image_id}", headers=member).json()
        assert got["status"] == "deactivated" and got["size"] == len(data)
        # Nobody but an image administrator downloads it, the owner's members included.
        r = client.get(f"/v2/images/{image_id}/file", headers=member)
        assert r.status_code == 403
        assert r.json()["error"]["message"] == ("The requested image has been deactivated. Image data download "
                                                "is forbidden.")
        assert client.get(f"/v2/images/{image_id}/file", headers=admin_headers).content == data
        listed = client.get("/v2/images", params={"status": "deactivated"}, headers=member).json()["images"]
        assert [i["id"] for i in listed] == [image_id]
        assert _action(client, member, image_id, "reactivate").status_code == 204
        assert _action(client, member, image_id, "reactivate").status_code == 204  # no-op
        assert client.get(f"/v2/images/{image_id}/file", headers=member).content == data

    def test_wrong_status_is_403(self, client: TestClient, admin_headers: H) -> None:
        queued = create(client, admin_headers, name="queued")
        r = _action(client, admin_headers, queued["id"], "deactivate")
        assert r.status_code == 403 and "Not allowed to deactivate image in status 'queued'" in r.text
        r = _action(client, admin_headers, queued["id"], "reactivate")
        assert r.status_code == 403 and "Not allowed to reactivate image in status 'queued'" in r.text

    def test_who_may(self, client: TestClient, admin_headers: H, runtime: Runtime, tmp_path: Path) -> None:
        image_id, _ = _active(client, admin_headers, tmp_path)
        reader = _with_role(client, admin_headers, "reader2", "reader")
        assert _action(client, reader, image_id, "deactivate").status_code == 403
        stranger = new_tenant(client, runtime, "stranger2")
        assert _action(client, stranger, image_id, "deactivate").status_code == 404
        assert client.get(f"/v2/images/{image_id}/actions/deactivate", headers=admin_headers).status_code == 405
        assert client.post("/v2/images/nope/actions/deactivate", headers=admin_headers).status_code == 404

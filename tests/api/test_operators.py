"""The operator (issue 13): a role no tenant role gives, accounts (Keystone domains) it alone manages,
and accounts kept apart from each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from openims.runtime import Runtime
from openims.worker.runner import Worker
from tests.api.test_images_api import VALID, create, upload
from tests.api.test_signed_requests import Signed, new_key
from tests.conftest import login, new_tenant
from tests.support.images import make_image

H = dict[str, str]
PASSWORD = "Acme-pass-1234"


def _keystone_error(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == status and err["title"] and err["message"]


def _role_id(client: TestClient, headers: H, name: str) -> str:
    roles = client.get("/v3/roles", params={"name": name}, headers=headers).json()["roles"]
    return str(roles[0]["id"])


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def make_account(client: TestClient, operator: H, name: str, admin_user: str) -> dict[str, str]:
    """An account made the way ``openims account create`` makes it, through the ordinary IAM routes:
    the domain (with its project), an administrator group holding what the bootstrap ``admin`` group
    holds, and an administrator in it. Returns the ids and the administrator's headers."""
    domain = _ok(client.post("/v3/domains", json={"domain": {"name": name, "description": "d"}},
                             headers=operator), 201)["domain"]
    projects = _ok(client.get("/v3/projects", params={"domain_id": domain["id"]}, headers=operator))["projects"]
    assert [p["name"] for p in projects] == ["local-1"]
    project = projects[0]
    user = _ok(client.post("/v3/users", json={"user": {"name": admin_user, "password": PASSWORD,
                                                         "domain_id": domain["id"]}}, headers=operator), 201)["user"]
    group = _ok(client.post("/v3/groups", json={"group": {"name": "admin", "domain_id": domain["id"]}},
                            headers=operator), 201)["group"]
    assert user["domain_id"] == group["domain_id"] == domain["id"]
    assert client.put(f"/v3/groups/{group['id']}/users/{user['id']}", headers=operator).status_code == 204
    te_admin, secu_admin = _role_id(client, operator, "te_admin"), _role_id(client, operator, "secu_admin")
    for path in (f"/v3/domains/{domain['id']}/groups/{group['id']}/roles/{te_admin}",
                 f"/v3/domains/{domain['id']}/groups/{group['id']}/roles/{secu_admin}",
                 f"/v3/OS-INHERIT/domains/{domain['id']}/groups/{group['id']}/roles/{te_admin}/inherited_to_projects",
                 f"/v3/projects/{project['id']}/groups/{group['id']}/roles/{te_admin}"):
        assert client.put(path, headers=operator).status_code == 204, path
    token = login(client, admin_user, PASSWORD, domain=name, project="local-1")
    return {"domain": domain["id"], "project": project["id"], "user": user["id"], "group": group["id"],
            "token": token}


@pytest.fixture
def acme(client: TestClient, admin_headers: H) -> dict[str, str]:
    return make_account(client, admin_headers, "acme", "acmeadmin")


def _headers(account: dict[str, str]) -> H:
    return {"X-Auth-Token": account["token"]}


class TestOperatorRole:
    def test_the_bootstrap_admin_is_the_operator(self, client: TestClient, admin_headers: H) -> None:
        token = admin_headers["X-Auth-Token"]
        r = client.get("/v3/auth/tokens", headers={**admin_headers, "X-Subject-Token": token})
        assert "operator" in {x["name"] for x in r.json()["token"]["roles"]}

    def test_tenant_admins_are_not_operators(self, client: TestClient, runtime: Runtime) -> None:
        """te_admin, or Keystone admin, of a project or of the whole account is never enough."""
        for name, role in (("tenantte", "te_admin"), ("keystoneadm", "admin")):
            headers = new_tenant(client, runtime, name, role=role)
            _keystone_error(client.get("/v3/domains", headers=headers), 403)
            _keystone_error(client.post("/v3/domains", json={"domain": {"name": f"{name}-x"}}, headers=headers),
                            403)

    def test_account_admin_is_refused(self, client: TestClient, acme: dict[str, str], admin_headers: H) -> None:
        headers = _headers(acme)
        token = client.get("/v3/auth/tokens", headers={**headers, "X-Subject-Token": acme["token"]}).json()
        assert "operator" not in {x["name"] for x in token["token"]["roles"]}
        _keystone_error(client.get("/v3/domains", headers=headers), 403)
        _keystone_error(client.get(f"/v3/domains/{acme['domain']}", headers=headers), 403)
        _keystone_error(client.patch(f"/v3/domains/{acme['domain']}", json={"domain": {"enabled": False}},
                                     headers=headers), 403)
        _keystone_error(client.delete(f"/v3/domains/{acme['domain']}", headers=headers), 403)

    def test_only_an_operator_grants_the_operator_role(self, client: TestClient, acme: dict[str, str],
                                                       admin_headers: H) -> None:
        headers = _headers(acme)
        operator_role = _role_id(client, admin_headers, "operator")
        # The account's administrator, in its own account: refused, directly or through a group.
        _keystone_error(client.put(f"/v3/domains/{acme['domain']}/users/{acme['user']}/roles/{operator_role}",
                                   headers=headers), 403)
        _keystone_error(client.put(f"/v3/domains/{acme['domain']}/groups/{acme['group']}/roles/{operator_role}",
                                   headers=headers), 403)
        _keystone_error(client.put(f"/v3/projects/{acme['project']}/users/{acme['user']}/roles/{operator_role}",
                                   headers=headers), 403)
        # The operator: to a user directly, on its account; never to a group.
        _keystone_error(client.put(f"/v3/domains/{acme['domain']}/groups/{acme['group']}/roles/{operator_role}",
                                   headers=admin_headers), 400)
        path = f"/v3/domains/{acme['domain']}/users/{acme['user']}/roles/{operator_role}"
        assert client.put(path, headers=admin_headers).status_code == 204
        token = login(client, "acmeadmin", PASSWORD, domain="acme")
        assert client.get("/v3/domains", headers={"X-Auth-Token": token}).status_code == 200
        # Its account's administrator cannot take it away either; the operator can, and the tokens go.
        _keystone_error(client.delete(path, headers=headers), 403)
        assert client.delete(path, headers=admin_headers).status_code == 204
        _keystone_error(client.get("/v3/domains", headers={"X-Auth-Token": token}), 401)


    def test_the_operators_own_account_admins_cannot_take_it_over(self, client: TestClient,
                                                                  admin_headers: H) -> None:
        """A tenant administrator of the bootstrap account administers its users, but not the operator:
        not its password, state or name, and not its access keys (they would sign as the operator)."""
        r = client.post("/v3/users", json={"user": {"name": "deputy", "password": PASSWORD}}, headers=admin_headers)
        deputy = _ok(r, 201)["user"]["id"]
        group = _ok(client.get("/v3/groups", params={"name": "admin"}, headers=admin_headers))["groups"][0]["id"]
        assert client.put(f"/v3/groups/{group}/users/{deputy}", headers=admin_headers).status_code == 204
        headers = {"X-Auth-Token": login(client, "deputy", PASSWORD)}
        operator = _ok(client.get("/v3/users", params={"name": "admin"}, headers=headers))["users"][0]["id"]
        for change in ({"password": "Taken-over-1234"}, {"enabled": False}, {"name": "formeradmin"}):
            _keystone_error(client.patch(f"/v3/users/{operator}", json={"user": change}, headers=headers), 403)
        _keystone_error(client.delete(f"/v3/users/{operator}", headers=headers), 403)
        r = client.post("/v3.0/OS-CREDENTIAL/credentials", json={"credential": {"user_id": operator}},
                        headers=headers)
        _keystone_error(r, 403)
        # Its other users it administers as ever; the operator administers the deputy too.
        other = _ok(client.post("/v3/users", json={"user": {"name": "plainuser", "password": PASSWORD}},
                                headers=headers), 201)["user"]["id"]
        assert client.patch(f"/v3/users/{other}", json={"user": {"enabled": False}}, headers=headers).status_code \
            == 200
        assert client.patch(f"/v3/users/{deputy}", json={"user": {"description": "x"}},
                            headers=admin_headers).status_code == 200
        login(client)


class TestDomains:
    def test_lifecycle(self, client: TestClient, admin_headers: H) -> None:
        r = client.post("/v3/domains", json={"domain": {"name": "globex", "description": "x", "enabled": True}},
                        headers=admin_headers)
        domain = _ok(r, 201)["domain"]
        assert domain["name"] == "globex" and domain["enabled"] is True and domain["description"] == "x"
        assert domain["links"]["self"].endswith(f"/v3/domains/{domain['id']}")
        _keystone_error(client.post("/v3/domains", json={"domain": {"name": "globex"}}, headers=admin_headers), 409)
        for bad in ("bad name", "newline\n"):
            _keystone_error(client.post("/v3/domains", json={"domain": {"name": bad}}, headers=admin_headers), 400)
        names = [d["name"] for d in _ok(client.get("/v3/domains", headers=admin_headers))["domains"]]
        assert names == ["admin", "globex"]
        assert _ok(client.get("/v3/domains", params={"name": "globex"}, headers=admin_headers))["domains"][0]["id"] \
            == domain["id"]
        assert _ok(client.get(f"/v3/domains/{domain['id']}", headers=admin_headers))["domain"]["name"] == "globex"
        _keystone_error(client.get("/v3/domains/nope", headers=admin_headers), 404)
        # Keystone: an enabled domain is not deleted (403); disabled, it is.
        _keystone_error(client.delete(f"/v3/domains/{domain['id']}", headers=admin_headers), 403)
        r = client.patch(f"/v3/domains/{domain['id']}", json={"domain": {"enabled": False, "description": "gone"}},
                         headers=admin_headers)
        assert (_ok(r)["domain"]["enabled"], r.json()["domain"]["description"]) == (False, "gone")
        assert [d["name"] for d in _ok(client.get("/v3/domains", params={"enabled": "false"},
                                                  headers=admin_headers))["domains"]] == ["globex"]
        assert client.delete(f"/v3/domains/{domain['id']}", headers=admin_headers).status_code == 204
        _keystone_error(client.get(f"/v3/domains/{domain['id']}", headers=admin_headers), 404)
        assert _ok(client.get("/v3/projects", params={"domain_id": domain["id"]}, headers=admin_headers))[
            "projects"] == []

    def test_the_operators_own_account_stays(self, client: TestClient, admin_headers: H) -> None:
        own = _ok(client.get("/v3/domains", params={"name": "admin"}, headers=admin_headers))["domains"][0]["id"]
        _keystone_error(client.patch(f"/v3/domains/{own}", json={"domain": {"enabled": False}},
                                     headers=admin_headers), 403)
        _keystone_error(client.delete(f"/v3/domains/{own}", headers=admin_headers), 403)

    def test_delete_cascades_identities_but_not_data(self, client: TestClient, admin_headers: H,
                                                     acme: dict[str, str]) -> None:
        headers = _headers(acme)
        image = _ok(client.post("/v2/images", json={"name": "kept"}, headers=headers), 201)
        domain = f"/v3/domains/{acme['domain']}"
        assert client.patch(domain, json={"domain": {"enabled": False}}, headers=admin_headers).status_code == 200
        r = client.delete(domain, headers=admin_headers)
        _keystone_error(r, 409)
        assert "1 image(s)" in r.json()["error"]["message"]
        client.patch(domain, json={"domain": {"enabled": True}}, headers=admin_headers)
        headers = {"X-Auth-Token": login(client, "acmeadmin", PASSWORD, domain="acme")}
        assert client.delete(f"/v2/images/{image['id']}", headers=headers).status_code == 204
        client.patch(domain, json={"domain": {"enabled": False}}, headers=admin_headers)
        assert client.delete(domain, headers=admin_headers).status_code == 204
        _keystone_error(client.get(f"/v3/users/{acme['user']}", headers=admin_headers), 404)
        _keystone_error(client.get(f"/v3/groups/{acme['group']}", headers=admin_headers), 404)
        r = client.post("/v3/auth/tokens", json={"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": "acmeadmin", "password": PASSWORD, "domain": {"name": "acme"}}}}}})
        assert r.status_code == 401


class TestAccountsApart:
    def test_the_operator_administers_another_account(self, client: TestClient, admin_headers: H,
                                                      acme: dict[str, str]) -> None:
        r = client.get("/v3/users", params={"domain_id": acme["domain"]}, headers=admin_headers)
        assert [u["name"] for u in _ok(r)["users"]] == ["acmeadmin"]
        assert _ok(client.get(f"/v3/users/{acme['user']}", headers=admin_headers))["user"]["name"] == "acmeadmin"
        # A grant or a membership never joins two accounts, not even the operator's.
        admin_group = _ok(client.get("/v3/groups", params={"name": "admin"}, headers=admin_headers))["groups"][0]
        assert client.put(f"/v3/groups/{admin_group['id']}/users/{acme['user']}",
                          headers=admin_headers).status_code == 400
        te_admin = _role_id(client, admin_headers, "te_admin")
        own_project = _ok(client.get("/v3/projects", params={"name": "local-1"}, headers=admin_headers))[
            "projects"][0]["id"]
        _keystone_error(client.put(f"/v3/projects/{own_project}/users/{acme['user']}/roles/{te_admin}",
                                   headers=admin_headers), 404)
        _keystone_error(client.patch(f"/v3/users/{acme['user']}", json={"user": {"domain_id": "x"}},
                                     headers=admin_headers), 403)

    def test_an_account_admin_reaches_only_its_account(self, client: TestClient, admin_headers: H,
                                                       acme: dict[str, str]) -> None:
        headers = _headers(acme)
        admin_user = _ok(client.get("/v3/users", params={"name": "admin"}, headers=admin_headers))["users"][0]
        admin_domain = admin_user["domain_id"]
        for method, path in (("GET", f"/v3/users/{admin_user['id']}"),
                             ("PATCH", f"/v3/users/{admin_user['id']}"),
                             ("DELETE", f"/v3/users/{admin_user['id']}")):
            body = {"user": {"enabled": False}} if method == "PATCH" else None
            _keystone_error(client.request(method, path, json=body, headers=headers), 404)
        assert [u["name"] for u in _ok(client.get("/v3/users", headers=headers))["users"]] == ["acmeadmin"]
        assert _ok(client.get("/v3/users", params={"domain_id": admin_domain}, headers=headers))["users"] == []
        assert _ok(client.get("/v3/projects", params={"domain_id": admin_domain}, headers=headers))["projects"] \
            == []
        _keystone_error(client.post("/v3/users", json={"user": {"name": "intruder", "domain_id": admin_domain}},
                                    headers=headers), 403)

    def test_buckets_images_jobs_are_404_to_another_account(self, client: TestClient, runtime: Runtime,
                                                             admin_headers: H, acme: dict[str, str],
                                                             tmp_path: Path) -> None:
        """An account made through the API is as apart from the first as any: the operator's own
        buckets, images and jobs are not found by it, and it cannot name the operator's bucket."""
        qcow2 = make_image(tmp_path / "src", "qcow2")
        upload(client, admin_headers, "bkt", "disk.qcow2", qcow2)
        job_id = create(client, admin_headers, **VALID).json()["job_id"]
        Worker(runtime).run_until_idle()
        image_id = client.get(f"/v1/cloudimages/job/{job_id}", headers=admin_headers).json()["entities"]["image_id"]
        h = _headers(acme)
        assert client.get(f"/v2/images/{image_id}", headers=h).status_code == 404
        assert client.delete(f"/v2/images/{image_id}", headers=h).status_code == 404
        assert client.get("/v2/cloudimages", headers=h).json()["images"] == []
        assert client.get(f"/v1/cloudimages/job/{job_id}", headers=h).status_code == 404
        assert client.get(f"/v1/{acme['project']}/jobs/{job_id}", headers=h).status_code == 404
        assert client.get("/obs/bkt", headers=h).status_code == 404
        assert client.put("/obs/bkt/x.qcow2", content=b"x", headers=h).status_code == 404
        job2 = create(client, h, **VALID).json()["job_id"]
        Worker(runtime).run_until_idle()
        job = client.get(f"/v1/cloudimages/job/{job2}", headers=h).json()
        assert job["status"] == "FAIL" and "does not exist" in job["fail_reason"]


class TestDisabledAccount:
    def test_tokens_and_access_keys_stop_at_once_and_come_back(self, client: TestClient, runtime: Runtime,
                                                               admin_headers: H, acme: dict[str, str]) -> None:
        headers = _headers(acme)
        ak, sk = new_key(client, headers, acme["user"])
        signed = Signed(client, runtime, ak, sk, project_id=acme["project"])
        assert signed("GET", "/v2/cloudimages").status_code == 200
        assert client.get("/v2/images", headers=headers).status_code == 200
        domain = f"/v3/domains/{acme['domain']}"
        assert client.patch(domain, json={"domain": {"enabled": False}}, headers=admin_headers).status_code == 200
        # The very next request of a live token, or of a signature, is refused.
        assert client.get("/v2/images", headers=headers).status_code == 401
        _keystone_error(client.get("/v3/users", headers=headers), 401)
        assert signed("GET", "/v2/cloudimages").status_code == 401
        r = client.post("/v3/auth/tokens", json={"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": "acmeadmin", "password": PASSWORD, "domain": {"name": "acme"}}}}}})
        assert r.status_code == 401
        assert client.patch(domain, json={"domain": {"enabled": True}}, headers=admin_headers).status_code == 200
        assert client.get("/v2/images", headers=headers).status_code == 200
        assert signed("GET", "/v2/cloudimages").status_code == 200
        login(client, "acmeadmin", PASSWORD, domain="acme")


# ---------------------------------------------------------------- public images

OCTETS = {"Content-Type": "application/octet-stream"}


def _error_code(r: httpx.Response) -> str:
    code: str = r.json()["error"]["code"]
    return code


def _native_public(client: TestClient, operator: H, tmp_path: Path, **body: Any) -> tuple[dict[str, Any], bytes]:
    """A public native image of the operator's, with data."""
    image = _ok(client.post("/v2/images", json={"name": "golden", "disk_format": "raw", "visibility": "public",
                                                **body}, headers=operator), 201)
    assert image["visibility"] == "public" and image["__imagetype"] == "gold"
    data = make_image(tmp_path / "pub", "raw").read_bytes()
    r = client.put(f"/v2/images/{image['id']}/file", content=data, headers={**operator, **OCTETS})
    assert r.status_code == 204, r.text
    return image, data


class TestPublicImages:
    def test_tenant_admins_do_not_publish(self, client: TestClient, runtime: Runtime) -> None:
        """Keystone admin of another account's project, te_admin of the operator's own account: 403."""
        for name, role, domain in (("keystoneadm", "admin", None), ("ownteadmin", "te_admin", "admin")):
            headers = new_tenant(client, runtime, name, role=role, domain=domain)
            r = client.post("/v2/images", json={"name": "p", "visibility": "public"}, headers=headers)
            assert (r.status_code, _error_code(r)) == (403, "IMG.0026"), name
            image = _ok(client.post("/v2/images", json={"name": "p"}, headers=headers), 201)
            r = client.patch(f"/v2/cloudimages/{image['id']}",
                             json=[{"op": "replace", "path": "/__imagetype", "value": "gold"}], headers=headers)
            assert (r.status_code, _error_code(r)) == (403, "IMG.0026"), name
            r = client.get("/v2/images", params={"owner": "anything"}, headers=headers)
            assert _ok(r)["images"] == []

    def test_only_the_operator_publishes(self, client: TestClient, admin_headers: H, acme: dict[str, str]) -> None:
        headers = _headers(acme)
        r = client.post("/v2/images", json={"name": "p", "visibility": "public"}, headers=headers)
        assert (r.status_code, _error_code(r)) == (403, "IMG.0026")
        r = client.post("/v2/images", json={"name": "p", "owner": new_project(client, admin_headers)},
                        headers=headers)
        assert (r.status_code, _error_code(r)) == (403, "IMG.0105")
        image = _ok(client.post("/v2/images", json={"name": "mine"}, headers=headers), 201)
        r = client.patch(f"/v2/images/{image['id']}", json=[{"op": "replace", "path": "/visibility",
                                                             "value": "public"}],
                         headers={**headers, "Content-Type": "application/openstack-images-v2.1-json-patch"})
        assert (r.status_code, _error_code(r)) == (403, "IMG.0026")
        for path, value in (("/visibility", "public"), ("/__imagetype", "gold")):
            r = client.patch(f"/v2/cloudimages/{image['id']}", json=[{"op": "replace", "path": path, "value": value}],
                             headers=headers)
            assert (r.status_code, _error_code(r)) == (403, "IMG.0026"), r.text
        assert client.get(f"/v2/images/{image['id']}", headers=headers).json()["visibility"] == "private"

    def test_public_native_image_for_every_account(self, client: TestClient, admin_headers: H,
                                                    acme: dict[str, str], tmp_path: Path) -> None:
        image, data = _native_public(client, admin_headers, tmp_path, protected=True)
        headers = _headers(acme)
        # Listed (native visibility=public, IMS __imagetype=gold), shown and downloaded by another account.
        listed = _ok(client.get("/v2/images", params={"visibility": "public"}, headers=headers))["images"]
        assert [i["id"] for i in listed] == [image["id"]]
        assert image["id"] in {i["id"] for i in _ok(client.get("/v2/images", headers=headers))["images"]}
        gold = _ok(client.get("/v2/cloudimages", params={"__imagetype": "gold"}, headers=headers))["images"]
        assert [(i["id"], i["__imagetype"], i["visibility"]) for i in gold] == [(image["id"], "gold", "public")]
        assert _ok(client.get(f"/v2/images/{image['id']}", headers=headers))["protected"] is True
        r = client.get(f"/v2/images/{image['id']}/file", headers=headers)
        assert r.status_code == 200 and r.content == data
        # Never changed or deleted by it.
        r = client.patch(f"/v2/images/{image['id']}", json=[{"op": "replace", "path": "/name", "value": "mine"}],
                         headers={**headers, "Content-Type": "application/openstack-images-v2.1-json-patch"})
        assert (r.status_code, _error_code(r)) == (403, "IMG.0047")
        r = client.patch(f"/v2/cloudimages/{image['id']}", json=[{"op": "replace", "path": "/name", "value": "m"}],
                         headers=headers)
        assert r.status_code == 403
        r = client.delete(f"/v2/images/{image['id']}", headers=headers)
        assert (r.status_code, _error_code(r)) == (403, "IMG.0094")
        # Protected: not even the operator deletes it until it unprotects it.
        r = client.delete(f"/v2/images/{image['id']}", headers=admin_headers)
        assert (r.status_code, _error_code(r)) == (403, "IMG.0028")
        # Unpublished, it is the operator's private image again: gone for the other account.
        patch_type = {**admin_headers, "Content-Type": "application/openstack-images-v2.1-json-patch"}
        r = client.patch(f"/v2/images/{image['id']}", json=[{"op": "replace", "path": "/visibility",
                                                             "value": "private"}], headers=patch_type)
        assert _ok(r)["visibility"] == "private" and r.json()["__imagetype"] == "private"
        assert client.get(f"/v2/images/{image['id']}", headers=headers).status_code == 404
        assert client.get(f"/v2/images/{image['id']}/file", headers=headers).status_code == 404
        assert _ok(client.get("/v2/cloudimages", params={"__imagetype": "gold"}, headers=headers))["images"] == []

    def test_publish_through_the_ims_update(self, client: TestClient, runtime: Runtime, admin_headers: H,
                                            acme: dict[str, str], tmp_path: Path) -> None:
        upload(client, admin_headers, "bkt", "disk.qcow2", make_image(tmp_path / "src", "qcow2"))
        job_id = create(client, admin_headers, **VALID).json()["job_id"]
        Worker(runtime).run_until_idle()
        image_id = client.get(f"/v1/cloudimages/job/{job_id}", headers=admin_headers).json()["entities"]["image_id"]
        r = client.patch(f"/v2/cloudimages/{image_id}", json=[
            {"op": "replace", "path": "/__imagetype", "value": "gold"},
            {"op": "replace", "path": "/protected", "value": True}], headers=admin_headers)
        shown = _ok(r)
        assert (shown["__imagetype"], shown["visibility"], shown["protected"]) == ("gold", "public", True)
        headers = _headers(acme)
        gold = _ok(client.get("/v2/cloudimages", params={"__imagetype": "gold", "visibility": "public",
                                                          "protected": "true"}, headers=headers))["images"]
        assert [i["id"] for i in gold] == [image_id]
        assert client.get(f"/v2/images/{image_id}/file", headers=headers).status_code == 200
        assert client.delete(f"/v2/images/{image_id}", headers=headers).status_code == 403
        r = client.patch(f"/v2/cloudimages/{image_id}", json=[{"op": "replace", "path": "/visibility",
                                                               "value": "private"}], headers=admin_headers)
        assert (_ok(r)["__imagetype"], r.json()["visibility"]) == ("private", "private")
        assert client.get(f"/v2/images/{image_id}", headers=headers).status_code == 404


def new_project(client: TestClient, operator: H) -> str:
    r = client.post("/v3/projects", json={"project": {"name": "local-1_extra"}}, headers=operator)
    return str(_ok(r, 201)["project"]["id"])


class TestEveryProject:
    def test_images_for_and_of_any_project(self, client: TestClient, admin_headers: H,
                                           acme: dict[str, str]) -> None:
        headers = _headers(acme)
        made = _ok(client.post("/v2/images", json={"name": "given", "owner": acme["project"]},
                               headers=admin_headers), 201)
        assert made["owner"] == acme["project"]
        r = client.post("/v2/images", json={"name": "lost", "owner": "no-such-project"}, headers=admin_headers)
        assert r.status_code == 400
        own = _ok(client.post("/v2/images", json={"name": "theirs"}, headers=headers), 201)
        # The account's own view: both its images.
        assert {i["id"] for i in _ok(client.get("/v2/images", headers=headers))["images"]} == {made["id"], own["id"]}
        # The operator's view of that project: every image of it, on both APIs; without owner=, its own.
        native = _ok(client.get("/v2/images", params={"owner": acme["project"]}, headers=admin_headers))["images"]
        assert {i["id"] for i in native} == {made["id"], own["id"]}
        ims = _ok(client.get("/v2/cloudimages", params={"owner": acme["project"]}, headers=admin_headers))["images"]
        assert {i["id"] for i in ims} == {made["id"], own["id"]}
        assert _ok(client.get("/v2/images", headers=admin_headers))["images"] == []
        # A tenant's owner= stays within what it may see.
        admin_project = _ok(client.get("/v3/auth/projects", headers=admin_headers))["projects"][0]["id"]
        _ok(client.post("/v2/images", json={"name": "secret"}, headers=admin_headers), 201)
        assert _ok(client.get("/v2/images", params={"owner": admin_project}, headers=headers))["images"] == []
        assert _ok(client.get("/v2/cloudimages", params={"owner": admin_project}, headers=headers))["images"] == []

    def test_quotas_of_any_project(self, client: TestClient, admin_headers: H, acme: dict[str, str]) -> None:
        body = {"quotas": {"resources": [{"type": "image", "quota": 1}]}}
        r = client.put("/v1/cloudimages/quota", params={"project_id": acme["project"]}, json=body,
                       headers=admin_headers)
        assert _ok(r)["quotas"]["resources"][0]["quota"] == 1
        headers = _headers(acme)
        assert _ok(client.get("/v1/cloudimages/quota", headers=headers))["quotas"]["resources"][0]["quota"] == 1
        assert client.post("/v2/images", json={"name": "one"}, headers=headers).status_code == 201
        r = client.post("/v2/images", json={"name": "two"}, headers=headers)
        assert (r.status_code, _error_code(r)) == (400, "IMG.0015")
        # The account's administrator cannot set the operator's projects' quotas.
        admin_project = _ok(client.get("/v3/auth/projects", headers=admin_headers))["projects"][0]["id"]
        r = client.put("/v1/cloudimages/quota", params={"project_id": admin_project}, json=body, headers=headers)
        assert r.status_code == 404

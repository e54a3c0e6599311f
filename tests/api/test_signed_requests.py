"""AK/SK-signed requests through HTTP: signed by the official SDK's signer classes, verified by the service.

Every refusal is checked as the SDK would see it: the status, and a body it parses into
``error_code`` / ``error_msg``, with the request id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import DerivationAKSKSigner, P256SHA256Signer, Signer, SM3Signer

from openims.db.models import User
from openims.iam import signing
from openims.runtime import Runtime
from openims.worker.runner import Worker
from tests.api.test_images_api import VALID
from tests.conftest import login
from tests.support.images import make_image
from tests.support.tenants import add_user

Tamper = Callable[[dict[str, str], bytes | None], tuple[dict[str, str], bytes | None]]


class Signed:
    """Sends requests through the test client, signed as the SDK signs them (its own signer classes)."""

    def __init__(self, client: TestClient, runtime: Runtime, ak: str, sk: str, *, project_id: str | None = None,
                 security_token: str | None = None, signer: type[Signer] = Signer, **sign_kw: Any) -> None:
        self.client, self.runtime, self.ak, self.sk = client, runtime, ak, sk
        self.project_id, self.security_token = project_id, security_token
        self.signer, self.sign_kw = signer, sign_kw

    def __call__(self, method: str, path: str, *, params: list[tuple[str, Any]] | None = None, json_body: Any = None,
                 content: bytes | None = None, content_type: str | None = None,
                 headers: dict[str, str] | None = None, date: dt.datetime | None = None,
                 tamper: Tamper | None = None) -> httpx.Response:
        body = json.dumps(json_body).encode() if json_body is not None else content
        sent: dict[str, str] = {
            "Content-Type": content_type or ("application/json;charset=utf-8" if body else "application/json"),
            "User-Agent": "huaweicloud-usdk-python/3.0; openims-tests",
            "X-Sdk-Date": (date or self.runtime.clock()).strftime(signing.DATE_FORMAT),
        }
        if self.project_id:
            sent["X-Project-Id"] = self.project_id
        if self.security_token:
            sent["X-Security-Token"] = self.security_token
        sent.update(headers or {})
        request = SdkRequest(method=method, schema="http", host="testserver", resource_path=path, uri=path,
                             query_params=list(params or []), header_params=sent, body=body)
        self.signer(BasicCredentials(self.ak, self.sk)).sign(request, **self.sign_kw)
        final = dict(request.header_params)
        if tamper is not None:
            final, body = tamper(final, body)
        response: httpx.Response = self.client.request(method, request.uri, content=body, headers=final)
        return response


def refused(r: httpx.Response, status: int = 401, code: str = "APIGW.0301", text: str = "") -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code and text in body["error_msg"], body
    assert body["request_id"] == r.headers["X-Request-Id"]


def new_key(client: TestClient, headers: dict[str, str], user_id: str) -> tuple[str, str]:
    r = client.post("/v3.0/OS-CREDENTIAL/credentials", json={"credential": {"user_id": user_id}}, headers=headers)
    assert r.status_code == 201, r.text
    cred = r.json()["credential"]
    return cred["access"], cred["secret"]


def user_id_of(runtime: Runtime, name: str) -> str:
    with runtime.db.session() as s:
        return s.query(User).filter_by(name=name).one().id


@pytest.fixture
def project_id(client: TestClient, admin_headers: dict[str, str]) -> str:
    pid: str = client.get("/v3/auth/projects", headers=admin_headers).json()["projects"][0]["id"]
    return pid


@pytest.fixture
def admin_key(client: TestClient, runtime: Runtime, admin_headers: dict[str, str]) -> tuple[str, str]:
    return new_key(client, admin_headers, user_id_of(runtime, "admin"))


@pytest.fixture
def signed(client: TestClient, runtime: Runtime, admin_key: tuple[str, str], project_id: str) -> Signed:
    return Signed(client, runtime, *admin_key, project_id=project_id)


@pytest.fixture
def other_project(client: TestClient, admin_headers: dict[str, str]) -> str:
    r = client.post("/v3/projects", json={"project": {"name": "local-1_other"}}, headers=admin_headers)
    assert r.status_code == 201, r.text
    pid: str = r.json()["project"]["id"]
    return pid


class TestAccepted:
    @pytest.mark.parametrize(("signer", "kw"), [(Signer, {}), (SM3Signer, {}),
                                                (DerivationAKSKSigner,
                                                 {"derived_auth_service_name": "ims", "region_id": "local-1"})],
                             ids=["SDK-HMAC-SHA256", "SDK-HMAC-SM3", "V11-HMAC-SHA256"])
    def test_every_algorithm(self, client: TestClient, runtime: Runtime, admin_key: tuple[str, str],
                             project_id: str, signer: type[Signer], kw: dict[str, str]) -> None:
        s = Signed(client, runtime, *admin_key, project_id=project_id, signer=signer, **kw)
        r = s("GET", "/v2/cloudimages", params=[("__imagetype", "private"), ("name", "a b~c+d")])
        assert r.status_code == 200, r.text
        assert r.json() == {"images": []}

    def test_token_and_signature_are_the_same_caller(self, client: TestClient, signed: Signed,
                                                     admin_headers: dict[str, str]) -> None:
        for path in ("/v5/caller-identity", "/v3/auth/projects", "/v3/auth/domains", "/v2/cloudimages"):
            by_token = client.get(path, headers=admin_headers)
            by_signature = signed("GET", path)
            assert by_token.status_code == by_signature.status_code == 200, (path, by_signature.text)
            assert by_token.json() == by_signature.json(), path

    def test_import_flow_signed_end_to_end(self, client: TestClient, runtime: Runtime, signed: Signed,
                                           project_id: str, tmp_path: Path) -> None:
        disk = make_image(tmp_path, "qcow2").read_bytes()
        # A non-JSON body: the SDK declares UNSIGNED-PAYLOAD, as for any upload.
        r = signed("PUT", "/obs/bkt/disk.qcow2", content=disk, content_type="application/octet-stream")
        assert r.status_code == 201, r.text
        r = signed("POST", "/v2/cloudimages/action", json_body=VALID)
        assert r.status_code == 200, r.text
        job_id = r.json()["job_id"]
        assert Worker(runtime).run_until_idle() == 1
        # The project comes from the path when there is no X-Project-Id.
        pathonly = Signed(client, runtime, signed.ak, signed.sk)
        job = pathonly("GET", f"/v1/{project_id}/jobs/{job_id}")
        assert job.status_code == 200 and job.json()["status"] == "SUCCESS", job.text
        image_id = job.json()["entities"]["image_id"]
        image = signed("GET", f"/v2/images/{image_id}")
        assert image.status_code == 200 and image.json()["status"] == "active"
        found = signed("GET", "/v2/cloudimages", params=[("id", image_id)]).json()["images"]
        assert [i["id"] for i in found] == [image_id]
        assert signed("DELETE", f"/v2/images/{image_id}").status_code == 204

    def test_percent_encoded_path(self, signed: Signed) -> None:
        # As the SDK quotes path parameters: the signature covers the decoded path, re-encoded.
        r = signed("PUT", "/obs/bkt/dir/a%20b%3Fc%25.raw", content=b"data", content_type="application/octet-stream")
        assert r.status_code == 201, r.text
        assert [o["key"] for o in signed("GET", "/obs/bkt").json()["objects"]] == ["dir/a b?c%.raw"]

    def test_unsigned_header_changes_are_allowed(self, signed: Signed) -> None:
        def add_headers(h: dict[str, str], body: bytes | None) -> tuple[dict[str, str], bytes | None]:
            return {**h, "X-Trace": "anything", "Accept": "text/plain"}, body

        assert signed("GET", "/v2/cloudimages", tamper=add_headers).status_code == 200

    def test_token_wins_when_both_are_present(self, signed: Signed, admin_headers: dict[str, str]) -> None:
        def break_signature(h: dict[str, str], body: bytes | None) -> tuple[dict[str, str], bytes | None]:
            return {**h, **admin_headers, "Authorization": h["Authorization"][:-4] + "0000"}, body

        assert signed("GET", "/v2/cloudimages", tamper=break_signature).status_code == 200

    def test_declared_unsigned_payload_on_a_json_route(self, client: TestClient, runtime: Runtime,
                                                       admin_key: tuple[str, str], project_id: str) -> None:
        body = json.dumps(VALID).encode()
        headers = {"Content-Type": "application/json", "Host": "testserver", "X-Project-Id": project_id,
                   "X-Sdk-Date": runtime.clock().strftime(signing.DATE_FORMAT),
                   "X-Sdk-Content-Sha256": signing.UNSIGNED_PAYLOAD}
        headers["Authorization"] = signing.sign(
            algorithm=signing.Algorithm.HMAC_SHA256, access_key=admin_key[0], secret_key=admin_key[1],
            method="POST", path="/v2/cloudimages/action", query="", headers=headers, body=body)
        r = client.post("/v2/cloudimages/action", content=body, headers=headers)
        assert r.status_code == 200, r.text

    def test_last_use_time_follows_use(self, client: TestClient, runtime: Runtime, signed: Signed,
                                       admin_headers: dict[str, str]) -> None:
        shown = client.get(f"/v3.0/OS-CREDENTIAL/credentials/{signed.ak}", headers=admin_headers).json()
        assert shown["credential"]["last_use_time"] == shown["credential"]["create_time"]
        runtime.clock.advance(120)  # type: ignore[attr-defined]
        assert signed("GET", "/v2/cloudimages").status_code == 200
        used = client.get(f"/v3.0/OS-CREDENTIAL/credentials/{signed.ak}", headers=admin_headers).json()
        expected = runtime.clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert used["credential"]["last_use_time"] == expected


class TestDiscovery:
    def test_project_by_region_name_without_project_header(self, client: TestClient, runtime: Runtime,
                                                           admin_key: tuple[str, str], project_id: str,
                                                           other_project: str) -> None:
        account = Signed(client, runtime, *admin_key)
        projects = account("GET", "/v3/projects", params=[("name", "local-1")]).json()["projects"]
        assert [p["id"] for p in projects] == [project_id]
        domains = account("GET", "/v3/auth/domains").json()["domains"]
        assert len(domains) == 1
        me = account("GET", "/v5/caller-identity")
        assert me.status_code == 200 and me.json()["account_id"] == domains[0]["id"]
        assert me.json()["principal_name"] == "admin"

    def test_user_with_one_project_discovers_only_it(self, client: TestClient, runtime: Runtime,
                                                     admin_headers: dict[str, str], project_id: str,
                                                     other_project: str) -> None:
        add_user(runtime.db, name="alice", role="te_admin")
        account = Signed(client, runtime, *new_key(client, admin_headers, user_id_of(runtime, "alice")))
        projects = account("GET", "/v3/projects", params=[("name", "local-1")]).json()["projects"]
        assert [p["id"] for p in projects] == [project_id]
        assert account("GET", "/v3/projects", params=[("name", "local-1_other")]).json()["projects"] == []

    def test_ims_needs_a_project(self, client: TestClient, runtime: Runtime, admin_key: tuple[str, str]) -> None:
        r = Signed(client, runtime, *admin_key)("GET", "/v2/cloudimages")
        assert r.status_code == 403 and r.json()["error"]["code"] == "IMG.0026"


class TestRefused:
    def test_wrong_secret(self, signed: Signed) -> None:
        signed.sk = signed.sk[:-1] + ("A" if signed.sk[-1] != "A" else "B")
        refused(signed("GET", "/v2/cloudimages"), text="signature does not match")

    def test_unknown_access_key(self, signed: Signed) -> None:
        signed.ak = "NOSUCHKEY0000000000A"
        refused(signed("GET", "/v2/cloudimages"), text="does not exist")

    def test_no_credentials_at_all(self, client: TestClient) -> None:
        r = client.get("/v2/cloudimages")
        assert r.status_code == 401 and r.json()["error"]["code"] == 401

    @pytest.mark.parametrize("minutes", [-16, 16, -60 * 24])
    def test_skewed_date(self, signed: Signed, runtime: Runtime, minutes: int) -> None:
        date = runtime.clock() + dt.timedelta(minutes=minutes)
        refused(signed("GET", "/v2/cloudimages", date=date), text="15 minutes")

    def test_date_at_the_edge_is_accepted(self, signed: Signed, runtime: Runtime) -> None:
        assert signed("GET", "/v2/cloudimages", date=runtime.clock() - dt.timedelta(minutes=14)).status_code == 200

    def test_missing_date(self, signed: Signed) -> None:
        def drop_date(h: dict[str, str], body: bytes | None) -> tuple[dict[str, str], bytes | None]:
            return {k: v for k, v in h.items() if k != "X-Sdk-Date"}, body

        refused(signed("GET", "/v2/cloudimages", tamper=drop_date), text="X-Sdk-Date")

    def test_disabled_key_then_enabled_again(self, client: TestClient, signed: Signed,
                                             admin_headers: dict[str, str]) -> None:
        url = f"/v3.0/OS-CREDENTIAL/credentials/{signed.ak}"
        assert client.put(url, json={"credential": {"status": "inactive"}}, headers=admin_headers).status_code == 200
        refused(signed("GET", "/v2/cloudimages"), text="inactive")
        assert client.put(url, json={"credential": {"status": "active"}}, headers=admin_headers).status_code == 200
        assert signed("GET", "/v2/cloudimages").status_code == 200

    def test_deleted_key(self, client: TestClient, signed: Signed, admin_headers: dict[str, str]) -> None:
        assert client.delete(f"/v3.0/OS-CREDENTIAL/credentials/{signed.ak}", headers=admin_headers).status_code == 204
        refused(signed("GET", "/v2/cloudimages"), text="does not exist")

    def test_tampered_body(self, signed: Signed) -> None:
        def more_disk(h: dict[str, str], body: bytes | None) -> tuple[dict[str, str], bytes | None]:
            assert body is not None
            return h, body.replace(b'"min_disk": 40', b'"min_disk": 41')

        refused(signed("POST", "/v2/cloudimages/action", json_body=VALID, tamper=more_disk),
                text="signature does not match")

    @pytest.mark.parametrize(("header", "value"), [("Content-Type", "application/json;charset=latin-1"),
                                                   ("X-Project-Id", "f" * 32),
                                                   ("User-Agent", "someone-else")])
    def test_tampered_signed_header(self, signed: Signed, header: str, value: str) -> None:
        def change(h: dict[str, str], body: bytes | None) -> tuple[dict[str, str], bytes | None]:
            return {**h, header: value}, body

        refused(signed("GET", "/v2/cloudimages", tamper=change), text="signature does not match")

    def test_tampered_query_and_path(self, signed: Signed) -> None:
        r = signed("GET", "/v2/cloudimages", params=[("name", "a")])
        assert r.status_code == 200
        request = r.request
        moved = signed.client.get(str(request.url).replace("name=a", "name=b"), headers=dict(request.headers))
        refused(moved, text="signature does not match")

    def test_project_header_must_be_signed(self, client: TestClient, runtime: Runtime,
                                           admin_key: tuple[str, str], project_id: str) -> None:
        def add_project(h: dict[str, str], body: bytes | None) -> tuple[dict[str, str], bytes | None]:
            return {**h, "X-Project-Id": project_id}, body

        r = Signed(client, runtime, *admin_key)("GET", "/v2/cloudimages", tamper=add_project)
        refused(r, text="x-project-id must be signed")

    def test_project_without_a_role(self, client: TestClient, runtime: Runtime, admin_headers: dict[str, str],
                                    other_project: str) -> None:
        add_user(runtime.db, name="alice", role="te_admin")
        key = new_key(client, admin_headers, user_id_of(runtime, "alice"))
        for pid in (other_project, "0" * 32):
            r = Signed(client, runtime, *key, project_id=pid)("GET", "/v2/cloudimages")
            refused(r, 403, "APIGW.0302", "has no role on project")

    def test_another_projects_image_is_404(self, client: TestClient, runtime: Runtime, signed: Signed,
                                           other_project: str) -> None:
        job_id = signed("POST", "/v2/cloudimages/action", json_body=VALID).json()["job_id"]
        image_id = signed("GET", f"/v1/cloudimages/job/{job_id}").json()["entities"]["image_id"]
        assert signed("GET", f"/v2/images/{image_id}").status_code == 200
        elsewhere = Signed(client, runtime, signed.ak, signed.sk, project_id=other_project)
        r = elsewhere("GET", f"/v2/images/{image_id}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "IMG.0144"
        assert elsewhere("GET", "/v2/cloudimages", params=[("id", image_id)]).json()["images"] == []
        assert elsewhere("DELETE", f"/v2/images/{image_id}").status_code == 404

    def test_disabled_user_keeps_keys_that_no_longer_work(self, client: TestClient, runtime: Runtime,
                                                          admin_headers: dict[str, str], project_id: str) -> None:
        add_user(runtime.db, name="alice", role="te_admin")
        alice = user_id_of(runtime, "alice")
        s = Signed(client, runtime, *new_key(client, admin_headers, alice), project_id=project_id)
        assert s("GET", "/v2/cloudimages").status_code == 200
        # A password change leaves keys alone (Huawei semantics).
        alice_token = {"X-Auth-Token": login(client, "alice", "User-Pass-1234")}
        r = client.post(f"/v3/users/{alice}/password", headers=alice_token,
                        json={"user": {"password": "New-Pass-98765", "original_password": "User-Pass-1234"}})
        assert r.status_code == 204, r.text
        assert s("GET", "/v2/cloudimages").status_code == 200
        r = client.patch(f"/v3/users/{alice}", json={"user": {"enabled": False}}, headers=admin_headers)
        assert r.status_code == 200, r.text
        refused(s("GET", "/v2/cloudimages"), text="disabled")
        listed = client.get("/v3.0/OS-CREDENTIAL/credentials", params={"user_id": alice}, headers=admin_headers)
        assert [c["access"] for c in listed.json()["credentials"]] == [s.ak]

    def test_roles_come_with_the_signature(self, client: TestClient, runtime: Runtime,
                                           admin_headers: dict[str, str], project_id: str) -> None:
        add_user(runtime.db, name="viewer", role="readonly")
        s = Signed(client, runtime, *new_key(client, admin_headers, user_id_of(runtime, "viewer")),
                   project_id=project_id)
        assert s("GET", "/v2/cloudimages").status_code == 200
        r = s("POST", "/v2/cloudimages/action", json_body=VALID)
        assert r.status_code == 403 and r.json()["error"]["code"] == "IMG.0026"

    def test_v11_for_another_region(self, client: TestClient, runtime: Runtime, admin_key: tuple[str, str],
                                    project_id: str) -> None:
        s = Signed(client, runtime, *admin_key, project_id=project_id, signer=DerivationAKSKSigner,
                   derived_auth_service_name="ims", region_id="cn-north-4")
        refused(s("GET", "/v2/cloudimages"), text="region in Credential")

    def test_key_pair_algorithm_is_refused_clearly(self, client: TestClient, runtime: Runtime,
                                                   admin_key: tuple[str, str], project_id: str) -> None:
        s = Signed(client, runtime, *admin_key, project_id=project_id, signer=P256SHA256Signer)
        refused(s("GET", "/v2/cloudimages"), text="not supported")

    def test_declared_hash_must_match_the_body(self, client: TestClient, runtime: Runtime,
                                               admin_key: tuple[str, str], project_id: str) -> None:
        body = json.dumps(VALID).encode()
        headers = {"Content-Type": "application/json", "Host": "testserver", "X-Project-Id": project_id,
                   "X-Sdk-Date": runtime.clock().strftime(signing.DATE_FORMAT),
                   "X-Sdk-Content-Sha256": hashlib.sha256(b"something else").hexdigest()}
        headers["Authorization"] = signing.sign(
            algorithm=signing.Algorithm.HMAC_SHA256, access_key=admin_key[0], secret_key=admin_key[1],
            method="POST", path="/v2/cloudimages/action", query="", headers=headers, body=body)
        refused(client.post("/v2/cloudimages/action", content=body, headers=headers), text="does not match the hash")


class TestTemporaryKeys:
    def _temporary(self, client: TestClient, headers: dict[str, str], **identity: Any) -> dict[str, Any]:
        body = {"auth": {"identity": {"methods": ["token"], **identity}}}
        r = client.post("/v3.0/OS-CREDENTIAL/securitytokens", json=body, headers=headers)
        assert r.status_code == 201, r.text
        cred: dict[str, Any] = r.json()["credential"]
        return cred

    def test_security_token_required_and_checked(self, client: TestClient, runtime: Runtime,
                                                 admin_headers: dict[str, str], project_id: str) -> None:
        cred = self._temporary(client, admin_headers)
        ok = Signed(client, runtime, cred["access"], cred["secret"], project_id=project_id,
                    security_token=cred["securitytoken"])
        assert ok("GET", "/v2/cloudimages").status_code == 200
        missing = Signed(client, runtime, cred["access"], cred["secret"], project_id=project_id)
        refused(missing("GET", "/v2/cloudimages"), text="X-Security-Token")
        wrong = Signed(client, runtime, cred["access"], cred["secret"], project_id=project_id,
                       security_token=cred["securitytoken"][:-2] + "xx")
        refused(wrong("GET", "/v2/cloudimages"), text="does not belong")

    def test_expired_temporary_key(self, client: TestClient, runtime: Runtime, admin_headers: dict[str, str],
                                   project_id: str) -> None:
        cred = self._temporary(client, admin_headers, token={"duration_seconds": 900})
        s = Signed(client, runtime, cred["access"], cred["secret"], project_id=project_id,
                   security_token=cred["securitytoken"])
        runtime.clock.advance(899)  # type: ignore[attr-defined]
        assert s("GET", "/v2/cloudimages").status_code == 200
        runtime.clock.advance(2)  # type: ignore[attr-defined]
        refused(s("GET", "/v2/cloudimages"), text="expired")


class TestStreamedUploads:
    def _put(self, client: TestClient, runtime: Runtime, key: tuple[str, str], project_id: str, path: str,
             data: bytes, declared: str | None) -> httpx.Response:
        headers = {"Content-Type": "application/octet-stream", "Host": "testserver", "X-Project-Id": project_id,
                   "X-Sdk-Date": runtime.clock().strftime(signing.DATE_FORMAT)}
        if declared is not None:
            headers["X-Sdk-Content-Sha256"] = declared
        headers["Authorization"] = signing.sign(
            algorithm=signing.Algorithm.HMAC_SHA256, access_key=key[0], secret_key=key[1], method="PUT",
            path=path, query="", headers=headers, body=data)

        def chunks() -> Iterator[bytes]:
            # Several body messages, as a real streamed upload.
            for i in range(0, len(data), 4096):
                yield data[i:i + 4096]

        response: httpx.Response = client.put(path, content=chunks(), headers=headers)
        return response

    def _objects(self, signed: Signed) -> list[str]:
        r = signed("GET", "/obs/bkt")
        return [o["key"] for o in r.json()["objects"]] if r.status_code == 200 else []

    def test_declared_digest_is_checked_as_it_streams(self, client: TestClient, runtime: Runtime,
                                                      admin_key: tuple[str, str], project_id: str,
                                                      signed: Signed) -> None:
        data = bytes(range(256)) * 100
        good = self._put(client, runtime, admin_key, project_id, "/obs/bkt/good.raw", data,
                         hashlib.sha256(data).hexdigest())
        assert good.status_code == 201, good.text
        bad = self._put(client, runtime, admin_key, project_id, "/obs/bkt/bad.raw", data,
                        hashlib.sha256(data + b"!").hexdigest())
        refused(bad, text="uploaded body does not match")
        assert self._objects(signed) == ["good.raw"]

    def test_undeclared_hash_is_refused_before_reading(self, client: TestClient, runtime: Runtime,
                                                       admin_key: tuple[str, str], project_id: str,
                                                       signed: Signed) -> None:
        r = self._put(client, runtime, admin_key, project_id, "/obs/bkt/x.raw", b"x" * 10000, None)
        refused(r, text="X-Sdk-Content-Sha256")
        assert self._objects(signed) == []

    def test_glance_upload_with_a_declared_digest(self, client: TestClient, runtime: Runtime, signed: Signed,
                                                  admin_key: tuple[str, str], project_id: str,
                                                  tmp_path: Path) -> None:
        data = make_image(tmp_path, "qcow2").read_bytes()
        r = signed("POST", "/v2/images", json_body={"name": "g", "disk_format": "qcow2", "container_format": "bare"})
        assert r.status_code == 201, r.text
        path = f"/v2/images/{r.json()['id']}/file"
        bad = self._put(client, runtime, admin_key, project_id, path, data, hashlib.sha256(b"other").hexdigest())
        refused(bad, text="uploaded body does not match")
        assert signed("GET", path.removesuffix("/file")).json()["status"] == "queued"
        good = self._put(client, runtime, admin_key, project_id, path, data, hashlib.sha256(data).hexdigest())
        assert good.status_code == 204, good.text
        image_path = path.removesuffix("/file")
        image = signed("GET", image_path).json()
        assert image["status"] == "active"
        # The SDK sends a JSON patch as UNSIGNED-PAYLOAD (not an application/json media type).
        patched = signed("PATCH", image_path, content_type="application/openstack-images-v2.1-json-patch",
                         content=b'[{"op": "replace", "path": "/name", "value": "renamed"}]')
        assert patched.status_code == 200 and patched.json()["name"] == "renamed", patched.text
        # POST …/file is a JSON request (export to a bucket), read and hashed like any other.
        exported = signed("POST", f"/v1/cloudimages/{image['id']}/file",
                          json_body={"bucket_url": "bkt:out.qcow2", "file_format": "qcow2"})
        assert exported.status_code == 200 and "job_id" in exported.json(), exported.text

    def test_unsigned_payload_upload(self, client: TestClient, runtime: Runtime, admin_key: tuple[str, str],
                                     project_id: str, signed: Signed) -> None:
        r = self._put(client, runtime, admin_key, project_id, "/obs/bkt/u.raw", b"u" * 10000,
                      signing.UNSIGNED_PAYLOAD)
        assert r.status_code == 201, r.text
        assert self._objects(signed) == ["u.raw"]


class TestPrefixedEndpoints:
    """keystoneauth / openstacksdk call the catalog's /identity and /image endpoints, and sign those paths."""

    def test_signed_through_the_image_prefix(self, client: TestClient, signed: Signed,
                                             admin_headers: dict[str, str]) -> None:
        created = signed("POST", "/image/v2/images",
                         json_body={"name": "prefixed", "disk_format": "qcow2", "container_format": "bare"})
        assert created.status_code == 201, created.text
        r = signed("GET", "/image/v2/images", params=[("name", "prefixed")])
        assert r.status_code == 200, r.text
        assert [i["id"] for i in r.json()["images"]] == [created.json()["id"]]
        # The same answer as the unprefixed path, signed or by token.
        assert signed("GET", "/v2/images", params=[("name", "prefixed")]).json()["images"] == r.json()["images"]
        assert client.get("/image/v2/images", params={"name": "prefixed"},
                          headers=admin_headers).json()["images"] == r.json()["images"]

    def test_signed_through_the_identity_prefix(self, client: TestClient, signed: Signed,
                                                admin_headers: dict[str, str]) -> None:
        r = signed("GET", "/identity/v3/auth/domains")
        assert r.status_code == 200, r.text
        assert [d["name"] for d in r.json()["domains"]] == ["admin"]
        assert r.json() == client.get("/v3/auth/domains", headers=admin_headers).json()

    def test_signed_streamed_upload_through_the_image_prefix(self, client: TestClient, runtime: Runtime,
                                                             signed: Signed, admin_key: tuple[str, str],
                                                             project_id: str, tmp_path: Path) -> None:
        data = make_image(tmp_path, "qcow2").read_bytes()
        r = signed("POST", "/image/v2/images", json_body={"name": "up", "disk_format": "qcow2",
                                                          "container_format": "bare"})
        assert r.status_code == 201, r.text
        path = f"/image/v2/images/{r.json()['id']}/file"
        put = TestStreamedUploads()._put(client, runtime, admin_key, project_id, path, data,
                                         hashlib.sha256(data).hexdigest())
        assert put.status_code == 204, put.text
        assert signed("GET", path.removesuffix("/file")).json()["status"] == "active"

    def test_the_prefix_is_part_of_what_is_signed(self, client: TestClient, signed: Signed) -> None:
        # A signature made for /v2/images does not carry over to /image/v2/images, nor the reverse.
        for signed_path, sent_path in (("/v2/images", "/image/v2/images"), ("/image/v2/images", "/v2/images"),
                                       ("/identity/v3/auth/domains", "/v3/auth/domains")):
            r = signed("GET", signed_path)
            assert r.status_code == 200, (signed_path, r.text)
            moved = client.get(sent_path, headers=dict(r.request.headers))
            refused(moved, text="signature does not match")

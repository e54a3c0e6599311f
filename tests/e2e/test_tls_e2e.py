"""TLS on the service's own port (issue 16, item 9): a real server with a certificate made at test time.

A test CA signs a server certificate for 127.0.0.1 (an IP SAN); the official Huawei SDK and openstacksdk
talk to the server over HTTPS with verification on, trusting only that CA. The server refuses TLS 1.1
and plain HTTP, and its version documents and token catalog carry https URLs.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openstack
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
from huaweicloudsdkcore.exceptions.exceptions import SdkException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkiam.v3 import IamClient
from huaweicloudsdkiam.v3 import model as iam_model
from huaweicloudsdkims.v2 import ImsClient
from huaweicloudsdkims.v2 import model as ims

from tests.support.pki import Pki, issue, make_pki, replace, served_serial
from tests.support.server import ADMIN_PASSWORD, ServerProcess

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]

REGION = "local-1"


class TlsServer(ServerProcess):
    """ServerProcess on HTTPS: up when a verified HTTPS request answers."""

    def __init__(self, data_dir: Path, pki: Pki) -> None:
        super().__init__(data_dir, env={"OPENIMS_TLS_CERT_FILE": str(pki.cert), "OPENIMS_TLS_KEY_FILE": str(pki.key)})
        self.pki = pki

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        return httpx.get(self.url + "/", timeout=1, verify=str(self.pki.ca)).status_code == 300


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    with TlsServer(tmp_path_factory.mktemp("tls") / "data", pki) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: TlsServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, verify=str(server.pki.ca), timeout=30) as c:
        yield c


def _password_body(scope: bool = True) -> dict[str, object]:
    auth: dict[str, object] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": ADMIN_PASSWORD, "domain": {"name": "admin"}}}}}
    if scope:
        auth["scope"] = {"project": {"name": REGION, "domain": {"name": "admin"}}}
    return {"auth": auth}


@pytest.fixture(scope="module")
def login(http: httpx.Client) -> tuple[str, str]:
    r = http.post("/v3/auth/tokens", json=_password_body())
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"], r.json()["token"]["project"]["id"]


@pytest.fixture(scope="module")
def access_key(http: httpx.Client, login: tuple[str, str]) -> tuple[str, str]:
    token, _ = login
    r = http.post("/v3.0/OS-CREDENTIAL/credentials", headers={"X-Auth-Token": token},
                  json={"credential": {"user_id": _user_id(http, token), "description": "tls"}})
    assert r.status_code == 201, r.text
    return r.json()["credential"]["access"], r.json()["credential"]["secret"]


def _user_id(http: httpx.Client, token: str) -> str:
    r = http.get("/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert r.status_code == 200, r.text
    user_id: str = r.json()["token"]["user"]["id"]
    return user_id


def verified_config(server: TlsServer) -> HttpConfig:
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = False
    config.ssl_ca_cert = str(server.pki.ca)
    config.timeout = (5, 60)
    return config


def test_version_documents_and_catalog_carry_https(http: httpx.Client, server: TlsServer) -> None:
    root = http.get("/")
    assert root.status_code == 300
    hrefs = [link["href"] for v in root.json()["versions"] for link in v["links"]]
    assert hrefs and all(h.startswith(f"{server.url}/") for h in hrefs), hrefs
    identity = http.get("/v3").json()["version"]["links"][0]["href"]
    assert identity == f"{server.url}/v3/"
    r = http.post("/v3/auth/tokens", json=_password_body())
    urls = [e["url"] for service in r.json()["token"]["catalog"] for e in service["endpoints"]]
    assert urls and all(u.startswith("https://127.0.0.1:") for u in urls), urls


def test_huawei_sdk_over_verified_https(server: TlsServer, login: tuple[str, str],
                                        access_key: tuple[str, str]) -> None:
    _, project_id = login
    client = (ImsClient.new_builder().with_http_config(verified_config(server))
              .with_credentials(BasicCredentials(*access_key, project_id)).with_endpoint(server.url).build())
    assert isinstance(client.list_images(ims.ListImagesRequest(imagetype="private")).images, list)
    quota = client.show_image_quota(ims.ShowImageQuotaRequest())
    assert any(q.type == "image" for q in quota.quotas.resources)

    iam = (IamClient.new_builder().with_http_config(verified_config(server))
           .with_credentials(GlobalCredentials(*access_key)).with_endpoint(server.url).build())
    body = iam_model.KeystoneCreateUserTokenByPasswordRequestBody(auth=iam_model.PwdAuth(
        identity=iam_model.PwdIdentity(methods=["password"], password=iam_model.PwdPassword(
            user=iam_model.PwdPasswordUser(name="admin", password=ADMIN_PASSWORD,
                                           domain=iam_model.PwdPasswordUserDomain(name="admin")))),
        scope=iam_model.AuthScope(project=iam_model.AuthScopeProject(name=REGION))))
    token = iam.keystone_create_user_token_by_password(iam_model.KeystoneCreateUserTokenByPasswordRequest(body=body))
    assert token.x_subject_token and token.token.project.id == project_id
    projects = iam.keystone_list_projects(iam_model.KeystoneListProjectsRequest(name=REGION))
    assert [p.id for p in projects.projects] == [project_id]


def test_huawei_sdk_refuses_a_server_its_ca_did_not_sign(server: TlsServer, login: tuple[str, str],
                                                         access_key: tuple[str, str], tmp_path: Path) -> None:
    # Verification really is on: trusting another CA, the SDK refuses the server.
    other = make_pki(tmp_path / "other")
    config = verified_config(server)
    config.ssl_ca_cert = str(other.ca)
    client = (ImsClient.new_builder().with_http_config(config)
              .with_credentials(BasicCredentials(*access_key, login[1])).with_endpoint(server.url).build())
    with pytest.raises(SdkException) as info:
        client.list_images(ims.ListImagesRequest(imagetype="private"))
    assert "certificate" in str(info.value).lower()


def test_openstacksdk_over_verified_https(server: TlsServer) -> None:
    conn = openstack.connect(auth_url=f"{server.url}/identity/v3", username="admin", password=ADMIN_PASSWORD,
                             project_name=REGION, user_domain_name="admin", project_domain_name="admin",
                             region_name=REGION, cacert=str(server.pki.ca), verify=True,
                             load_yaml_config=False, load_envvars=False)
    try:
        image = conn.image.create_image(name="over-tls", allow_duplicates=True)
        assert image.id in {i.id for i in conn.image.images()}
        # The image endpoint came from the token catalog: https, verified against the test CA.
        assert conn.image.get_endpoint().startswith("https://127.0.0.1:")
        conn.image.delete_image(image)
    finally:
        conn.close()


def test_tls_1_1_is_refused(server: TlsServer) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(server.pki.ca))
    # The client offers TLS 1.1 only (security level 0 so that this client's OpenSSL is willing to).
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock, pytest.raises(ssl.SSLError):
        ctx.wrap_socket(sock, server_hostname="127.0.0.1").close()
    # The same client allowed TLS 1.2 gets through: the refusal above is the protocol version's.
    ctx12 = ssl.create_default_context(cafile=str(server.pki.ca))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock, \
            ctx12.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_tls_1_2_is_accepted(server: TlsServer) -> None:
    ctx = ssl.create_default_context(cafile=str(server.pki.ca))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock, \
            ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        assert tls.version() == "TLSv1.2"


def test_a_renewed_certificate_is_served_without_a_restart(server: TlsServer, http: httpx.Client) -> None:
    # As certbot or cert-manager renew it: new files in place; the next connection gets the new certificate,
    # verified against the same CA, while the process (and its connections) stays up.
    pid = server.proc.pid if server.proc else None
    before = served_serial(server.port, server.pki.ca)
    cert, key = issue(server.pki)
    replace(server.pki.key, key)
    replace(server.pki.cert, cert)
    assert served_serial(server.port, server.pki.ca) != before
    assert httpx.get(server.url + "/v2", verify=str(server.pki.ca), timeout=10).status_code == 200
    assert http.get("/v2").status_code == 200
    assert server.proc is not None and server.proc.pid == pid and server.proc.poll() is None


def test_the_cli_verifies_against_a_private_ca(server: TlsServer, tmp_path: Path) -> None:
    env = {**os.environ, "OPENIMS_ENDPOINT": server.url, "OPENIMS_PASSWORD": ADMIN_PASSWORD,
           "OPENIMS_TOKEN_CACHE": str(tmp_path / "tokens.json"), "COLUMNS": "200"}
    for name in ("OPENIMS_CACERT", "OS_CACERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        env.pop(name, None)
    cli = [sys.executable, "-m", "openims.cli", "image", "list", "--json"]
    refused = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "certificate" in (refused.stdout + refused.stderr).lower()
    for name in ("OPENIMS_CACERT", "OS_CACERT"):
        listed = subprocess.run(cli, env={**env, name: str(server.pki.ca)}, capture_output=True, text=True,
                                timeout=60)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert isinstance(json.loads(listed.stdout), list | dict)


def test_plain_http_to_the_tls_port_fails(server: TlsServer) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{server.port}/", timeout=5)


@pytest.mark.parametrize("given", ["OPENIMS_TLS_CERT_FILE", "OPENIMS_TLS_KEY_FILE"])
def test_one_of_the_pair_alone_stops_the_start_with_one_line(given: str, pki: Pki, tmp_path: Path) -> None:
    env = {**os.environ, "OPENIMS_DATA_DIR": str(tmp_path / "data"), "OPENIMS_PORT": "0", "COLUMNS": "200",
           given: str(pki.cert if given.endswith("CERT_FILE") else pki.key)}
    env.pop("OPENIMS_TLS_CERT_FILE" if given.endswith("KEY_FILE") else "OPENIMS_TLS_KEY_FILE", None)
    r = subprocess.run([sys.executable, "-m", "openims.cli", "serve"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and given in lines[0] and "both" in lines[0], r.stderr


def test_a_key_that_does_not_match_stops_the_start(pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    env = {**os.environ, "OPENIMS_DATA_DIR": str(tmp_path / "data"), "OPENIMS_PORT": "0", "COLUMNS": "200",
           "OPENIMS_TLS_CERT_FILE": str(pki.cert), "OPENIMS_TLS_KEY_FILE": str(other.key)}
    r = subprocess.run([sys.executable, "-m", "openims.cli", "serve"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "OPENIMS_TLS" in lines[0], r.stderr

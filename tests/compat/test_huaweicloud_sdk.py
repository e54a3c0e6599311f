"""The official huaweicloudsdkims / huaweicloudsdkiam packages, unchanged, against a real server.

The access key is created the way a user would, with ``openims iam ak create``; the SDK signs
every request with it (``SDK-HMAC-SHA256``), finds the project by region through IAM when it is
not given, and reports refusals as ``ClientRequestException`` with the status and ``error_code``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.region.region import Region
from huaweicloudsdkcore.signer.algorithm import SigningAlgorithm
from huaweicloudsdkiam.v3 import IamClient
from huaweicloudsdkiam.v3 import model as iam_model
from huaweicloudsdkims.v2 import ImsClient
from huaweicloudsdkims.v2 import model as ims
from huaweicloudsdkims.v2.region.ims_region import ImsRegion

from tests.support.images import make_image
from tests.support.server import ADMIN_PASSWORD, Api, ServerProcess

pytestmark = [pytest.mark.compat, pytest.mark.xdist_group("compat-sdk"),
              # The SDK marks show_job / glance_show_image deprecated; they are what IMS users call.
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

REGION = "local-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("compat-sdk") / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Api:
    return Api(server.url)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, api: Api) -> dict[str, str]:
    """Image files in a bucket, as a user puts them there before calling IMS."""
    tmp = tmp_path_factory.mktemp("sdk-files")
    api.upload("sdk-bucket", "system.qcow2", make_image(tmp, "qcow2", seed=31))
    api.upload("sdk-bucket", "data.vmdk", make_image(tmp, "vmdk", seed=32))
    return {"system": "sdk-bucket:system.qcow2", "data": "sdk-bucket:data.vmdk"}


def cli(server: ServerProcess, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENIMS_ENDPOINT": server.url, "OPENIMS_PASSWORD": ADMIN_PASSWORD,
           "OPENIMS_TOKEN_CACHE": str(tmp / "tokens.json"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "openims.cli", "iam", "ak", *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def access_key(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A fresh access key of the admin user, created with the CLI."""
    r = cli(server, tmp_path_factory.mktemp("cli"), "create", "--description", "sdk compat", "--json")
    assert r.returncode == 0, r.stderr
    credential = json.loads(r.stdout)
    return credential["access"], credential["secret"]


def http_config() -> HttpConfig:
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    config.timeout = (5, 60)
    return config


def ims_client(server: ServerProcess, credentials: BasicCredentials) -> ImsClient:
    return (ImsClient.new_builder().with_http_config(http_config()).with_credentials(credentials)
            .with_endpoint(server.url).build())


def wait_job(client: ImsClient, job_id: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.show_job(ims.ShowJobRequest(job_id=job_id))
        if job.status in ("SUCCESS", "FAIL"):
            return job
        time.sleep(0.3)
    raise TimeoutError(f"job {job_id} did not finish")


def run_image_flow(client: ImsClient, image_url: str, name: str) -> None:
    created = client.create_image(ims.CreateImageRequest(body=ims.CreateImageRequestBody(
        name=name, image_url=image_url, min_disk=40, os_version="CentOS 7.0 64bit", is_config=True)))
    job = wait_job(client, created.job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    image_id = job.entities.image_id

    listed = client.list_images(ims.ListImagesRequest(id=image_id))
    assert [i.id for i in listed.images] == [image_id]
    assert listed.images[0].name == name and listed.images[0].status == "active"

    shown = client.glance_show_image(ims.GlanceShowImageRequest(image_id=image_id))
    assert shown.id == image_id and shown.status == "active" and shown.min_disk == 40

    # PATCH /v2/cloudimages/{image_id} (built by the image-lifecycle issue).
    updated = client.update_image(ims.UpdateImageRequest(image_id=image_id, body=[
        ims.UpdateImageRequestBody(op="replace", path="/name", value=f"{name}-renamed")]))
    assert updated.name == f"{name}-renamed"

    # GET /v1/cloudimages/quota (built by the quota issue).
    quota = client.show_image_quota(ims.ShowImageQuotaRequest())
    assert any(q.type == "image" and q.used >= 1 for q in quota.quotas.resources)

    client.glance_delete_image(ims.GlanceDeleteImageRequest(
        image_id=image_id, body=ims.GlanceDeleteImageRequestBody(delete_backup=False)))
    with pytest.raises(ClientRequestException) as info:
        client.glance_show_image(ims.GlanceShowImageRequest(image_id=image_id))
    assert info.value.status_code == 404


def test_flow_with_project_id(server: ServerProcess, api: Api, files: dict[str, str],
                              access_key: tuple[str, str]) -> None:
    client = ims_client(server, BasicCredentials(*access_key, api.project_id))
    run_image_flow(client, files["system"], "sdk-with-project")


def test_flow_with_region_and_iam_endpoint(server: ServerProcess, api: Api, files: dict[str, str],
                                           access_key: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Code written for Huawei Cloud, unchanged: a region by name, endpoints from the environment. With
    # no project id the SDK asks IAM (signed GET /v3/projects?name=<region>) before the first call.
    monkeypatch.setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", server.url)
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION_IMS_LOCAL_1", server.url)
    credentials = BasicCredentials(*access_key)
    client = (ImsClient.new_builder().with_http_config(http_config())
              .with_credentials(credentials).with_region(ImsRegion.value_of(REGION)).build())
    assert credentials.project_id == api.project_id
    run_image_flow(client, files["system"], "sdk-with-region")


def test_sm3_signatures(server: ServerProcess, api: Api, access_key: tuple[str, str]) -> None:
    config = http_config()
    config.signing_algorithm = SigningAlgorithm.HMAC_SM3
    client = (ImsClient.new_builder().with_http_config(config)
              .with_credentials(BasicCredentials(*access_key, api.project_id)).with_endpoint(server.url).build())
    assert isinstance(client.list_images(ims.ListImagesRequest(imagetype="private")).images, list)


def test_v11_derived_key_signatures(server: ServerProcess, api: Api, access_key: tuple[str, str]) -> None:
    # Derived-key signing needs a region and a service name; ImsClient's builder names no service, so
    # the test gives it one through the builder's own (underscored) hook.
    credentials = BasicCredentials(*access_key, api.project_id).with_derived_predicate(lambda request: True)
    builder = ImsClient.new_builder()._with_derived_auth_service_name("ims")
    client = (builder.with_http_config(http_config()).with_credentials(credentials)
              .with_region(Region(REGION, server.url)).build())
    images = client.list_images(ims.ListImagesRequest(imagetype="private")).images
    assert isinstance(images, list)
    # The derived key is bound to the region: one derived for another region is refused, which also
    # shows the request above really was V11-signed.
    elsewhere = (ImsClient.new_builder()._with_derived_auth_service_name("ims").with_http_config(http_config())
                 .with_credentials(BasicCredentials(*access_key, api.project_id)
                                   .with_derived_predicate(lambda request: True))
                 .with_region(Region("cn-north-4", server.url)).build())
    err = refused(lambda: elsewhere.list_images(ims.ListImagesRequest()), 401, "APIGW.0301")
    assert "region" in err.error_msg


def test_create_data_image(server: ServerProcess, api: Api, files: dict[str, str],
                           access_key: tuple[str, str]) -> None:
    client = ims_client(server, BasicCredentials(*access_key, api.project_id))
    created = client.create_data_image(ims.CreateDataImageRequest(body=ims.CreateDataImageRequestBody(
        name="sdk-data", image_url=files["data"], min_disk=40, os_type="Linux")))
    job = wait_job(client, created.job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    image = client.glance_show_image(ims.GlanceShowImageRequest(image_id=job.entities.image_id))
    assert image.name == "sdk-data" and image.status == "active" and image.disk_format == "qcow2"


def test_iam_token_by_password_and_signed_discovery(server: ServerProcess, api: Api,
                                                    access_key: tuple[str, str]) -> None:
    # The password login is unauthenticated; the client still needs credentials to be built.
    client = (IamClient.new_builder().with_http_config(http_config())
              .with_credentials(GlobalCredentials(*access_key)).with_endpoint(server.url).build())
    body = iam_model.KeystoneCreateUserTokenByPasswordRequestBody(auth=iam_model.PwdAuth(
        identity=iam_model.PwdIdentity(methods=["password"], password=iam_model.PwdPassword(
            user=iam_model.PwdPasswordUser(name="admin", password=ADMIN_PASSWORD,
                                           domain=iam_model.PwdPasswordUserDomain(name="admin")))),
        scope=iam_model.AuthScope(project=iam_model.AuthScopeProject(name=REGION))))
    token = client.keystone_create_user_token_by_password(
        iam_model.KeystoneCreateUserTokenByPasswordRequest(body=body))
    assert token.x_subject_token and token.token.project.id == api.project_id
    # With a region, GlobalCredentials discovers the account id (signed GET /v3/auth/domains) from the
    # IAM endpoint given to the credentials (the other way to name it than HUAWEICLOUD_SDK_IAM_ENDPOINT).
    credentials = GlobalCredentials(*access_key).with_iam_endpoint(server.url)
    regional = (IamClient.new_builder().with_http_config(http_config())
                .with_credentials(credentials).with_region(Region(REGION, server.url)).build())
    assert credentials.domain_id == token.token.user.domain.id
    projects = regional.keystone_list_projects(iam_model.KeystoneListProjectsRequest(name=REGION))
    assert [p.id for p in projects.projects] == [api.project_id]


def refused(call: Any, status: int, code: str) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as info:
        call()
    assert info.value.status_code == status, info.value
    assert info.value.error_code == code, info.value
    assert info.value.error_msg and info.value.request_id
    return info.value


def test_wrong_secret(server: ServerProcess, api: Api, access_key: tuple[str, str]) -> None:
    client = ims_client(server, BasicCredentials(access_key[0], access_key[1][::-1], api.project_id))
    err = refused(lambda: client.list_images(ims.ListImagesRequest()), 401, "APIGW.0301")
    assert "signature" in err.error_msg


def test_skewed_date(server: ServerProcess, api: Api, access_key: tuple[str, str]) -> None:
    client = ims_client(server, BasicCredentials(*access_key, api.project_id))
    client.preset_headers["X-Sdk-Date"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 16 * 60))
    err = refused(lambda: client.list_images(ims.ListImagesRequest()), 401, "APIGW.0301")
    assert "15 minutes" in err.error_msg


def test_disabled_key(server: ServerProcess, api: Api, access_key: tuple[str, str], tmp_path: Path) -> None:
    client = ims_client(server, BasicCredentials(*access_key, api.project_id))
    assert cli(server, tmp_path, "update", access_key[0], "--disable").returncode == 0
    try:
        err = refused(lambda: client.list_images(ims.ListImagesRequest()), 401, "APIGW.0301")
        assert "inactive" in err.error_msg
    finally:
        assert cli(server, tmp_path, "update", access_key[0], "--enable").returncode == 0
    assert client.list_images(ims.ListImagesRequest()).images is not None


def test_another_projects_image(server: ServerProcess, api: Api, files: dict[str, str],
                                access_key: tuple[str, str]) -> None:
    mine = ims_client(server, BasicCredentials(*access_key, api.project_id))
    job = wait_job(mine, mine.create_image(ims.CreateImageRequest(body=ims.CreateImageRequestBody(
        name="sdk-private", image_url=files["system"], min_disk=40, os_version="CentOS 7.0 64bit"))).job_id)
    image_id = job.entities.image_id
    r = api.http.post("/v3/projects", json={"project": {"name": f"{REGION}_sdkother"}})
    assert r.status_code == 201, r.text
    other = ims_client(server, BasicCredentials(*access_key, r.json()["project"]["id"]))
    refused(lambda: other.glance_show_image(ims.GlanceShowImageRequest(image_id=image_id)), 404, "IMG.0144")
    assert other.list_images(ims.ListImagesRequest(id=image_id)).images == []


def test_cli_lists_and_deletes_keys(server: ServerProcess, api: Api, tmp_path: Path) -> None:
    created = json.loads(cli(server, tmp_path, "create", "--json").stdout)
    listed = json.loads(cli(server, tmp_path, "list", "--json").stdout)
    assert created["access"] in [k["access"] for k in listed]
    assert all("secret" not in k for k in listed)
    client = ims_client(server, BasicCredentials(created["access"], created["secret"], api.project_id))
    assert client.list_images(ims.ListImagesRequest()).images is not None
    r = cli(server, tmp_path, "delete", created["access"])
    assert r.returncode == 0, r.stderr
    refused(lambda: client.list_images(ims.ListImagesRequest()), 401, "APIGW.0301")
    r = cli(server, tmp_path, "delete", created["access"])
    assert r.returncode == 1 and "404" in r.stderr

"""Issue 13's acceptance scenario through real processes: the operator makes two accounts with the CLI,
each account imports an image and neither sees the other's; the operator publishes an image of its own
and both accounts see and download it, never change it; the official CTS SDK lists each account's own
traces, and the operator's all of them."""

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
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcts.v3 import CtsClient, ListTracesRequest

from tests.compat.test_huaweicloud_sdk import http_config
from tests.support.images import make_image
from tests.support.server import ADMIN_PASSWORD, Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-operator-scenario")]

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("operator-scenario") / "data") as srv:
        yield srv


def _account(server: ServerProcess, tmp: Path, name: str) -> Api:
    """``openims account create`` as the operator runs it; the new account's administrator, signed in."""
    env = {**os.environ, "OPENIMS_ENDPOINT": server.url, "OPENIMS_PASSWORD": ADMIN_PASSWORD,
           "OPENIMS_TOKEN_CACHE": str(tmp / "operator-tokens.json"), "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "openims.cli", "account", "create", name, "--admin-user",
                        f"{name}-admin", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    return Api(server.url, user=f"{name}-admin", password=made["admin_password"], domain=name)


def _cts(server: ServerProcess, api: Api) -> CtsClient:
    me = api.http.get("/v3/auth/tokens", headers={"X-Subject-Token": api.token}).json()["token"]["user"]["id"]
    r = api.http.post("/v3.0/OS-CREDENTIAL/credentials", json={"credential": {"user_id": me, "description": "cts"}})
    assert r.status_code == 201, r.text
    key = r.json()["credential"]
    return (CtsClient.new_builder().with_http_config(http_config())
            .with_credentials(BasicCredentials(key["access"], key["secret"], api.project_id))
            .with_endpoint(server.url).build())


def _imported(api: Api, tmp: Path, name: str, seed: int) -> tuple[str, str]:
    api.upload(f"{name}-bucket", "disk.qcow2", make_image(tmp, "qcow2", seed=seed))
    job_id = api.create(name=name, image_url=f"{name}-bucket:disk.qcow2", min_disk=1, os_version="CentOS 7.0 64bit")
    job = api.wait_job(job_id)
    assert job["status"] == "SUCCESS", job
    return job_id, str(job["entities"]["image_id"])


def _created_jobs(cts: CtsClient, expected: set[str]) -> set[str]:
    """The ids of the createImage traces CTS lists (waiting briefly: traces are written after the answer)."""
    deadline = time.monotonic() + 30
    while True:
        found = {t.resource_id for t in cts.list_traces(ListTracesRequest(
            trace_type="system", trace_name="createImage", limit=200)).traces or []}
        if expected <= found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def _ids(api: Api, path: str, **params: Any) -> set[str]:
    r = api.http.get(path, params={"limit": 100, **params})
    assert r.status_code == 200, r.text
    return {i["id"] for i in r.json()["images"]}


def test_two_accounts_a_public_image_and_their_traces(server: ServerProcess, tmp_path: Path) -> None:
    operator = Api(server.url)
    acme, globex = _account(server, tmp_path, "acme"), _account(server, tmp_path, "globex")
    acme_job, acme_image = _imported(acme, tmp_path, "acme", seed=131)
    globex_job, globex_image = _imported(globex, tmp_path, "globex", seed=132)

    # Neither sees the other's image, bucket or job.
    for me, mine, theirs, their_job, their_bucket in ((acme, acme_image, globex_image, globex_job, "globex-bucket"),
                                                      (globex, globex_image, acme_image, acme_job, "acme-bucket")):
        assert _ids(me, "/v2/cloudimages") == {mine} and _ids(me, "/v2/images") == {mine}
        assert me.http.get(f"/v2/images/{theirs}").status_code == 404
        assert me.http.get(f"/v2/images/{theirs}/file").status_code == 404
        assert me.http.get(f"/v1/{me.project_id}/jobs/{their_job}").status_code == 404
        assert me.http.get(f"/obs/{their_bucket}").status_code == 404

    # The operator publishes one of its images: both accounts list, show and download it, never change it.
    _, gold = _imported(operator, tmp_path, "golden", seed=133)
    r = operator.http.patch(f"/v2/images/{gold}", headers=PATCH,
                            json=[{"op": "replace", "path": "/visibility", "value": "public"}])
    assert r.status_code == 200 and r.json()["__imagetype"] == "gold", r.text
    data = operator.http.get(f"/v2/images/{gold}/file").content
    for me in (acme, globex):
        assert _ids(me, "/v2/cloudimages", __imagetype="gold") == {gold}
        assert _ids(me, "/v2/images", visibility="public") == {gold}
        assert me.http.get(f"/v2/images/{gold}/file").content == data
        r = me.http.patch(f"/v2/images/{gold}", headers=PATCH,
                          json=[{"op": "replace", "path": "/name", "value": "mine"}])
        assert r.status_code == 403
        assert me.http.delete(f"/v2/images/{gold}").status_code == 403

    # CTS: each account lists its own createImage traces, the operator every account's.
    acme_cts, globex_cts, operator_cts = _cts(server, acme), _cts(server, globex), _cts(server, operator)
    assert _created_jobs(acme_cts, {acme_job}) == {acme_job}
    assert _created_jobs(globex_cts, {globex_job}) == {globex_job}
    every = _created_jobs(operator_cts, {acme_job, globex_job})
    assert {acme_job, globex_job} <= every

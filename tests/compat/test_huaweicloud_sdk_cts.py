"""The official huaweicloudsdkcts package, unchanged, against a real server: ListTraces after an import, a share
and a failed login returns their traces, in the fields the SDK deserializes; paging with ``next``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcts.v3 import CtsClient, ListTracesRequest

from tests.compat.test_huaweicloud_sdk import cli, http_config
from tests.support.images import make_image
from tests.support.server import Api, ServerProcess
from tests.support.tenants import USER_PASSWORD

pytestmark = [pytest.mark.compat, pytest.mark.xdist_group("compat-sdk-cts")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("compat-cts") / "data"
    with ServerProcess(data, env={"OPENIMS_AUDIT_LOG": str(data.parent / "audit.jsonl")}) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Api:
    return Api(server.url)


@pytest.fixture(scope="module")
def cts(server: ServerProcess, api: Api, tmp_path_factory: pytest.TempPathFactory) -> CtsClient:
    r = cli(server, tmp_path_factory.mktemp("cli"), "create", "--description", "cts compat", "--json")
    assert r.returncode == 0, r.stderr
    credential = json.loads(r.stdout)
    return (CtsClient.new_builder().with_http_config(http_config())
            .with_credentials(BasicCredentials(credential["access"], credential["secret"], api.project_id))
            .with_endpoint(server.url).build())


def _eventually(fetch: Any, timeout: float = 30) -> Any:
    # A trace is written right after its response is sent (and a job's by the worker): poll briefly.
    deadline = time.monotonic() + timeout
    while True:
        found = fetch()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_list_traces_after_import_share_and_failed_login(server: ServerProcess, api: Api, cts: CtsClient,
                                                          tmp_path: Path) -> None:
    api.upload("cts-bucket", "disk.qcow2", make_image(tmp_path, "qcow2", seed=41))
    job_id = api.create(name="cts-image", image_url="cts-bucket:disk.qcow2", min_disk=40,
                        os_version="CentOS 7.0 64bit")
    job = api.wait_job(job_id)
    assert job["status"] == "SUCCESS", job
    image_id = job["entities"]["image_id"]
    r = api.http.post("/v1/cloudimages/members", json={"images": [image_id], "projects": ["0" * 32]})
    assert r.status_code == 200, r.text
    share_job = r.json()["job_id"]
    bad = httpx.post(f"{server.url}/v3/auth/tokens", json={"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": "admin", "password": USER_PASSWORD + "-wrong", "domain": {"name": "admin"}}}}}})
    assert bad.status_code == 401

    def listed(**filters: Any) -> list[Any]:
        response = cts.list_traces(ListTracesRequest(trace_type="system", limit=200, **filters))
        return list(response.traces or [])

    [created] = _eventually(lambda: listed(trace_name="createImage", service_type="IMS"))
    assert created.resource_id == job_id and created.resource_type == "job" and created.code == "200"
    assert created.trace_rating == "normal" and created.trace_type == "ApiCall"
    assert created.user.name == "admin" and created.user.domain.name == "admin" and created.user.domain.id
    assert isinstance(created.time, int) and created.request_id and created.source_ip and created.trace_id

    [shared] = _eventually(lambda: listed(trace_name="addImageMembers"))
    assert shared.resource_id == share_job and shared.resource_type == "image_member"

    [failed] = _eventually(lambda: listed(trace_name="login"))
    assert failed.trace_rating == "warning" and failed.code == "401" and failed.user.name == "admin"

    ended = _eventually(lambda: listed(trace_name="endJob", resource_id=job_id))
    assert [t.code for t in ended] == ["SUCCESS"] and ended[0].trace_type == "SystemAction"

    # Paging: next is the marker of the page before.
    first = cts.list_traces(ListTracesRequest(trace_type="system", limit=2))
    assert len(first.traces) == 2 and first.meta_data.count == 2 and first.meta_data.marker
    second = cts.list_traces(ListTracesRequest(trace_type="system", limit=2, next=first.meta_data.marker))
    assert {t.trace_id for t in first.traces}.isdisjoint({t.trace_id for t in second.traces})

    # An error in CTS's shape reaches the SDK's exception with its code.
    with pytest.raises(ClientRequestException) as info:
        cts.list_traces(ListTracesRequest(trace_type="system", limit=1000))
    assert info.value.status_code == 400 and info.value.error_code == "CTS.0001"

    # No secret in the JSON lines either.
    lines = (server.data_dir.parent / "audit.jsonl").read_text()
    assert "createImage" in lines and USER_PASSWORD + "-wrong" not in lines and api.token not in lines

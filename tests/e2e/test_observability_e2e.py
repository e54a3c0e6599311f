"""JSON logs and shared metrics of real processes: an API process and a separate worker on one host.

Through them: a password login, an access key created, a signed request, token use, an import. Then
every line both processes wrote is a JSON object with the fixed fields, requests and jobs carry theirs,
no line holds the password, the secret key or a token, and the API process's /metrics shows what the
worker process counted (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from openims.iam import signing
from tests.support.images import make_image
from tests.support.server import ADMIN_PASSWORD, Api, ServerProcess

pytestmark = [pytest.mark.e2e]

FIXED = ("time", "level", "logger", "message")


def _signed_get(server: ServerProcess, path: str, ak: str, sk: str, project_id: str) -> httpx.Response:
    host = f"127.0.0.1:{server.port}"
    headers = {"Content-Type": "application/json", "Host": host, "X-Project-Id": project_id,
               "X-Sdk-Date": dt.datetime.now(dt.UTC).strftime(signing.DATE_FORMAT)}
    request = SdkRequest(method="GET", schema="http", host=host, resource_path=path, uri=path, header_params=headers,
                         query_params=[])
    Signer(BasicCredentials(ak, sk)).sign(request)
    return httpx.get(server.url + path, headers=dict(request.header_params), timeout=30)


def _lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for raw in path.read_text().splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            raise AssertionError(f"{path.name}: not a JSON line: {raw[:300]}") from None
        assert isinstance(line, dict) and all(line.get(k) for k in FIXED), raw
        out.append(line)
    return out


def _samples(text: str, name: str) -> dict[str, float]:
    """``{labels text: value}`` of one metric in a scrape."""
    found = {}
    for row in text.splitlines():
        if row.startswith(name + "{") or row.startswith(name + " "):
            labels, _, number = row.rpartition(" ")
            found[labels[len(name):]] = float(number)
    return found


def test_json_logs_hold_no_secrets_and_metrics_span_processes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {"OPENIMS_LOG_FORMAT": "json", "OPENIMS_WORKERS": "0", "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    server = ServerProcess(data, env=env).start()
    worker_log = tmp_path / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    try:
        worker_env = {**os.environ, **env, "OPENIMS_DATA_DIR": str(data), "OPENIMS_ARGON2_TIME_COST": "1",
                      "OPENIMS_ARGON2_MEMORY_KIB": "8"}
        with open(worker_log, "ab") as out:
            worker = subprocess.Popen([sys.executable, "-m", "openims.cli", "worker"], env=worker_env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        api = Api(server.url)  # a password login; the token is used from here on
        me = api.http.get("/v3/auth/tokens", headers={"X-Subject-Token": api.token}).json()["token"]["user"]
        r = api.http.post("/v3.0/OS-CREDENTIAL/credentials", json={"credential": {"user_id": me["id"]}})
        assert r.status_code == 201, r.text
        ak, sk = r.json()["credential"]["access"], r.json()["credential"]["secret"]
        signed = _signed_get(server, "/v2/cloudimages", ak, sk, api.project_id)
        assert signed.status_code == 200, signed.text
        api.upload("logs", "disk.qcow2", make_image(tmp_path / "src", "qcow2"))
        job_id = api.create(name="logged", image_url="logs:disk.qcow2", min_disk=1, os_version="CentOS 7.0 64bit")
        job = api.wait_job(job_id)
        assert job["status"] == "SUCCESS", job

        # The API process serves what the worker process counted, beside its own counters.
        scrape = httpx.get(server.url + "/metrics", timeout=30)
        assert scrape.status_code == 200
        finished = _samples(scrape.text, "openims_jobs_finished_total")
        assert finished.get('{job_type="imsImportImageJob",status="SUCCESS"}') == 1, finished
        assert _samples(scrape.text, "openims_tokens_issued_total").get('{method="password"}') == 1
        requests = _samples(scrape.text, "openims_http_requests_total")
        assert requests.get('{method="GET",route="/v1/{project_id}/jobs/{job_id}",status="200"}', 0) >= 1
        assert httpx.get(server.url + "/readyz", timeout=30).status_code == 200
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
        server.stop()

    api_lines, worker_lines = _lines(server.log), _lines(worker_log)
    everything = server.log.read_text() + worker_log.read_text()
    for secret in (ADMIN_PASSWORD, sk, api.token):
        assert secret not in everything
    access = [line for line in api_lines if line["logger"] == "openims.access"]
    for line in access:
        assert {"request_id", "route", "method", "status", "duration_ms"} <= line.keys(), line
    login = next(line for line in access if line["route"] == "/v3/auth/tokens" and line["method"] == "POST")
    assert login["status"] == 201 and login["user_id"] == me["id"] and login["account"] == me["domain"]["id"]
    by_signature = next(line for line in access if line["route"] == "/v2/cloudimages")
    assert by_signature["user_id"] == me["id"] and by_signature["project"] == api.project_id
    # uvicorn's own lines are JSON too, and there is no second access log.
    assert any(line["logger"].startswith("uvicorn") for line in api_lines)
    assert not any(line["logger"] == "uvicorn.access" for line in api_lines)
    # The worker's lines about the job name it.
    about_job = [line for line in worker_lines if line.get("job_id") == job_id]
    assert about_job and all(line["job_type"] == "imsImportImageJob" for line in about_job)
    assert any("finished" in line["message"] for line in about_job)

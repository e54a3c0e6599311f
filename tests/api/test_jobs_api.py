"""The openims job extensions: GET /v1/{project_id}/jobs (list) and …/jobs/{job_id}/events (server-sent events)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi.testclient import TestClient

from openims.api import job_routes
from openims.api.app import create_app
from openims.client.ims import ImsClient
from openims.client.session import Credentials, Session
from openims.client.token_cache import TokenCache
from openims.clock import ManualClock
from openims.runtime import Runtime
from openims.worker.runner import Worker
from tests.conftest import ADMIN_PASSWORD, login, new_tenant
from tests.support.images import make_image
from tests.support.server import Api, ServerProcess

H = dict[str, str]
VALID = {"image_url": "bkt:disk.qcow2", "min_disk": 40, "os_version": "CentOS 7.0 64bit"}


@pytest.fixture(autouse=True)
def fast_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_routes, "EVENT_POLL_SECONDS", 0.05)


@pytest.fixture
def pid(client: TestClient, admin_headers: H) -> str:
    project_id: str = client.get("/v3/auth/projects", headers=admin_headers).json()["projects"][0]["id"]
    return project_id


@pytest.fixture
def source(client: TestClient, admin_headers: H, tmp_path: Path) -> None:
    data = make_image(tmp_path / "src", "qcow2").read_bytes()
    assert client.put("/obs/bkt/disk.qcow2", content=data, headers=admin_headers).status_code == 201


def submit(client: TestClient, headers: H, name: str) -> str:
    r = client.post("/v2/cloudimages/action", json={**VALID, "name": name}, headers=headers)
    assert r.status_code == 200, r.text
    job_id: str = r.json()["job_id"]
    return job_id


def events(text: str) -> list[dict[str, Any]]:
    """The events of an SSE body: id, event and the decoded data of each."""
    found = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("id", "event"):
                fields[name] = value
            elif name == "data":
                fields["data"] = json.loads(value)
        if "data" in fields:
            found.append(fields)
    return found


class TestJobList:
    def test_newest_first_with_filters_and_paging(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                                  clock: ManualClock, pid: str, source: None) -> None:
        submitted = []
        for name in ("one", "two", "three"):
            submitted.append(submit(client, admin_headers, name))
            clock.advance(1)
        first, second, third = submitted
        r = client.get(f"/v1/{pid}/jobs", headers=admin_headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert [j["job_id"] for j in body["jobs"]] == [third, second, first]
        assert body["jobs"][0]["job_type"] == "imsImportImageJob" and body["jobs"][0]["status"] == "INIT"
        assert body["next_marker"] is None

        page = client.get(f"/v1/{pid}/jobs?limit=2", headers=admin_headers).json()
        assert [j["job_id"] for j in page["jobs"]] == [third, second] and page["next_marker"] == second
        rest = client.get(f"/v1/{pid}/jobs?limit=2&marker={second}", headers=admin_headers).json()
        assert [j["job_id"] for j in rest["jobs"]] == [first]

        Worker(runtime).run_until_idle()
        done = client.get(f"/v1/{pid}/jobs?status=SUCCESS", headers=admin_headers).json()["jobs"]
        assert {j["job_id"] for j in done} == {first, second, third}
        assert client.get(f"/v1/{pid}/jobs?status=INIT,RUNNING", headers=admin_headers).json()["jobs"] == []
        typed = client.get(f"/v1/{pid}/jobs?job_type=imsNativeExportImageJob", headers=admin_headers).json()
        assert typed["jobs"] == []

    @pytest.mark.parametrize("query", ["status=DONE", "limit=0", "limit=1001", "limit=x"])
    def test_bad_filters_are_400(self, client: TestClient, admin_headers: H, pid: str, query: str) -> None:
        r = client.get(f"/v1/{pid}/jobs?{query}", headers=admin_headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "IMG.0001"

    def test_unknown_marker_is_404(self, client: TestClient, admin_headers: H, pid: str) -> None:
        assert client.get(f"/v1/{pid}/jobs?marker={'a' * 32}", headers=admin_headers).status_code == 404

    def test_tenancy(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str, source: None) -> None:
        job_id = submit(client, admin_headers, "mine")
        other = new_tenant(client, runtime, "jobs-other")
        other_pid = client.get("/v3/auth/projects", headers=other).json()["projects"][0]["id"]
        assert client.get(f"/v1/{other_pid}/jobs", headers=other).json()["jobs"] == []
        # Another project's job as a marker is unknown; another project's path is refused as on the job route.
        assert client.get(f"/v1/{other_pid}/jobs?marker={job_id}", headers=other).status_code == 404
        assert client.get(f"/v1/{pid}/jobs", headers=other).status_code == 403
        assert client.get(f"/v1/{pid}/jobs").status_code == 401


class TestJobEvents:
    def test_stream_follows_the_job_to_its_end(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                               pid: str, source: None) -> None:
        job_id = submit(client, admin_headers, "live")
        # The worker starts once the stream is open and has sent the job's first state.
        worker = threading.Thread(target=lambda: (time.sleep(0.3), Worker(runtime).run_until_idle()))
        worker.start()
        with client.stream("GET", f"/v1/{pid}/jobs/{job_id}/events", headers=admin_headers) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            text = "".join(r.iter_text())
        worker.join()
        got = events(text)
        assert got[0]["data"]["status"] == "INIT" and got[0]["data"]["stage"] == "queued"
        last = got[-1]
        assert last["event"] == "job" and last["data"]["status"] == "SUCCESS" and last["data"]["progress"] == 100.0
        assert last["data"]["stage"] == "done" and last["data"]["entities"]["image_id"]
        assert len({e["id"] for e in got}) == len(got)  # an event only for a change

    def test_resume_with_last_event_id(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str,
                                       source: None) -> None:
        job_id = submit(client, admin_headers, "resumed")
        Worker(runtime).run_until_idle()
        url = f"/v1/{pid}/jobs/{job_id}/events"
        final = events(client.get(url, headers=admin_headers).text)
        assert [e["data"]["status"] for e in final] == ["SUCCESS"]
        # Seen already: the stream ends without repeating it.
        again = client.get(url, headers={**admin_headers, "Last-Event-ID": final[0]["id"]})
        assert again.status_code == 200 and events(again.text) == []
        # An older state: the current one is sent.
        older = client.get(url, headers={**admin_headers, "Last-Event-ID": "0-INIT-0.0"})
        assert [e["data"]["status"] for e in events(older.text)] == ["SUCCESS"]

    def test_errors(self, client: TestClient, admin_headers: H, runtime: Runtime, pid: str, source: None) -> None:
        job_id = submit(client, admin_headers, "private")
        assert client.get(f"/v1/{pid}/jobs/{'a' * 32}/events", headers=admin_headers).status_code == 404
        assert client.get(f"/v1/{pid}/jobs/{job_id}/events").status_code == 401
        other = new_tenant(client, runtime, "events-other")
        other_pid = client.get("/v3/auth/projects", headers=other).json()["projects"][0]["id"]
        r = client.get(f"/v1/{other_pid}/jobs/{job_id}/events", headers=other)
        assert r.status_code == 404 and r.json()["error"]["code"] == "IMG.0023"
        assert client.get(f"/v1/{pid}/jobs/{job_id}/events", headers=other).status_code == 403


def test_events_conform_to_their_documented_schema(client: TestClient, admin_headers: H, runtime: Runtime, pid: str,
                                                   source: None) -> None:
    # Fuzzing finding: the stream was documented as {"type": "string"}, which OpenAPI 3.1 (and schemathesis)
    # reads as the schema of each event; an event is an object of id, event and data (JSON text).
    job_id = submit(client, admin_headers, "documented")
    Worker(runtime).run_until_idle()
    r = client.get(f"/v1/{pid}/jobs/{job_id}/events", headers=admin_headers)
    assert r.status_code == 200
    doc = client.get("/openapi.json").json()
    schema = doc["paths"]["/v1/{project_id}/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"][
        "text/event-stream"]["schema"]
    raw = [{**e, "data": json.dumps(e["data"])} for e in events(r.text)]
    assert raw
    for event in raw:
        jsonschema.validate(event, schema)
        json.loads(event["data"])


class TestClientFollowsEvents:
    """openims.client's wait_job (behind `openims job show --wait` and `image import --wait`)."""

    def _ims(self, http: TestClient) -> ImsClient:
        creds = Credentials(endpoint="http://testserver", password=ADMIN_PASSWORD)
        return ImsClient(Session(creds, token_cache=TokenCache.in_memory(), http_client=http))

    def test_follows_the_stream(self, client: TestClient, admin_headers: H, runtime: Runtime,
                                source: None) -> None:
        job_id = submit(client, admin_headers, "followed")
        worker = threading.Thread(target=lambda: (time.sleep(0.3), Worker(runtime).run_until_idle()))
        worker.start()
        seen: list[dict[str, Any]] = []
        job = self._ims(client).wait_job(job_id, progress=seen.append, timeout=60)
        worker.join()
        assert job["status"] == "SUCCESS" and job["entities"]["image_id"]
        assert any("stage" in s for s in seen)  # states from the event stream, not from polling
        assert seen[-1]["status"] == "SUCCESS"

    def test_polls_a_server_without_the_stream(self, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
        # A server of before the stream: the application built without its route.
        monkeypatch.setattr(job_routes.router, "routes", [
            r for r in job_routes.router.routes if not getattr(r, "path", "").endswith("/events")])
        with TestClient(create_app(runtime)) as http:
            headers = {"X-Auth-Token": login(http)}
            http.put("/obs/bkt/disk.qcow2", content=make_image(runtime.settings.data_dir.parent / "src", "qcow2")
                     .read_bytes(), headers=headers)
            job_id = submit(http, headers, "polled")
            worker = threading.Thread(target=lambda: (time.sleep(0.3), Worker(runtime).run_until_idle()))
            worker.start()
            seen: list[dict[str, Any]] = []
            job = self._ims(http).wait_job(job_id, progress=seen.append, timeout=60, interval=0.05)
            worker.join()
        assert job["status"] == "SUCCESS"
        assert seen and not any("stage" in s for s in seen)


@pytest.mark.e2e
def test_events_arrive_as_they_happen_on_a_real_server(tmp_path: Path) -> None:
    """Through uvicorn and every middleware: the first event is delivered while the job is still waiting
    (no worker here), not buffered until the stream ends."""
    with ServerProcess(tmp_path / "data", env={"OPENIMS_WORKERS": "0"}) as server:
        api = Api(server.url)
        api.upload("bkt", "disk.qcow2", make_image(tmp_path / "src", "qcow2"))
        job_id = api.create(**VALID, name="waiting")
        url = f"/v1/{api.project_id}/jobs/{job_id}/events"
        with api.http.stream("GET", url, timeout=httpx.Timeout(10)) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            started = time.monotonic()
            lines = r.iter_lines()
            while not (line := next(lines)).startswith("data: "):
                pass
            assert json.loads(line[6:])["status"] == "INIT"
            assert time.monotonic() - started < 5

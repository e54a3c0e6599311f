"""``openims audit list`` (a subprocess) against a real server: a table, JSON, and the filters."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.test_client_cli_e2e import _cli
from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-audit")]


def test_audit_list(server: ServerProcess, api: Api, tmp_path: Path) -> None:
    r = api.http.put("/obs/audited-bucket")
    assert r.status_code in (200, 201), r.text
    r = api.http.put("/obs/other-bucket")
    assert r.status_code in (200, 201), r.text
    deadline = time.monotonic() + 30
    while True:  # traces are written just after their responses
        r = _cli(server, tmp_path, "audit", "list", "--since", "1h", "--resource-id", "audited-bucket", "--json")
        assert r.returncode == 0, r.stderr
        found = json.loads(r.stdout)
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert [(t["trace_name"], t["resource_id"], t["code"]) for t in found] == [
        ("createBucket", "audited-bucket", "201")]
    r = _cli(server, tmp_path, "audit", "list", "--action", "createBucket")
    assert r.returncode == 0, r.stderr
    assert "audited-bucket" in r.stdout and "other-bucket" in r.stdout and "admin/admin" in r.stdout
    r = _cli(server, tmp_path, "audit", "list", "--since", "soon")
    assert r.returncode == 1 and "--since" in r.stderr

"""Schemathesis against a real server, driven by its own /openapi.json (issue 16, item 6).

Every phase the installed schemathesis has (examples, coverage, fuzzing, stateful) with a valid admin
token, checking that nothing answers 5xx, that every answer's status code is documented and its body
and content type conform to the schema. Bounded for the suite (``OPENIMS_FUZZ_EXAMPLES`` per
operation, a fixed seed); ``make fuzz`` runs it longer with a random seed.

A failure prints schemathesis's report: each finding with a curl line reproducing it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz, pytest.mark.xdist_group("fuzz")]

ROOT = Path(__file__).resolve().parents[2]

# Operations that would end the fuzz session itself if the fuzzer found the right ids (the stateful phase
# links them from earlier answers, e.g. GET /v3/users lists the admin): revoking its own token; changing
# or deleting the admin user, its password, its account, its project (disable, suspend, delete), its group
# or its grants (the operator role). Creating users, groups, projects and accounts stays in.
EXCLUDED_OPERATIONS = (
    r"^(revoke_token|update_user|delete_user|change_password|update_domain|delete_domain|update_project"
    r"|delete_project|set_project_status|delete_group|remove_group_user|delete_grant_)"
)
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"


def _st() -> str:
    return str(Path(sys.executable).with_name("st"))


def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    examples = os.environ.get("OPENIMS_FUZZ_EXAMPLES", "6")
    seed = os.environ.get("OPENIMS_FUZZ_SEED", "20261205")
    with ServerProcess(tmp_path / "data") as server:
        api = Api(server.url)
        token = api.token
        # A {project_id} in a path must be the token's project (403 otherwise): give the fuzzer the right one,
        # so that it reaches the routes' rules instead of the tenancy check (tests/api cover the 403).
        config = tmp_path / "schemathesis.toml"
        config.write_text(f'[parameters]\n"path.project_id" = "{api.project_id}"\n')
        cmd = [_st(), "--config-file", str(config), "run", f"{server.url}/openapi.json",
               "--header", f"X-Auth-Token: {token}",
               "--phases", "examples,coverage,fuzzing,stateful", "--checks", CHECKS,
               "--max-examples", examples, "--workers", "2", "--no-color", "--output-sanitize", "true",
               "--exclude-operation-id-regex", EXCLUDED_OPERATIONS, "--generation-database", "none",
               "--request-timeout", "30"]
        if seed != "random":
            cmd += ["--seed", seed]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        started = time.monotonic()
        # In tmp_path: schemathesis keeps a crash cache (.schemathesis/) in its working directory.
        run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
        elapsed = time.monotonic() - started
    summary = [line for line in run.stdout.splitlines() if "generated" in line or "passed" in line]
    print(f"schemathesis: {elapsed:.0f} s; " + " | ".join(s.strip() for s in summary[-3:]))
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
    # An error after a streamed answer began (a 200 already sent) is no 5xx: the server's log tells.
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log and "unhandled error" not in log, log[-5000:]

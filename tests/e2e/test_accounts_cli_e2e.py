"""``openims account`` (issue 13) through the CLI (a subprocess) against a real server, on SQLite and
PostgreSQL: an account made in one step is usable by its administrator, kept from the operator's
commands, cut off when disabled and back when enabled, and deleted once disabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ADMIN_PASSWORD, ServerProcess

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "data", database_url=db_url) as srv:
        yield srv


def _cli(server: ServerProcess, tmp: Path, *args: str, user: str = "admin", password: str = ADMIN_PASSWORD,
         domain: str = "admin") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENIMS_ENDPOINT": server.url, "OPENIMS_USERNAME": user, "OPENIMS_PASSWORD": password,
           "OPENIMS_DOMAIN": domain, "OPENIMS_PROJECT": "local-1",
           "OPENIMS_TOKEN_CACHE": str(tmp / f"tokens-{user}.json"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "openims.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _json(r: subprocess.CompletedProcess[str]) -> object:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_account_lifecycle(server: ServerProcess, tmp_path: Path) -> None:
    made = _json(_cli(server, tmp_path, "account", "create", "acme", "--admin-user", "acmeboss", "--json"))
    assert isinstance(made, dict)
    assert made["name"] == "acme" and made["project"] == "local-1" and made["admin_user"] == "acmeboss"
    password = made["admin_password"]

    def boss(*args: str) -> subprocess.CompletedProcess[str]:
        return _cli(server, tmp_path, *args, user="acmeboss", password=password, domain="acme")

    # Its administrator works in it at once, sees only it, and is no operator.
    assert _json(boss("image", "list", "--json")) == []
    users = _json(boss("iam", "user", "list", "--json"))
    assert isinstance(users, list) and [u["name"] for u in users] == ["acmeboss"]
    r = boss("account", "list")
    assert r.returncode == 1 and "operator" in r.stderr
    # A given password is not printed.
    r = _cli(server, tmp_path, "account", "create", "globex", "--admin-user", "globexboss",
             "--admin-password", "Given-pass-1234")
    assert r.returncode == 0, r.stderr
    assert "Given-pass-1234" not in r.stdout + r.stderr and "globexboss" in r.stdout
    listed = _json(_cli(server, tmp_path, "account", "list", "--json"))
    assert isinstance(listed, list) and [a["name"] for a in listed] == ["acme", "admin", "globex"]
    shown = _json(_cli(server, tmp_path, "account", "show", "acme", "--json"))
    assert isinstance(shown, dict) and shown["id"] == made["id"] and shown["enabled"] is True
    # Disabled: its administrator's cached token and its logins stop; enabled again, they work.
    assert _cli(server, tmp_path, "account", "disable", "acme").returncode == 0
    assert boss("image", "list").returncode == 1
    assert _cli(server, tmp_path, "account", "enable", "acme").returncode == 0
    assert _json(boss("image", "list", "--json")) == []
    # Deleted only once disabled (Keystone's rule).
    r = _cli(server, tmp_path, "account", "delete", "acme")
    assert r.returncode == 1 and "disable it first" in r.stderr
    assert _cli(server, tmp_path, "account", "disable", made["id"]).returncode == 0
    assert _cli(server, tmp_path, "account", "delete", "acme").returncode == 0
    r = _cli(server, tmp_path, "account", "show", "acme")
    assert r.returncode == 1 and "No account" in r.stderr

"""Tags and sharing through the CLI (a subprocess) against a real server, across two accounts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openims.db.session import Database
from tests.support.images import make_image
from tests.support.server import ADMIN_PASSWORD, Api, ServerProcess
from tests.support.tenants import add_user

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-sharing")]

PARTNER_PASSWORD = "Partner-Pass-1234"


def add_account(server: ServerProcess, *, domain: str, project: str, user: str, password: str) -> None:
    """A second account (domain) with a project and an administrator, written into the server's database:
    accounts cannot be created through the API."""
    db = Database(server.database_url or f"sqlite:///{server.data_dir / 'openims.db'}")
    try:
        add_user(db, name=user, role="te_admin", domain_name=domain, project_name=project, password=password,
                 group_name="admins")
    finally:
        db.dispose()


def cli(server: ServerProcess, cache: Path, *args: str, user: str = "admin", password: str = ADMIN_PASSWORD,
        domain: str = "admin", project: str = "local-1") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENIMS_ENDPOINT": server.url, "OPENIMS_USERNAME": user, "OPENIMS_PASSWORD": password,
           "OPENIMS_DOMAIN": domain, "OPENIMS_PROJECT": project, "OPENIMS_TOKEN_CACHE": str(cache),
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "openims.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_share_accept_list_with_the_cli(server: ServerProcess, api: Api, files: Path) -> None:
    tmp = files / "sharing"
    api.upload("share-bucket", "disk.qcow2", make_image(tmp, "qcow2", seed=41))
    job = api.wait_job(api.create(name="shared-by-admin", image_url="share-bucket:disk.qcow2", min_disk=40,
                                  os_version="CentOS 7.0 64bit"))
    assert job["status"] == "SUCCESS", job
    image_id = job["entities"]["image_id"]

    add_account(server, domain="partner", project="local-1_partner", user="bob", password=PARTNER_PASSWORD)
    partner = Api(server.url, user="bob", password=PARTNER_PASSWORD, domain="partner", project="local-1_partner")
    admin_cache, bob_cache = tmp / "admin-tokens.json", tmp / "bob-tokens.json"

    def as_bob(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(server, bob_cache, *args, user="bob", password=PARTNER_PASSWORD, domain="partner",
                   project="local-1_partner")

    # Tags, by the owner.
    r = cli(server, admin_cache, "image", "tag", "add", image_id, "team=ops", "tier")
    assert r.returncode == 0, r.stderr
    r = cli(server, admin_cache, "image", "tag", "list", image_id, "--json")
    assert json.loads(r.stdout) == [{"key": "team", "value": "ops"}, {"key": "tier", "value": ""}]
    r = cli(server, admin_cache, "image", "tag", "delete", image_id, "tier")
    assert r.returncode == 0, r.stderr
    r = cli(server, admin_cache, "image", "tag", "delete", image_id, "tier")
    assert r.returncode == 1 and "404" in r.stderr

    # Share with the other account's project; bob does not list it until he accepts.
    r = cli(server, admin_cache, "image", "share", image_id, "--project", partner.project_id, "--json")
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    assert job["job_type"] == "imsAddImageMembersJob" and job["status"] == "SUCCESS"
    r = as_bob("image", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []

    r = as_bob("image", "accept", image_id)
    assert r.returncode == 0, r.stderr
    assert "accepted" in r.stdout
    r = as_bob("image", "list", "--imagetype", "shared", "--json")
    shared = json.loads(r.stdout)
    assert [i["id"] for i in shared] == [image_id]
    assert shared[0]["visibility"] == "shared" and shared[0]["tags"] == ["team.ops"]
    r = cli(server, admin_cache, "image", "members", image_id, "--json")
    assert [(m["member_id"], m["status"]) for m in json.loads(r.stdout)] == [(partner.project_id, "accepted")]

    # Bob can neither tag nor re-share it; the per-item failure is reported and the command fails.
    r = as_bob("image", "tag", "add", image_id, "mine=yes")
    assert r.returncode == 1 and "IMG.0047" in r.stderr
    r = as_bob("image", "share", image_id, "--project", api.project_id)
    assert r.returncode == 1 and "IMG.0047" in r.stderr

    # Rejecting hides it again; the owner stops sharing for good.
    assert as_bob("image", "reject", image_id).returncode == 0
    assert json.loads(as_bob("image", "list", "--json").stdout) == []
    r = cli(server, admin_cache, "image", "unshare", image_id, "--project", partner.project_id)
    assert r.returncode == 0, r.stderr
    r = as_bob("image", "show", image_id)
    assert r.returncode == 1 and "IMG.0144" in r.stderr

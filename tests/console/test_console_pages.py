"""The console's other pages in a real browser: image details (update, share, export, copy, delete),
jobs, buckets, access keys, a locked user, the project switcher."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.api.test_operators import PASSWORD as PARTNER_PASSWORD
from tests.api.test_operators import make_account
from tests.console.conftest import Page
from tests.support.images import make_image
from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("console")]


@pytest.fixture(scope="module")
def image(api: Api, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    api.upload("pages-seed", "seed.qcow2", make_image(tmp_path_factory.mktemp("pages"), "qcow2", seed=3))
    job = api.wait_job(api.create(name="details-image", image_url="pages-seed:seed.qcow2", min_disk=40,
                                  os_version="CentOS 7.0 64bit"))
    assert job["status"] == "SUCCESS", job
    return {"id": job["entities"]["image_id"], "name": "details-image"}


def signed_in(page: Page, path: str = "#/images") -> Any:
    page.open("/console/" + path)
    page.sign_in()
    expect(page.page.locator("#view h1")).to_be_visible()
    return page.page


def wait_job_view(p: Any) -> None:
    expect(p.get_by_role("heading", name=re.compile("^Job "))).to_be_visible()
    expect(p.locator(".job-status")).to_have_text(re.compile("Status: SUCCESS"), timeout=30_000)


def test_locked_user_is_told_so(page: Page, api: Api, server: ServerProcess) -> None:
    page.expect_http_errors()
    domain_id = httpx.get(server.url + "/v3/auth/tokens", headers={
        "X-Auth-Token": api.token, "X-Subject-Token": api.token}).json()["token"]["user"]["domain"]["id"]
    r = api.http.post("/v3/users", json={"user": {"name": "locky", "password": "Safe-Pass-9876",
                                                  "domain_id": domain_id}})
    assert r.status_code == 201, r.text
    bad = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "locky", "password": "wrong-password", "domain": {"name": "admin"}}}}}}
    for _ in range(5):
        httpx.post(server.url + "/v3/auth/tokens", json=bad)
    page.open()
    page.sign_in(user="locky", password="Safe-Pass-9876")
    expect(page.page.get_by_role("alert").filter(has_text="locked")).to_contain_text(
        "This user is locked after too many failed sign-ins")


def test_details_update_share_export_copy_delete(page: Page, api: Api, image: dict[str, Any]) -> None:
    p = signed_in(page)
    p.get_by_role("link", name=image["name"], exact=True).click()
    expect(p.get_by_role("heading", name=image["name"])).to_be_visible()
    # Every attribute is listed.
    for attr in ("id", "checksum", "disk_format", "__os_version", "min_disk", "owner"):
        expect(p.locator("dl.attributes dt", has_text=re.compile(f"^{re.escape(attr)}$"))).to_have_count(1)

    p.get_by_label("Description", exact=True).fill("edited in the console")
    p.get_by_label("Min disk (GB)", exact=True).fill("50")
    p.get_by_role("button", name="Save changes").click()
    expect(p.get_by_text("Changes saved.")).to_be_visible()
    shown = api.http.get(f"/v2/images/{image['id']}").json()
    assert shown["min_disk"] == 50 and shown["__description"] == "edited in the console"

    token = api.http.get("/v3/auth/tokens", headers={"X-Subject-Token": api.token}).json()["token"]
    r = api.http.post("/v3/projects", json={"project": {"name": "local-1_share",
                                                        "domain_id": token["user"]["domain"]["id"]}})
    assert r.status_code == 201, r.text
    other = r.json()["project"]["id"]
    p.get_by_label("Project id", exact=True).fill(other)
    p.get_by_role("button", name="Share", exact=True).click()
    wait_job_view(p)

    p.go_back()
    expect(p.get_by_role("heading", name=image["name"])).to_be_visible()
    p.get_by_label("Bucket and file", exact=True).fill("pages-seed:exported.qcow2")
    p.get_by_role("button", name="Export", exact=True).click()
    wait_job_view(p)
    assert any(o["key"] == "exported.qcow2" for o in api.http.get("/obs/pages-seed").json()["objects"])

    p.go_back()
    p.get_by_label("New name", exact=True).fill("copied-image")
    p.get_by_role("button", name="Copy", exact=True).click()
    wait_job_view(p)
    p.get_by_role("link", name="Open the image").click()
    expect(p.get_by_role("heading", name="copied-image")).to_be_visible()

    p.get_by_role("button", name="Delete image").click()
    dialog = p.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete image copied-image?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(p.get_by_role("dialog")).to_have_count(0)
    p.get_by_role("button", name="Delete image").click()
    p.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(p.get_by_role("heading", name="Images")).to_be_visible()
    expect(p.get_by_text("Image copied-image deleted.")).to_be_visible()
    expect(p.get_by_role("link", name="copied-image", exact=True)).to_have_count(0)


def test_jobs_page_lists_jobs(page: Page, image: dict[str, Any]) -> None:
    p = signed_in(page, "#/jobs")
    expect(p.get_by_role("heading", name="Jobs")).to_be_visible()
    table = p.get_by_role("table")
    expect(table.get_by_role("row").filter(has_text="imsImportImageJob").first).to_be_visible()
    p.get_by_label("Status", exact=True).select_option("FAIL")
    p.get_by_label("Type", exact=True).select_option("glanceImageImportJob")
    p.get_by_role("button", name="Apply").click()
    expect(p.get_by_text("No jobs.")).to_be_visible()


def test_buckets_create_browse_upload(page: Page, tmp_path: Path) -> None:
    local = tmp_path / "notes.txt"
    local.write_bytes(b"x" * 300_000)
    p = signed_in(page, "#/buckets")
    p.get_by_label("New bucket name").fill("pages-bucket")
    p.get_by_role("button", name="Create bucket").click()
    expect(p.get_by_role("heading", name="Bucket pages-bucket")).to_be_visible()
    expect(p.get_by_text("The bucket is empty.")).to_be_visible()
    p.get_by_label("Local file", exact=True).set_input_files(str(local))
    p.get_by_role("button", name="Upload", exact=True).click()
    expect(p.get_by_role("table").get_by_role("cell", name="notes.txt")).to_be_visible()
    p.get_by_role("link", name="All buckets").click()
    expect(p.get_by_role("link", name="pages-bucket")).to_be_visible()


def test_access_key_disable_and_delete(page: Page) -> None:
    p = signed_in(page, "#/keys")
    p.get_by_label("Description", exact=True).fill("to delete")
    p.get_by_role("button", name="Create access key").click()
    access = p.locator(".secret dd code").first.text_content()
    assert access
    p.get_by_role("button", name="Done").click()
    p.get_by_role("button", name=f"Disable key {access}").click()
    expect(p.get_by_text(f"Key {access} is now inactive.")).to_be_visible()
    p.get_by_role("button", name=f"Delete key {access}").click()
    p.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(p.get_by_text(f"Key {access} deleted.")).to_be_visible()
    expect(p.get_by_role("table").get_by_text(access)).to_have_count(0)


def test_quota_page(page: Page) -> None:
    p = signed_in(page, "#/quota")
    expect(p.get_by_role("table").get_by_role("cell", name="image", exact=True)).to_be_visible()


def test_member_accepts_a_shared_image(page: Page, api: Api, image: dict[str, Any]) -> None:
    partner = make_account(api.http, {}, "partner", "partner-admin")
    r = api.http.post("/v1/cloudimages/members", json={"images": [image["id"]], "projects": [partner["project"]]})
    assert r.status_code == 200, r.text
    assert api.wait_job(r.json()["job_id"])["status"] == "SUCCESS"
    p = page.page
    page.open(f"/console/#/images/{image['id']}")
    page.sign_in(account="partner", user="partner-admin", password=PARTNER_PASSWORD)
    expect(p.get_by_role("heading", name=image["name"])).to_be_visible()
    expect(p.get_by_text("This image is shared with your project.")).to_be_visible()
    expect(p.get_by_role("button", name="Delete image")).to_have_count(0)  # not the owner's
    p.get_by_role("button", name="Accept").click()
    wait_job_view(p)
    p.get_by_role("link", name="Images", exact=True).click()
    expect(p.get_by_role("link", name=image["name"], exact=True)).to_be_visible()


def test_project_switcher(page: Page, api: Api, server: ServerProcess, image: dict[str, Any]) -> None:
    token = httpx.get(server.url + "/v3/auth/tokens", headers={"X-Auth-Token": api.token,
                                                               "X-Subject-Token": api.token}).json()["token"]
    domain_id, user_id = token["user"]["domain"]["id"], token["user"]["id"]
    r = api.http.post("/v3/projects", json={"project": {"name": "local-1_two", "domain_id": domain_id}})
    assert r.status_code == 201, r.text
    project_id = r.json()["project"]["id"]
    role_id = api.http.get("/v3/roles?name=te_admin").json()["roles"][0]["id"]
    assert api.http.put(f"/v3/projects/{project_id}/users/{user_id}/roles/{role_id}").status_code == 204
    p = signed_in(page)
    expect(p.get_by_role("link", name=image["name"], exact=True)).to_be_visible()
    p.get_by_label("Project", exact=True).select_option(label="local-1_two")
    expect(p.get_by_text("Now working in project local-1_two.")).to_be_visible()
    expect(p.get_by_text("No images match.")).to_be_visible()
    p.get_by_label("Project", exact=True).select_option(label="local-1")
    expect(p.get_by_role("link", name=image["name"], exact=True)).to_be_visible()

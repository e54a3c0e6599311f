"""The console's remaining paths in a real browser against a real server: keyset paging, sort and the
type/OS/tag filters of the images table; quick import and data disks; sign-out and the project list;
the access key's copy button; phone width on the details and live-job pages; a failed job's message.

One server and one signed-in browser tab for the module (a test that signs out has its own tab)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.console.conftest import Page, _page
from tests.support.images import make_image
from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("console")]

RAW = b"\0" * 4096
WINDOWS = "Windows Server 2016 Standard 64bit"
NO_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def _native(api: Api, name: str, **props: Any) -> str:
    r = api.http.post("/v2/images", json={"name": name, "disk_format": "raw", "container_format": "bare",
                                          "min_disk": 1, **props})
    assert r.status_code == 201, r.text
    image_id: str = r.json()["id"]
    r = api.http.put(f"/v2/images/{image_id}/file", content=RAW,
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    assert api.wait_image(image_id)["status"] == "active"
    return image_id


def hostile_qcow2(directory: Path) -> Path:
    """A qcow2 whose backing file is a path on the server's host: an import must refuse it."""
    base = directory / "base.raw"
    base.write_bytes(b"\0" * 65536)
    hostile = directory / "hostile.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(hostile)],
                   check=True)
    return hostile


@pytest.fixture(scope="module")
def seeded(api: Api, server: ServerProcess) -> dict[str, Any]:
    """12 private Linux images page-00…page-11, one Windows image with a tag, one shared image."""
    ids = {f"page-{i:02d}": _native(api, f"page-{i:02d}", **({"tags": ["group=ten"]} if i < 10 else {}))
           for i in range(12)}
    ids["win-tagged"] = _native(api, "win-tagged", __os_version=WINDOWS, tags=["team=blue"])
    ids["shared-one"] = _native(api, "shared-one")
    token = httpx.get(server.url + "/v3/auth/tokens", headers={"X-Auth-Token": api.token,
                                                               "X-Subject-Token": api.token}).json()["token"]
    r = api.http.post("/v3/projects", json={"project": {"name": "local-1_gaps",
                                                        "domain_id": token["user"]["domain"]["id"]}})
    assert r.status_code == 201, r.text
    other = r.json()["project"]["id"]
    r = api.http.post("/v1/cloudimages/members", json={"images": [ids["shared-one"]], "projects": [other]})
    assert r.status_code == 200, r.text
    assert api.wait_job(r.json()["job_id"])["status"] == "SUCCESS"
    return {"ids": ids, "other_project": other}


@pytest.fixture(scope="module")
def tab(browser: Any, server: ServerProcess) -> Iterator[Page]:
    """One signed-in tab for the module, allowed to read the clipboard."""
    gen = _page(browser, server, 1280, 800)
    page = next(gen)
    page.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.open()
    page.sign_in()
    expect(page.page.get_by_role("heading", name="Images")).to_be_visible()
    yield page
    next(gen, None)


def go(tab: Page, hash_: str, heading: str | re.Pattern[str]) -> Any:
    """A fresh load of a console page (the view's in-memory state, e.g. the image filters, starts over)."""
    p = tab.page
    p.goto(tab.base + "/console/" + hash_)
    p.reload()
    expect(p.get_by_role("heading", name=heading, exact=True) if isinstance(heading, str)
           else p.get_by_role("heading", name=heading)).to_be_visible()
    return p


def names_shown(p: Any) -> list[str]:
    cells = p.get_by_role("table").locator("tbody tr td:first-child")
    expect(cells.first).to_be_visible()
    return [c.strip() for c in cells.all_inner_texts()]


def refreshed(p: Any, button: str) -> None:
    """Click a button that reloads the images table and wait for the new table (not the one before)."""
    p.evaluate("document.querySelectorAll('#view table').forEach((t) => { t.dataset.stale = '1'; })")
    p.get_by_role("button", name=button).click()
    expect(p.locator("#view table:not([data-stale])")).to_have_count(1)


def apply(p: Any, **choices: str) -> None:
    for label, value in choices.items():
        control = p.get_by_label(label.replace("_", " "), exact=True)
        if label == "Tag":
            control.fill(value)
        else:
            control.select_option(value)
    refreshed(p, "Apply")


def test_keyset_paging_forward_and_back(tab: Page, seeded: dict[str, Any]) -> None:
    p = go(tab, "#/images", "Images")
    apply(p, Per_page="10", Sort_by="name", Order="asc")
    expect(p.get_by_role("table", name="Images, page 1")).to_be_visible()
    expect(p.get_by_role("button", name="Previous page")).to_be_disabled()
    first = names_shown(p)
    assert len(first) == 10
    pages = [first]
    n = 1
    while p.get_by_role("button", name="Next page").is_enabled():
        n += 1
        refreshed(p, "Next page")
        expect(p.get_by_role("table", name=f"Images, page {n}")).to_be_visible()
        expect(p.get_by_text(f"Page {n}", exact=True)).to_be_visible()
        pages.append(names_shown(p))  # never an empty page after a full last one
    assert n >= 2
    everything = [name for page in pages for name in page]
    assert len(everything) == len(set(everything)), f"a row shown twice: {pages}"
    assert everything == sorted(everything)
    for name in seeded["ids"]:
        assert everything.count(name) == 1, name
    # Back again: each page is what it was.
    for k in range(n - 1, 0, -1):
        refreshed(p, "Previous page")
        expect(p.get_by_role("table", name=f"Images, page {k}")).to_be_visible()
        assert names_shown(p) == pages[k - 1]
    expect(p.get_by_role("button", name="Previous page")).to_be_disabled()
    # Exactly one full page: no next page to go to.
    apply(p, Tag="group.ten")
    assert len(names_shown(p)) == 10
    expect(p.get_by_role("button", name="Next page")).to_be_disabled()


def test_sort_controls_change_the_order(tab: Page, seeded: dict[str, Any]) -> None:
    p = go(tab, "#/images", "Images")
    apply(p, Sort_by="name", Order="asc", Per_page="50")
    expect(p.get_by_role("table").locator("tbody tr td:first-child").first).to_have_text(re.compile("."))
    ascending = names_shown(p)
    assert ascending == sorted(ascending) and "page-00" in ascending
    apply(p, Order="desc")
    expect(p.get_by_role("table").locator("tbody tr td:first-child").first).to_have_text(ascending[-1])
    assert names_shown(p) == sorted(ascending, reverse=True)
    # By creation time, newest first: the last one seeded before the newest.
    apply(p, Sort_by="created_at", Order="desc")
    expect(p.get_by_role("table").locator("tbody tr td:first-child").first).not_to_have_text(ascending[-1])
    by_created = names_shown(p)
    assert by_created.index("shared-one") < by_created.index("win-tagged") < by_created.index("page-11") \
        < by_created.index("page-00")


def test_type_os_and_tag_filters(tab: Page, seeded: dict[str, Any]) -> None:
    p = go(tab, "#/images", "Images")
    apply(p, Type="shared", Per_page="50")
    expect(p.get_by_role("table").locator("tbody tr")).to_have_count(1)
    assert names_shown(p) == ["shared-one"]
    expect(p.get_by_role("table").get_by_role("cell", name="shared", exact=True)).to_be_visible()

    apply(p, Type="private")
    expect(p.get_by_role("table").get_by_role("cell", name="page-00", exact=True)).to_be_visible()
    private = names_shown(p)
    assert "shared-one" not in private and "win-tagged" in private

    apply(p, Type="gold")  # labelled "Public": nobody published one
    expect(p.get_by_text("No images match.")).to_be_visible()

    apply(p, Type="", OS="Windows")
    expect(p.get_by_role("table").locator("tbody tr")).to_have_count(1)
    assert names_shown(p) == ["win-tagged"]
    expect(p.get_by_role("cell", name=WINDOWS)).to_be_visible()

    apply(p, OS="Linux")
    expect(p.get_by_role("table").get_by_role("cell", name="page-00", exact=True)).to_be_visible()
    assert "win-tagged" not in names_shown(p)

    apply(p, OS="", Tag="team.blue")
    expect(p.get_by_role("table").locator("tbody tr")).to_have_count(1)
    assert names_shown(p) == ["win-tagged"]
    apply(p, Tag="team.red")
    expect(p.get_by_text("No images match.")).to_be_visible()


def test_quick_import_of_a_raw_file(tab: Page, api: Api, tmp_path: Path) -> None:
    api.upload("gaps-files", "quick.raw", make_image(tmp_path, "raw", size=1024 * 1024, seed=5))
    p = go(tab, "#/import", "Import an image")
    p.get_by_label("Bucket", exact=True).select_option("gaps-files")
    p.get_by_label("Image file", exact=True).select_option("quick.raw")
    p.get_by_label("Name", exact=True).fill("quick-one")
    p.get_by_label("OS version", exact=True).select_option("CentOS 7.0 64bit")
    p.get_by_label("Min disk (GB)", exact=True).fill("40")
    p.get_by_label("Quick import (raw files only, no conversion)").check()
    p.get_by_role("button", name="Import image").click()
    expect(p.locator(".job-status")).to_have_text(re.compile("Status: SUCCESS"), timeout=30_000)
    job_id = p.get_by_role("heading", name=re.compile("^Job ")).inner_text().removeprefix("Job ")
    job = api.wait_job(job_id)
    image = api.http.get(f"/v2/images/{job['entities']['image_id']}").json()
    assert image["name"] == "quick-one" and image["status"] == "active"
    assert image["disk_format"] == "raw" and image.get("__quick_import") == "true", image


def test_import_with_data_disks(tab: Page, api: Api, tmp_path: Path) -> None:
    for i in (1, 2):
        api.upload("gaps-files", f"data{i}.qcow2", make_image(tmp_path, "qcow2", size=1024 * 1024, seed=10 + i,
                                                              name=f"data{i}.qcow2"))
    api.upload("gaps-files", "system.qcow2", make_image(tmp_path, "qcow2", size=1024 * 1024, seed=9,
                                                        name="system.qcow2"))
    p = go(tab, "#/import", "Import an image")
    p.get_by_label("Bucket", exact=True).select_option("gaps-files")
    p.get_by_label("Image file", exact=True).select_option("system.qcow2")
    p.get_by_label("Name", exact=True).fill("with-disks")
    p.get_by_label("OS version", exact=True).select_option("CentOS 7.0 64bit")
    p.get_by_label("Min disk (GB)", exact=True).fill("40")
    # Three disks, then the first removed: the others are renumbered 1 and 2.
    p.get_by_role("button", name="Add a data disk").click()
    expect(p.get_by_label("Data disk 1 file", exact=True)).to_be_focused()
    p.get_by_label("Data disk 1 file", exact=True).fill("gaps-files:not-this-one.qcow2")
    for i in (1, 2):
        p.get_by_role("button", name="Add a data disk").click()
        p.get_by_label(f"Data disk {i + 1} file", exact=True).fill(f"gaps-files:data{i}.qcow2")
        p.get_by_label(f"Data disk {i + 1} min disk (GB)", exact=True).fill(str(50 * i))
    p.get_by_role("button", name="Remove data disk 1").click()
    expect(p.get_by_role("button", name="Remove data disk 3")).to_have_count(0)
    expect(p.get_by_role("group", name="Data disk 2")).to_be_visible()
    for i in (1, 2):
        expect(p.get_by_label(f"Data disk {i} file", exact=True)).to_have_value(f"gaps-files:data{i}.qcow2")
        expect(p.get_by_label(f"Data disk {i} min disk (GB)", exact=True)).to_have_value(str(50 * i))
    p.get_by_role("button", name="Import image").click()
    expect(p.locator(".job-status")).to_have_text(re.compile("Status: SUCCESS"), timeout=45_000)
    job_id = p.get_by_role("heading", name=re.compile("^Job ")).inner_text().removeprefix("Job ")
    job = api.wait_job(job_id)
    assert job["status"] == "SUCCESS", job
    for i in (1, 2):
        [img] = api.http.get("/v2/cloudimages", params={"name": f"with-disks-data{i}"}).json()["images"]
        assert img["status"] == "active" and img["min_disk"] == 50 * i, img
        assert img["virtual_env_type"] == "DataImage" and img["__data_origin"] == f"file,gaps-files:data{i}.qcow2"
        assert not img.get("__os_version"), img  # a data disk holds no OS
    [system] = api.http.get("/v2/cloudimages", params={"name": "with-disks"}).json()["images"]
    assert system["status"] == "active" and system["__os_version"] == "CentOS 7.0 64bit"
    # The console lists all three.
    p = go(tab, "#/images", "Images")
    apply(p, Sort_by="name", Order="asc", Per_page="50")
    shown = names_shown(p)
    for name in ("with-disks", "with-disks-data1", "with-disks-data2"):
        assert name in shown


def test_quick_import_refuses_data_disks(tab: Page, api: Api, tmp_path: Path) -> None:
    """Quick import has no data disks in IMS: the console says so instead of dropping them."""
    api.upload("gaps-files", "refused.raw", make_image(tmp_path, "raw", size=65536, seed=6))
    p = go(tab, "#/import", "Import an image")
    p.get_by_label("Bucket", exact=True).select_option("gaps-files")
    p.get_by_label("Image file", exact=True).select_option("refused.raw")
    p.get_by_label("Name", exact=True).fill("quick-with-disks")
    p.get_by_label("Quick import (raw files only, no conversion)").check()
    p.get_by_role("button", name="Add a data disk").click()
    p.get_by_label("Data disk 1 file", exact=True).fill("gaps-files:data1.qcow2")
    p.get_by_role("button", name="Import image").click()
    expect(p.locator("#error")).to_contain_text("Quick import takes no data disks")
    expect(p.get_by_role("heading", name="Import an image")).to_be_visible()


def test_failed_job_says_why(tab: Page, api: Api, tmp_path: Path) -> None:
    api.upload("gaps-files", "hostile.qcow2", hostile_qcow2(tmp_path))
    p = go(tab, "#/import", "Import an image")
    p.get_by_label("Bucket", exact=True).select_option("gaps-files")
    p.get_by_label("Image file", exact=True).select_option("hostile.qcow2")
    p.get_by_label("Name", exact=True).fill("hostile")
    p.get_by_label("OS version", exact=True).select_option("CentOS 7.0 64bit")
    p.get_by_role("button", name="Import image").click()
    expect(p.locator(".job-status")).to_have_text(re.compile("Status: FAIL"), timeout=30_000)
    job_id = p.get_by_role("heading", name=re.compile("^Job ")).inner_text().removeprefix("Job ")
    job = api.wait_job(job_id)
    assert job["status"] == "FAIL" and job["error_code"] and job["fail_reason"], job
    outcome = p.locator(".outcome")
    expect(outcome).to_contain_text("The job failed")
    expect(outcome).to_contain_text(job["fail_reason"])
    expect(outcome).to_contain_text(job["error_code"])
    expect(outcome).to_contain_text(re.compile("backing", re.I))
    # The same words when the page is opened after the job ended.
    p.reload()
    expect(p.locator(".outcome")).to_contain_text(job["fail_reason"])
    # And in the jobs list: its code, its reason and how long it ran.
    p = go(tab, "#/jobs", "Jobs")
    p.get_by_label("Status", exact=True).select_option("FAIL")
    p.get_by_role("button", name="Apply").click()
    row = p.get_by_role("row").filter(has=p.get_by_role("link", name=job_id, exact=True))
    expect(row).to_contain_text(f"{job['error_code']}: {job['fail_reason']}")
    expect(row.get_by_role("cell", name=re.compile(r"^\d+ (s|min \d+ s)$"))).to_have_count(1)
    headings = p.get_by_role("columnheader").all_inner_texts()
    assert headings[-2:] == ["Duration", "Error"], headings


def test_copy_secret_to_clipboard_and_not_shown_again(tab: Page) -> None:
    p = go(tab, "#/keys", "Access keys")
    p.get_by_label("Description", exact=True).fill("clipboard test")
    p.get_by_role("button", name="Create access key").click()
    secret = p.locator("#new-secret")
    expect(secret).to_be_visible()
    value = secret.inner_text()
    access = p.locator(".secret dd code").first.inner_text()
    assert len(value) >= 20
    p.get_by_role("button", name="Copy secret").click()
    expect(p.get_by_text("Copied.", exact=True)).to_be_visible()
    assert p.evaluate("navigator.clipboard.readText()") == value
    # Not in the list, not after a reload, not in the API's list.
    table = p.get_by_role("table", name=re.compile("Access keys of"))
    expect(table).to_contain_text(access)
    assert value not in table.inner_text()
    p.reload()
    expect(p.get_by_role("table", name=re.compile("Access keys of"))).to_contain_text(access)
    assert value not in p.content()
    assert p.locator("#new-secret").count() == 0


def test_sign_out_forgets_the_token(page: Page, server: ServerProcess) -> None:
    page.expect_http_errors()  # the revoked token's 401 below is asked for
    p = page.page
    page.open()
    page.sign_in()
    expect(p.get_by_role("heading", name="Images")).to_be_visible()
    token = p.evaluate("JSON.parse(sessionStorage.getItem('openims.session')).token")
    assert token
    p.get_by_role("button", name="Sign out").click()
    expect(p.get_by_role("heading", name="Sign in to openims")).to_be_visible()
    expect(p.get_by_text("You have signed out.")).to_be_visible()
    expect(p.get_by_role("navigation", name="Main")).to_be_hidden()
    assert p.evaluate("sessionStorage.length") == 0
    assert p.context.cookies() == []
    # Nothing of the session left in the page: the view, the project list, who was signed in.
    assert p.locator("#view").inner_text() == ""
    expect(p.locator("#project-switch option")).to_have_count(0)
    expect(p.locator("#who")).to_have_text("")
    assert "local-1" not in p.content()
    assert token not in p.content()
    # The token is revoked on the server too.
    r = httpx.get(server.url + "/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert r.status_code in (401, 404), r.status_code
    # A reload (or going to a page by its address) does not sign in again.
    p.reload()
    expect(p.get_by_role("heading", name="Sign in to openims")).to_be_visible()
    p.goto(page.base + "/console/#/keys")
    expect(p.get_by_role("heading", name="Sign in to openims")).to_be_visible()
    expect(p.get_by_role("heading", name="Access keys")).to_have_count(0)


def test_project_list_and_switcher(page: Page, api: Api, server: ServerProcess, seeded: dict[str, Any]) -> None:
    """The switcher lists the user's projects by name; choosing one lists that project's images."""
    token = httpx.get(server.url + "/v3/auth/tokens", headers={"X-Auth-Token": api.token,
                                                               "X-Subject-Token": api.token}).json()["token"]
    role_id = api.http.get("/v3/roles?name=te_admin").json()["roles"][0]["id"]
    other = seeded["other_project"]
    assert api.http.put(f"/v3/projects/{other}/users/{token['user']['id']}/roles/{role_id}").status_code == 204
    p = page.page
    page.open()
    page.sign_in()
    expect(p.get_by_role("link", name="page-00", exact=True)).to_be_visible()
    switch = p.get_by_label("Project", exact=True)
    options = switch.locator("option").all_inner_texts()
    assert options == sorted(options) and {"local-1", "local-1_gaps"} <= set(options), options
    expect(switch.locator("option:checked")).to_have_text("local-1")
    switch.select_option(label="local-1_gaps")
    expect(p.get_by_text("Now working in project local-1_gaps.")).to_be_visible()
    # The image shared with it is pending there: not in its list; its own list is empty.
    expect(p.get_by_text("No images match.")).to_be_visible()
    session = p.evaluate("JSON.parse(sessionStorage.getItem('openims.session'))")
    assert session["projectId"] == other and session["projectName"] == "local-1_gaps"
    # The switch survives a reload and applies to other pages.
    p.reload()
    expect(p.get_by_label("Project", exact=True).locator("option:checked")).to_have_text("local-1_gaps")
    p.get_by_role("link", name="Quota").click()
    expect(p.get_by_role("table", name="Quota of project local-1_gaps")).to_be_visible()
    p.get_by_label("Project", exact=True).select_option(label="local-1")
    expect(p.get_by_text("Now working in project local-1.")).to_be_visible()
    expect(p.get_by_role("table", name="Quota of project local-1")).to_be_visible()


def test_phone_width_details_and_live_job(phone: Page, api: Api, seeded: dict[str, Any], tmp_path: Path) -> None:
    p = phone.page
    image_id = seeded["ids"]["win-tagged"]
    phone.open(f"/console/#/images/{image_id}")
    phone.sign_in()
    expect(p.get_by_role("heading", name="win-tagged")).to_be_visible()
    expect(p.get_by_role("heading", name="All attributes")).to_be_visible()
    assert p.evaluate(NO_SCROLL), "image details scroll sideways at 390 px"
    # A live job: a copy of the image, followed to the end.
    p.get_by_label("New name", exact=True).fill("phone-copy-with-a-rather-long-name-that-must-wrap-somewhere")
    p.get_by_role("button", name="Copy", exact=True).click()
    expect(p.get_by_role("heading", name=re.compile("^Job "))).to_be_visible()
    assert p.evaluate(NO_SCROLL), "the live job view scrolls sideways at 390 px"
    expect(p.locator(".job-status")).to_have_text(re.compile("Status: SUCCESS"), timeout=30_000)
    assert p.evaluate(NO_SCROLL), "the finished job view scrolls sideways at 390 px"
    # A failed job's message too (the long reason wraps).
    api.upload("gaps-files", "phone-hostile.qcow2", hostile_qcow2(tmp_path))
    failed = api.wait_job(api.create(name="phone-hostile", image_url="gaps-files:phone-hostile.qcow2",
                                     min_disk=40, os_version="CentOS 7.0 64bit"))
    assert failed["status"] == "FAIL", failed
    p.goto(phone.base + f"/console/#/jobs/{failed['job_id']}")
    expect(p.locator(".outcome")).to_contain_text(failed["fail_reason"])
    assert p.evaluate(NO_SCROLL), "a failed job's view scrolls sideways at 390 px"

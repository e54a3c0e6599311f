"""The web console in a real browser (headless Debian chromium) against a real ``openims serve``."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.console.conftest import Page
from tests.support.images import make_image
from tests.support.server import Api, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("console")]


def test_console_headers(server: ServerProcess) -> None:
    for path in ("/console/", "/console/app.js", "/console/console.css"):
        r = httpx.get(server.url + path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(server.url + "/console/app.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(server.url + "/console/__init__.py").status_code == 404
    index = httpx.get(server.url + "/console/").text
    assert "<script>" not in index and "style=" not in index  # nothing inline for the CSP to block


def test_sign_in_wrong_password_then_right(page: Page, api: Api) -> None:
    page.expect_http_errors()  # the wrong password's 401
    p = page.page
    response = page.open()
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page.sign_in(password="not-the-password")
    expect(p.get_by_role("alert").filter(has_text="wrong")).to_contain_text(
        "The account, user name or password is wrong")
    page.sign_in()
    expect(p.get_by_role("heading", name="Images")).to_be_visible()
    expect(p.get_by_role("table")).to_be_visible()
    # The token is in sessionStorage, never in a cookie.
    assert p.context.cookies() == []
    assert "token" in p.evaluate("sessionStorage.getItem('openims.session')")
    p.get_by_role("button", name="Sign out").click()
    expect(p.get_by_role("heading", name="Sign in to openims")).to_be_visible()


def test_keyboard_only_sign_in(page: Page) -> None:
    p = page.page
    page.open()
    expect(p.get_by_label("Account", exact=True)).to_be_focused()
    p.keyboard.type("admin")
    p.keyboard.press("Tab")
    expect(p.get_by_label("User name", exact=True)).to_be_focused()
    p.keyboard.type("admin")
    p.keyboard.press("Tab")
    p.keyboard.type("Admin-Pass-1234")
    p.keyboard.press("Tab")
    expect(p.get_by_role("button", name="Sign in")).to_be_focused()
    p.keyboard.press("Enter")
    expect(p.get_by_role("heading", name="Images")).to_be_visible()
    # The focus is visible: an outline on the focused control.
    p.keyboard.press("Tab")
    outline = p.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")


def test_expired_token_back_to_sign_in(page: Page) -> None:
    page.expect_http_errors()
    p = page.page
    page.open()
    page.sign_in()
    expect(p.get_by_role("heading", name="Images")).to_be_visible()
    p.evaluate("""() => { const s = JSON.parse(sessionStorage.getItem('openims.session'));
        s.token = 'expired-token'; sessionStorage.setItem('openims.session', JSON.stringify(s)); }""")
    p.get_by_role("link", name="Jobs").click()
    expect(p.get_by_text("Your session has expired")).to_be_visible()
    expect(p.get_by_label("Password", exact=True)).to_be_visible()


def test_images_table_shows_an_imported_image(page: Page, api: Api, tmp_path: Path) -> None:
    api.upload("console-seed", "seed.qcow2", make_image(tmp_path, "qcow2", seed=7))
    job = api.wait_job(api.create(name="seeded-image", image_url="console-seed:seed.qcow2", min_disk=40,
                                  os_version="CentOS 7.0 64bit"))
    assert job["status"] == "SUCCESS", job
    p = page.page
    page.open()
    page.sign_in()
    table = p.get_by_role("table")
    first_cells = table.locator("tbody tr td:first-child")
    expect(first_cells.filter(has_text="seeded-image")).to_have_count(1)
    # A filter that excludes it.
    p.get_by_label("Status", exact=True).select_option("killed")
    p.get_by_role("button", name="Apply").click()
    expect(first_cells.filter(has_text="seeded-image")).to_have_count(0)


def test_upload_import_follow_job_and_edit_tag(page: Page, qcow2: Path) -> None:
    p = page.page
    page.open()
    page.sign_in()
    p.get_by_role("link", name="Import", exact=True).click()
    expect(p.get_by_role("heading", name="Import an image")).to_be_visible()
    p.get_by_label("New bucket", exact=True).fill("console-bucket")
    p.get_by_role("button", name="Create bucket").click()
    expect(p.get_by_label("Bucket", exact=True)).to_have_value("console-bucket")
    p.get_by_label("Local file", exact=True).set_input_files(str(qcow2))
    p.get_by_role("button", name="Upload", exact=True).click()
    expect(p.get_by_text("Uploaded console-disk.qcow2 to console-bucket.")).to_be_visible()
    assert p.get_by_label("Upload progress").evaluate("el => el.value") == 100
    expect(p.get_by_label("Image file", exact=True)).to_have_value("console-disk.qcow2")

    p.get_by_label("Name", exact=True).fill("from-the-browser")
    p.get_by_label("OS version", exact=True).select_option("CentOS 7.0 64bit")
    p.get_by_label("Min disk (GB)", exact=True).fill("40")
    p.get_by_label("Tags", exact=True).fill("team=web")
    streams: list[str] = []
    p.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)
    p.get_by_role("button", name="Import image").click()

    expect(p.get_by_role("heading", name=re.compile("^Job "))).to_be_visible()
    expect(p.locator(".job-status")).to_have_text(re.compile("Status: SUCCESS"), timeout=45_000)
    assert p.get_by_role("progressbar").evaluate("el => el.value") == 100
    assert streams, "the live view follows the job's event stream"
    p.get_by_role("link", name="Open the image").click()
    expect(p.get_by_role("heading", name="from-the-browser")).to_be_visible()
    tags = p.get_by_role("table", name="Tags")
    expect(tags.get_by_role("row", name=re.compile("team web"))).to_be_visible()
    p.get_by_label("Tag key", exact=True).fill("team")
    p.get_by_label("Tag value", exact=True).fill("platform")
    p.get_by_role("button", name="Save tag").click()
    expect(p.get_by_text("Tag team saved.")).to_be_visible()
    expect(tags.get_by_role("row", name=re.compile("team platform"))).to_be_visible()


def test_access_key_secret_shown_once(page: Page) -> None:
    p = page.page
    page.open()
    page.sign_in()
    p.get_by_role("link", name="Access keys").click()
    expect(p.get_by_role("heading", name="Access keys")).to_be_visible()
    p.get_by_label("Description", exact=True).fill("console test")
    p.get_by_role("button", name="Create access key").click()
    secret = p.locator("#new-secret")
    expect(secret).to_be_visible()
    value = secret.text_content()
    assert value and len(value) >= 20
    expect(p.get_by_role("button", name="Copy secret")).to_be_visible()
    expect(p.get_by_role("table", name=re.compile("Access keys of"))).to_contain_text("console test")
    p.get_by_role("button", name="Done").click()
    expect(p.locator("#new-secret")).to_have_count(0)
    # Nowhere else on the page, nor after a reload.
    assert value not in p.content()
    p.reload()
    expect(p.get_by_role("heading", name="Access keys")).to_be_visible()
    assert value not in p.content()


def test_phone_width_has_no_horizontal_scroll(phone: Page) -> None:
    p = phone.page
    phone.open()
    no_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
    assert p.evaluate(no_scroll)
    phone.sign_in()
    for link, heading in (("Images", "Images"), ("Import", "Import an image"), ("Jobs", "Jobs"),
                          ("Buckets", "Buckets"), ("Access keys", "Access keys"), ("Quota", "Quota")):
        p.get_by_role("link", name=link, exact=True).click()
        expect(p.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        assert p.evaluate(no_scroll), f"{link}: the page scrolls sideways at 390 px"


def test_errors_in_words_with_request_id(page: Page) -> None:
    page.expect_http_errors()
    p = page.page
    page.open("/console/#/buckets")
    page.sign_in()
    p.get_by_label("New bucket name").fill("bad..name")
    p.get_by_role("button", name="Create bucket").click()
    alert = p.locator("#error")
    expect(alert).to_contain_text("invalid bucket name")
    expect(alert).to_contain_text(re.compile(r"request id [0-9a-f]{32}"))


def test_every_control_is_labelled(page: Page) -> None:
    p = page.page
    page.open()
    page.sign_in()
    unlabelled = """() => [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => !el.labels.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
        .map((el) => el.outerHTML)"""
    for link in ("Images", "Import", "Jobs", "Buckets", "Access keys"):
        p.get_by_role("link", name=link, exact=True).click()
        expect(p.locator("#view h1")).to_be_visible()
        assert p.evaluate(unlabelled) == [], link

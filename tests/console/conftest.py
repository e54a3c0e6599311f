"""Browser fixtures: one real server process and one headless Debian chromium per module, a fresh page per test.

Playwright drives ``/usr/bin/chromium`` (Debian's package, installed by ``scripts/ensure-system-deps.sh
chromium`` from ``make test``); its own browser download (``playwright install``) is never used.
Every page records console errors and uncaught exceptions; a test fails on any it did not expect
(a CSP violation is a console error in Chromium).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ADMIN_PASSWORD, Api, ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"{CHROMIUM} is missing: scripts/ensure-system-deps.sh chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("console") / "data"
    with ServerProcess(data, env={"OPENIMS_JOB_LEASE_SECONDS": "5"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Api:
    return Api(server.url)


@pytest.fixture(scope="module")
def browser(server: ServerProcess) -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A page and what went wrong in it; ``expect_http_errors`` allows the console's own
    "Failed to load resource" lines for answers the test provokes (a wrong password's 401)."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        self.http_errors_allowed = False
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def expect_http_errors(self) -> None:
        self.http_errors_allowed = True

    def unexpected(self) -> list[str]:
        return [e for e in self.errors
                if not (self.http_errors_allowed and e.startswith("Failed to load resource"))]

    def open(self, path: str = "/console/") -> Any:
        return self.page.goto(self.base + path)

    def sign_in(self, account: str = "admin", user: str = "admin", password: str = ADMIN_PASSWORD) -> None:
        p = self.page
        p.get_by_label("Account", exact=True).fill(account)
        p.get_by_label("User name", exact=True).fill(user)
        p.get_by_label("Password", exact=True).fill(password)
        p.get_by_role("button", name="Sign in", exact=True).click()


def _page(browser: Any, server: ServerProcess, width: int, height: int) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    page = Page(context.new_page(), server.url)
    try:
        yield page
        assert page.unexpected() == [], f"console errors: {page.unexpected()}"
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, server: ServerProcess) -> Iterator[Page]:
    yield from _page(browser, server, 1280, 800)


@pytest.fixture
def phone(browser: Any, server: ServerProcess) -> Iterator[Page]:
    yield from _page(browser, server, 390, 844)


@pytest.fixture(scope="module")
def qcow2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.images import make_image
    return make_image(tmp_path_factory.mktemp("console-images"), "qcow2", name="console-disk.qcow2")

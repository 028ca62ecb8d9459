"""A real browser (Debian Chromium via Playwright): sign in, run a query, see a held DROP."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES, grant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        if REQUIRE_SERVICES:
            pytest.fail("Debian chromium is not installed")
        pytest.skip("Debian chromium is not installed")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


def test_login_run_a_query_and_see_a_held_drop(
    browser: Any, live_server: Any, alice: Any, sqlite_conn: Any
) -> None:
    grant(sqlite_conn, alice, "ddl")
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", "alice-pass-123!")
    page.keyboard.press("Enter")
    page.wait_for_url("**/editor/**")

    editor = page.locator(".cm-content")
    editor.click()
    page.keyboard.type("SELECT id, full_name, city FROM customers ORDER BY id LIMIT 25")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-status=succeeded]")
    assert page.locator("table.grid tbody tr").count() == 25
    assert "full_name" in page.locator("table.grid thead").inner_text()
    assert "SELECT id, full_name" in page.locator("#recent").inner_text()  # live sidebar

    page.keyboard.press("Control+a")
    page.keyboard.type("DROP TABLE orders")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-status=pending_approval]")
    decision = page.locator(".decision").inner_text()
    assert "Held for approval" in decision
    assert "approv" in decision.lower()
    if os.environ.get("WARDEN_SCREENSHOT"):
        page.screenshot(path=os.environ["WARDEN_SCREENSHOT"], full_page=True)
    page.close()

"""The activity dashboard in a real browser: its marks open the trail, its feed is live, and it
fits a phone's width."""

from __future__ import annotations

import os
from typing import Any

import pytest

from governance.services.runs import Caller, run_submit
from tests.test_activity import activity  # noqa: F401  (the seeded statements)
from tests.test_browser import browser  # noqa: F401  (the Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _page(browser: Any, live_server: Any, width: int) -> Any:  # noqa: F811
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "dave")
    page.fill("input[name=password]", "dave-pass-123!")
    page.keyboard.press("Enter")
    page.wait_for_url("**/audit/")  # where an auditor lands
    return page


def test_an_auditor_follows_a_chart_to_the_trail_and_watches_the_feed(
    browser: Any,  # noqa: F811
    live_server: Any,
    dave: Any,
    alice: Any,
    sqlite_conn: Any,
    activity: Any,  # noqa: F811
) -> None:
    page = _page(browser, live_server, 1440)
    page.goto(f"{live_server.url}/activity/?period=24h")
    assert page.locator("svg.chart").count() >= 5
    if os.environ.get("WARDEN_SCREENSHOT_DIR"):
        page.screenshot(
            path=f"{os.environ['WARDEN_SCREENSHOT_DIR']}/activity-1440.png", full_page=True
        )
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # A new statement shows in the live feed without reloading the page.
    run_submit(
        caller=Caller(user=alice, channel="cli"), connection=sqlite_conn, sql="SELECT 42 AS live"
    )
    page.locator("#feed").get_by_text("SELECT 42 AS live").first.wait_for(timeout=15_000)

    # The CLI segment of the channel chart opens the trail filtered to those statements.
    page.locator("#h-channel ~ svg a[href*='channel=cli'] rect").first.click()
    page.wait_for_url("**/audit/?*channel=cli*")
    assert "match" in page.locator(".export").inner_text()
    assert page.locator("table.trail tbody tr").count() >= 1
    for cell in page.locator("table.trail td.who small").all_inner_texts():
        assert cell.startswith("cli")
    page.close()


def test_the_dashboard_fits_a_phone(
    browser: Any,  # noqa: F811
    live_server: Any,
    dave: Any,
    activity: Any,  # noqa: F811
) -> None:
    page = _page(browser, live_server, 390)
    page.goto(f"{live_server.url}/activity/")
    assert page.locator("svg.chart").count() >= 5
    if os.environ.get("WARDEN_SCREENSHOT_DIR"):
        page.screenshot(
            path=f"{os.environ['WARDEN_SCREENSHOT_DIR']}/activity-390.png", full_page=True
        )
    # The heatmap scrolls in its own box; the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.close()

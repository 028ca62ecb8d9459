"""The layout in a real browser: at 390 px no page scrolls sideways and the menu opens (with or
without JavaScript, from the keyboard); at 1440 px wide tables scroll inside their own box."""

from __future__ import annotations

import os
from typing import Any

import pytest

from governance.models import Guardrail
from governance.services.caller import Caller
from governance.services.runs import run_submit
from tests.test_approvals import UPDATE, submit
from tests.test_browser import browser  # noqa: F401  (the module's Chromium, a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [  # every page the issue names, with a table or a grid on it
    "/editor/?run={run}",
    "/history/",
    "/approvals/",
    "/audit/",
    "/manage/guardrails/",
    "/manage/connections/",
    "/manage/catalog/",
]
# Overflowing elements outside a scroll box: what a failing assertion should name.
WIDE = (
    "Array.from(document.querySelectorAll('body *')).filter(e => "
    "e.getBoundingClientRect().right > window.innerWidth + 1"
    " && !e.closest('.scroll-x, .grid-wrap'))"
    ".slice(0, 5).map(e => e.tagName + '.' + e.className)"
)


def _page(chromium: Any, live_server: Any, *, width: int, javascript: bool = True) -> Any:
    context = chromium.new_context(
        viewport={"width": width, "height": 844}, java_script_enabled=javascript
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "carol")
    page.fill("input[name=password]", "carol-pass-123!")
    page.locator("form button[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/login" not in url)
    return page


def _wide_data(carol: Any, alice: Any, sqlite_conn: Any, ledger: Any) -> int:
    """A wide result grid, a long statement, a held request, and a guardrail too wide for any
    screen (an unbreakable name and table pattern): tables that cannot fit a phone or 1440 px."""
    run = run_submit(
        caller=Caller(user=carol),
        connection=sqlite_conn,
        sql="SELECT * FROM customers ORDER BY id LIMIT 20 /* " + "a long comment " * 8 + "*/",
    )
    submit(alice, ledger, UPDATE)
    Guardrail.objects.create(
        name="hold-" + "x" * 90,
        message="A guardrail whose name and pattern are longer than any screen.",
        action="require_approval",
        priority=5,
        table_pattern="warehouse_" * 19,
    )
    return int(run.pk)


def test_at_390px_no_page_scrolls_sideways(
    browser: Any,  # noqa: F811
    live_server: Any,
    carol: Any,
    alice: Any,
    sqlite_conn: Any,
    ledger: Any,
) -> None:
    run = _wide_data(carol, alice, sqlite_conn, ledger)
    page = _page(browser, live_server, width=390)
    for path in PAGES:
        page.goto(f"{live_server.url}{path.format(run=run)}")
        scroll = page.evaluate("document.documentElement.scrollWidth")
        inner = page.evaluate("window.innerWidth")
        assert scroll <= inner, f"{path} scrolls sideways at 390px: {scroll} {page.evaluate(WIDE)}"
        for box in page.locator("main .scroll-x").all():  # a wide table scrolls in its box,
            assert box.get_attribute("tabindex") == "0"  # which the keyboard can reach
            assert box.get_attribute("role") == "region" and box.get_attribute("aria-label")
        if os.environ.get("WARDEN_SCREENSHOT_DIR"):
            name = path.strip("/").split("?")[0].replace("/", "-")
            page.screenshot(
                path=f"{os.environ['WARDEN_SCREENSHOT_DIR']}/{name}-390.png", full_page=True
            )
    page.context.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_at_390px_the_menu_opens_from_the_keyboard_and_its_links_work(
    browser: Any,  # noqa: F811
    live_server: Any,
    carol: Any,
    javascript: bool,
) -> None:
    page = _page(browser, live_server, width=390, javascript=javascript)
    page.goto(f"{live_server.url}/history/")
    menu = page.locator("header details.menu")
    audit = page.locator("nav[aria-label=Main] a", has_text="Audit")
    assert menu.locator("summary").is_visible() and not audit.is_visible()  # collapsed
    page.locator("a.brand").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") == "SUMMARY"
    page.keyboard.press("Enter")
    assert audit.is_visible() and page.locator("header button", has_text="Sign out").is_visible()
    page.keyboard.press("Tab")  # into the menu, in order
    assert page.evaluate("document.activeElement.textContent") == "SQL editor"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    audit.click()
    page.wait_for_url("**/audit/")
    page.context.close()


def test_at_1440px_the_menu_is_a_bar_and_wide_tables_scroll_in_their_box(
    browser: Any,  # noqa: F811
    live_server: Any,
    carol: Any,
    alice: Any,
    sqlite_conn: Any,
    ledger: Any,
) -> None:
    _wide_data(carol, alice, sqlite_conn, ledger)
    page = _page(browser, live_server, width=1440)
    page.goto(f"{live_server.url}/manage/guardrails/")
    assert not page.locator("header details.menu summary").is_visible()  # no button
    page.locator("a.brand").focus()
    page.keyboard.press("Tab")  # straight to the first link
    assert page.evaluate("document.activeElement.textContent") == "SQL editor"
    for path in ("/manage/guardrails/", "/audit/"):
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1440, page.evaluate(WIDE)
        box = page.locator("main .scroll-x").filter(has=page.locator("table")).first
        assert box.get_attribute("tabindex") == "0" and box.get_attribute("aria-label")
        if path == "/manage/guardrails/":  # too wide for any screen: it scrolls in its box
            assert box.evaluate("b => b.scrollWidth > b.clientWidth")
            box.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "() => document.querySelector('main .scroll-x').scrollLeft > 0", timeout=3000
            )
        if os.environ.get("WARDEN_SCREENSHOT_DIR"):
            name = path.strip("/").replace("/", "-")
            page.screenshot(
                path=f"{os.environ['WARDEN_SCREENSHOT_DIR']}/{name}-1440.png", full_page=True
            )
    page.context.close()

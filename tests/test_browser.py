"""A real browser (Debian Chromium via Playwright): sign in, run a query, see a held DROP."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES, balances, grant

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


def _sign_in(browser: Any, live_server: Any, username: str, landing: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", f"{username}-pass-123!")
    page.keyboard.press("Enter")
    page.wait_for_url(landing)
    return page


def test_an_approver_approves_from_the_queue_and_the_requester_sees_the_result(
    browser: Any, live_server: Any, alice: Any, bob: Any, ledger: Any
) -> None:
    analyst = _sign_in(browser, live_server, "alice", "**/editor/**")
    analyst.locator(".cm-content").click()
    analyst.keyboard.type("UPDATE accounts SET balance = balance + 1 WHERE id <= 2")
    analyst.keyboard.press("Control+Enter")
    analyst.wait_for_selector("[data-status=pending_approval]")
    assert "0 of 1 approval" in analyst.locator("[data-approval-progress]").inner_text()

    approver = _sign_in(browser, live_server, "bob", "**/approvals/")  # an approver's home
    assert "1" in approver.locator("nav .badge").inner_text()  # one request waits for bob
    row = approver.locator("[data-queue] tbody tr").first
    assert "alice" in row.inner_text() and "ledger" in row.inner_text()
    approver.keyboard.press("j")  # keyboard: focus the first request, open it
    approver.keyboard.press("Enter")
    approver.wait_for_url("**/approvals/*/")
    assert "balance = balance + 1" in approver.locator("pre").first.inner_text()
    approver.wait_for_selector("[data-impact-rows]")
    assert approver.locator("[data-impact-rows]").first.inner_text().strip() == "2"
    approver.keyboard.press("c")
    approver.keyboard.type("ok for month end")
    if os.environ.get("WARDEN_APPROVAL_SCREENSHOT"):
        approver.screenshot(path=os.environ["WARDEN_APPROVAL_SCREENSHOT"], full_page=True)
    approver.locator("#approve").click()
    approver.wait_for_selector("[data-status=approved]")

    # The requester's editor updates by itself: the write ran as alice, once.
    analyst.wait_for_selector("[data-status=succeeded]", timeout=15000)
    assert "2 rows" in analyst.locator(".run-head").inner_text()
    assert balances(ledger) == [101, 101, 100, 100, 100]
    analyst.context.close()
    approver.context.close()


def test_the_live_queue_keeps_its_filters_and_the_keyboard_focus(
    browser: Any, live_server: Any, alice: Any, bob: Any, ledger: Any
) -> None:
    from tests.test_approvals import UPDATE, submit

    first, second = (submit(alice, ledger, UPDATE).approval for _ in range(2))
    page = _sign_in(browser, live_server, "bob", "**/approvals/")
    page.goto(f"{live_server.url}/approvals/?risk=medium")
    page.keyboard.press("j")  # the newest request
    assert page.evaluate("document.activeElement.textContent") == f"#{second.pk}"
    with page.expect_response(
        lambda r: r.request.headers.get("hx-request") == "true", timeout=8000
    ) as refresh:
        pass  # the queue refreshes itself every 5 s
    assert refresh.value.url.endswith("/approvals/?risk=medium")
    page.wait_for_timeout(200)  # swapped and settled
    # focus stays on the same request, so j moves on from there rather than from the top
    assert page.evaluate("document.activeElement.textContent") == f"#{second.pk}"
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.textContent") == f"#{first.pk}"
    page.context.close()


def _focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement.id || document.activeElement.tagName"))


def test_keyboard_focus_survives_the_live_status_cancel_and_paging(
    browser: Any, live_server: Any, alice: Any, sqlite_conn: Any
) -> None:
    grant(sqlite_conn, alice, "ddl")
    page = _sign_in(browser, live_server, "alice", "**/editor/**")
    page.locator(".cm-content").focus()
    page.keyboard.type("DROP TABLE orders")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-status=pending_approval]")
    run = page.locator("#result .run").get_attribute("id")
    cancel = page.locator("#result .run-head button")
    cancel.focus()
    with page.expect_response(lambda r: "/runs/" in r.url, timeout=8000):
        pass  # the status polls every 3 s and replaces the run, Cancel included
    page.wait_for_timeout(200)
    assert _focused(page) == cancel.get_attribute("id")  # still on Cancel, not on <body>
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-status=cancelled]")
    page.wait_for_timeout(200)  # settled
    assert _focused(page) == run  # the outcome, not <body>

    page.locator(".cm-content").focus()
    page.keyboard.press("Control+a")
    page.keyboard.type("SELECT id FROM customers ORDER BY id LIMIT 150")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-status=succeeded]")
    page.locator("#page-next").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Page 2 of 2")
    page.wait_for_timeout(200)
    assert _focused(page) == page.locator("#result .run").get_attribute("id")  # Next is gone
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert _focused(page) == "page-previous"
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Page 1 of 2")
    page.wait_for_timeout(200)
    assert _focused(page) == page.locator("#result .run").get_attribute("id")  # no Previous
    page.context.close()


def test_a_run_in_flight_says_so_and_ctrl_enter_does_not_run_it_again(
    browser: Any, live_server: Any, alice: Any, sqlite_conn: Any
) -> None:
    from governance.models import QueryRun

    page = _sign_in(browser, live_server, "alice", "**/editor/**")
    page.locator(".cm-content").focus()
    page.keyboard.type(
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 10000000) "
        "SELECT count(*) FROM r"
    )
    page.keyboard.press("Control+Enter")
    page.wait_for_timeout(200)
    # While the statement runs in-process the result pane has nothing yet: say it is running.
    assert page.locator("#run-progress").inner_text() == "Running…"
    page.keyboard.press("Control+Enter")  # impatient: the first is still running
    page.wait_for_selector("[data-status=succeeded]", timeout=20000)
    page.wait_for_timeout(1500)  # a queued second submission would have gone out by now
    assert QueryRun.objects.filter(user=alice).count() == 1
    assert page.locator("#run-progress").inner_text() == ""  # done: nothing said any more
    page.context.close()


def test_re_run_from_history_by_keyboard_lands_in_the_editor(
    browser: Any, live_server: Any, alice: Any, sqlite_conn: Any
) -> None:
    page = _sign_in(browser, live_server, "alice", "**/editor/**")
    # Signed in, the editor has the focus: type at once.
    assert page.evaluate("document.activeElement.classList.contains('cm-content')")
    page.keyboard.type("SELECT id FROM customers ORDER BY id LIMIT 3")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-status=succeeded]")
    page.goto(f"{live_server.url}/history/")
    page.get_by_role("link", name="Re-run").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/editor/?from=*")
    page.wait_for_selector(".cm-content")
    assert page.evaluate("document.activeElement.classList.contains('cm-content')")
    hint = page.evaluate(
        "document.getElementById("
        "document.activeElement.getAttribute('aria-describedby')).textContent"
    )
    assert "Esc then Tab leaves the editor" in hint  # the way out of the Tab-indents editor
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#result [data-status=succeeded]")
    page.context.close()


def test_a_status_poll_with_nothing_new_leaves_the_held_run_in_place(
    browser: Any, live_server: Any, alice: Any, sqlite_conn: Any
) -> None:
    # Re-inserting an unchanged "Held for approval" (role=alert, inside aria-live) every 3 s
    # has screen readers announce it again and again.
    from governance.models import QueryRun

    grant(sqlite_conn, alice, "ddl")
    page = _sign_in(browser, live_server, "alice", "**/editor/**")
    page.keyboard.type("DROP TABLE orders")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-status=pending_approval]")
    page.evaluate("document.querySelector('#result .run').wardenSeen = true")
    with page.expect_response(lambda r: "/runs/" in r.url, timeout=8000):
        pass  # a poll
    page.wait_for_timeout(300)
    assert page.evaluate("document.querySelector('#result .run').wardenSeen") is True

    QueryRun.objects.filter(user=alice).update(status="cancelled", error="Cancelled.")
    page.wait_for_selector("[data-status=cancelled]", timeout=8000)  # news is swapped in
    page.context.close()


@pytest.mark.parametrize(
    ("username", "landing", "path", "select", "value"),
    [
        ("alice", "**/editor/**", "/history/", "#status", "queued"),
        ("bob", "**/approvals/", "/approvals/", "#f-risk", "high"),
    ],
)
def test_filters_can_be_chosen_with_the_arrow_keys(
    browser: Any,
    live_server: Any,
    alice: Any,
    bob: Any,
    username: str,
    landing: str,
    path: str,
    select: str,
    value: str,
) -> None:
    # Submitting on change reloaded the page at the first arrow key, with focus gone: a
    # keyboard user could only ever pick the option after the current one.
    page = _sign_in(browser, live_server, username, landing)
    page.goto(f"{live_server.url}{path}")
    page.locator(select).focus()
    while page.locator(select).input_value() != value:
        page.keyboard.press("ArrowDown")
        page.wait_for_timeout(100)
        assert page.url == f"{live_server.url}{path}"
    assert page.evaluate("document.activeElement.id") == select[1:]
    while page.evaluate("document.activeElement.textContent") != "Filter":
        page.keyboard.press("Tab")  # past the other filters, if any
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{path}?*{select[1:].removeprefix('f-')}={value}*")
    page.context.close()


def test_screen_readers_hear_the_outcome_of_a_run_not_the_whole_grid(
    browser: Any, live_server: Any, alice: Any, sqlite_conn: Any
) -> None:
    page = _sign_in(browser, live_server, "alice", "**/editor/**")
    page.keyboard.type("SELECT id, city FROM customers ORDER BY id LIMIT 150")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-status=succeeded]")
    # a live region around the results would read out every row of the grid
    assert (
        page.locator("[aria-live], [role=status], [role=log]")
        .filter(has=page.locator("table.grid"))
        .count()
        == 0
    )
    said = page.locator("#run-announcer[role=status]")
    page.wait_for_function("document.getElementById('run-announcer').textContent !== ''")
    text = said.inner_text()
    assert "Succeeded" in text and "150 rows" in text and "Page 1 of 2" in text
    assert "Cancel" not in text and len(text) < 120
    page.keyboard.press("Escape")
    page.locator("#page-next").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.getElementById('run-announcer').textContent.includes('Page 2')"
    )
    # the address follows the page, so a refresh (or a shared link) shows page 2 again
    page.wait_for_url("**page=2")
    page.reload()
    page.wait_for_selector("[data-status=succeeded]")
    assert "Page 2 of 2" in page.locator(".pager").inner_text()
    page.context.close()


def _hold_two_writes(page: Any, *, submit: Any) -> list[str]:
    """Submit a write with a purpose, then another with none; the purposes approvers got."""
    from approvals.models import ApprovalRequest

    for sql, purpose in (
        ("UPDATE accounts SET balance = 0 WHERE id = 1", "Refund for ticket #1234"),
        ("UPDATE accounts SET balance = 0 WHERE id = 2", None),
    ):
        if purpose is not None:
            page.locator("details.purpose summary").click()
            page.fill("#purpose", purpose)
        submit(page, sql)
        page.wait_for_selector("[data-status=pending_approval]")
    requests = ApprovalRequest.objects.order_by("pk")
    return [r.purpose for r in requests]


def test_the_purpose_goes_with_one_statement_only(
    browser: Any, live_server: Any, alice: Any, ledger: Any
) -> None:
    page = _sign_in(browser, live_server, "alice", "**/editor/**")

    def submit(page: Any, sql: str) -> None:
        shown = page.evaluate("(document.querySelector('#result .run') || {}).id || ''")
        page.locator(".cm-content").focus()
        page.keyboard.press("Control+a")
        page.keyboard.type(sql)
        page.keyboard.press("Control+Enter")
        page.wait_for_function(  # the new run is in place of the one shown before
            "id => { const run = document.querySelector('#result .run');"
            " return run && run.id !== id; }",
            arg=shown,
        )

    first, second = _hold_two_writes(page, submit=submit)
    assert first == "Refund for ticket #1234"
    assert second == ""  # the approver must not read the first statement's reason
    assert page.input_value("#purpose") == ""
    if os.environ.get("WARDEN_EDITOR_SCREENSHOTS"):
        for width, height in ((1440, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            page.locator("details.purpose summary").click()
            page.screenshot(
                path=f"{os.environ['WARDEN_EDITOR_SCREENSHOTS']}/editor-{width}.png",
                full_page=True,
            )
            page.locator("details.purpose summary").click()
    page.context.close()


def test_without_javascript_the_purpose_goes_with_one_statement_only(
    browser: Any, live_server: Any, alice: Any, ledger: Any
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", "alice-pass-123!")
    page.locator("button[type=submit]").click()
    page.wait_for_url("**/editor/**")

    def submit(page: Any, sql: str) -> None:
        page.fill("textarea#sql", sql)
        page.locator("#run-button").click()
        page.wait_for_url("**/editor/?run=*")

    first, second = _hold_two_writes(page, submit=submit)
    assert (first, second) == ("Refund for ticket #1234", "")
    assert page.input_value("#purpose") == ""
    context.close()


def test_an_auditor_filters_opens_exports_and_downloads_evidence_and_an_analyst_cannot(
    browser: Any, live_server: Any, alice: Any, dave: Any, sqlite_conn: Any, tmp_path: Any
) -> None:
    import zipfile

    from django.test import override_settings

    from governance.services.caller import Caller
    from governance.services.runs import run_submit

    for sql in ("SELECT id, city FROM customers LIMIT 3", "DROP TABLE orders"):
        run_submit(caller=Caller(user=alice), connection=sqlite_conn, sql=sql)
    with override_settings(WARDEN_EVIDENCE_DIR=str(tmp_path)):
        page = _sign_in(browser, live_server, "dave", "**/audit/")
        for width in (1440, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server.url}/audit/")
            page.select_option("#id_decision", "deny")
            page.fill("#id_actor", "ali")
            page.click("button:has-text('Filter')")
            page.wait_for_url("**decision=deny**")
            rows = page.locator("table.trail tbody tr")
            assert rows.count() == 1 and "alice" in rows.first.inner_text()
            if os.environ.get("WARDEN_SCREENSHOT_DIR"):
                page.screenshot(
                    path=f"{os.environ['WARDEN_SCREENSHOT_DIR']}/audit-{width}.png",
                    full_page=True,
                )
            scroll = page.evaluate("document.documentElement.scrollWidth")
            wide = page.evaluate(
                "Array.from(document.querySelectorAll('main *')).filter(e => "
                "e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5)"
                ".map(e => e.tagName + '.' + e.className)"
            )
            assert scroll <= width, f"the trail scrolls sideways at {width}px: {scroll} {wide}"
        page.set_viewport_size({"width": 1440, "height": 900})
        page.locator("table.trail tbody tr td.event a").first.click()
        page.wait_for_url("**/audit/*/")
        assert "DROP TABLE orders" in page.locator("main").inner_text()
        page.go_back()
        with page.expect_download() as exported:
            page.click("a:has-text('CSV')")
        assert "DROP TABLE orders" in Path(exported.value.path()).read_text()

        page.goto(f"{live_server.url}/audit/evidence/")
        page.click("button:has-text('Generate')")
        link = page.locator("a:has-text('Download')").first
        link.wait_for(timeout=60_000)
        with page.expect_download() as got:
            link.click()
        with zipfile.ZipFile(got.value.path()) as bundle:
            assert "report.pdf" in bundle.namelist()
        page.context.close()

    analyst = _sign_in(browser, live_server, "alice", "**/editor/**")
    for path in ("/audit/", "/audit/evidence/", "/audit/export.csv"):
        response = analyst.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 403, path
    analyst.context.close()


def test_an_admin_creates_an_agent_in_the_browser_and_copies_its_token_once(
    browser: Any, live_server: Any, carol: Any, alice: Any, sqlite_conn: Any
) -> None:
    page = _sign_in(browser, live_server, "carol", lambda url: "/accounts/login" not in url)
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/agents/")
        assert "No agents yet" in page.locator("main").inner_text() or width == 390
        page.goto(f"{live_server.url}/agents/new/")
        page.fill("#id_name", f"bot-{width}")
        page.select_option("#id_owner", label="alice")
        page.check(f"input[name=roles][value='{_group_pk('analyst')}']")
        page.click("button:has-text('Create agent')")
        token = page.locator("#new-token").input_value()
        assert token.startswith("wdn_") and len(token) == 60
        if os.environ.get("WARDEN_SCREENSHOT_DIR"):
            page.screenshot(
                path=f"{os.environ['WARDEN_SCREENSHOT_DIR']}/agent-token-{width}.png",
                full_page=True,
            )
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"the token page scrolls sideways at {width}px: {scroll}"
        page.click("a:has-text('Done')")
        page.wait_for_url(f"**/agents/bot-{width}/")
        assert token not in page.content()
        assert "wdn_" in page.locator("main").inner_text()
        page.goto(f"{live_server.url}/agents/")
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"the agent list scrolls sideways at {width}px: {scroll}"


def _group_pk(name: str) -> int:
    from django.contrib.auth.models import Group

    return int(Group.objects.get(name=name).pk)


def test_an_admin_creates_a_person_and_changes_their_roles_in_the_browser(
    browser: Any, live_server: Any, carol: Any, alice: Any
) -> None:
    from django.contrib.auth import get_user_model

    page = _sign_in(browser, live_server, "carol", lambda url: "/accounts/login" not in url)
    page.click("nav >> text=Users")
    page.wait_for_url("**/manage/users/")
    page.click("a:has-text('New user')")
    page.fill("#id_username", "frank")
    page.fill("#id_email", "frank@example.com")
    page.fill("#id_first_name", "Frank")
    page.check("input[name=roles][value=analyst]")
    page.click("button:has-text('Create user')")
    link = page.locator("#set-password-link").input_value()
    assert "/accounts/password/reset/key/" in link
    shots = os.environ.get("WARDEN_SCREENSHOT_DIR")
    if shots:
        page.screenshot(path=f"{shots}/user-link.png", full_page=True)
    page.click("a:has-text('Done')")
    assert link not in page.content()
    if shots:
        page.screenshot(path=f"{shots}/user-detail.png", full_page=True)
    facts = page.locator("dl.facts").inner_text()
    assert "analyst" in facts and "no password set" in facts
    page.uncheck("input[name=roles][value=analyst]")
    page.check("input[name=roles][value=approver]")
    page.check("input[name=roles][value=auditor]")
    page.click("button:has-text('Save roles')")
    assert "roles are now: approver, auditor" in page.locator(".messages").inner_text()
    frank = get_user_model().objects.get(username="frank")
    assert sorted(frank.groups.values_list("name", flat=True)) == ["approver", "auditor"]
    # The list finds him, at a desktop's width and a phone's, without sideways scrolling.
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/manage/users/?q=fra")
        assert "approver, auditor" in page.locator("table.people").inner_text()
        if shots:
            page.screenshot(path=f"{shots}/users-{width}.png", full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"the user list scrolls sideways at {width}px: {scroll}"


def test_save_reopen_see_masked_columns_and_download_a_masked_csv(
    browser: Any, live_server: Any, alice: Any, pg_conn: Any, pg_target: str
) -> None:
    import csv

    import psycopg

    from governance.models import SavedQuery
    from governance.services.catalog import catalog_refresh
    from tests.conftest import PG

    catalog_refresh(connection=pg_conn)
    page = _sign_in(browser, live_server, "alice", "**/editor/**")
    page.locator(".cm-content").click()
    page.keyboard.type("SELECT id, ssn, email, city FROM customers ORDER BY id")
    page.locator(".save-query summary").click()
    page.fill("#save-title", "Customers by id")
    page.locator("#save-button").click()
    page.wait_for_url("**/editor/?saved=*")
    assert "Saved “Customers by id”." in page.locator(".messages").inner_text()

    # A fresh editor; the saved query opens from the sidebar, filled in and not run.
    page.goto(f"{live_server.url}/editor/")
    page.locator("#saved a", has_text="Customers by id").click()
    page.wait_for_url("**/editor/?saved=*")
    assert "SELECT id, ssn, email, city FROM customers" in page.locator(".cm-content").inner_text()
    assert page.locator("#result .run").count() == 0
    assert SavedQuery.objects.get().owner_id == alice.pk

    # The schema sidebar marks the columns masked for alice, with their rule.
    page.locator("#schema-panel summary").click()
    page.wait_for_selector("[data-schema-for]")
    page.locator(".schema-tables summary", has_text="customers").first.click()
    ssn = page.locator('li[data-column="ssn"]')
    assert "masked: national_id (redact)" in ssn.inner_text()
    assert "masked" in page.locator('li[data-column="email"]').inner_text()
    assert page.locator('li[data-column="city"] .mask-mark').count() == 0
    for width, height in ((1440, 1000), (390, 1400)):
        if os.environ.get("WARDEN_EDITOR_SCREENSHOTS"):
            page.set_viewport_size({"width": width, "height": height})
            folder = Path(os.environ["WARDEN_EDITOR_SCREENSHOTS"])
            page.screenshot(path=str(folder / f"editor-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 860})

    # Download CSV: a file, its ssn column masked.
    with page.expect_download() as download:
        page.locator("#export-button").click()
    assert download.value.suggested_filename.startswith("demo-postgres-run-")
    with open(download.value.path(), newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "ssn", "email", "city"] and len(rows) == 1001
    with psycopg.connect(dbname=pg_target, **PG) as conn:
        raw = {r[0] for r in conn.execute("SELECT ssn FROM customers")}
    assert not raw & {row[1] for row in rows[1:]}

    # A column name clicked in the sidebar goes into the statement.
    page.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" -- ")
    page.locator('li[data-column="city"] button.ident').click()
    assert page.locator(".cm-content").inner_text().rstrip().endswith("-- city")
    page.context.close()


def test_an_admin_tries_a_guardrail_before_saving_it(
    browser: Any, live_server: Any, carol: Any, sqlite_conn: Any
) -> None:
    from governance.models import Guardrail

    rules = Guardrail.objects.count()
    page = _sign_in(browser, live_server, "carol", lambda url: "/accounts/login" not in url)
    page.goto(f"{live_server.url}/manage/guardrails/new/")
    page.fill("#id_name", "no-orders")
    page.select_option("#id_action", "deny")
    page.fill("#id_priority", "5")
    page.fill("#id_table_pattern", "ord*")
    page.click("#pattern-syntax summary")
    assert "ignoring case" in page.locator("#pattern-syntax").inner_text()
    page.fill("#id_try-sql", "SELECT id, status FROM orders")
    page.select_option("#id_try-connection", label="demo")
    page.click("button:has-text('Try it')")
    verdict = page.locator("[data-rule-verdict]")
    verdict.wait_for()
    assert "Matches statement 1" in verdict.inner_text() and "deny it" in verdict.inner_text()
    decisions = page.locator("#guardrail-try [data-decision]")
    assert [decisions.nth(i).get_attribute("data-decision") for i in range(3)] == [
        "deny",
        "deny",
        "allow",
    ]
    assert page.url.endswith("/manage/guardrails/new/")  # htmx: the page stayed, as typed
    assert page.input_value("#id_name") == "no-orders"
    # change the rule, try again: the answer follows what is typed
    page.fill("#id_table_pattern", "customers")
    page.click("button:has-text('Try it')")
    page.wait_for_selector("[data-rule-verdict]:has-text('Does not match')")
    shots = os.environ.get("WARDEN_SCREENSHOT_DIR")
    if shots:
        page.screenshot(path=f"{shots}/guardrail-try.png", full_page=True)
    assert Guardrail.objects.count() == rules  # nothing saved
    page.close()

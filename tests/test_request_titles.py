"""Approval requests name their statement: in lists and titles (one line, cut, in full on
hover and on the request's page), in the CLI, and on the page that asks an approver for their
password again."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from approvals.summary import request_summary, statement_line
from tests.test_approvals import UPDATE, submit

pytestmark = pytest.mark.django_db(transaction=True)

LONG = (
    "UPDATE accounts SET balance = balance + 1, owner = 'someone with a long name'\n"
    "  WHERE id <= 2 AND owner <> 'nobody at all, really nobody'"
)


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_statement_line_is_one_line_cut_and_escaped() -> None:
    # One line, spaces collapsed; the line break stays visible (a line comment ends there).
    assert statement_line("SELECT 1\n  FROM   t") == "SELECT 1 ⏎ FROM t"
    cut = statement_line(LONG, 40)
    assert len(cut) == 40 and cut.endswith("…") and "\n" not in cut
    assert statement_line("SELECT '\u202e'") == "SELECT '\\u202e'"  # no bidi reordering


def test_my_requests_and_the_queue_show_the_statement(alice: Any, bob: Any, ledger: Any) -> None:
    run = submit(alice, ledger, LONG)
    line = statement_line(LONG, 80)
    for user, page in ((alice, "approval_mine"), (bob, "approval_queue")):
        text = _client(user).get(reverse(page)).content.decode()
        assert '<code class="statement-line" title="UPDATE accounts SET' in text
        assert f">{line.replace(chr(39), '&#x27;')}</code>" in text
        assert "&lt;&gt; &#x27;nobody at all, really nobody&#x27;" in text  # the full one, hovered
        assert "write on ledger" in text  # what it is, still said
    detail = _client(bob).get(reverse("approval_detail", args=[run.approval.pk])).content.decode()
    heading = detail[detail.index("<h1>") : detail.index("</h1>")]
    assert f"Request #{run.approval.pk}: <code" in heading and "(write on ledger)" in heading
    assert (
        "<title>Request #" in detail and "UPDATE accounts SET" in detail[: detail.index("</title>")]
    )


def test_the_summary_and_the_cli_name_the_statement_but_e_mails_do_not(
    alice: Any, bob: Any, ledger: Any, settings: Any
) -> None:
    run = submit(alice, ledger, UPDATE)
    assert request_summary(run.approval)["statement"] == UPDATE
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("approvals", "list", stdout=out)
    assert f"write on ledger: {UPDATE}" in out.getvalue()
    assert all(UPDATE not in m.subject and UPDATE not in m.body for m in mail.outbox)


def test_the_password_page_names_the_request_it_is_for(alice: Any, bob: Any, ledger: Any) -> None:
    request = submit(alice, ledger, "DROP TABLE accounts").approval
    client = _client(bob)
    asked = client.post(reverse("approval_review", args=[request.pk]), {"verdict": "reject"})
    assert asked.status_code == 302 and "/accounts/reauthenticate/" in asked["Location"]
    page = client.get(asked["Location"]).content.decode()
    assert f'data-reauth-for="{request.pk}"' in page
    assert f"request #{request.pk}</a>" in page and "To reject" in page
    assert "<strong>ledger</strong>" in page and ">DROP TABLE accounts</code>" in page
    # a wrong password: the page again, still naming it
    wrong = client.post(asked["Location"], {"password": "not-bob-s"})
    assert f'data-reauth-for="{request.pk}"' in wrong.content.decode()
    assert not request.reviews.exists()


def test_the_password_page_names_no_request_the_user_may_not_see(
    alice: Any, bob: Any, groups: dict[str, Any], ledger: Any
) -> None:
    from tests.conftest import _user

    request = submit(alice, ledger, "DROP TABLE accounts").approval
    stranger = _user("oscar", groups["analyst"])
    url = f"{reverse('account_reauthenticate')}?next=/approvals/{request.pk}/review/"
    page = _client(stranger).get(url).content.decode()
    assert "data-reauth-for" not in page and "DROP TABLE" not in page
    assert "Please reauthenticate" in page
    # and any other page asks as before
    other = _client(bob).get(f"{reverse('account_reauthenticate')}?next=/manage/users/")
    assert b"data-reauth-for" not in other.content and b"Please reauthenticate" in other.content


def test_a_line_break_stays_visible_where_a_line_comment_ends() -> None:
    """What follows a line comment runs: one line joined with a space would hide it in it."""
    from approvals.summary import statement_line
    from governance.services.values import printable

    for newline in ("\n", "\r", "\r\n"):
        sql = f"UPDATE orders SET status = 'x' WHERE id = 12 -- only 12{newline} OR id > 0"
        assert statement_line(sql).endswith("-- only 12 ⏎ OR id > 0")
    # A lone carriage return (a comment's end on PostgreSQL) is shown and breaks the line.
    assert printable("WHERE id = 12 -- x\r OR TRUE") == "WHERE id = 12 -- x\\r\n OR TRUE"

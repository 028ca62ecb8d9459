"""The approval pages: who may see and do what, filters, reviews, re-authentication."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import ApprovalRequest
from governance.models import CatalogColumn, CatalogTable
from tests.conftest import balances
from tests.test_approvals import UPDATE, submit

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["approval_queue", "approval_history", "approval_mine", "access_request", "unmask_request"]


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_users_are_sent_to_login(client: Client, name: str) -> None:
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("name", PAGES)
def test_a_user_without_a_role_is_refused(eve: Any, name: str) -> None:
    assert client_for(eve).get(reverse(name)).status_code == 403


def test_the_queue_is_for_approvers_admins_and_auditors(
    alice: Any, bob: Any, carol: Any, dave: Any, ledger: Any
) -> None:
    submit(alice, ledger, UPDATE)
    assert client_for(alice).get(reverse("approval_queue")).status_code == 403
    for user in (bob, carol, dave):
        page = client_for(user).get(reverse("approval_queue"))
        assert page.status_code == 200 and b"ledger" in page.content


def test_each_role_lands_on_its_own_work(alice: Any, bob: Any, dave: Any, eve: Any) -> None:
    assert client_for(alice).get("/")["Location"] == reverse("editor")
    assert client_for(bob).get("/")["Location"] == reverse("approval_queue")
    assert client_for(dave).get("/")["Location"] == reverse("audit_events")
    assert b"no role yet" in client_for(eve).get("/").content


def test_queue_filters_and_live_partial_and_bad_parameters(
    alice: Any, bob: Any, ledger: Any
) -> None:
    submit(alice, ledger, UPDATE)
    client = client_for(bob)
    url = reverse("approval_queue")
    listed = client.get(url, {"risk": "medium", "age": "1h"}).content
    assert b"accounts" in listed and b"0 of 1" in listed
    assert (
        b"Nothing waits for review with these filters"
        in client.get(url, {"risk": "critical"}).content
    )
    for bad in (
        {"connection": "abc"},
        {"risk": "<script>"},
        {"age": "9y"},
        {"page": "zz"},
        {"connection": "9" * 40},
        {"connection": "\u00b2"},  # a digit to str.isdigit, not a number to int()
    ):
        assert client.get(url, bad).status_code == 200
    partial = client.get(url, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and b"<html" not in partial.content
    assert b"data-queue" in partial.content
    history = client.get(reverse("approval_history"))
    assert history.status_code == 200 and b"No decided requests" in history.content


def test_an_approver_approves_on_the_page_and_the_write_runs(
    alice: Any, bob: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE, purpose="month end")
    client = client_for(bob)
    page = client.get(reverse("approval_detail", args=[run.approval.pk]))
    assert page.status_code == 200 and b"0 of 1 approval" in page.content
    for expected in (b"month end", b"balance = balance + 1", b'id="approve"', b"accounts.balance"):
        assert expected in page.content
    response = client.post(
        reverse("approval_review", args=[run.approval.pk]), {"verdict": "approve", "comment": "ok"}
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "succeeded" and balances(ledger) == [101, 101, 100, 100, 100]
    again = client.get(reverse("approval_detail", args=[run.approval.pk]))
    assert b'id="approve"' not in again.content and b"ok" in again.content


def test_bad_reviews_are_refused_with_a_message(alice: Any, bob: Any, ledger: Any) -> None:
    request = submit(alice, ledger, UPDATE).approval
    url = reverse("approval_review", args=[request.pk])
    response = client_for(bob).post(url, {"verdict": "maybe"}, follow=True)
    assert b"Choose approve or reject." in response.content
    response = client_for(bob).post(url, {"verdict": "approve", "comment": "x" * 1001}, follow=True)
    assert b"at most 1,000 characters" in response.content
    assert not request.reviews.exists()


def test_a_review_comment_with_a_nul_byte_is_refused_not_a_server_error(
    alice: Any, bob: Any, ledger: Any
) -> None:
    request = submit(alice, ledger, UPDATE).approval
    url = reverse("approval_review", args=[request.pk])
    response = client_for(bob).post(url, {"verdict": "reject", "comment": "no\x00pe"}, follow=True)
    assert response.status_code == 200 and b"plain text" in response.content
    assert not request.reviews.exists()
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"


def test_requesters_see_their_own_requests_and_nobody_else_s(
    alice: Any, bob: Any, groups: dict[str, Any], ledger: Any
) -> None:
    from tests.conftest import _user

    run = submit(alice, ledger, UPDATE)
    request = run.approval
    other = _user("oscar", groups["analyst"])
    assert client_for(alice).get(reverse("approval_detail", args=[request.pk])).status_code == 200
    assert client_for(other).get(reverse("approval_detail", args=[request.pk])).status_code == 404
    # nor may they review it, though the URL is guessable
    response = client_for(other).post(
        reverse("approval_review", args=[request.pk]), {"verdict": "approve"}
    )
    assert response.status_code == 404
    own = client_for(alice).post(
        reverse("approval_review", args=[request.pk]), {"verdict": "approve"}, follow=True
    )
    assert b"cannot review your own request" in own.content
    run.refresh_from_db()
    assert run.status == "pending_approval"


def test_a_critical_review_asks_for_the_password_again_then_counts(
    alice: Any, bob: Any, ledger: Any
) -> None:
    request = submit(alice, ledger, "DROP TABLE accounts").approval
    client = client_for(bob)
    url = reverse("approval_review", args=[request.pk])
    response = client.post(url, {"verdict": "approve"})
    assert response.status_code == 302 and "/accounts/reauthenticate/" in response["Location"]
    assert not request.reviews.exists()
    resumed = client.post(response["Location"], {"password": "bob-pass-123!"}, follow=True)
    assert resumed.status_code == 200
    assert request.reviews.get().reviewer == bob  # the suspended approval was replayed


def test_just_in_time_access_through_the_pages(alice: Any, bob: Any, pg_conn: Any) -> None:
    client = client_for(alice)
    form = client.get(reverse("access_request"))
    assert form.status_code == 200 and b"demo-postgres" in form.content
    bad = client.post(
        reverse("access_request"),
        {"connection": pg_conn.pk, "capabilities": ["write"], "hours": "500", "reason": "x"},
    )
    assert bad.status_code == 400 and not ApprovalRequest.objects.exists()
    response = client.post(
        reverse("access_request"),
        {"connection": pg_conn.pk, "capabilities": ["write"], "hours": "2", "reason": "INC-42"},
    )
    request = ApprovalRequest.objects.get()
    assert response["Location"] == reverse("approval_detail", args=[request.pk])
    page = client.get(response["Location"]).content.decode()
    assert "<dt>For</dt><dd>2 hours</dd>" in page and "2:00:00" not in page
    mine = client.get(reverse("approval_mine"))
    assert b"write access to demo-postgres" in mine.content
    # bob cannot withdraw alice's request; alice can
    withdraw = reverse("approval_withdraw", args=[request.pk])
    assert client_for(bob).post(withdraw).status_code == 404
    client.post(withdraw)
    request.refresh_from_db()
    assert request.status == "withdrawn"


def test_unmask_requests_offer_only_sensitive_columns_of_usable_connections(
    alice: Any, pg_conn: Any, ledger: Any
) -> None:
    table = CatalogTable.objects.create(connection=pg_conn, schema="public", name="customers")
    email = CatalogColumn.objects.create(table=table, name="email", semantic_type="email")
    CatalogColumn.objects.create(table=table, name="city")
    page = client_for(alice).get(reverse("unmask_request"))
    assert b"public.customers.email" in page.content and b"customers.city" not in page.content
    response = client_for(alice).post(
        reverse("unmask_request"), {"column": email.pk, "hours": "1", "reason": "support case 7"}
    )
    assert response.status_code == 302
    request = ApprovalRequest.objects.get(kind="unmask")
    assert request.column == email


def test_admins_manage_approval_policies_and_changes_are_audited(
    alice: Any, bob: Any, carol: Any, groups: dict[str, Any], ledger: Any
) -> None:
    from approvals.models import ApprovalPolicy
    from audit.models import AuditEvent

    for user in (alice, bob):
        assert client_for(user).get(reverse("approval_policy_list")).status_code == 403
    client = client_for(carol)
    listing = client.get(reverse("approval_policy_list"))
    assert b"critical risk: two approvers" in listing.content  # the seeded defaults
    bad = client.post(
        reverse("approval_policy_create"),
        {
            "name": "ledger",
            "risk": "medium",
            "required_approvals": "0",
            "priority": "5",
            "request_hours": "24",
            "approval_hours": "4",
            "approver_groups": [groups["approver"].pk],
        },
    )
    assert bad.status_code == 400 and b"Between 1 and 10" in bad.content
    response = client.post(
        reverse("approval_policy_create"),
        {
            "name": "ledger",
            "risk": "medium",
            "required_approvals": "2",
            "priority": "5",
            "request_hours": "2",
            "approval_hours": "1",
            "approver_groups": [groups["approver"].pk],
            "connections": [ledger.pk],
        },
    )
    assert response.status_code == 302
    policy = ApprovalPolicy.objects.get(name="ledger")
    assert policy.request_ttl.total_seconds() == 7200
    listed = client.get(reverse("approval_policy_list")).content.decode()
    assert "request 2 hours, approval 1 hour<" in listed and "2:00:00" not in listed
    request = submit(alice, ledger, UPDATE).approval
    assert request.required_approvals == 2 and request.policy == policy
    event = AuditEvent.objects.get(kind="approval_policy.created")
    assert event.actor_id == carol.pk and event.detail["changes"]["required_approvals"] == [None, 2]
    client.post(reverse("approval_policy_delete", args=[policy.pk]))
    assert not ApprovalPolicy.objects.filter(name="ledger").exists()
    assert AuditEvent.objects.filter(kind="approval_policy.deleted").exists()


def test_the_editor_counts_only_approvals_that_still_count(
    alice: Any, bob: Any, groups: dict[str, Any], ledger: Any
) -> None:
    from tests.test_approvals import review

    run = submit(alice, ledger, "DROP TABLE accounts")  # critical: two approvers
    review(bob, run.approval)
    bob.groups.remove(groups["approver"])  # left the team mid-review: his approval lapses
    url = reverse("run_detail", args=[run.pk])
    progress = client_for(alice).get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "0 of 2 approvals" in progress, progress  # as the request page says
    assert (
        b"0 of 2 approvals"
        in client_for(alice).get(reverse("approval_detail", args=[run.approval.pk])).content
    )


def test_the_nav_badge_counts_only_requests_the_approver_may_review(
    alice: Any, bob: Any, groups: dict[str, Any], ledger: Any
) -> None:
    from django.contrib.auth.models import Group

    from approvals.models import ApprovalPolicy
    from tests.conftest import _user

    leads = Group.objects.create(name="ledger-leads")
    policy = ApprovalPolicy.objects.create(name="ledger writes", risk="medium", priority=10)
    policy.approver_groups.add(leads)
    policy.connections.add(ledger)
    submit(alice, ledger, UPDATE)  # for ledger-leads only
    assert b'class="badge"' not in client_for(bob).get(reverse("approval_history")).content
    lead = _user("lena", groups["approver"])
    lead.groups.add(leads)
    badge = client_for(lead).get(reverse("approval_history")).content
    assert b'<span class="badge" title="1 waiting for your review">1</span>' in badge


def test_the_request_page_shows_invisible_and_bidi_characters_as_escapes(
    alice: Any, bob: Any, ledger: Any
) -> None:
    # "Trojan Source": a right-to-left override makes the browser display text reordered, so
    # an approver would read something other than what runs. They are shown as escapes.
    sql = "UPDATE accounts SET balance = 0 /* \u202e 1 = di EREHW \u2066*/"
    request = submit(alice, ledger, sql, purpose="fix\u202e").approval
    for url in (reverse("approval_detail", args=[request.pk]), reverse("approval_queue")):
        page = client_for(bob).get(url).content.decode()
        assert "\u202e" not in page and "\u2066" not in page
        assert "/* \\u202e 1 = di EREHW" in page
    assert (
        "fix\\u202e"
        in client_for(bob).get(reverse("approval_detail", args=[request.pk])).content.decode()
    )


def test_an_overdue_request_says_so_and_policy_hours_read_as_whole_numbers(
    alice: Any, bob: Any, carol: Any, ledger: Any
) -> None:
    import datetime as dt

    from django.utils import timezone

    from approvals.models import ApprovalPolicy

    request = submit(alice, ledger, UPDATE).approval
    ApprovalRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=5)
    )
    page = client_for(bob).get(reverse("approval_detail", args=[request.pk]))
    assert b"expired, closing within a minute" in page.content
    assert b'id="approve"' not in page.content  # a review would be refused anyway
    policy = ApprovalPolicy.objects.get(risk="critical")
    form = client_for(carol).get(reverse("approval_policy_edit", args=[policy.pk]))
    assert b'value="24"' in form.content and b'value="24.0"' not in form.content

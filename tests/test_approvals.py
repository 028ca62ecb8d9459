"""The approval workflow against real targets: every refusal, release, expiry, concurrency."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connections
from django.utils import timezone

from approvals.expiry import grants_expire
from approvals.models import ApprovalPolicy, ApprovalRequest
from approvals.services import (
    InvalidRequest,
    ReauthenticationNeeded,
    ReviewRefused,
    access_request,
    needs_reauthentication,
    request_review,
    requests_expire,
)
from audit.models import AuditEvent
from governance.models import AccessGrant, QueryRun
from governance.services.caller import Caller
from governance.services.runs import run_cancel, run_submit
from tests.conftest import _user, balances

pytestmark = pytest.mark.django_db(transaction=True)

UPDATE = "UPDATE accounts SET balance = balance + 1 WHERE id <= 2"


def submit(user: Any, connection: Any, sql: str, **kw: Any) -> QueryRun:
    run = run_submit(caller=Caller(user=user), connection=connection, sql=sql, **kw)
    run.refresh_from_db()
    return run


def review(user: Any, request: ApprovalRequest, approve: bool = True, **kw: Any) -> Any:
    kw.setdefault("reauthenticated", True)
    return request_review(caller=Caller(user=user), request_id=request.pk, approve=approve, **kw)


@pytest.fixture
def frank(groups: dict[str, Any]) -> Any:
    """A second approver."""
    return _user("frank", groups["approver"])


def test_a_held_write_runs_as_the_requester_once_approved(
    alice: Any, bob: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE, purpose="fix the December balances")
    assert run.status == "pending_approval" and run.risk == "medium"
    request = run.approval
    assert request.required_approvals == 1 and request.approver_groups == ["approver"]
    assert request.purpose == "fix the December balances"
    assert balances(ledger) == [100] * 5  # nothing ran yet

    review(bob, request, comment="looks right")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.row_count == 2
    assert balances(ledger) == [101, 101, 100, 100, 100]
    # the result is a sample of the changed rows (the write returns them)
    assert [c["name"] for c in run.columns] == ["id", "owner", "balance"]
    assert run.rows == [[1, "owner 1", 101], [2, "owner 2", 101]]
    request.refresh_from_db()
    assert request.status == "approved" and request.decided_at is not None
    outcome = AuditEvent.objects.get(run_id=run.pk, kind="query.succeeded")
    assert outcome.actor_id == alice.pk  # ran as the requester ...
    assert outcome.detail["approval"] == {"id": request.pk, "approvers": ["bob"]}  # ... approved
    kinds = list(AuditEvent.objects.filter(run_id=run.pk).values_list("kind", flat=True))
    assert sorted(kinds) == sorted(
        [
            "query.submitted",
            "approval.requested",
            "approval.approved",
            "approval.granted",
            "query.released",
            "query.succeeded",
        ]
    )


def test_a_requester_never_approves_their_own_request(
    alice: Any, groups: dict[str, Any], ledger: Any
) -> None:
    alice.groups.add(groups["approver"])
    request = submit(alice, ledger, UPDATE).approval
    with pytest.raises(ReviewRefused, match="your own request"):
        review(alice, request)
    request.refresh_from_db()
    assert request.status == "pending" and not request.reviews.exists()


def test_only_members_of_the_approver_groups_may_review(
    alice: Any, carol: Any, dave: Any, ledger: Any
) -> None:
    request = submit(alice, ledger, UPDATE).approval
    for outsider in (carol, dave):  # an admin is not an approver, nor is an auditor
        with pytest.raises(ReviewRefused, match="Only members of approver"):
            review(outsider, request)


def test_a_critical_statement_needs_two_distinct_approvers_and_a_recent_sign_in(
    alice: Any, bob: Any, frank: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, "DROP TABLE accounts")
    request = run.approval
    assert run.risk == "critical" and request.required_approvals == 2
    with pytest.raises(ReauthenticationNeeded):
        review(bob, request, reauthenticated=False)
    review(bob, request)
    with pytest.raises(ReviewRefused, match="already reviewed"):
        review(bob, request)  # the same person never counts twice
    run.refresh_from_db()
    assert run.status == "pending_approval"
    review(frank, request)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    outcome = AuditEvent.objects.get(run_id=run.pk, kind="query.succeeded")
    assert outcome.detail["approval"]["approvers"] == ["bob", "frank"]


def test_one_rejection_closes_the_request_and_nothing_runs(
    alice: Any, bob: Any, frank: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE)
    review(bob, run.approval, approve=False, comment="wrong quarter")
    run.refresh_from_db()
    assert run.status == "rejected" and run.error == "Rejected by bob: wrong quarter"
    assert balances(ledger) == [100] * 5
    with pytest.raises(ReviewRefused, match="already rejected"):
        review(frank, run.approval)


def test_unanswered_requests_expire_on_a_controlled_clock(
    alice: Any, bob: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE)
    request = run.approval
    assert request.expires_at - request.created_at == dt.timedelta(hours=24)
    assert requests_expire(now=timezone.now() + dt.timedelta(hours=23)) == 0
    assert requests_expire(now=timezone.now() + dt.timedelta(hours=25)) == 1
    run.refresh_from_db()
    request.refresh_from_db()
    assert request.status == "expired" and run.status == "expired"
    assert "expired" in run.error
    with pytest.raises(ReviewRefused, match="already expired"):
        review(bob, request)
    assert AuditEvent.objects.filter(kind="approval.expired", run_id=run.pk).count() == 1


def test_a_review_after_the_deadline_expires_the_request_instead(
    alice: Any, bob: Any, ledger: Any
) -> None:
    request = submit(alice, ledger, UPDATE).approval
    with pytest.raises(ReviewRefused, match="has expired"):
        review(bob, request, now=timezone.now() + dt.timedelta(days=2))
    request.refresh_from_db()
    assert request.status == "expired" and not request.reviews.exists()
    assert balances(ledger) == [100] * 5


def test_an_approval_not_executed_in_time_lapses(alice: Any, bob: Any, ledger: Any) -> None:
    run = submit(alice, ledger, UPDATE)
    # Approved five hours ago (the approval is good for four): the run must not start now.
    review(bob, run.approval, now=timezone.now() - dt.timedelta(hours=5))
    run.refresh_from_db()
    assert run.status == "expired" and "approval expired" in run.error
    assert balances(ledger) == [100] * 5


def test_an_approval_never_covers_sql_that_changed_under_it(
    alice: Any, bob: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE)
    # The held run's rewritten SQL is altered behind Warden's back: the recheck refuses it.
    QueryRun.objects.filter(pk=run.pk).update(statements=["DELETE FROM accounts"])
    review(bob, run.approval)
    run.refresh_from_db()
    assert run.status == "failed" and "not the statement that was submitted" in run.error
    assert balances(ledger) == [100] * 5


def test_access_revoked_while_waiting_means_the_statement_never_runs(
    alice: Any, bob: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE)
    AccessGrant.objects.filter(connection=ledger).delete()
    review(bob, run.approval)
    run.refresh_from_db()
    assert run.status == "failed" and "now denied" in run.error
    assert balances(ledger) == [100] * 5


def test_cancelling_a_held_run_withdraws_it_and_it_can_no_longer_be_approved(
    alice: Any, bob: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE)
    assert run_cancel(caller=Caller(user=alice), run=run)
    with pytest.raises(ReviewRefused, match="already withdrawn"):
        review(bob, run.approval)
    assert balances(ledger) == [100] * 5


def test_a_connection_policy_overrides_the_default(
    alice: Any, bob: Any, frank: Any, ledger: Any
) -> None:
    leads = Group.objects.create(name="ledger-leads")
    policy = ApprovalPolicy.objects.create(
        name="ledger writes", risk="medium", required_approvals=2, priority=10
    )
    policy.approver_groups.add(leads)
    policy.connections.add(ledger)
    run = submit(alice, ledger, UPDATE)
    request = run.approval
    assert request.required_approvals == 2 and request.approver_groups == ["ledger-leads"]
    with pytest.raises(ReviewRefused, match="Only members of ledger-leads"):
        review(bob, request)
    bob.groups.add(leads)
    frank.groups.add(leads)
    for user in (bob, frank):
        user.__dict__.pop("_warden_groups", None)  # roles are cached per user object
    review(bob, request)
    review(frank, request)
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_two_approvers_at_the_same_moment_release_the_statement_once(
    alice: Any, bob: Any, frank: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(user: Any) -> None:
        try:
            barrier.wait()
            review(user, run.approval)
            outcomes.append("accepted")
        except ReviewRefused as exc:
            outcomes.append(str(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(u,)) for u in (bob, frank)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(outcomes) == 2 and outcomes.count("accepted") == 1
    assert any("already approved" in outcome for outcome in outcomes)
    assert balances(ledger) == [101, 101, 100, 100, 100]  # executed exactly once
    assert AuditEvent.objects.filter(run_id=run.pk, kind="query.succeeded").count() == 1


def test_just_in_time_access_creates_an_expiring_audited_grant(
    alice: Any, bob: Any, pg_conn: Any
) -> None:
    request = access_request(
        caller=Caller(user=alice),
        connection=pg_conn,
        capabilities=["write"],
        hours=2,
        reason="backfill INC-42",
    )
    assert request.kind == "access" and request.required_approvals == 1
    review(bob, request)
    jit = AccessGrant.objects.get(user=alice, connection=pg_conn)
    assert jit.capabilities == ["write"] and jit.created_by == bob
    assert jit.expires_at is not None
    remaining = jit.expires_at - timezone.now()
    assert dt.timedelta(hours=1, minutes=59) < remaining <= dt.timedelta(hours=2)
    assert AuditEvent.objects.filter(kind="access.granted").count() == 1
    assert grants_expire(now=timezone.now() + dt.timedelta(hours=1)) == 0
    assert grants_expire(now=timezone.now() + dt.timedelta(hours=3)) == 1
    assert grants_expire(now=timezone.now() + dt.timedelta(hours=4)) == 0  # recorded once
    event = AuditEvent.objects.get(kind="access.expired")
    assert event.detail["grantee"] == "alice" and event.detail["capabilities"] == ["write"]


@pytest.mark.parametrize(
    ("capabilities", "risk", "approvals"),
    [(["read", "write"], "high", 1), (["read", "ddl"], "critical", 2), (["admin"], "critical", 2)],
)
def test_asking_for_schema_or_admin_rights_is_critical(
    alice: Any, bob: Any, pg_conn: Any, capabilities: list[str], risk: str, approvals: int
) -> None:
    request = access_request(
        caller=Caller(user=alice),
        connection=pg_conn,
        capabilities=capabilities,
        hours=1,
        reason="migration INC-7",
    )
    assert (request.risk, request.required_approvals) == (risk, approvals)
    assert needs_reauthentication(request) is (risk == "critical")


@pytest.mark.parametrize(
    ("capabilities", "hours", "reason", "message"),
    [
        ([], 2, "x", "at least one capability"),
        (["superuser"], 2, "x", "Unknown capability"),
        ("write", 2, "x", "at least one capability"),
        (["write"], "soon", "x", "duration in hours"),
        (["write"], 0, "x", "5 minutes up to 7 days"),
        (["write"], 24 * 30, "x", "5 minutes up to 7 days"),
        (["write"], float("nan"), "x", "5 minutes up to 7 days"),
        (["write"], float("inf"), "x", "5 minutes up to 7 days"),
        (["write"], 1e300, "x", "5 minutes up to 7 days"),
        (["write"], -1e300, "x", "5 minutes up to 7 days"),
        (["write"], 2, "  ", "Say why"),
        (["write"], 2, "x" * 501, "under 500"),
    ],
)
def test_access_requests_validate_their_input(
    alice: Any, pg_conn: Any, capabilities: Any, hours: Any, reason: str, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        access_request(
            caller=Caller(user=alice),
            connection=pg_conn,
            capabilities=capabilities,
            hours=hours,
            reason=reason,
        )
    assert not ApprovalRequest.objects.exists()


def test_a_deactivated_requester_s_statement_is_never_approved_or_started(
    alice: Any, bob: Any, frank: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE)
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    with pytest.raises(ReviewRefused, match="disabled"):
        review(bob, run.approval)
    review(frank, run.approval, approve=False)  # it can still be rejected, to clear the queue
    run.refresh_from_db()
    assert run.status == "rejected"
    assert balances(ledger) == [100] * 5


def test_an_approval_is_checked_again_when_a_worker_starts_it(
    alice: Any, bob: Any, ledger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from governance.celery import app as celery_app
    from governance.services.runs import run_execute
    from governance.tasks import execute_run

    queued: list[int] = []
    monkeypatch.setattr(execute_run, "delay", queued.append)
    run = submit(alice, ledger, UPDATE)
    celery_app.conf.task_always_eager = False  # a worker, not this process, runs it
    try:
        review(bob, run.approval)
    finally:
        celery_app.conf.task_always_eager = True
    run.refresh_from_db()
    assert run.status == "queued" and queued == [run.pk]
    # The grant is revoked while the approved run waits for a worker: it must not run.
    AccessGrant.objects.filter(connection=ledger).delete()
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "now denied" in run.error
    assert balances(ledger) == [100] * 5


def test_an_approval_from_someone_no_longer_an_approver_does_not_count(
    alice: Any, bob: Any, frank: Any, groups: dict[str, Any], ledger: Any
) -> None:
    run = submit(alice, ledger, "DROP TABLE accounts")
    review(bob, run.approval)
    bob.groups.remove(groups["approver"])  # left the team mid-review
    review(frank, run.approval)
    run.refresh_from_db()
    run.approval.refresh_from_db()
    assert run.status == "pending_approval" and run.approval.status == "pending"
    assert balances(ledger) == [100] * 5


def test_an_approval_never_covers_a_statement_swapped_under_it(
    alice: Any, bob: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE)
    # Text and rewritten SQL swapped together behind Warden's back: the recheck alone would
    # decide the new text afresh and find it consistent; the request's hashes refuse it.
    swapped = "UPDATE accounts SET balance = 0"
    QueryRun.objects.filter(pk=run.pk).update(sql=swapped, statements=[swapped])
    review(bob, run.approval)
    run.refresh_from_db()
    assert run.status == "failed" and "not the statement" in run.error
    assert balances(ledger) == [100] * 5


def test_approving_while_the_requester_cancels_never_records_a_grant(
    alice: Any, bob: Any, ledger: Any
) -> None:
    from approvals.services import request_withdraw_for_run

    run = submit(alice, ledger, UPDATE)
    # run_cancel has cancelled the run but its withdraw hook has not run yet: an approver
    # acting in between must not approve (and announce) a request whose run will never run.
    QueryRun.objects.filter(pk=run.pk).update(status="cancelled")
    with pytest.raises(ReviewRefused, match="cancelled"):
        review(bob, run.approval)
    request_withdraw_for_run(run)
    run.approval.refresh_from_db()
    assert run.approval.status == "withdrawn"
    kinds = list(AuditEvent.objects.filter(run_id=run.pk).values_list("kind", flat=True))
    assert "approval.granted" not in kinds and kinds.count("approval.withdrawn") == 1


def test_a_masking_change_while_waiting_means_the_approval_no_longer_covers_it(
    alice: Any, bob: Any, carol: Any, sqlite_conn: Any
) -> None:
    from governance.services.catalog import catalog_refresh
    from governance.services.catalog_admin import masking_rule_set
    from tests.conftest import grant

    catalog_refresh(connection=sqlite_conn)
    grant(sqlite_conn, alice, "read", "write")
    run = submit(alice, sqlite_conn, "UPDATE customers SET city = city WHERE id <= 2")
    assert run.status == "pending_approval"  # its sample of changed rows masks full_name
    masking_rule_set(caller=Caller(user=carol), semantic_type="person_name", strategy="null")
    review(bob, run.approval)
    run.refresh_from_db()
    assert run.status == "failed" and "masking of this statement changed" in run.error


@pytest.mark.parametrize("conn_fixture", ["pg_conn", "mysql_conn"])
def test_server_engines_hold_preview_approve_and_run_a_write(
    request: pytest.FixtureRequest, alice: Any, bob: Any, conn_fixture: str
) -> None:
    import uuid

    import psycopg
    import pymysql

    from tests.conftest import MY, PG, grant

    connection = request.getfixturevalue(conn_fixture)
    table = f"approval_t_{uuid.uuid4().hex[:8]}"
    if connection.engine == "postgresql":
        raw: Any = psycopg.connect(dbname=connection.database, autocommit=True, **PG)
    else:
        raw = pymysql.connect(database=connection.database, autocommit=True, **MY)

    def sql(text: str) -> list[Any]:
        cur = raw.cursor()
        cur.execute(text)
        rows = list(cur.fetchall()) if cur.description else []
        cur.close()
        return rows

    sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, balance INT)")
    try:
        sql(f"INSERT INTO {table} VALUES (1, 100), (2, 100), (3, 100)")
        grant(connection, alice, "read", "write")
        run = submit(alice, connection, f"UPDATE {table} SET balance = balance + 1 WHERE id <= 2")
        assert run.status == "pending_approval"
        run.approval.refresh_from_db()
        assert run.approval.impact["rows"] == [2], run.approval.impact
        assert sql(f"SELECT balance FROM {table} ORDER BY id") == [(100,), (100,), (100,)]
        review(bob, run.approval)
        run.refresh_from_db()
        assert run.status == "succeeded" and run.row_count == 2, run.error
        assert sql(f"SELECT balance FROM {table} ORDER BY id") == [(101,), (101,), (100,)]
        if connection.engine == "postgresql":  # a masked sample of the changed rows
            assert sorted(run.rows) == [[1, 101], [2, 101]]
    finally:
        sql(f"DROP TABLE {table}")
        raw.close()


def test_a_review_row_written_without_its_audit_event_does_not_count(
    alice: Any, bob: Any, frank: Any, ledger: Any
) -> None:
    """Eleventh review: whoever holds the app database's credentials could insert a review
    row; without the audit event only Warden can sign, it approves nothing."""
    from approvals.models import Review

    run = submit(alice, ledger, "DROP TABLE accounts")
    request = run.approval
    assert request.required_approvals == 2
    Review.objects.create(request=request, reviewer=frank, verdict="approve", comment="lgtm")
    review(bob, request)
    run.refresh_from_db()
    request.refresh_from_db()
    assert run.status == "pending_approval" and request.status == "pending"
    assert not AuditEvent.objects.filter(kind="approval.granted", run_id=run.pk).exists()


@pytest.mark.parametrize(
    "change",
    [
        {"approver_groups": ["auditor"]},
        {"required_approvals": 0},
        {"risk": "low"},
        {"capabilities": ["admin", "ddl", "read", "write"]},
        {"duration": dt.timedelta(days=7)},
        {"expires_at": timezone.now() + dt.timedelta(days=30)},
    ],
)
def test_a_request_row_changed_in_the_database_approves_nothing(
    alice: Any, bob: Any, dave: Any, pg_conn: Any, change: dict[str, Any]
) -> None:
    """Thirteenth review: approver groups, required approvals, capabilities and duration are
    bound by the MAC'd `approval.requested` event; an edited row can only be rejected."""
    request = access_request(
        caller=Caller(user=alice), connection=pg_conn, capabilities=["read"], hours=1, reason="x"
    )
    ApprovalRequest.objects.filter(pk=request.pk).update(**change)
    reviewer = dave if change.get("approver_groups") == ["auditor"] else bob
    with pytest.raises(ReviewRefused, match="changed in the database"):
        review(reviewer, request)
    assert not AccessGrant.objects.filter(user=alice).exists()
    review(reviewer, request, approve=False, comment="tampered")  # rejecting still works
    request.refresh_from_db()
    assert request.status == "rejected"


def test_a_held_statement_request_changed_in_the_database_approves_nothing(
    alice: Any, bob: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE)
    ApprovalRequest.objects.filter(pk=run.approval.pk).update(required_approvals=1, risk="low")
    with pytest.raises(ReviewRefused, match="changed in the database"):
        review(bob, run.approval)
    run.refresh_from_db()
    assert run.status == "pending_approval"

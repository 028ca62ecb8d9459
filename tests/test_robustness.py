"""Bad input and broken parts never leave a 500, a stuck run or a hole in the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from governance.celery import app as celery_app
from governance.models import QueryRun
from governance.services.runs import QUEUE_DOWN, Caller, run_cancel, run_submit, runs_reap
from tests.conftest import grant

pytestmark = pytest.mark.django_db(transaction=True)


def submit(user: Any, connection: Any, sql: str, **kw: Any) -> QueryRun:
    run = run_submit(caller=Caller(user=user), connection=connection, sql=sql, **kw)
    run.refresh_from_db()
    return run


def test_a_nul_character_in_a_result_is_shown_not_fatal(alice: Any, sqlite_conn: Any) -> None:
    run = submit(alice, sqlite_conn, "SELECT 'a' || char(0) || 'b' AS x")
    assert run.status == "succeeded", run.error
    assert run.rows == [["a\\x00b"]]
    assert AuditEvent.objects.filter(run_id=run.pk, kind="query.succeeded").exists()


def test_an_export_runs_exactly_one_read(carol: Any, sqlite_conn: Any) -> None:
    run = submit(
        carol,
        sqlite_conn,
        "UPDATE orders SET status = status WHERE id = 1; SELECT 1",
        mode=QueryRun.Mode.EXPORT,
    )
    assert run.status == "denied"
    assert any(r["rule"] == "export-single-read" for r in run.reasons)


def test_transaction_control_is_refused_even_for_admins(carol: Any, pg_conn: Any) -> None:
    run = submit(carol, pg_conn, "UPDATE orders SET status = 'paid' WHERE id = 1; COMMIT")
    assert run.status == "denied"
    assert any(r["rule"] == "transaction-control" for r in run.reasons)


def test_a_batch_with_a_session_setting_still_reads_read_only(carol: Any, pg_conn: Any) -> None:
    run = submit(carol, pg_conn, "SET search_path = public; SELECT count(*) FROM customers")
    assert run.status == "succeeded", run.error
    assert run.read_only


@pytest.mark.parametrize(
    "value", ["²", "\uff11\uff12", "abc", "99999999999999999999999", "-1", "demo\x00", "\x00"]
)
def test_odd_ids_in_query_params_are_not_500s(alice: Any, sqlite_conn: Any, value: str) -> None:
    client = Client()
    client.force_login(alice)
    assert client.get(reverse("editor"), {"run": value}).status_code == 200
    assert client.get(reverse("editor"), {"from": value}).status_code == 200
    response = client.post(reverse("run_create"), {"connection": value, "sql": "SELECT 1"})
    assert response.status_code == 400


def test_a_nul_in_the_purpose_is_refused_and_audited(alice: Any, sqlite_conn: Any) -> None:
    client = Client()
    client.force_login(alice)
    response = client.post(
        reverse("run_create"),
        {"connection": sqlite_conn.pk, "sql": "SELECT 1", "purpose": "a\x00b"},
    )
    assert response.status_code == 400
    assert AuditEvent.objects.filter(kind="query.rejected").exists()


def test_audit_filters_take_any_text(dave: Any) -> None:
    client = Client()
    client.force_login(dave)
    for field in ("kind", "actor", "connection"):
        assert client.get(reverse("audit_events"), {field: "\x00x"}).status_code == 200


def test_runs_whose_worker_vanished_are_failed_and_audited(alice: Any, sqlite_conn: Any) -> None:
    run = submit(alice, sqlite_conn, "SELECT 1")
    long_ago = timezone.now() - dt.timedelta(hours=2)
    QueryRun.objects.filter(pk=run.pk).update(status="running", started_at=long_ago)
    fresh = submit(alice, sqlite_conn, "SELECT 2")
    QueryRun.objects.filter(pk=fresh.pk).update(status="running", started_at=timezone.now())
    assert runs_reap() == 1
    run.refresh_from_db()
    fresh.refresh_from_db()
    assert run.status == "failed" and run.error_kind == "lost"
    assert fresh.status == "running"
    assert AuditEvent.objects.filter(run_id=run.pk, kind="query.failed").exists()


def test_cancelling_a_held_run_withdraws_its_approval_request(alice: Any, sqlite_conn: Any) -> None:
    grant(sqlite_conn, alice, "ddl")
    run = submit(alice, sqlite_conn, "DROP TABLE orders")
    assert run.status == "pending_approval"
    assert run_cancel(caller=Caller(user=alice), run=run)
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert run.approval.status == "withdrawn"
    assert not run_cancel(caller=Caller(user=alice), run=run)  # already finished


def test_a_broker_outage_fails_the_run_instead_of_queueing_it_forever(
    alice: Any, sqlite_conn: Any
) -> None:
    kept = ("task_always_eager", "broker_url", "task_publish_retry")
    saved = {k: celery_app.conf[k] for k in kept}
    celery_app.conf.update(
        task_always_eager=False, broker_url="redis://127.0.0.1:1/0", task_publish_retry=False
    )
    celery_app._pool = None  # type: ignore[attr-defined]
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]
    try:
        run = submit(alice, sqlite_conn, "SELECT 1")
    finally:
        celery_app.conf.update(
            task_always_eager=saved["task_always_eager"],
            broker_url=saved["broker_url"],
            task_publish_retry=saved["task_publish_retry"],
        )
        celery_app._pool = None  # type: ignore[attr-defined]
        celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]
    assert run.status == "failed"
    assert run.error == QUEUE_DOWN
    assert AuditEvent.objects.filter(run_id=run.pk, kind="query.failed").exists()


def test_a_cancel_that_lands_before_the_statement_starts_is_not_lost(
    alice: Any, pg_conn: Any
) -> None:
    from governance.services.runs import run_execute

    pg_conn.statement_timeout_ms = 20_000
    pg_conn.save()
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False  # keep the run queued: we execute it by hand
    celery_app.conf.task_publish_retry = False
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("governance.tasks.execute_run.delay", lambda run_id: None)
            run = submit(alice, pg_conn, "SELECT count(*) FROM orders a, orders b, orders c")
    finally:
        celery_app.conf.task_always_eager = saved
    assert run.status == "queued"
    # The web process flagged the cancel as the worker was about to start the statement.
    QueryRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert run.duration_ms is not None and run.duration_ms < 15_000

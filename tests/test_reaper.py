"""The reaper and late runs: a statement that waited long for a worker is decided again before
it runs, and one that waited an hour is given up."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from governance.models import QueryRun
from governance.services.runs import TOO_LATE, Caller, run_execute, run_submit, runs_reap

pytestmark = pytest.mark.django_db


def _queued(alice: Any, connection: Any, sql: str, age: dt.timedelta) -> QueryRun:
    """A run as a worker would find it: queued (its task still to come), submitted `age` ago."""
    from governance.celery import app

    app.conf.task_always_eager = False
    try:
        run = run_submit(caller=Caller(user=alice), connection=connection, sql=sql)
    finally:
        app.conf.task_always_eager = True
    assert run.status == "queued"
    QueryRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - age)
    return run


def test_a_run_that_waited_runs_only_if_its_requester_may_still_run_it(
    alice: Any, sqlite_conn: Any
) -> None:
    run = _queued(alice, sqlite_conn, "SELECT 1", dt.timedelta(minutes=3))
    alice.is_active = False
    alice.save()
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "disabled" in run.error
    assert run.rows is None or run.rows == []


def test_a_run_that_waited_and_lost_its_access_does_not_run(
    alice: Any, sqlite_conn: Any, groups: Any
) -> None:
    from governance.models import AccessGrant

    run = _queued(alice, sqlite_conn, "SELECT 1", dt.timedelta(minutes=3))
    AccessGrant.objects.filter(connection=sqlite_conn).delete()  # access revoked since
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "now denied" in run.error


def test_a_fresh_run_runs(alice: Any, sqlite_conn: Any) -> None:
    run = _queued(alice, sqlite_conn, "SELECT 1", dt.timedelta(seconds=0))
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_a_run_queued_an_hour_is_given_up_and_told(alice: Any, sqlite_conn: Any) -> None:
    from django.test import override_settings

    run = _queued(alice, sqlite_conn, "SELECT 1", dt.timedelta(minutes=61))
    from governance.celery import app

    app.conf.task_always_eager = False
    try:
        with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):  # the queue cannot be read
            runs_reap()
    finally:
        app.conf.task_always_eager = True
    run.refresh_from_db()
    assert run.status == "failed" and run.error == TOO_LATE
    assert AuditEvent.objects.filter(run_id=run.pk, kind="query.failed").count() == 1

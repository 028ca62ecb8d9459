"""The hot path's one-statement writes keep the ORM's rows and the state machine's rules."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from audit.kinds import EventKind
from audit.models import AuditEvent
from governance.models import QueryRun
from governance.services.caller import Caller, event
from governance.services.run_store import run_insert, run_is_queued, run_update

pytestmark = pytest.mark.django_db(transaction=True)

Status = QueryRun.Status


def new_run(user: Any, connection: Any, status: str) -> QueryRun:
    return QueryRun(
        user=user,
        connection=connection,
        sql="SELECT 1",
        status=status,
        decision="allow",
        risk="low",
        decision_detail={"decision": "allow", "reasons": []},
        statements=["SELECT 1"],
    )


def test_it_inserts_the_run_and_its_event_as_the_orm_would(alice: Any, sqlite_conn: Any) -> None:
    run = new_run(alice, sqlite_conn, Status.QUEUED)
    submitted = event(EventKind.QUERY_SUBMITTED, Caller(user=alice), sqlite_conn, sql="SELECT 1")
    run_insert(run, [submitted])
    stored = QueryRun.objects.get(pk=run.pk)
    assert stored.created_at == run.created_at and stored.statements == ["SELECT 1"]
    assert stored.decision_detail == {"decision": "allow", "reasons": []}
    assert not run._state.adding
    row = AuditEvent.objects.get(pk=submitted.pk)
    assert (row.kind, row.run_id, row.actor_name) == ("query.submitted", run.pk, "alice")
    assert row.connection_name == sqlite_conn.name and row.detail == {}
    assert run_is_queued(run.pk)


def test_an_outcome_only_moves_a_run_still_in_the_expected_status(
    alice: Any, sqlite_conn: Any
) -> None:
    run = new_run(alice, sqlite_conn, Status.QUEUED)
    run_insert(run, [event(EventKind.QUERY_SUBMITTED, Caller(user=alice), sqlite_conn)])
    QueryRun.objects.filter(pk=run.pk).update(status=Status.CANCELLED)
    outcome = event(EventKind.QUERY_SUCCEEDED, Caller(user=alice), sqlite_conn, run_id=run.pk)
    moved = run_update(run.pk, Status.RUNNING, {"status": Status.SUCCEEDED, "rows": [[1]]}, outcome)
    assert moved is False
    stored = QueryRun.objects.get(pk=run.pk)
    assert stored.status == Status.CANCELLED and stored.rows == []  # a late outcome loses
    assert AuditEvent.objects.filter(pk=outcome.pk, run_id=run.pk).exists()  # but is recorded
    assert not run_is_queued(run.pk)


def test_an_outcome_sets_the_fields_of_a_running_run(alice: Any, sqlite_conn: Any) -> None:
    run = new_run(alice, sqlite_conn, Status.RUNNING)
    run_insert(run, [event(EventKind.QUERY_SUBMITTED, Caller(user=alice), sqlite_conn)])
    finished = timezone.now()
    fields = {"status": Status.FAILED, "error": "x", "row_count": None, "finished_at": finished}
    assert run_update(
        run.pk, Status.RUNNING, fields, event(EventKind.QUERY_FAILED, Caller(user=alice))
    )
    stored = QueryRun.objects.get(pk=run.pk)
    assert (stored.status, stored.error, stored.finished_at) == (Status.FAILED, "x", finished)


def test_a_reads_intent_waits_for_no_disk_and_leaves_the_session_as_it_was(
    alice: Any, sqlite_conn: Any
) -> None:
    from django.db import connection as db

    run = new_run(alice, sqlite_conn, Status.QUEUED)
    submitted = event(EventKind.QUERY_SUBMITTED, Caller(user=alice), sqlite_conn, sql="SELECT 1")
    run_insert(run, [submitted], durable=False)
    stored = QueryRun.objects.get(pk=run.pk)
    assert stored.statements == ["SELECT 1"] and stored.status == Status.QUEUED
    assert AuditEvent.objects.get(pk=submitted.pk).run_id == run.pk
    if db.vendor == "postgresql":  # SET LOCAL lasted for that one transaction only
        with db.cursor() as cursor:
            cursor.execute("SELECT current_setting('synchronous_commit')")
            assert cursor.fetchone() == ("on",)


@pytest.mark.parametrize(
    ("read_only", "categories", "poolable"),
    [
        (True, ["read"], True),
        (True, ["read", "read"], True),
        (True, ["read", "session"], False),  # e.g. an approved pg_advisory_lock: outlives ROLLBACK
        (True, [], False),
        (False, ["write"], False),
    ],
)
def test_only_plain_reads_give_their_session_back_to_the_pool(
    read_only: bool, categories: list[str], poolable: bool
) -> None:
    from governance.services.runs import _poolable

    run = QueryRun(
        read_only=read_only,
        decision_detail={"statements": [{"category": c} for c in categories]},
    )
    assert _poolable(run) is poolable


def test_with_server_side_binding_the_intent_is_stored_the_same(
    alice: Any, sqlite_conn: Any
) -> None:
    """An opt-in OPTION binds every Django cursor on the server: the one statement still works."""
    from django.db import connection as db

    options = db.settings_dict["OPTIONS"]
    options["server_side_binding"] = True
    db.features.__dict__.pop("uses_server_side_binding", None)  # a cached_property
    db.close()  # reconnect with it
    try:
        run = new_run(alice, sqlite_conn, Status.QUEUED)
        run_insert(
            run, [event(EventKind.QUERY_SUBMITTED, Caller(user=alice), sqlite_conn)], durable=False
        )
    finally:
        del options["server_side_binding"]
        db.features.__dict__.pop("uses_server_side_binding", None)
        db.close()
    assert QueryRun.objects.filter(pk=run.pk).exists()


def test_a_lazy_intent_turns_the_disk_wait_off_for_its_own_commit_only(
    alice: Any, sqlite_conn: Any
) -> None:
    """The statement itself sets synchronous_commit for its transaction (a planner that skipped
    the expression would leave every read's intent waiting for the disk); inside a caller's
    transaction it never does, since the setting would outlive the statement."""
    from django.db import connection as db
    from django.db import transaction

    from governance.services.run_store import _insert_with_event_sql, _values

    if db.vendor != "postgresql":
        return
    run = new_run(alice, sqlite_conn, Status.QUEUED)
    submitted = event(EventKind.QUERY_SUBMITTED, Caller(user=alice), sqlite_conn)
    with transaction.atomic():
        with db.cursor() as cursor:
            params = [*_values(run), *_values(submitted, skip="run_id"), True]
            cursor.execute(_insert_with_event_sql(), params)
            cursor.execute("SELECT current_setting('synchronous_commit')")
            assert cursor.fetchone() == ("off",)
        transaction.set_rollback(True)
    with transaction.atomic():
        run = new_run(alice, sqlite_conn, Status.QUEUED)
        run_insert(run, [event(EventKind.QUERY_SUBMITTED, Caller(user=alice))], durable=False)
        with db.cursor() as cursor:
            cursor.execute("SELECT current_setting('synchronous_commit')")
            assert cursor.fetchone() == ("on",)


@pytest.fixture
def events_dropped_by_a_trigger(db: Any) -> Any:
    """A DBA's trigger that silently drops some audit events (BEFORE INSERT … RETURN NULL)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the one-statement writes are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION drop_event() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.kind IN ('query.succeeded', 'query.submitted') THEN RETURN NULL; END IF; "
            "RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER drop_event BEFORE INSERT ON audit_auditevent FOR EACH ROW "
            "EXECUTE FUNCTION drop_event()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER drop_event ON audit_auditevent")
        cursor.execute("DROP FUNCTION drop_event()")


def test_no_run_is_inserted_or_moved_on_without_its_event(
    alice: Any, sqlite_conn: Any, events_dropped_by_a_trigger: Any
) -> None:
    from django.db import DatabaseError

    run = new_run(alice, sqlite_conn, Status.QUEUED)
    with pytest.raises(DatabaseError, match="audit event was not recorded"):
        run_insert(run, [event(EventKind.QUERY_SUBMITTED, Caller(user=alice), sqlite_conn)])
    assert not QueryRun.objects.exists()

    running = new_run(alice, sqlite_conn, Status.RUNNING)
    running.save()
    outcome = event(EventKind.QUERY_SUCCEEDED, Caller(user=alice), sqlite_conn, run_id=running.pk)
    with pytest.raises(DatabaseError, match="audit event was not recorded"):
        run_update(running.pk, Status.RUNNING, {"status": Status.SUCCEEDED, "rows": [[1]]}, outcome)
    stored = QueryRun.objects.get(pk=running.pk)
    assert stored.status == Status.RUNNING and stored.rows == []  # no rows to release

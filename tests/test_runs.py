"""The one path against real targets: decide, hold, deny, run, record."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from governance.models import QueryRun
from governance.services.runs import Caller, InvalidSQL, run_submit
from tests.conftest import make_connection

# Real commits: on_commit queues the run, which executes in-process (Celery eager).
pytestmark = pytest.mark.django_db(transaction=True)


def submit(user: Any, connection: Any, sql: str, **kw: Any) -> QueryRun:
    run = run_submit(caller=Caller(user=user, channel="web"), connection=connection, sql=sql, **kw)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("conn_fixture", ["sqlite_conn", "pg_conn", "mysql_conn"])
def test_an_analyst_read_runs_and_returns_typed_rows(
    request: pytest.FixtureRequest, alice: Any, conn_fixture: str
) -> None:
    connection = request.getfixturevalue(conn_fixture)
    run = submit(alice, connection, "SELECT id, city, country FROM customers ORDER BY id LIMIT 5")
    assert run.status == "succeeded", run.error
    assert [c["name"] for c in run.columns] == ["id", "city", "country"]
    assert run.row_count == 5 and len(run.rows) == 5
    assert run.rows[0][0] == 1
    kinds = list(AuditEvent.objects.filter(run_id=run.pk).values_list("kind", flat=True))
    assert sorted(kinds) == ["query.submitted", "query.succeeded"]


@pytest.mark.parametrize("conn_fixture", ["sqlite_conn", "pg_conn", "mysql_conn"])
def test_results_are_capped_at_the_connections_row_cap(
    request: pytest.FixtureRequest, alice: Any, conn_fixture: str
) -> None:
    connection = request.getfixturevalue(conn_fixture)
    connection.row_cap = 10
    connection.save()
    run = submit(alice, connection, "SELECT id FROM orders")
    assert run.status == "succeeded"
    assert len(run.rows) == 10 and run.truncated


def test_nulls_stay_distinct_from_the_text_null(alice: Any, sqlite_conn: Any) -> None:
    run = submit(alice, sqlite_conn, "SELECT NULL AS a, 'NULL' AS b")
    assert run.rows == [[None, "NULL"]]


def test_time_values_read_as_the_database_writes_them(alice: Any, mysql_conn: Any) -> None:
    """MySQL TIME arrives as a timedelta, which Python prints as '-1 day, 23:00:00'."""
    run = submit(
        alice,
        mysql_conn,
        "SELECT CAST('-01:00:00' AS TIME) AS a, CAST('-838:59:59' AS TIME) AS b, "
        "CAST('838:59:59' AS TIME) AS c, CAST('00:00:01.25' AS TIME(2)) AS d",
    )
    assert run.status == "succeeded", run.error
    assert run.rows == [["-01:00:00", "-838:59:59", "838:59:59", "00:00:01.250000"]]


def test_a_drop_on_production_is_held_for_approval_with_a_reason(
    alice: Any, carol: Any, sqlite_conn: Any
) -> None:
    from tests.conftest import grant

    grant(sqlite_conn, alice, "read", "ddl")
    run = submit(alice, sqlite_conn, "DROP TABLE orders")
    assert run.status == "pending_approval"
    assert run.risk == "critical"
    assert run.reasons and all(r["message"] for r in run.reasons)
    assert run.approval.sql_sha256  # an approval request bound to the statement exists
    # nothing ran: the table is still there
    assert submit(alice, sqlite_conn, "SELECT count(*) FROM orders").status == "succeeded"


def test_a_write_without_the_capability_is_denied(alice: Any, pg_conn: Any) -> None:
    run = submit(alice, pg_conn, "UPDATE orders SET status = 'paid' WHERE id = 1")
    assert run.status == "denied"
    assert any(r["rule"] == "capability" for r in run.reasons)


@pytest.mark.parametrize(
    "sql",
    [
        "GRANT ALL ON customers TO public",
        "SET ROLE postgres",
        "COPY customers TO '/tmp/x.csv'",
        "SELECT pg_read_file('/etc/passwd')",
        "DO $$ BEGIN PERFORM 1; END $$",
        "SELECT pg_terminate_backend(1)",
    ],
)
def test_dangerous_categories_are_denied_on_production(alice: Any, pg_conn: Any, sql: str) -> None:
    run = submit(alice, pg_conn, sql)
    assert run.status == "denied", run.decision_detail


def test_the_batch_takes_its_strictest_decision(alice: Any, pg_conn: Any) -> None:
    run = submit(alice, pg_conn, "SELECT 1; GRANT ALL ON customers TO public")
    assert run.status == "denied"
    assert len(run.statement_summaries) == 2


def test_a_parse_error_is_denied_with_the_parsers_message(alice: Any, pg_conn: Any) -> None:
    run = submit(alice, pg_conn, "SELEC FROM WHERE (")
    assert run.status == "denied" and run.risk == "low"
    assert run.reasons[0]["rule"] == "syntax-error"
    assert run.reasons[0]["message"].startswith("Syntax error near")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("", "Empty statement"),
        ("   \n\t ", "Empty statement"),
        ("SELECT 1\x00", "NUL byte"),
        ("SELECT '\udcff'", "not valid UTF-8"),
        ("SELECT 1 -- " + "x" * (1024 * 1024), "too large"),
    ],
)
def test_bad_input_gets_a_clear_error(alice: Any, sqlite_conn: Any, sql: str, message: str) -> None:
    with pytest.raises(InvalidSQL, match=message):
        submit(alice, sqlite_conn, sql)


def test_ten_thousand_nested_parentheses_are_denied_not_crashed(
    alice: Any, sqlite_conn: Any
) -> None:
    run = submit(alice, sqlite_conn, "SELECT " + "(" * 10_000 + "1" + ")" * 10_000)
    assert run.status in ("denied", "succeeded")
    assert run.status == "denied" or run.rows == [[1]]


def test_an_unreachable_target_fails_with_a_generic_message(alice: Any, groups: Any) -> None:
    from tests.conftest import grant

    connection = make_connection(
        name="gone", engine="postgresql", database="x", host="127.0.0.1", port=1, username="u"
    )
    grant(connection, groups["analyst"], "read")
    run = submit(alice, connection, "SELECT 1")
    assert run.status == "failed"
    assert run.error.startswith("Could not connect")
    event = AuditEvent.objects.get(run_id=run.pk, kind="query.failed")
    assert event.detail["error_kind"] == "connect"


def test_a_wrong_password_fails_and_is_audited(alice: Any, mysql_target: str, groups: Any) -> None:
    from tests.conftest import READER, grant

    connection = make_connection(
        name="bad-pw",
        engine="mysql",
        database=mysql_target,
        host="127.0.0.1",
        port=3306,
        username=READER,
        password="not-the-password",
    )
    grant(connection, groups["analyst"], "read")
    run = submit(alice, connection, "SELECT 1")
    assert run.status == "failed"
    assert "not-the-password" not in run.error
    event = AuditEvent.objects.get(run_id=run.pk, kind="query.failed")
    assert event.detail["error_kind"] == "auth"
    assert "not-the-password" not in str(event.detail)


@pytest.mark.parametrize("conn_fixture", ["pg_conn", "mysql_conn", "sqlite_conn"])
def test_a_statement_hitting_the_timeout_fails_clearly(
    request: pytest.FixtureRequest, alice: Any, conn_fixture: str
) -> None:
    connection = request.getfixturevalue(conn_fixture)
    connection.statement_timeout_ms = 300
    connection.save()
    slow = (
        "SELECT count(*) FROM orders a, orders b, orders c"
        if conn_fixture != "sqlite_conn"
        else "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) "
        "SELECT count(*) FROM r"
    )
    run = submit(alice, connection, slow)
    assert run.status == "failed", run.rows
    assert "timeout" in run.error
    assert run.error_kind == "timeout"


def test_an_unknown_connection_reads_the_same_as_a_forbidden_one(alice: Any, db: Any) -> None:
    from governance.services.access import UnknownConnection, connection_for

    forbidden = make_connection(name="secret-db", engine="sqlite", database="/tmp/nope")
    with pytest.raises(UnknownConnection) as missing:
        connection_for(user=alice, name="does-not-exist")
    with pytest.raises(UnknownConnection) as denied:
        connection_for(user=alice, name=forbidden.name)
    assert str(missing.value).replace("does-not-exist", "X") == str(denied.value).replace(
        "secret-db", "X"
    )


def test_expired_grants_give_no_access(alice: Any, db: Any) -> None:
    import datetime as dt

    from django.utils import timezone

    from governance.services.access import UnknownConnection, connection_for
    from tests.conftest import grant

    connection = make_connection(name="tmp", engine="sqlite", database="/tmp/nope")
    grant(connection, alice, "read", expires_at=timezone.now() - dt.timedelta(minutes=1))
    with pytest.raises(UnknownConnection):
        connection_for(user=alice, name="tmp")

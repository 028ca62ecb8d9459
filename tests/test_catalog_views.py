"""Catalogue views that expose credentials or values, EXPLAIN and SQLite's pragma functions,
through the one path against real PostgreSQL, MariaDB and SQLite targets."""

from __future__ import annotations

import json
from typing import Any

import pymysql
import pytest

from governance import engine
from governance.models import Guardrail, QueryRun
from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh
from governance.services.runs import run_submit
from tests.conftest import MY

pytestmark = pytest.mark.django_db(transaction=True)


def submit(user: Any, connection: Any, sql: str) -> QueryRun:
    run = run_submit(caller=Caller(user=user), connection=connection, sql=sql)
    run.refresh_from_db()
    return run


def discovered(connection: Any) -> Any:
    catalog_refresh(connection=connection)
    connection.refresh_from_db()
    return connection


def rules(run: QueryRun) -> set[str]:
    return {r["rule"] for r in run.reasons}


# ------------------------------------------------------------------------ credentials

PG_CREDENTIALS = [
    "SELECT rolname, rolpassword FROM pg_authid",
    'SELECT * FROM "pg_catalog"."pg_authid"',
    "SELECT usename, passwd FROM PG_CATALOG.PG_SHADOW",
    "SELECT count(*) FROM orders o JOIN pg_shadow s ON s.usesysid = o.id",
    "WITH r AS (SELECT rolpassword FROM pg_authid) SELECT * FROM r",
    "SELECT status FROM orders UNION SELECT passwd FROM pg_shadow",
    "SELECT (SELECT rolpassword FROM pg_authid LIMIT 1) AS p",
    "TABLE pg_authid",
    "SELECT * FROM pg_hba_file_rules",
    "SELECT * FROM pg_file_settings",
    "SELECT name, setting FROM pg_settings",
    "SELECT * FROM pg_user_mappings",
    "SELECT subconninfo FROM pg_subscription",
    "SELECT * FROM information_schema.user_mapping_options",
    "SHOW ALL",
    "SHOW primary_conninfo",
    "SELECT current_setting('app.jwt_secret', true)",
    "SELECT query FROM pg_stat_activity",
    "SELECT table_to_xml('pg_authid', true, false, '')",
    "PREPARE leak AS SELECT rolpassword FROM pg_authid",
    "SELECT pg_read_file('pg_hba.conf')",
]
MY_CREDENTIALS = [
    "SELECT user, authentication_string FROM mysql.user",
    "SELECT * FROM `mysql`.`global_priv`",
    "SELECT * FROM MYSQL.USER",
    "SELECT * FROM (SELECT Priv FROM mysql.global_priv) t",
    "SELECT status FROM orders UNION SELECT Password FROM mysql.servers",
    "SELECT * FROM mysql.db",
    "SELECT * FROM mysql.tables_priv",
    "SELECT * FROM information_schema.USER_PRIVILEGES",
    "SELECT * FROM performance_schema.threads",
    "USE mysql; SELECT * FROM user",
    "SHOW GRANTS",
    "SHOW GRANTS FOR 'root'@'localhost'",
    "SHOW CREATE USER root@localhost",
    "SHOW FULL PROCESSLIST",
    "SELECT LOAD_FILE('/etc/mysql/debian.cnf')",
]
SQLITE_CREDENTIALS = [
    "SELECT * FROM sqlite_user",
    'SELECT uname, pw FROM "SQLITE_USER"',
    "ATTACH DATABASE '/tmp/other.sqlite3' AS other",
]


@pytest.mark.parametrize("sql", PG_CREDENTIALS)
def test_an_analyst_cannot_read_postgres_credentials(alice: Any, pg_conn: Any, sql: str) -> None:
    run = submit(alice, pg_conn, sql)
    assert run.status == "denied", run.decision_detail
    assert rules(run) & {"credentials", "server-files"}, run.reasons
    assert run.rows == [] and run.started_at is None


@pytest.mark.parametrize("sql", MY_CREDENTIALS)
def test_an_analyst_cannot_read_mysql_credentials(alice: Any, mysql_conn: Any, sql: str) -> None:
    run = submit(alice, mysql_conn, sql)
    assert run.status == "denied", run.decision_detail
    assert rules(run) & {"credentials", "server-files"}, run.reasons


@pytest.mark.parametrize("sql", SQLITE_CREDENTIALS)
def test_an_analyst_cannot_read_sqlite_credentials(alice: Any, sqlite_conn: Any, sql: str) -> None:
    run = submit(alice, sqlite_conn, sql)
    assert run.status == "denied", run.decision_detail
    assert rules(run) & {"credentials", "server-files"}, run.reasons


def test_the_reason_says_what_the_view_holds(alice: Any, pg_conn: Any) -> None:
    run = submit(alice, pg_conn, "SELECT rolpassword FROM pg_authid")
    (reason,) = [r for r in run.reasons if r["rule"] == "credentials"]
    assert "pg_authid" in reason["message"] and "password" in reason["message"]
    assert "administrators" in reason["message"]


@pytest.mark.parametrize(
    ("conn_fixture", "sql"),
    [
        ("pg_conn", "SELECT rolname, rolpassword FROM pg_authid"),
        ("pg_conn", "SELECT name, setting FROM pg_settings WHERE name = 'work_mem'"),
        ("mysql_conn", "SELECT user, host FROM mysql.user"),
        ("mysql_conn", "SHOW GRANTS"),
    ],
)
def test_an_admin_reads_credentials(
    request: pytest.FixtureRequest, carol: Any, conn_fixture: str, sql: str
) -> None:
    connection = discovered(request.getfixturevalue(conn_fixture))
    run = submit(carol, connection, sql)
    assert run.status == "succeeded", (run.error, run.reasons)
    assert run.rows


def test_a_guardrail_cannot_let_an_analyst_read_credentials(
    alice: Any, pg_conn: Any, mysql_conn: Any
) -> None:
    everything = [category.value for category in engine.Category]
    Guardrail.objects.create(
        name="allow-everything", action="allow", priority=0, categories=everything
    )
    assert submit(alice, pg_conn, "SELECT 1 AS one").status == "succeeded"
    for connection, sql in [
        (pg_conn, "SELECT rolpassword FROM pg_authid"),
        (pg_conn, "SELECT pg_read_file('pg_hba.conf')"),
        (mysql_conn, "SELECT authentication_string FROM mysql.user"),
    ]:
        run = submit(alice, connection, sql)
        assert run.status == "denied", (sql, run.reasons)


# ------------------------------------------------------------------------ statistics views


def test_mariadb_column_statistics_are_held(alice: Any, mysql_conn: Any, mysql_target: str) -> None:
    admin = pymysql.connect(database=mysql_target, autocommit=True, **MY)
    try:
        with admin.cursor() as cur:
            cur.execute("ANALYZE TABLE customers PERSISTENT FOR ALL")
            cur.fetchall()
            cur.execute(
                "SELECT max_value FROM mysql.column_stats WHERE db_name = %s "
                "AND table_name = 'customers' AND column_name = 'email'",
                (mysql_target,),
            )
            (value,) = cur.fetchone()
    finally:
        admin.close()
    raw = value.decode() if isinstance(value, bytes) else str(value)
    assert "@" in raw  # the statistics really hold a customer's email
    connection = discovered(mysql_conn)
    for sql in [
        "SELECT column_name, min_value, max_value FROM mysql.column_stats",
        "SELECT * FROM mysql.COLUMN_STATS WHERE table_name = 'customers'",
        "SELECT * FROM mysql.innodb_index_stats",
        "SELECT * FROM mysql.table_stats",
        "SELECT * FROM information_schema.INNODB_FT_INDEX_TABLE",
    ]:
        run = submit(alice, connection, sql)
        assert run.status == "denied", (sql, run.reasons)
        assert "masking" in rules(run)
        assert raw not in json.dumps(run.rows)


def test_postgres_statistics_are_held(alice: Any, pg_conn: Any) -> None:
    connection = discovered(pg_conn)
    run = submit(alice, connection, "SELECT most_common_vals FROM pg_catalog.pg_stats")
    assert run.status == "denied" and "masking" in rules(run)


# ------------------------------------------------------------------------ EXPLAIN


@pytest.mark.parametrize(
    ("conn_fixture", "sql", "plan_word"),
    [
        ("pg_conn", "EXPLAIN SELECT * FROM customers WHERE id = 1", "customers"),
        ("pg_conn", "EXPLAIN (FORMAT JSON) SELECT email FROM customers", "customers"),
        ("pg_conn", "EXPLAIN (COSTS off) SELECT c.email FROM customers c", "customers"),
        ("mysql_conn", "EXPLAIN SELECT * FROM customers WHERE id = 1", "customers"),
        ("mysql_conn", "EXPLAIN SELECT email FROM customers ORDER BY id", "customers"),
        ("sqlite_conn", "EXPLAIN QUERY PLAN SELECT * FROM customers WHERE id = 1", "customers"),
        ("sqlite_conn", "EXPLAIN SELECT email FROM customers", "OpenRead"),
    ],
)
def test_explain_of_a_masked_read_returns_a_plan(
    request: pytest.FixtureRequest, alice: Any, conn_fixture: str, sql: str, plan_word: str
) -> None:
    connection = discovered(request.getfixturevalue(conn_fixture))
    run = submit(alice, connection, sql)
    assert run.status == "succeeded", (run.error, run.reasons)
    assert plan_word in json.dumps(run.rows)


@pytest.mark.parametrize("conn_fixture", ["pg_conn", "sqlite_conn"])
def test_explain_of_a_probe_on_an_ssn_is_held(
    request: pytest.FixtureRequest, alice: Any, conn_fixture: str
) -> None:
    connection = discovered(request.getfixturevalue(conn_fixture))
    run = submit(alice, connection, "EXPLAIN SELECT id FROM customers WHERE ssn = '282-32-3658'")
    assert run.status == "pending_approval", run.reasons
    assert "hold-restricted-predicates" in rules(run)


@pytest.mark.parametrize(
    ("conn_fixture", "sql"),
    [
        ("pg_conn", "EXPLAIN ANALYZE SELECT ssn FROM customers"),
        ("pg_conn", "EXPLAIN (ANALYZE) SELECT email FROM customers"),
        ("pg_conn", "EXPLAIN (ANALYZE true, FORMAT JSON) SELECT email FROM customers"),
        ("pg_conn", "EXPLAIN VERBOSE SELECT email FROM customers"),
        ("pg_conn", "EXPLAIN (SETTINGS) SELECT email FROM customers"),
        ("mysql_conn", "ANALYZE SELECT email FROM customers"),
        ("mysql_conn", "ANALYZE FORMAT=JSON SELECT email FROM customers"),
        ("mysql_conn", "EXPLAIN EXTENDED SELECT email FROM customers"),
        # MariaDB reads the const row while planning and prints its email in the condition
        (
            "mysql_conn",
            "EXPLAIN FORMAT=JSON SELECT 1 FROM customers c JOIN orders o "
            "ON o.status = c.email WHERE c.id = 1",
        ),
        (
            "mysql_conn",
            "EXPLAIN SELECT 1 FROM customers c JOIN orders o ON o.status = c.email WHERE c.id = 1",
        ),
    ],
)
def test_explain_that_runs_the_statement_or_prints_values_is_refused(
    request: pytest.FixtureRequest, alice: Any, conn_fixture: str, sql: str
) -> None:
    connection = discovered(request.getfixturevalue(conn_fixture))
    run = submit(alice, connection, sql)
    assert run.status == "denied", (run.status, run.reasons)
    assert "@" not in json.dumps(run.rows)


# ------------------------------------------------------------------------ SQLite pragmas


def test_pragma_table_info_runs_on_sqlite(alice: Any, sqlite_conn: Any) -> None:
    connection = discovered(sqlite_conn)
    run = submit(alice, connection, "SELECT name FROM pragma_table_info('orders') ORDER BY cid")
    assert run.status == "succeeded", (run.error, run.reasons)
    assert [row[0] for row in run.rows][:2] == ["id", "customer_id"]
    run = submit(
        alice,
        connection,
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_list(m.name) p "
        "WHERE m.type = 'table' ORDER BY 1",
    )
    assert run.status == "succeeded", (run.error, run.reasons)


def test_pragma_functions_that_read_data_stay_refused(alice: Any, sqlite_conn: Any) -> None:
    run = submit(alice, sqlite_conn, "SELECT * FROM pragma_integrity_check")
    assert run.status == "denied"

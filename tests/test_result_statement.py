"""What a batch returns is what is scanned and marked: the rows of its last statement that
returned rows, whatever came after it.

The review got raw e-mails and phones out of ticket bodies with
`SELECT id, body FROM support_tickets WHERE id <= 3; SELECT FROM public_reports LIMIT 1`: the
driver returned the tickets, while the free-text safety net scanned the columns of the last
read (which had none).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from django.test import Client
from django.urls import reverse

from governance.engine import pii
from governance.models import QueryRun
from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh
from governance.services.runs import run_submit
from tests.conftest import MY, PG

pytestmark = pytest.mark.django_db(transaction=True)

TICKETS = "SELECT id, body FROM support_tickets WHERE id <= 3"


def submit(user: Any, connection: Any, sql: str) -> QueryRun:
    catalog_refresh(connection=connection)
    connection.refresh_from_db()
    run = run_submit(caller=Caller(user=user), connection=connection, sql=sql)
    run.refresh_from_db()
    assert run.status == "succeeded", (run.status, run.error, run.reasons)
    return run


def embedded(bodies: list[str]) -> set[str]:
    """The e-mails, phones... written inside ticket bodies."""
    return {body[m.start : m.end] for body in bodies for m in pii.find_in_text(body)}


def assert_clean(run: QueryRun, raw: set[str]) -> None:
    shown = json.dumps(run.rows)
    assert raw and not any(value in shown for value in raw), shown[:500]


@pytest.fixture
def pg_bodies(pg_target: str) -> set[str]:
    with psycopg.connect(dbname=pg_target, **PG) as conn:
        return embedded([r[0] for r in conn.execute(TICKETS.replace("id, body", "body"))])


@pytest.fixture
def my_bodies(mysql_target: str) -> set[str]:
    conn = pymysql.connect(database=mysql_target, **MY)
    try:
        with conn.cursor() as cur:
            cur.execute(TICKETS.replace("id, body", "body"))
            return embedded([r[0] for r in cur.fetchall()])
    finally:
        conn.close()


@pytest.fixture
def sqlite_bodies(sqlite_target: Path) -> set[str]:
    with sqlite3.connect(sqlite_target) as conn:
        return embedded([r[0] for r in conn.execute(TICKETS.replace("id, body", "body"))])


@pytest.mark.parametrize(
    ("sql", "returned", "columns"),
    [
        (f"{TICKETS}; SELECT FROM public_reports LIMIT 1", 0, ["id", "body"]),  # the review's
        (f"{TICKETS}; SHOW work_mem", 1, ["work_mem"]),
        (f"SELECT 1 AS one; {TICKETS}; SELECT FROM public_reports", 1, ["id", "body"]),
    ],
)
def test_postgres_scans_the_statement_whose_rows_it_returns(
    pg_conn: Any, alice: Any, pg_bodies: set[str], sql: str, returned: int, columns: list[str]
) -> None:
    run = submit(alice, pg_conn, sql)
    assert run.result_statement == returned
    assert [c["name"] for c in run.columns] == columns
    assert_clean(run, pg_bodies)


def test_postgres_a_write_in_between(pg_conn: Any, carol: Any, pg_bodies: set[str]) -> None:
    sql = f"{TICKETS}; UPDATE orders SET status = status WHERE id = 1; SELECT FROM public_reports"
    run = submit(carol, pg_conn, sql)
    assert run.result_statement == 0 and len(run.rows) == 3
    assert_clean(run, pg_bodies)


def test_the_masked_columns_and_the_grid_follow_the_returned_statement(
    pg_conn: Any, alice: Any
) -> None:
    run = submit(alice, pg_conn, "SELECT id, email FROM customers LIMIT 2; SELECT FROM orders")
    assert run.result_statement == 0 and run.masked == ["email"]
    client = Client()
    client.force_login(alice)
    page = client.get(reverse("editor") + f"?run={run.pk}").content.decode()
    assert 'class="masked" title="Masked: email' in page
    assert "Why is this masked? (1 column)" in page
    # runs recorded before they said which statement it was: the last read, as then
    legacy = submit(alice, pg_conn, "SELECT id, email FROM customers LIMIT 2")
    QueryRun.objects.filter(pk=legacy.pk).update(result_statement=None)
    page = client.get(reverse("editor") + f"?run={legacy.pk}").content.decode()
    assert 'class="masked" title="Masked: email' in page


def test_mariadb_a_show_last_is_scanned_whole(
    mysql_conn: Any, alice: Any, mysql_target: str, my_bodies: set[str]
) -> None:
    comment = "Questions to report.owner@example.com or +1 415 555 0134"
    admin = pymysql.connect(database=mysql_target, autocommit=True, **MY)
    try:
        with admin.cursor() as cur:
            cur.execute(f"ALTER TABLE public_reports COMMENT = '{comment}'")
        run = submit(alice, mysql_conn, f"{TICKETS}; SHOW TABLE STATUS LIKE 'public_reports'")
        # SHOW has no lineage: every text cell is scanned (it fails closed)
        assert run.result_statement == 1 and len(run.rows) == 1
        shown = json.dumps(run.rows)
        assert "report.owner@example.com" not in shown and "[email]" in shown
        assert_clean(run, my_bodies | {"report.owner@example.com"})
    finally:
        with admin.cursor() as cur:
            cur.execute("ALTER TABLE public_reports COMMENT = ''")
        admin.close()


def test_mariadb_a_write_in_between(mysql_conn: Any, carol: Any, my_bodies: set[str]) -> None:
    run = submit(carol, mysql_conn, f"{TICKETS}; UPDATE orders SET status = status WHERE id = 1")
    assert run.result_statement == 0 and len(run.rows) == 3
    assert_clean(run, my_bodies)


def test_sqlite_a_write_in_between_and_a_pragma_last(
    sqlite_conn: Any, carol: Any, alice: Any, sqlite_bodies: set[str]
) -> None:
    run = submit(
        carol,
        sqlite_conn,
        f"{TICKETS}; UPDATE orders SET status = status WHERE id = 1; SELECT 1 AS one WHERE 0",
    )
    assert run.result_statement == 2 and run.rows == []
    pragma = submit(alice, sqlite_conn, f"{TICKETS}; PRAGMA table_info(orders)")
    assert pragma.result_statement == 1 and "status" in json.dumps(pragma.rows)
    bodies = submit(alice, sqlite_conn, f"SELECT 1 AS one; {TICKETS}")
    assert bodies.result_statement == 1 and len(bodies.rows) == 3
    assert_clean(bodies, sqlite_bodies)

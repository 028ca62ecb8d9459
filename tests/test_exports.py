"""CSV exports stop at the connection's export row limit and say whether that cut anything."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from governance.models import QueryRun
from governance.services.caller import Caller
from governance.services.exports import run_export_csv
from governance.services.runs import run_submit

pytestmark = pytest.mark.django_db(transaction=True)


def export(user: Any, connection: Any, sql: str, batch_size: int = 5000) -> list[list[str]]:
    run = run_submit(
        caller=Caller(user=user, channel="cli"),
        connection=connection,
        sql=sql,
        mode=QueryRun.Mode.EXPORT,
    )
    assert run.status == QueryRun.Status.QUEUED, run.decision_detail
    body = b"".join(run_export_csv(run=run, batch_size=batch_size)).decode()
    return list(csv.reader(io.StringIO(body)))


def last_run() -> QueryRun:
    return QueryRun.objects.latest("id")


@pytest.mark.parametrize("batch_size", [2, 3, 5000])  # the limit on, before and after a batch
@pytest.mark.parametrize(("rows", "truncated"), [(5, False), (6, True), (4, False)])
def test_a_streamed_export_is_truncated_only_when_rows_were_left_out(
    alice: Any, sqlite_conn: Any, batch_size: int, rows: int, truncated: bool
) -> None:
    sqlite_conn.export_row_limit = 5
    sqlite_conn.save()
    out = export(alice, sqlite_conn, f"SELECT id FROM orders ORDER BY id LIMIT {rows}", batch_size)
    assert len(out) - 1 == min(rows, 5)
    run = last_run()
    assert run.status == "succeeded" and run.row_count == min(rows, 5)
    assert run.truncated is truncated


@pytest.mark.parametrize(("rows", "truncated"), [(5, False), (6, True), (4, False)])
def test_a_copy_export_is_truncated_only_when_rows_were_left_out(
    alice: Any, pg_conn: Any, rows: int, truncated: bool
) -> None:
    pg_conn.export_row_limit = 5
    pg_conn.save()
    out = export(alice, pg_conn, f"SELECT id, status FROM orders ORDER BY id LIMIT {rows}")
    assert out[0] == ["id", "status"]
    assert [int(r[0]) for r in out[1:]] == list(range(1, min(rows, 5) + 1))
    run = last_run()
    assert run.status == "succeeded" and run.row_count == min(rows, 5)
    assert run.truncated is truncated


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM orders ORDER BY id LIMIT 3 -- the first three",
        "SELECT id FROM orders ORDER BY id LIMIT 3;",
    ],
)
def test_a_copy_export_ending_in_a_comment_or_semicolon(alice: Any, pg_conn: Any, sql: str) -> None:
    out = export(alice, pg_conn, sql)
    assert out == [["id"], ["1"], ["2"], ["3"]]
    assert last_run().truncated is False


@pytest.mark.parametrize("engine", ["pg_conn", "sqlite_conn"])  # COPY, and the cursor path
def test_a_column_alias_that_is_a_formula_is_quoted_in_the_header(
    alice: Any, engine: str, request: pytest.FixtureRequest
) -> None:
    """r11d review: the rows were formula-safe, the header was not."""
    connection = request.getfixturevalue(engine)
    out = export(alice, connection, 'SELECT id AS "=HYPERLINK(1)" FROM orders ORDER BY id LIMIT 1')
    assert out[0] == ["'=HYPERLINK(1)"]

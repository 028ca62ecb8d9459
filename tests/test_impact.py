"""Impact previews of held writes, computed on the real targets and never changing them."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from governance.models import QueryRun
from governance.services.catalog import catalog_refresh
from tests.conftest import balances, grant
from tests.test_approval_views import client_for
from tests.test_approvals import UPDATE, submit

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_held_write_shows_its_row_count_and_columns_without_changing_anything(
    alice: Any, ledger: Any
) -> None:
    run = submit(alice, ledger, UPDATE)
    run.approval.refresh_from_db()
    impact = run.approval.impact
    assert impact["method"] == "dry_run" and impact["rows"] == [2], impact
    assert impact["estimated"] is False and impact["error"] == ""
    assert impact["columns"] == [["accounts.balance", "accounts.id"]]
    assert balances(ledger) == [100] * 5


@pytest.mark.parametrize("conn_fixture", ["pg_conn", "mysql_conn"])
def test_server_engines_preview_in_a_rolled_back_transaction(
    request: pytest.FixtureRequest, alice: Any, conn_fixture: str
) -> None:
    connection = request.getfixturevalue(conn_fixture)
    grant(connection, alice, "read", "write")
    sql = "UPDATE orders SET total_cents = 424242 WHERE id <= 3"
    run = submit(alice, connection, sql)
    assert run.status == "pending_approval"
    run.approval.refresh_from_db()
    impact = run.approval.impact
    assert impact["method"] == "dry_run" and impact["rows"] == [3], impact
    assert impact["columns"][0][0] == "orders.total_cents"
    check = submit(alice, connection, "SELECT count(*) FROM orders WHERE total_cents = 424242")
    assert check.rows == [[0]]  # the dry run was rolled back


def test_ddl_gets_no_dry_run_and_an_unfiltered_write_is_called_out(alice: Any, ledger: Any) -> None:
    run = submit(alice, ledger, "DELETE FROM accounts")
    run.approval.refresh_from_db()
    impact = run.approval.impact
    assert impact["rows"] == [5] and "changes every row of accounts" in impact["warnings"][0]
    drop = submit(alice, ledger, "DROP TABLE accounts")
    drop.approval.refresh_from_db()
    assert drop.approval.impact["method"] == "none" and drop.approval.impact["rows"] == [None]
    assert balances(ledger) == [100] * 5
    assert QueryRun.objects.filter(status="succeeded").count() == 0


def test_a_failing_preview_never_quotes_a_masked_value_to_the_requester(
    alice: Any, pg_conn: Any
) -> None:
    # The preview runs before any approver has looked: its error must not read like a query.
    catalog_refresh(connection=pg_conn)
    grant(pg_conn, alice, "read", "write")
    # e-mail, not an SSN: a write filtering on an SSN is a probe, which is never previewed
    sql = "UPDATE customers SET city = 'x' WHERE CAST(email AS integer) = 1"
    run = submit(alice, pg_conn, sql)
    assert run.status == "pending_approval"
    run.approval.refresh_from_db()
    impact = run.approval.impact
    assert impact["error"].startswith("A value is not valid input for its type"), impact
    assert "(SQLSTATE 22P02)" in impact["error"]
    assert "@" not in impact["error"], impact["error"]
    page = client_for(alice).get(reverse("approval_detail", args=[run.approval.pk]))
    assert b"@example." not in page.content


def test_sqlite_previews_have_the_masking_functions(alice: Any, sqlite_conn: Any) -> None:
    from governance.services.catalog import catalog_refresh

    catalog_refresh(connection=sqlite_conn)
    grant(sqlite_conn, alice, "read", "write")
    run = submit(alice, sqlite_conn, "UPDATE customers SET city = city WHERE id <= 2")
    assert "WARDEN_PSEUDONYM" in run.statements[-1].upper()  # the sample masks full_name
    run.approval.refresh_from_db()
    assert run.approval.impact["rows"] == [2], run.approval.impact


def test_a_preview_that_runs_out_of_time_says_so(alice: Any, ledger: Any) -> None:
    ledger.statement_timeout_ms = 300
    ledger.save()
    slow = (
        "UPDATE accounts SET balance = balance WHERE (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL"
        " SELECT x + 1 FROM c WHERE x < 100000000) SELECT count(*) FROM c) > 0"
    )
    run = submit(alice, ledger, slow)
    run.approval.refresh_from_db()
    impact = run.approval.impact
    assert impact["error"] == "The preview ran longer than the 0.3 s it may take.", impact
    assert balances(ledger) == [100] * 5

"""Zero-setup discovery and masking through the one path, against real targets."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from governance.engine import pii
from governance.models import CatalogColumn, QueryRun, Source
from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh
from governance.services.catalog_admin import column_review, exemption_create
from governance.services.runs import run_submit
from tests.conftest import subprocess_env

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)

EXPECTED = {
    ("customers", "full_name"): "person_name",
    ("customers", "email"): "email",
    ("customers", "phone"): "phone",
    ("customers", "ssn"): "national_id",
    ("customers", "date_of_birth"): "date_of_birth",
    ("customers", "street_address"): "street_address",
    ("payment_cards", "card_number"): "credit_card",
    ("employees", "full_name"): "person_name",
    ("employees", "work_email"): "email",
    ("employees", "salary_cents"): "financial",
    ("api_credentials", "api_key"): "secret",
}
NOT_SENSITIVE = [
    ("orders", "status"),
    ("orders", "total_cents"),
    ("customers", "country"),
    ("customers", "city"),
    ("payment_cards", "brand"),
    ("public_reports", "title"),
]


@pytest.fixture
def demo(sqlite_conn: Any) -> Any:
    catalog_refresh(connection=sqlite_conn)
    sqlite_conn.refresh_from_db()
    return sqlite_conn


def raw_values(path: Path, sql: str) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {str(row[0]) for row in conn.execute(sql) if row[0] is not None}


def submit(user: Any, connection: Any, sql: str, **kw: Any) -> QueryRun:
    run = run_submit(caller=Caller(user=user), connection=connection, sql=sql, **kw)
    run.refresh_from_db()
    return run


def test_discovery_finds_every_pii_column_and_nothing_else(demo: Any) -> None:
    found = {
        (c.table.name, c.name): c.semantic_type
        for c in CatalogColumn.objects.filter(table__connection=demo).select_related("table")
        if c.semantic_type
    }
    for key, semantic_type in EXPECTED.items():
        assert found.get(key) == semantic_type, key
    for key in NOT_SENSITIVE:
        assert key not in found, key
    body = CatalogColumn.objects.get(table__connection=demo, name="body")
    assert body.free_text


def test_a_huge_ticket_does_not_hide_the_free_text_column_from_discovery(
    tmp_path: Path, groups: Any
) -> None:
    from tests.conftest import make_connection

    path = tmp_path / "tickets.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE support_tickets (id INTEGER PRIMARY KEY, body TEXT)")
        db.executemany(
            "INSERT INTO support_tickets (body) VALUES (?)",
            [(f"Please call me back at 415-555-01{i:02d} or write to p{i}@example.com",)
             for i in range(10)]
            + [("x" * 3_000_000,)],  # larger than a value may be fetched
        )  # fmt: skip
    connection = make_connection(name="tickets", engine="sqlite", database=str(path))
    summary = catalog_refresh(connection=connection)
    assert summary.unsampled == 0
    body = CatalogColumn.objects.get(table__connection=connection, name="body")
    assert body.free_text


def test_an_admins_choice_survives_rediscovery(demo: Any, carol: Any) -> None:
    city = CatalogColumn.objects.get(table__connection=demo, table__name="customers", name="city")
    column_review(
        caller=Caller(user=carol), column=city, semantic_type="street_address",
        sensitivity="confidential", strategy="redact",
    )  # fmt: skip
    catalog_refresh(connection=demo)
    city.refresh_from_db()
    assert city.semantic_type == "street_address" and city.source == Source.CONFIRMED


def test_a_read_returns_masked_values_and_no_raw_ones(
    demo: Any, alice: Any, sqlite_target: Path
) -> None:
    run = submit(alice, demo, "SELECT * FROM customers ORDER BY id")
    assert run.status == "succeeded", run.error
    assert {"email", "phone", "ssn", "full_name", "street_address"} <= set(run.masked)
    assert "country" not in run.masked
    cells = {str(v) for row in run.rows for v in row}
    for column in ("email", "ssn", "phone", "full_name", "street_address"):
        leaked = raw_values(sqlite_target, f"SELECT {column} FROM customers") & cells
        assert not leaked, column
    assert "SELECT" in run.decision_detail["masking"]["statements"][0]["sql"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT upper(email) AS e FROM customers",
        "SELECT email || '' FROM customers",
        "SELECT c.ssn AS x FROM customers c",
        "WITH t AS (SELECT ssn FROM customers) SELECT * FROM t",
        "SELECT substr(ssn, 1, 11) FROM customers",
        "SELECT ssn FROM customers UNION SELECT city FROM customers",
        "SELECT (SELECT max(ssn) FROM customers) AS s",
        "SELECT group_concat(email) FROM customers",
        "SELECT json_group_array(ssn) FROM customers",
    ],
)
def test_derived_values_are_masked_too(
    demo: Any, alice: Any, sqlite_target: Path, sql: str
) -> None:
    run = submit(alice, demo, sql)
    # Computing on an SSN is a probe (its errors and timing depend on it): held, not run.
    assert run.status in ("succeeded", "denied", "pending_approval"), run.error
    raw = raw_values(sqlite_target, "SELECT email FROM customers") | raw_values(
        sqlite_target, "SELECT ssn FROM customers"
    )
    text = json.dumps(run.rows)
    assert not any(value in text for value in raw)


def test_counting_reveals_nothing_and_stays_unmasked(demo: Any, alice: Any) -> None:
    run = submit(alice, demo, "SELECT count(ssn) AS n, count(DISTINCT email) AS d FROM customers")
    assert run.status == "succeeded"
    assert run.rows[0][0] == 1000 and run.masked == []


def test_counting_distinct_restricted_values_is_held_with_where_it_flows(
    demo: Any, alice: Any
) -> None:
    # count(DISTINCT v) over SSNs UNION ALL a guess tells whether the guess is an SSN.
    run = submit(
        alice,
        demo,
        "SELECT count(DISTINCT v) FROM (SELECT ssn v FROM customers WHERE id = 1 "
        "UNION ALL SELECT '123-45-6789') t",
    )
    assert run.status == "pending_approval"
    reason = next(r for r in run.reasons if r["rule"] == "hold-restricted-predicates")
    assert "customers.ssn flows into count(DISTINCT …) over a set operation" in reason["message"]


def test_free_text_is_scanned_on_the_way_out(demo: Any, alice: Any) -> None:
    run = submit(alice, demo, "SELECT body FROM support_tickets")
    assert run.status == "succeeded", run.error
    for (body,) in run.rows:
        assert not pii.find_in_text(body), body


def test_a_predicate_on_a_restricted_column_is_held(demo: Any, alice: Any) -> None:
    run = submit(alice, demo, "SELECT id FROM customers WHERE ssn = '123-45-6789'")
    assert run.status == "pending_approval"
    assert any(r["rule"] == "hold-restricted-predicates" for r in run.reasons)


def test_whole_row_references_are_refused(demo: Any, alice: Any) -> None:
    run = submit(alice, demo, "SELECT json_object('r', c.ssn) FROM customers c")
    assert run.status in ("denied", "succeeded", "pending_approval")  # computed on an SSN
    if run.status == "succeeded":
        assert all("-" not in str(v) or "*" in str(v) for row in run.rows for v in row)


def test_an_exemption_unmasks_until_it_expires_and_every_use_is_audited(
    demo: Any, alice: Any, carol: Any, sqlite_target: Path
) -> None:
    import time

    email = CatalogColumn.objects.get(table__connection=demo, table__name="customers", name="email")
    expires = timezone.now() + dt.timedelta(seconds=4)
    exemption_create(
        caller=Caller(user=carol), column=email, user=alice, group=None,
        expires_at=expires, reason="fraud case 42",
    )  # fmt: skip
    demo.refresh_from_db()
    run = submit(alice, demo, "SELECT email FROM customers ORDER BY id LIMIT 5")
    assert "email" not in run.masked
    assert {r[0] for r in run.rows} <= raw_values(sqlite_target, "SELECT email FROM customers")
    used = AuditEvent.objects.get(kind="unmask.used", run_id=run.pk)
    assert used.detail["reason"] == "fraud case 42"
    time.sleep(max(0.0, (expires - timezone.now()).total_seconds()) + 0.2)  # let it expire
    run = submit(alice, demo, "SELECT email FROM customers ORDER BY id LIMIT 5")
    assert run.masked == ["email"]


def test_cli_json_and_csv_export_are_masked(demo: Any, alice: Any, sqlite_target: Path) -> None:
    env = subprocess_env()
    base = [sys.executable, "manage.py", "govern", "--as", "alice", "--connection", "demo"]
    result = subprocess.run(
        [*base, "--format", "json", "SELECT id, ssn, email FROM customers LIMIT 3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)["masked"]) == {"ssn", "email"}
    export = subprocess.run(
        [*base, "--format", "csv", "SELECT ssn, email FROM customers"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    rows = list(csv.reader(io.StringIO(export.stdout)))
    assert len(rows) == 1001
    raw = raw_values(sqlite_target, "SELECT ssn FROM customers")
    assert not raw & {row[0] for row in rows[1:]}


def test_masked_cells_are_marked_in_the_grid(demo: Any, alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    client.post(
        reverse("run_create"), {"connection": demo.pk, "sql": "SELECT id, ssn FROM customers"}
    )
    run = QueryRun.objects.latest("id")
    page = client.get(reverse("editor") + f"?run={run.pk}")
    assert b'<td class="masked" title="Masked: national_id' in page.content
    assert b"Why is this masked?" in page.content


def test_the_catalog_screens_are_for_admins(demo: Any, alice: Any, carol: Any) -> None:
    analyst = Client()
    analyst.force_login(alice)
    assert analyst.get(reverse("catalog_overview")).status_code == 403
    assert analyst.get(reverse("catalog_connection", args=[demo.pk])).status_code == 403
    admin = Client()
    admin.force_login(carol)
    page = admin.get(reverse("catalog_connection", args=[demo.pk]))
    assert b"card_number" in page.content and b"Discovered" in page.content
    ssn = CatalogColumn.objects.get(table__connection=demo, name="ssn")
    response = admin.post(
        reverse("column_review", args=[ssn.pk]),
        {"semantic_type": "national_id", "sensitivity": "restricted", "strategy": "null"},
    )
    assert response.status_code == 302
    ssn.refresh_from_db()
    assert ssn.source == Source.CONFIRMED and ssn.strategy == "null"
    assert AuditEvent.objects.filter(kind="catalog.column_reviewed").exists()


def test_errors_never_echo_masked_values(pg_conn: Any, alice: Any) -> None:
    catalog_refresh(connection=pg_conn)
    pg_conn.refresh_from_db()
    held = submit(alice, pg_conn, "SELECT ssn::int AS n FROM customers LIMIT 3")
    assert held.status == "pending_approval"  # computing on an SSN: its errors depend on it
    redacted = submit(alice, pg_conn, "SELECT street_address::int AS n FROM customers LIMIT 3")
    assert redacted.rows == [["****"]] * 3  # a redacted value is never even evaluated
    # email is confidential, not restricted: filtering on it runs, and the cast fails
    run = submit(alice, pg_conn, "SELECT id FROM customers WHERE email::int > 0")
    assert run.status == "failed"
    assert "(SQLSTATE 22P02)" in run.error and "own message is not shown" in run.error
    assert "@" not in run.error and not pii.find_in_text(run.error)
    event = AuditEvent.objects.get(run_id=run.pk, kind="query.failed")
    assert not pii.find_in_text(event.detail["target_error"])
    assert event.detail["error_code"] == "22P02"


def test_a_postgres_export_streams_masked_rows_through_copy(
    pg_conn: Any, alice: Any, pg_target: str
) -> None:
    import psycopg

    catalog_refresh(connection=pg_conn)
    pg_conn.export_row_limit = 700
    pg_conn.save()
    result = subprocess.run(
        [sys.executable, "manage.py", "govern", "--as", "alice", "--connection", "demo-postgres",
         "--format", "csv", "SELECT id, ssn, email, city FROM customers ORDER BY id"],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["id", "ssn", "email", "city"]
    assert len(rows) == 701
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=pg_target) as conn:
        raw = {r[0] for r in conn.execute("SELECT ssn FROM customers")}
        raw |= {r[0] for r in conn.execute("SELECT email FROM customers")}
    assert not raw & {cell for row in rows[1:] for cell in row}
    run = QueryRun.objects.latest("id")
    assert run.status == "succeeded" and run.row_count == 700 and run.truncated


# Bypasses found in review: each must be masked, held or refused, never answered raw.


def test_a_count_over_an_expression_is_no_oracle(demo: Any, alice: Any) -> None:
    run = submit(
        alice,
        demo,
        "SELECT c.id, count(CASE WHEN o.id <= unicode(substr(c.ssn, 1, 1)) THEN 1 END) AS p "
        "FROM customers c CROSS JOIN orders o WHERE c.id IN (1, 2) AND o.id <= 128 "
        "GROUP BY c.id",
    )
    assert run.status in ("denied", "pending_approval") or "p" in run.masked


def test_nullness_of_a_redacted_value_is_not_shown(demo: Any, alice: Any) -> None:
    sql = "SELECT NULLIF(street_address, '1 Main St') AS n FROM customers LIMIT 20"
    run = submit(alice, demo, sql)
    assert run.status == "succeeded", run.error
    assert {row[0] for row in run.rows} == {"****"}
    held = submit(alice, demo, "SELECT NULLIF(ssn, '123-45-6789') AS n FROM customers LIMIT 20")
    assert held.status == "pending_approval"


def test_a_value_steering_limit_is_an_inference_probe(demo: Any, alice: Any) -> None:
    run = submit(
        alice,
        demo,
        "SELECT id FROM customers LIMIT CASE WHEN (SELECT ssn FROM customers WHERE id = 1) "
        "LIKE '2%' THEN 3 ELSE 1 END",
    )
    assert run.status in ("pending_approval", "denied")


def test_renamed_alias_columns_are_refused(pg_conn: Any, alice: Any) -> None:
    catalog_refresh(connection=pg_conn)
    pg_conn.refresh_from_db()
    run = submit(alice, pg_conn, "SELECT e FROM customers AS c(a, b, c, d, e) LIMIT 1")
    assert run.status == "denied"
    assert any(r["rule"] == "masking" for r in run.reasons)


def test_explain_analyze_over_masked_data_does_not_run_raw(pg_conn: Any, carol: Any) -> None:
    catalog_refresh(connection=pg_conn)
    pg_conn.refresh_from_db()
    run = submit(carol, pg_conn, "EXPLAIN ANALYZE SELECT ssn::int FROM customers")
    assert run.status != "succeeded" or "282" not in json.dumps(run.rows)
    assert not pii.find_in_text(run.error)


def test_mysql_variable_assignment_is_a_session_statement(mysql_conn: Any, alice: Any) -> None:
    catalog_refresh(connection=mysql_conn)
    mysql_conn.refresh_from_db()
    run = submit(
        alice,
        mysql_conn,
        "SELECT 1 AS one FROM (SELECT @w := ssn AS x FROM customers WHERE id = 2) t; "
        "SELECT @w AS leaked",
    )
    assert run.status == "denied"


def test_transformed_free_text_is_redacted_not_scanned(demo: Any, alice: Any) -> None:
    run = submit(
        alice,
        demo,
        "SELECT id, replace(body, '@', ' AT ') AS b FROM support_tickets WHERE body LIKE '%@%'",
    )
    assert run.status == "succeeded", run.error
    assert "b" in run.masked
    assert {row[1] for row in run.rows} == {"****"}
    plain = submit(alice, demo, "SELECT body FROM support_tickets")
    assert plain.masked == []  # selected as is: shown, with embedded PII replaced


def test_a_group_exemption_unmasks_for_its_members_only(
    demo: Any, alice: Any, carol: Any, groups: Any
) -> None:
    email = CatalogColumn.objects.get(table__connection=demo, table__name="customers", name="email")
    exemption_create(
        caller=Caller(user=carol), column=email, user=None, group=groups["admin"],
        expires_at=timezone.now() + dt.timedelta(hours=1), reason="support escalation",
    )  # fmt: skip
    demo.refresh_from_db()
    admin_run = submit(carol, demo, "SELECT email FROM customers ORDER BY id LIMIT 3")
    analyst_run = submit(alice, demo, "SELECT email FROM customers ORDER BY id LIMIT 3")
    assert admin_run.masked == [] and "***" not in admin_run.rows[0][0]
    assert analyst_run.masked == ["email"]


def test_granting_unmasked_access_is_validated_and_admin_only(
    demo: Any, alice: Any, carol: Any
) -> None:
    from governance.models import UnmaskExemption

    ssn = CatalogColumn.objects.get(table__connection=demo, name="ssn")
    url = reverse("exemption_create", args=[ssn.pk])
    past = (timezone.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    analyst = Client()
    analyst.force_login(alice)
    assert (
        analyst.post(url, {"user": alice.pk, "expires_at": past, "reason": "x"}).status_code == 403
    )
    admin = Client()
    admin.force_login(carol)
    response = admin.post(url, {"user": alice.pk, "expires_at": past, "reason": "audit"})
    assert response.status_code == 400
    assert b"must end in the future" in response.content
    assert not UnmaskExemption.objects.exists()


def test_an_exemption_ending_at_the_end_of_time_is_refused(
    demo: Any, alice: Any, carol: Any, settings: Any
) -> None:
    from governance.models import UnmaskExemption

    settings.TIME_ZONE = "America/New_York"  # 9999-12-31 23:00 here is in the year 10000 in UTC
    ssn = CatalogColumn.objects.get(table__connection=demo, name="ssn")
    admin = Client()
    admin.force_login(carol)
    response = admin.post(
        reverse("exemption_create", args=[ssn.pk]),
        {"user": alice.pk, "expires_at": "9999-12-31T23:00", "reason": "audit"},
    )
    assert response.status_code == 400
    assert b"too far in the future" in response.content
    assert not UnmaskExemption.objects.exists()
    assert admin.get(reverse("column_review", args=[ssn.pk])).status_code == 200


def test_what_a_write_returns_is_masked(demo: Any, carol: Any, alice: Any) -> None:
    raw = (
        sqlite3.connect(demo.database)
        .execute("SELECT email, ssn FROM customers WHERE id = 1")
        .fetchone()
    )
    run = submit(
        carol, demo, "UPDATE customers SET city = city WHERE id <= 2 RETURNING id, email, ssn"
    )
    assert run.status == "succeeded", run.error
    assert run.masked == ["email", "ssn"] and run.row_count == 2
    cells = {str(cell) for row in run.rows for cell in row}
    assert raw[0] not in cells and raw[1] not in cells and "****" in cells
    # values returned from a data-modifying WITH clause cannot be traced: never run raw
    from tests.conftest import grant

    grant(demo, alice, "read", "write")
    hidden = submit(
        alice, demo, "WITH g AS (DELETE FROM customers WHERE id = 1 RETURNING ssn) SELECT * FROM g"
    )
    assert hidden.status == "denied", hidden.reasons
    assert any("data-modifying WITH" in r["message"] for r in hidden.reasons)


def test_a_write_shows_a_masked_bounded_sample_and_its_exact_count(
    pg_conn: Any, carol: Any
) -> None:
    catalog_refresh(connection=pg_conn)
    pg_conn.refresh_from_db()
    pg_conn.row_cap = 5
    pg_conn.save()
    run = submit(carol, pg_conn, "UPDATE customers SET city = city WHERE id <= 30")
    assert run.status == "succeeded", run.error
    assert run.row_count == 30 and len(run.rows) == 5 and run.truncated
    assert "email" in run.masked and "ssn" in run.masked
    ssn = [c["name"] for c in run.columns].index("ssn")
    assert {row[ssn] for row in run.rows} <= {"****", None}
    assert "RETURNING" in run.statements[-1]
    assert run.statements[-1].startswith("UPDATE customers SET city = city WHERE id <= 30")


def test_a_failing_write_never_quotes_a_protected_value(pg_conn: Any, carol: Any) -> None:
    catalog_refresh(connection=pg_conn)
    run = submit(
        carol,
        pg_conn,
        "DELETE FROM orders WHERE customer_id IN "
        "(SELECT id FROM customers WHERE CAST(email AS integer) = 1)",
    )
    assert run.status == "failed"
    assert run.error.startswith("A value is not valid input for its type")
    event = AuditEvent.objects.get(run_id=run.pk, kind="query.failed")
    for text in (run.error, str(event.detail)):
        assert not re.search(r"\d{3}-\d{2}-\d{4}", text), text

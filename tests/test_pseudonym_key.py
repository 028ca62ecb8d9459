"""The pseudonym key: one per connection (HKDF), a real HMAC, never stored, shown or in SQL text.

With the key, anyone holding a dictionary of names or e-mails turns pseudonyms back into
values; so it is bound to masked statements only when they run (as parameters on PostgreSQL,
as session variables set just before on MySQL, inside a registered function on SQLite).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from io import StringIO
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from approvals.models import ApprovalRequest
from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh
from governance.services.masking import pseudonym_key
from governance.services.runs import run_submit
from governance.targets.base import hmac_pads
from tests.adversarial.leaks import target_rows
from tests.conftest import PG

pytestmark = pytest.mark.django_db(transaction=True)


def _forms(key: bytes) -> list[str]:
    """Every way the key or its pads could be written down."""
    forms = [key.hex(), base64.b64encode(key).decode(), key.decode("latin-1")]
    for pad in hmac_pads(key):
        forms += [pad.hex(), base64.b64encode(pad).decode()]
    return forms


def _assert_no_key(key: bytes, what: str, text: str) -> None:
    lowered = text.lower()
    for form in _forms(key):
        assert form.lower() not in lowered, f"the pseudonym key is in {what}"


def _submit(user: Any, connection: Any, sql: str) -> Any:
    run = run_submit(caller=Caller(user=user), connection=connection, sql=sql)
    run.refresh_from_db()
    return run


def test_each_connection_has_its_own_derived_key(pg_conn: Any, sqlite_conn: Any) -> None:
    first, second = pseudonym_key(pg_conn), pseudonym_key(sqlite_conn)
    assert len(first) == len(second) == 32 and first != second
    assert pseudonym_key(pg_conn) == first  # stable


@pytest.mark.parametrize("fixture", ["pg_conn", "mysql_conn", "sqlite_conn"])
def test_pseudonyms_are_the_hmac_of_the_value_under_the_connections_key(
    fixture: str, alice: Any, request: pytest.FixtureRequest, pg_target: str, mysql_target: str
) -> None:
    connection = request.getfixturevalue(fixture)
    catalog_refresh(connection=connection)
    connection.refresh_from_db()
    run = _submit(alice, connection, "SELECT id, full_name FROM customers ORDER BY id LIMIT 5")
    assert run.status == "succeeded", run.error
    raw = dict(target_rows(connection, "SELECT id, full_name FROM customers ORDER BY id LIMIT 5"))
    key = pseudonym_key(connection)
    for row_id, shown in run.rows:
        digest = hmac.new(key, raw[row_id].encode(), hashlib.sha256).hexdigest()
        assert shown == "anon_" + digest[:16]
    _assert_no_key(key, "the run", json.dumps([run.statements, run.decision_detail]))


def test_a_held_statement_shows_its_masked_sql_without_the_key(
    pg_conn: Any, alice: Any, bob: Any
) -> None:
    catalog_refresh(connection=pg_conn)
    pg_conn.refresh_from_db()
    run = _submit(alice, pg_conn, "SELECT full_name FROM customers WHERE ssn = '123-45-6789'")
    assert run.status == "pending_approval"
    key = pseudonym_key(pg_conn)
    assert "$1" in json.dumps(run.statements)  # the key is a parameter of the statement
    _assert_no_key(key, "the stored run", json.dumps([run.statements, run.decision_detail]))
    approval = ApprovalRequest.objects.get(run=run)
    client = Client()
    client.force_login(bob)
    page = client.get(reverse("approval_detail", args=[approval.pk]))
    assert page.status_code == 200
    _assert_no_key(key, "the approval page", page.content.decode())
    out = StringIO()
    call_command("approvals", "show", str(approval.pk), "--format", "json", stdout=out)
    _assert_no_key(key, "approvals show", out.getvalue())
    from approvals.summary import request_summary

    _assert_no_key(
        key, "the webhook summary", json.dumps(request_summary(approval, full=True), default=str)
    )


def test_the_key_is_not_in_the_statement_text_postgresql_shows_while_it_runs(
    pg_conn: Any, alice: Any
) -> None:
    catalog_refresh(connection=pg_conn)
    pg_conn.refresh_from_db()
    key = pseudonym_key(pg_conn)
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
            while not done.is_set():
                seen.extend(
                    q
                    for (q,) in conn.execute(
                        "SELECT query FROM pg_stat_activity WHERE query ILIKE '%%generate_series%%'"
                        " AND datname = %s AND pid <> pg_backend_pid()",
                        (pg_conn.database,),
                    )
                )
                time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        # Two statements: the second runs as itself (not through a cursor), for long enough
        # to be seen with its text.
        run = _submit(
            alice,
            pg_conn,
            "SELECT 1; SELECT full_name, count(*) FROM customers "
            "CROSS JOIN generate_series(1, 3000) g GROUP BY full_name",
        )
    finally:
        done.set()
        watcher.join()
    assert run.status == "succeeded", run.error
    assert seen, "the statement ran too fast to be seen in pg_stat_activity"
    assert any("$1" in q for q in seen), seen[:3]
    _assert_no_key(key, "pg_stat_activity", "\n".join(seen))


@pytest.mark.parametrize(
    "sql",
    [
        "SET @warden_pk_i = 'known'; SELECT full_name FROM customers",
        "SELECT @warden_pk_o, full_name FROM customers",
        "SELECT 1 INTO @WARDEN_PK_I",
    ],
)
def test_statements_that_name_the_key_variables_never_run(
    mysql_conn: Any, carol: Any, sql: str
) -> None:
    run = _submit(carol, mysql_conn, sql)
    assert run.status == "denied"
    assert any(r["rule"] == "reserved" for r in run.reasons)


def test_a_statement_naming_a_parameter_never_runs(pg_conn: Any, carol: Any) -> None:
    run = _submit(carol, pg_conn, "SELECT $1, full_name FROM customers")
    assert run.status == "denied" and run.reasons[0]["rule"] == "reserved"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM customers WHERE id = ?",
        "SELECT id FROM customers WHERE id = ?1",
        "SELECT id FROM customers WHERE id = :a",
        "SELECT id FROM customers WHERE id = @a",
        "SELECT id FROM customers WHERE id = $a",
    ],
)
def test_sqlite_bind_parameters_are_refused_up_front(
    sqlite_conn: Any, carol: Any, sql: str
) -> None:
    """Seventh review: they ran, and failed with "the target database gave no error code"."""
    run = _submit(carol, sqlite_conn, sql)
    assert run.status == "denied" and run.reasons[0]["rule"] == "reserved", run.reasons


def test_mysql_clears_the_key_variables_right_after_each_masked_statement(
    mysql_conn: Any,
) -> None:
    from governance import targets

    config = mysql_conn.target_config()
    with targets.connect(config, pseudonym_key=pseudonym_key(mysql_conn)) as session:
        masked = "SELECT CONCAT(@warden_pk_i IS NOT NULL, @warden_pk_o IS NOT NULL) AS bound"
        result = session.execute(
            [masked, "SELECT @warden_pk_i IS NULL AND @warden_pk_o IS NULL AS cleared"],
            read_only=True,
            max_rows=10,
            keyed={0},
        )
        # the second statement of the batch ran with the variables already cleared
        assert result.rows == [(1,)]

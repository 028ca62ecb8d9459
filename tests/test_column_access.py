"""Who touched which sensitive data: each run records the sensitive columns it reached and how,
the sealer files them, and a page per column and per identity answers "who saw this column,
when, masked or not". Against real PostgreSQL and SQLite targets."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent, ColumnAccess
from audit.sealer import seal
from governance.models import CatalogColumn, QueryRun
from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh
from governance.services.catalog_admin import exemption_create
from governance.services.runs import run_submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest) -> Any:
    connection = request.getfixturevalue("sqlite_conn" if request.param == "sqlite" else "pg_conn")
    catalog_refresh(connection=connection)
    connection.refresh_from_db()
    return connection


def submit(user: Any, connection: Any, sql: str) -> QueryRun:
    run = run_submit(caller=Caller(user=user), connection=connection, sql=sql)
    run.refresh_from_db()
    return run


def reached(run: QueryRun) -> set[tuple[str, str, str]]:
    event = AuditEvent.objects.get(kind="query.submitted", run_id=run.pk)
    return {(e["table"], e["column"], e["how"]) for e in event.detail.get("sensitive", [])}


def test_each_run_records_the_sensitive_columns_it_reached_and_how(
    target: Any, alice: Any, carol: Any
) -> None:
    read = submit(alice, target, "SELECT id, ssn, email, city FROM customers ORDER BY id LIMIT 2")
    assert read.status == "succeeded"
    assert reached(read) == {("customers", "ssn", "masked"), ("customers", "email", "masked")}

    counted = submit(alice, target, "SELECT count(*) FROM customers WHERE email LIKE '%@%'")
    assert ("customers", "email", "used") in reached(counted)

    email = CatalogColumn.objects.get(
        table__connection=target, table__name="customers", name="email"
    )
    exemption = exemption_create(
        caller=Caller(user=carol), column=email, user=alice, group=None,
        expires_at=timezone.now() + dt.timedelta(hours=1), reason="case 7",
    )  # fmt: skip
    target.refresh_from_db()
    unmasked = submit(alice, target, "SELECT email FROM customers ORDER BY id LIMIT 1")
    event = AuditEvent.objects.get(kind="query.submitted", run_id=unmasked.pk)
    assert event.detail["sensitive"] == [
        {"table": "customers", "column": "email", "how": "unmasked", "exemption": str(exemption.pk)}
    ]

    write = submit(carol, target, "UPDATE customers SET email = 'x@example.com' WHERE id = 1")
    assert ("customers", "email", "written") in reached(write)
    delete = submit(carol, target, "DELETE FROM customers WHERE id = 99999")
    assert ("customers", "*", "deleted") in reached(delete)
    plain = submit(alice, target, "SELECT id, city FROM customers LIMIT 1")
    assert reached(plain) == set()

    # the sealer files them; denied statements reach nothing
    denied = submit(alice, target, "DROP TABLE customers")
    assert denied.status == "denied" and reached(denied) == set()
    seal(settle_s=0)
    filed = {
        (a.actor_name, a.table, a.column, a.how)
        for a in ColumnAccess.objects.filter(connection_name=target.name)
    }
    assert ("alice", "customers", "ssn", "masked") in filed
    assert ("alice", "customers", "email", "unmasked") in filed
    assert ("carol", "customers", "email", "written") in filed
    assert ("carol", "customers", "*", "deleted") in filed
    assert ColumnAccess.objects.get(event_id=event.pk).exemption == str(exemption.pk)

    # rebuilt from the trail alone, the index is the same
    before = set(ColumnAccess.objects.values_list("event_id", "table", "column", "how"))
    ColumnAccess.objects.all().delete()
    call_command("audit", "reindex")
    assert set(ColumnAccess.objects.values_list("event_id", "table", "column", "how")) == before


def test_the_pages_answer_who_saw_a_column(
    sqlite_conn: Any, alice: Any, carol: Any, dave: Any
) -> None:
    catalog_refresh(connection=sqlite_conn)
    sqlite_conn.refresh_from_db()
    submit(alice, sqlite_conn, "SELECT ssn FROM customers LIMIT 1")
    submit(carol, sqlite_conn, "UPDATE customers SET ssn = '000-00-0000' WHERE id = 1")
    seal(settle_s=0)
    auditor = Client()
    auditor.force_login(dave)
    overview = auditor.get(reverse("access_overview")).content.decode()
    column_url = reverse("access_column", args=[sqlite_conn.name, "customers", "ssn"])
    assert column_url in overview
    page = auditor.get(column_url)
    assert page.status_code == 200
    rows = [(a.actor_name, a.how) for a in page.context["page"].object_list]
    assert ("alice", "masked") in rows and ("carol", "written") in rows
    masked_only = auditor.get(column_url, {"how": "masked"})
    assert {a.how for a in masked_only.context["page"].object_list} == {"masked"}

    person = auditor.get(reverse("access_person", args=[alice.pk]))
    assert person.status_code == 200
    body = person.content.decode()
    assert "customers.ssn" in body and "Added to a role" in body  # her analyst role, recorded
    assert AuditEvent.objects.filter(kind="audit.viewed", detail__view="identity").exists()

    for who in (alice, carol.__class__.objects.create_user("nobody")):
        client = Client()
        client.force_login(who)
        for url in (reverse("access_overview"), column_url, reverse("access_person", args=[1])):
            assert client.get(url).status_code == 403, url

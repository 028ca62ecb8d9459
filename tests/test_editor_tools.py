"""The editor's CSV download, saved and shared queries, and the schema sidebar, on real targets."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any, cast

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest
from audit.kinds import EventKind
from audit.models import AuditEvent
from governance.models import AccessGrant, CatalogColumn, QueryRun, SavedQuery
from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh
from governance.services.catalog_admin import exemption_create
from governance.services.schema import schema_for
from tests.conftest import PG, grant, make_connection
from tests.test_approvals import review

pytestmark = pytest.mark.django_db(transaction=True)

SENSITIVE = "SELECT id, ssn, email, city FROM customers ORDER BY id LIMIT 50"


@pytest.fixture
def pg(pg_conn: Any) -> Any:
    """The PostgreSQL demo target, discovered: ssn and email are masked for analysts."""
    catalog_refresh(connection=pg_conn)
    pg_conn.refresh_from_db()
    return pg_conn


@pytest.fixture
def frank(groups: dict[str, Any]) -> Any:
    """A second analyst, to try alice's queries."""
    user = get_user_model().objects.create_user("frank", password="frank-pass-123!")
    user.groups.add(groups["analyst"])
    return user


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def download(client: Client, connection: Any, sql: str, **extra: str) -> Any:
    return client.post(reverse("run_export"), {"connection": connection.pk, "sql": sql, **extra})


def rows_of(response: StreamingHttpResponse) -> list[list[str]]:
    body = b"".join(cast(Iterator[bytes], response.streaming_content)).decode()
    return list(csv.reader(io.StringIO(body)))


def raw(pg_target: str, column: str) -> set[str]:
    with psycopg.connect(dbname=pg_target, **PG) as conn:
        return {str(r[0]) for r in conn.execute(f"SELECT {column} FROM customers")}


# ---------------------------------------------------------------- CSV download


def test_the_csv_download_streams_rows_masked_as_in_the_grid(
    pg: Any, alice: Any, pg_target: str
) -> None:
    client = client_for(alice)
    response = download(client, pg, SENSITIVE, purpose="monthly churn list")
    assert isinstance(response, StreamingHttpResponse), response
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    run = QueryRun.objects.get(pk=int(response["X-Warden-Run"]))
    assert response["Content-Disposition"] == (
        f'attachment; filename="demo-postgres-run-{run.pk}.csv"'
    )
    assert response["Cache-Control"] == "no-store"
    rows = rows_of(response)
    assert rows[0] == ["id", "ssn", "email", "city"] and len(rows) == 51
    cells = {cell for row in rows[1:] for cell in row}
    assert not cells & (raw(pg_target, "ssn") | raw(pg_target, "email"))

    # The editor's grid shows the very same masked values for the same statement.
    client.post(reverse("run_create"), {"connection": pg.pk, "sql": SENSITIVE})
    grid = QueryRun.objects.filter(mode=QueryRun.Mode.INTERACTIVE).latest("id")
    assert grid.status == "succeeded" and set(grid.masked) == {"ssn", "email"}
    assert [[str(v) for v in row] for row in grid.rows] == rows[1:]

    run.refresh_from_db()
    assert run.mode == "export" and run.channel == "web" and run.status == "succeeded"
    assert run.row_count == 50 and run.purpose == "monthly churn list"
    kinds = list(
        AuditEvent.objects.filter(run_id=run.pk).order_by("id").values_list("kind", flat=True)
    )
    submitted = AuditEvent.objects.get(kind=EventKind.QUERY_SUBMITTED, detail__mode="export")
    assert submitted.decision == "allow" and submitted.actor_id == alice.pk
    assert EventKind.QUERY_SUCCEEDED in kinds


def test_a_large_export_streams_in_chunks_past_the_interactive_row_cap(pg: Any, alice: Any) -> None:
    response = download(client_for(alice), pg, "SELECT g AS n FROM generate_series(1, 200000) g")
    assert isinstance(response, StreamingHttpResponse)
    chunks = 0
    lines = 0
    # consumed as it comes, never held whole here
    for chunk in cast(Iterator[bytes], response.streaming_content):
        chunks += 1
        lines += chunk.count(b"\n")
    assert chunks > 1 and lines == 200_001  # the header and every row
    run = QueryRun.objects.get(mode="export")
    assert run.row_count == 200_000 and not run.truncated and pg.row_cap < run.row_count


def test_a_sqlite_download_streams_through_the_cursor_masked(
    sqlite_conn: Any, alice: Any, sqlite_target: Any
) -> None:
    import sqlite3

    catalog_refresh(connection=sqlite_conn)
    response = download(client_for(alice), sqlite_conn, "SELECT id, ssn FROM customers")
    assert isinstance(response, StreamingHttpResponse)
    rows = rows_of(response)
    assert rows[0] == ["id", "ssn"] and len(rows) == 1001
    with sqlite3.connect(sqlite_target) as db:
        raw_ssn = {r[0] for r in db.execute("SELECT ssn FROM customers")}
    assert not raw_ssn & {row[1] for row in rows[1:]}


def test_a_download_the_browser_abandons_ends_the_export_and_is_recorded(
    pg: Any, alice: Any
) -> None:
    response = download(client_for(alice), pg, "SELECT g AS n FROM generate_series(1, 500000) g")
    assert isinstance(response, StreamingHttpResponse)
    first = next(iter(cast(Iterator[bytes], response.streaming_content)))
    response.close()  # what the server does when the client goes away
    run = QueryRun.objects.get(mode="export")
    assert run.status == "failed" and run.error == "The export stopped before its end."
    event = AuditEvent.objects.get(run_id=run.pk, kind=EventKind.QUERY_FAILED)
    assert event.detail["error_kind"] == "interrupted"
    # What left before the reader went away is counted, not reported as nothing.
    delivered = first.count(b"\n") - 1  # the header line
    assert delivered > 0 and run.row_count is not None and run.row_count >= delivered
    assert event.row_count == run.row_count


def test_without_the_export_capability_the_download_is_refused_says_why_and_is_recorded(
    pg: Any, alice: Any, groups: dict[str, Any]
) -> None:
    AccessGrant.objects.filter(connection=pg, group=groups["analyst"]).update(capabilities=["read"])
    client = client_for(alice)
    page = client.get(reverse("editor"))
    assert b'id="export-button"' in page.content
    assert b'data-export="no"' in page.content
    button = page.content.decode().split('id="export-button"')[1].split(">")[0]
    assert "hidden" in button  # not offered

    response = download(client, pg, SENSITIVE)
    assert not isinstance(response, StreamingHttpResponse)
    assert response.status_code == 302
    run = QueryRun.objects.get(mode="export")
    assert response["Location"] == f"{reverse('editor')}?run={run.pk}"
    assert run.status == "denied" and run.started_at is None
    event = AuditEvent.objects.get(kind=EventKind.QUERY_SUBMITTED, run_id=run.pk)
    assert event.decision == "deny" and event.rule == "capability"
    assert event.detail["mode"] == "export"
    shown = client.get(response["Location"]).content.decode()
    assert "Denied." in shown and "You have no export access on this connection" in shown
    assert "Nothing was downloaded" in shown


def test_a_held_export_streams_nothing_and_links_to_its_request(
    pg: Any, alice: Any, bob: Any
) -> None:
    client = client_for(alice)
    response = download(client, pg, "SELECT ssn::int AS n FROM customers LIMIT 3")
    assert not isinstance(response, StreamingHttpResponse)
    assert response.status_code == 302
    run = QueryRun.objects.get(mode="export")
    assert run.status == "pending_approval" and run.started_at is None
    request = ApprovalRequest.objects.get(run=run)
    page = client.get(response["Location"]).content.decode()
    assert "Held for approval." in page and "Nothing was downloaded" in page
    assert reverse("approval_detail", args=[request.pk]) in page
    assert not AuditEvent.objects.filter(run_id=run.pk, kind=EventKind.QUERY_SUCCEEDED).exists()

    # Approved, it is still not streamed (nor polled for): the page says so.
    review(bob, request, approve=True)
    run.refresh_from_db()
    assert run.status == "queued"
    page = client.get(response["Location"]).content.decode()
    assert "This export was approved" in page and "hx-trigger" not in page.split("run-head")[0]
    run.refresh_from_db()
    assert run.status == "queued" and run.started_at is None


def test_an_export_is_one_statement(pg: Any, alice: Any) -> None:
    client = client_for(alice)
    response = download(client, pg, "SELECT id FROM orders; SELECT city FROM customers")
    assert response.status_code == 302
    run = QueryRun.objects.get(mode="export")
    assert run.status == "denied"
    page = client.get(response["Location"]).content.decode()
    assert "An export runs exactly one read statement." in page
    empty = download(client, pg, "   ")
    assert empty.status_code == 400 and b"Empty statement: nothing to run." in empty.content
    assert AuditEvent.objects.filter(kind=EventKind.QUERY_REJECTED).count() == 1


def test_a_download_is_for_editor_roles_and_connections_one_may_use(
    pg: Any, alice: Any, dave: Any
) -> None:
    assert download(client_for(dave), pg, "SELECT 1").status_code == 403
    other = make_connection(name="elsewhere", engine="sqlite", database="/nonexistent.db")
    response = download(client_for(alice), other, "SELECT 1")
    assert response.status_code == 400
    assert b"No connection named" in response.content
    assert not QueryRun.objects.exists()


def test_a_target_that_fails_at_once_shows_the_failed_run_not_a_broken_file(
    pg: Any, alice: Any
) -> None:
    client = client_for(alice)
    response = download(client, pg, "SELECT 1 / (id - id) FROM orders")
    assert response.status_code == 302
    run = QueryRun.objects.get(mode="export")
    assert run.status == "failed" and run.error
    assert "division by zero" in client.get(response["Location"]).content.decode()


# ---------------------------------------------------------------- saved queries


def save(client: Client, connection: Any, sql: str, title: str, **extra: Any) -> Any:
    data = {"sql": sql, "title": title, "connection": connection.pk if connection else ""}
    return client.post(reverse("saved_query_create"), {**data, **extra})


def test_save_then_open_fills_the_editor_and_runs_nothing(pg: Any, alice: Any) -> None:
    client = client_for(alice)
    response = save(client, pg, SENSITIVE, "Churn list")
    query = SavedQuery.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('editor')}?saved={query.pk}"
    assert query.owner == alice and query.connection == pg and not query.shared
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert page.context["sql"] == SENSITIVE and page.context["selected"] == pg.pk
    assert "Opened saved query" in page.content.decode()
    assert not QueryRun.objects.exists()  # opening never runs it
    # A private query is the owner's notebook: not recorded.
    assert not AuditEvent.objects.filter(kind__startswith="saved_query.").exists()


def test_another_user_cannot_read_change_or_delete_my_private_query(
    pg: Any, alice: Any, frank: Any
) -> None:
    save(client_for(alice), pg, SENSITIVE, "Mine")
    query = SavedQuery.objects.get()
    other = client_for(frank)
    assert other.get(reverse("editor"), {"saved": query.pk}).status_code == 404
    assert other.get(reverse("saved_query_edit", args=[query.pk])).status_code == 404
    assert (
        other.post(
            reverse("saved_query_edit", args=[query.pk]), {"title": "hijacked", "sql": "SELECT 1"}
        ).status_code
        == 404
    )
    assert other.post(reverse("saved_query_delete", args=[query.pk])).status_code == 404
    assert b"Mine" not in other.get(reverse("saved_query_list")).content
    query.refresh_from_db()
    assert query.title == "Mine" and query.sql == SENSITIVE


def test_a_shared_query_is_listed_to_the_connections_users_only_and_only_its_owner_changes_it(
    pg: Any, alice: Any, frank: Any, groups: dict[str, Any], tmp_path: Any
) -> None:
    # A connection only alice may use: a query shared on it reaches nobody else.
    private = make_connection(name="alices", engine="sqlite", database=str(tmp_path / "a.db"))
    grant(private, alice, "read")
    client = client_for(alice)
    save(client, pg, "SELECT city FROM customers", "Cities", shared="on")
    save(client, private, "SELECT 1", "Only mine to see", shared="on")
    cities, hidden = SavedQuery.objects.order_by("title")
    assert cities.shared and hidden.shared

    other = client_for(frank)
    listed = other.get(reverse("saved_query_list")).content.decode()
    assert "Cities" in listed and "Only mine to see" not in listed
    assert "Cities" in other.get(reverse("editor")).content.decode()  # the editor's sidebar
    opened = other.get(reverse("editor"), {"saved": cities.pk})
    assert opened.status_code == 200 and opened.context["sql"] == "SELECT city FROM customers"
    assert "shared by alice" in opened.content.decode()
    assert other.get(reverse("editor"), {"saved": hidden.pk}).status_code == 404
    # Shared is not editable by others
    assert other.get(reverse("saved_query_edit", args=[cities.pk])).status_code == 404
    assert other.post(reverse("saved_query_delete", args=[cities.pk])).status_code == 404

    # Without a grant on its connection, frank no longer finds it.
    AccessGrant.objects.filter(connection=pg, group=groups["analyst"]).delete()
    grant(pg, alice, "read")
    assert other.get(reverse("editor"), {"saved": cities.pk}).status_code == 404
    assert "Cities" not in other.get(reverse("saved_query_list")).content.decode()

    shared = AuditEvent.objects.filter(kind=EventKind.SAVED_QUERY_SHARED).order_by("id")
    assert [e.detail["title"] for e in shared] == ["Cities", "Only mine to see"]
    assert shared[0].sql == "SELECT city FROM customers"
    assert shared[0].connection_name == "demo-postgres" and shared[0].actor_id == alice.pk


def test_the_owner_renames_unshares_and_deletes_and_what_others_saw_is_recorded(
    pg: Any, alice: Any
) -> None:
    client = client_for(alice)
    save(client, pg, "SELECT city FROM customers", "Cities", shared="on")
    query = SavedQuery.objects.get()
    edit = reverse("saved_query_edit", args=[query.pk])
    form = {"title": "Cities by name", "sql": "SELECT city FROM customers ORDER BY city"}
    response = client.post(edit, {**form, "connection": pg.pk, "shared": "on"})
    assert response.status_code == 302
    query.refresh_from_db()
    assert query.title == "Cities by name" and query.shared
    updated = AuditEvent.objects.get(kind=EventKind.SAVED_QUERY_UPDATED)
    assert updated.detail["changed"] == ["title", "sql"]
    assert updated.sql == "SELECT city FROM customers ORDER BY city"

    client.post(edit, {**form, "connection": pg.pk})  # unticked: no longer shared
    query.refresh_from_db()
    assert not query.shared
    assert AuditEvent.objects.filter(kind=EventKind.SAVED_QUERY_UNSHARED).count() == 1
    client.post(edit, {**form, "title": "Private rename", "connection": pg.pk})
    assert AuditEvent.objects.filter(kind=EventKind.SAVED_QUERY_UPDATED).count() == 1

    client.post(edit, {**form, "connection": pg.pk, "shared": "on"})
    assert client.post(reverse("saved_query_delete", args=[query.pk])).status_code == 302
    assert not SavedQuery.objects.exists()
    deleted = AuditEvent.objects.get(kind=EventKind.SAVED_QUERY_DELETED)
    assert deleted.detail["saved_query"] == query.pk


@override_settings(WARDEN_QUERY_MAX_BYTES=1024)
def test_saving_checks_the_title_the_text_and_sharing(pg: Any, alice: Any) -> None:
    client = client_for(alice)
    cases = [
        ({"title": "  "}, "Give the query a title."),
        ({"title": "x" * 201}, "The title is too long: at most 200 characters."),
        ({"sql": ""}, "Empty statement: nothing to run."),
        ({"sql": "SELECT 1 -- " + "x" * 1100}, "SQL is too large"),
        ({"sql": "SELECT '\x00'"}, "NUL byte"),
        ({"connection": "", "shared": "on"}, "Choose a connection to share this query"),
        ({"connection": "999999"}, "No connection named"),
    ]
    for change, message in cases:
        data = {"title": "ok", "sql": "SELECT 1", "connection": pg.pk, **change}
        response = client.post(reverse("saved_query_create"), data)
        assert response.status_code == 400, change
        assert message in response.content.decode(), change
        assert response.context["sql"] == data["sql"]  # kept in the editor to fix
    assert not SavedQuery.objects.exists()
    # Without a connection, a private query is fine.
    assert save(client, None, "SELECT 1", "scratch").status_code == 302


# ---------------------------------------------------------------- schema sidebar


def test_the_schema_sidebar_marks_masked_columns_as_the_engine_masks_them(
    pg: Any, alice: Any
) -> None:
    client = client_for(alice)
    page = client.get(reverse("schema_browser", args=[pg.pk]))
    assert page.status_code == 200
    tables = {t.name: t for t in page.context["tables"]}
    customers = {c.name: c for c in tables["customers"].columns}
    assert customers["ssn"].masked and customers["email"].masked
    assert not customers["city"].masked and not customers["id"].masked
    # The rule each names is the one a run of the same columns records.
    client.post(
        reverse("run_create"), {"connection": pg.pk, "sql": "SELECT ssn, email FROM customers"}
    )
    run = QueryRun.objects.latest("id")
    ran = {c["name"]: c["rule"] for c in run.decision_detail["masking"]["statements"][0]["columns"]}
    assert customers["ssn"].rule == ran["ssn"] == "national_id: redact"
    assert customers["email"].rule == ran["email"]
    body = page.content.decode()
    assert 'data-masked="national_id: redact"' in body and "masked: national_id (redact)" in body
    tickets = {c.name: c for c in tables["support_tickets"].columns}
    assert tickets["body"].scanned and not tickets["body"].masked
    assert "scanned: free text" in body
    # The same tables as autocomplete: nothing more, nothing less.
    autocomplete = client.get(reverse("connection_schema", args=[pg.pk])).json()["tables"]
    assert set(tables) == set(autocomplete)
    assert "<html" in body and "data-insert" not in body  # a page of its own, without JS


def test_the_sidebar_fragment_for_htmx_inserts_names_and_shows_my_exemption(
    pg: Any, alice: Any, carol: Any
) -> None:
    email = CatalogColumn.objects.get(table__connection=pg, table__name="customers", name="email")
    exemption_create(
        caller=Caller(user=carol),
        column=email,
        user=alice,
        group=None,
        expires_at=timezone.now() + dt.timedelta(days=2),
        reason="fraud case 12",
    )
    client = client_for(alice)
    fragment = client.get(reverse("schema_browser", args=[pg.pk]), HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert "<html" not in body and 'data-insert="customers"' in body
    assert '<li data-column="email">' in body  # no data-masked: unmasked for alice
    assert '<li data-column="ssn" data-masked="national_id: redact">' in body
    assert "unmasked for you until" in body
    mine = columns_of(schema_for(user=alice, connection=pg), "customers")
    assert not mine["email"].masked and mine["email"].exempt_until is not None
    # Someone else still sees it masked: the sidebar is per caller.
    theirs = columns_of(schema_for(user=carol, connection=pg), "customers")
    assert theirs["email"].masked and theirs["email"].exempt_until is None


def columns_of(tables: Any, name: str) -> dict[str, Any]:
    return {c.name: c for c in next(t for t in tables if t.name == name).columns}


def test_the_schema_of_a_connection_one_may_not_use_is_not_found(
    pg: Any, alice: Any, eve: Any, tmp_path: Any
) -> None:
    hidden = make_connection(name="hidden", engine="sqlite", database=str(tmp_path / "h.db"))
    assert client_for(alice).get(reverse("schema_browser", args=[hidden.pk])).status_code == 404
    assert client_for(eve).get(reverse("schema_browser", args=[pg.pk])).status_code == 403

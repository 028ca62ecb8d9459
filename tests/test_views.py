"""Every page checks the caller's role; the editor works without JavaScript too."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from governance.models import AccessGrant, Connection, Guardrail, QueryRun

# Real commits: on_commit queues the run, which executes in-process (Celery eager).
pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


ADMIN_PAGES = ["connection_list", "connection_create", "guardrail_list", "guardrail_create"]


@pytest.mark.parametrize("name", ["editor", "history", *ADMIN_PAGES, "audit_events"])
def test_anonymous_users_are_sent_to_login(client: Client, name: str) -> None:
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("name", ["editor", "history", *ADMIN_PAGES, "audit_events"])
def test_a_user_without_a_role_is_refused_everywhere(eve: Any, name: str) -> None:
    assert client_for(eve).get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_analysts_cannot_see_the_configuration_and_auditors_only_read_it(
    alice: Any, dave: Any, name: str
) -> None:
    assert client_for(alice).get(reverse(name)).status_code == 403
    read_only = name in ("connection_list", "guardrail_list", "catalog_overview")
    assert client_for(dave).get(reverse(name)).status_code == (200 if read_only else 403)


def test_auditors_read_the_trail_but_cannot_run_sql(dave: Any, sqlite_conn: Any) -> None:
    client = client_for(dave)
    assert client.get(reverse("audit_events")).status_code == 200
    response = client.post(reverse("run_create"), {"connection": sqlite_conn.pk, "sql": "SELECT 1"})
    assert response.status_code == 403
    assert not QueryRun.objects.exists()


def test_the_editor_runs_a_query_without_javascript(alice: Any, sqlite_conn: Any) -> None:
    client = client_for(alice)
    page = client.get(reverse("editor"))
    assert page.status_code == 200
    assert b"demo" in page.content and b"Production" in page.content
    response = client.post(
        reverse("run_create"),
        {"connection": sqlite_conn.pk, "sql": "SELECT id, full_name FROM customers ORDER BY id"},
    )
    run = QueryRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"?run={run.pk}")
    page = client.get(response["Location"])
    assert b"full_name" in page.content and b"Succeeded" in page.content
    assert b"Page 1 of" in page.content


def test_htmx_submission_returns_the_run_fragment(alice: Any, sqlite_conn: Any) -> None:
    response = client_for(alice).post(
        reverse("run_create"),
        {"connection": sqlite_conn.pk, "sql": "SELECT NULL AS missing, 'NULL' AS text"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b"<html" not in response.content
    body = response.content.decode()
    # A real NULL says so to screen readers (grey italics alone do not); the text 'NULL' is text.
    assert body.count('class="null"') == 1
    assert body.count('<span class="visually-hidden nocopy">no value (NULL)</span>') == 1
    assert "<td>NULL</td>" in body


def test_json_and_array_cells_read_as_json_not_python(alice: Any, pg_conn: Any) -> None:
    response = client_for(alice).post(
        reverse("run_create"),
        {
            "connection": pg_conn.pk,
            "sql": """SELECT '{"x": null, "y": true}'::jsonb AS j, ARRAY['a'] AS a""",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b"<td>{&quot;x&quot;: null, &quot;y&quot;: true}</td>" in response.content
    assert b"<td>[&quot;a&quot;]</td>" in response.content


def test_a_held_drop_shows_its_reason(carol: Any, alice: Any, sqlite_conn: Any) -> None:
    from tests.conftest import grant

    grant(sqlite_conn, alice, "ddl")
    client = client_for(alice)
    response = client.post(
        reverse("run_create"),
        {"connection": sqlite_conn.pk, "sql": "DROP TABLE orders"},
        follow=True,
    )
    assert b"Held for approval" in response.content
    run = QueryRun.objects.get()
    assert run.reasons[0]["message"].encode() in response.content


def test_empty_sql_gets_a_clear_error_not_a_500(alice: Any, sqlite_conn: Any) -> None:
    response = client_for(alice).post(
        reverse("run_create"), {"connection": sqlite_conn.pk, "sql": ""}
    )
    assert response.status_code == 400
    assert b"Empty statement" in response.content
    assert AuditEvent.objects.filter(kind="query.rejected").count() == 1


def test_a_connection_the_user_cannot_use_is_unknown(alice: Any, db: Any) -> None:
    from tests.conftest import make_connection

    other = make_connection(name="hidden", engine="sqlite", database="/tmp/none")
    response = client_for(alice).post(
        reverse("run_create"), {"connection": other.pk, "sql": "SELECT 1"}
    )
    assert response.status_code == 400
    assert b"No connection named" in response.content


def test_users_cannot_see_each_others_runs(alice: Any, carol: Any, sqlite_conn: Any) -> None:
    client_for(alice).post(reverse("run_create"), {"connection": sqlite_conn.pk, "sql": "SELECT 1"})
    run = QueryRun.objects.get()
    response = client_for(carol).get(reverse("run_detail", args=[run.pk]))
    assert response.status_code == 404
    assert client_for(carol).get(reverse("editor") + f"?run={run.pk}").status_code == 404


def test_history_lists_runs_with_rerun_links(alice: Any, sqlite_conn: Any) -> None:
    client = client_for(alice)
    client.post(reverse("run_create"), {"connection": sqlite_conn.pk, "sql": "SELECT 42"})
    run = QueryRun.objects.get()
    page = client.get(reverse("history"))
    assert b"SELECT 42" in page.content and f"?from={run.pk}".encode() in page.content
    # each Re-run link says which run it repeats, for a screen reader's list of links
    assert f'aria-label="Re-run run {run.pk} on demo: SELECT 42"'.encode() in page.content
    rerun = client.get(reverse("editor") + f"?from={run.pk}")
    assert b"SELECT 42</textarea>" in rerun.content


def test_rerun_on_a_connection_no_longer_granted_does_not_switch_connection(
    alice: Any, sqlite_conn: Any, groups: dict[str, Any], sqlite_target: Any
) -> None:
    """Re-run selected nothing when the run's connection was gone, so the browser picked the
    first connection in the list: the statement was one click from running elsewhere."""
    from tests.conftest import grant, make_connection

    other = make_connection(
        name="analytics", engine="sqlite", database=str(sqlite_target), environment="development"
    )
    access = grant(other, groups["analyst"], "read")
    client = client_for(alice)
    client.post(reverse("run_create"), {"connection": other.pk, "sql": "SELECT 42"})
    run = QueryRun.objects.get()
    access.delete()
    for query in (f"?from={run.pk}", f"?run={run.pk}"):
        page = client.get(reverse("editor") + query).content.decode()
        assert "SELECT 42</textarea>" in page
        option = re.search(rf'<option value="{sqlite_conn.pk}"[^>]*>', page)
        assert option is not None and "selected" not in option.group()  # offered, not chosen
        assert '<option value="" selected>' in page
        assert "analytics" in page and "no longer available to you" in page
    refused = client.post(reverse("run_create"), {"connection": "", "sql": "SELECT 42"})
    assert refused.status_code == 400 and b"Choose a connection" in refused.content
    assert QueryRun.objects.count() == 1


def test_a_refused_submission_without_javascript_keeps_the_recent_runs(
    alice: Any, sqlite_conn: Any
) -> None:
    client = client_for(alice)
    client.post(reverse("run_create"), {"connection": sqlite_conn.pk, "sql": "SELECT 42"})
    refused = client.post(reverse("run_create"), {"connection": sqlite_conn.pk, "sql": "  "})
    assert refused.status_code == 400 and b"Empty statement" in refused.content
    assert b"No queries yet." not in refused.content
    assert b"SELECT 42</code>" in refused.content


def test_schema_endpoint_lists_tables_for_autocomplete(alice: Any, sqlite_conn: Any) -> None:
    data = client_for(alice).get(reverse("connection_schema", args=[sqlite_conn.pk])).json()
    assert "customers" in data["tables"] and "email" in data["tables"]["customers"]


def test_admin_creates_a_connection_and_the_password_is_write_only(carol: Any) -> None:
    client = client_for(carol)
    response = client.post(
        reverse("connection_create"),
        {
            "name": "warehouse",
            "engine": "postgresql",
            "environment": "staging",
            "host": "127.0.0.1",
            "port": "5432",
            "database": "wh",
            "username": "reader",
            "password": "hunter2-secret",
            "statement_timeout_ms": "5000",
            "row_cap": "1000",
            "export_row_limit": "1000000",
        },
    )
    assert response.status_code == 302
    connection = Connection.objects.get(name="warehouse")
    assert connection.get_password() == "hunter2-secret"
    edit = client.get(reverse("connection_edit", args=[connection.pk]))
    assert b"hunter2-secret" not in edit.content
    assert (
        b"hunter2-secret"
        not in client.get(reverse("connection_detail", args=[connection.pk])).content
    )
    event = AuditEvent.objects.get(kind="connection.created")
    assert "hunter2-secret" not in str(event.detail)
    # a blank password on edit keeps the stored one
    client.post(
        reverse("connection_edit", args=[connection.pk]),
        {
            "name": "warehouse",
            "engine": "postgresql",
            "environment": "production",
            "host": "127.0.0.1",
            "port": "5432",
            "database": "wh",
            "username": "reader",
            "password": "",
            "statement_timeout_ms": "5000",
            "row_cap": "1000",
            "export_row_limit": "1000000",
        },
    )
    connection.refresh_from_db()
    assert connection.environment == "production"
    assert connection.get_password() == "hunter2-secret"


def test_invalid_connection_input_is_a_form_error(carol: Any) -> None:
    response = client_for(carol).post(
        reverse("connection_create"),
        {
            "name": "Bad Name!",
            "engine": "postgresql",
            "environment": "production",
            "database": "x",
            "port": "70000",
            "statement_timeout_ms": "10",
            "row_cap": "0",
            "export_row_limit": "1",
        },
    )
    assert response.status_code == 200
    assert not Connection.objects.exists()
    for field in (b"lower-case letters", b"A host is required", b"65535"):
        assert field in response.content


def test_admin_grants_and_revokes_access(carol: Any, alice: Any, db: Any) -> None:
    from tests.conftest import make_connection

    connection = make_connection(name="c", engine="sqlite", database="/tmp/none")
    client = client_for(carol)
    client.post(
        reverse("grant_create", args=[connection.pk]),
        {"user": alice.pk, "capabilities": ["read", "export"], "reason": "quarterly report"},
    )
    grant = AccessGrant.objects.get()
    assert grant.capabilities == ["export", "read"]
    refused = client.post(reverse("grant_create", args=[connection.pk]), {"capabilities": ["read"]})
    assert refused.status_code == 400
    client.post(reverse("grant_revoke", args=[connection.pk, grant.pk]))
    assert not AccessGrant.objects.exists()
    kinds = set(AuditEvent.objects.values_list("kind", flat=True))
    assert {"grant.created", "grant.revoked"} <= kinds


def test_a_grant_must_end_in_the_future(carol: Any, alice: Any, db: Any) -> None:
    """A mistyped year must not create a grant that never works, silently."""
    from tests.conftest import make_connection

    connection = make_connection(name="c", engine="sqlite", database="/tmp/none")
    response = client_for(carol).post(
        reverse("grant_create", args=[connection.pk]),
        {"user": alice.pk, "capabilities": ["read"], "expires_at": "2001-01-01T00:00"},
    )
    assert response.status_code == 400
    assert b"The grant must end in the future." in response.content
    assert not AccessGrant.objects.exists()


def test_a_grant_ending_at_the_end_of_time_is_refused_not_stored(
    carol: Any, alice: Any, db: Any, settings: Any
) -> None:
    """9999-12-31 23:00 in New York is in the year 10000 in UTC: stored, it made the
    connection's page (where the grant could be revoked) fail for good."""
    from tests.conftest import make_connection

    settings.TIME_ZONE = "America/New_York"
    connection = make_connection(name="c", engine="sqlite", database="/tmp/none")
    client = client_for(carol)
    response = client.post(
        reverse("grant_create", args=[connection.pk]),
        {"user": alice.pk, "capabilities": ["read"], "expires_at": "9999-12-31T23:00"},
    )
    assert response.status_code == 400
    assert b"too far in the future" in response.content
    assert not AccessGrant.objects.exists()
    assert client.get(reverse("connection_detail", args=[connection.pk])).status_code == 200


def test_admin_edits_a_guardrail_and_decisions_follow(
    carol: Any, alice: Any, sqlite_conn: Any
) -> None:
    client = client_for(carol)
    response = client.post(
        reverse("guardrail_create"),
        {
            "name": "no-card-table",
            "action": "deny",
            "priority": "1",
            "enabled": "on",
            "message": "Card data is off limits.",
            "table_pattern": "payment_cards",
        },
    )
    assert response.status_code == 302
    assert AuditEvent.objects.filter(kind="guardrail.created").exists()
    client_for(alice).post(
        reverse("run_create"),
        {"connection": sqlite_conn.pk, "sql": "SELECT card_number FROM payment_cards"},
    )
    run = QueryRun.objects.get()
    assert run.status == "denied"
    assert run.reasons[0]["message"] == "Card data is off limits."
    guardrail = Guardrail.objects.get(name="no-card-table")
    client.post(reverse("guardrail_delete", args=[guardrail.pk]))
    assert AuditEvent.objects.filter(kind="guardrail.deleted").exists()


@pytest.mark.django_db(transaction=False)
def test_default_guardrails_are_seeded(db: Any) -> None:
    assert Guardrail.objects.filter(action="deny").exists()
    assert Guardrail.objects.filter(action="require_approval").exists()


def test_login_logout_and_failed_login_are_audited(alice: Any) -> None:
    client = Client()
    client.post(reverse("account_login"), {"login": "alice", "password": "wrong"})
    assert AuditEvent.objects.filter(kind="auth.login_failed", actor_name="alice").exists()
    response = client.post(
        reverse("account_login"), {"login": "alice", "password": "alice-pass-123!"}
    )
    assert response.status_code == 302
    assert AuditEvent.objects.filter(kind="auth.login", actor_name="alice").exists()
    client.post(reverse("account_logout"))
    assert AuditEvent.objects.filter(kind="auth.logout").exists()


def test_self_signup_is_closed(client: Client, db: Any) -> None:
    response = client.post(
        reverse("account_signup"),
        {"username": "mallory", "password1": "x-Very-long-pw-1", "password2": "x-Very-long-pw-1"},
    )
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="mallory").exists()
    assert response.status_code in (200, 302, 403)


def test_the_audit_ip_comes_from_the_trusted_proxy_only(alice: Any, settings: Any) -> None:
    from django.test import RequestFactory

    from governance.signals import client_ip

    factory = RequestFactory()
    forged = factory.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 10.0.0.7", REMOTE_ADDR="10.0.0.1")
    settings.WARDEN_TRUSTED_PROXIES = 0
    assert client_ip(forged) == "10.0.0.1"
    settings.WARDEN_TRUSTED_PROXIES = 1
    assert client_ip(forged) == "10.0.0.7"  # the client-supplied 6.6.6.6 is ignored
    bogus = factory.get("/", HTTP_X_FORWARDED_FOR="not-an-ip", REMOTE_ADDR="10.0.0.1")
    assert client_ip(bogus) is None


@pytest.mark.parametrize("timeout", ["-5", "50"])
def test_a_connection_number_out_of_bounds_names_the_real_bound(carol: Any, timeout: str) -> None:
    response = client_for(carol).post(
        reverse("connection_create"),
        {
            "name": "bounds",
            "engine": "sqlite",
            "environment": "production",
            "database": "/tmp/none.db",
            "statement_timeout_ms": timeout,
            "row_cap": "-1",
            "export_row_limit": "1",
        },
    )
    assert response.status_code == 200
    assert not Connection.objects.exists()
    body = response.content.decode()
    assert "greater than or equal to 100." in body  # the timeout's real minimum
    assert "greater than or equal to 0." not in body
    assert 'min="100"' in body and 'max="3600000"' in body


@pytest.mark.parametrize(
    ("method", "name"), [("post", "run_create"), ("get", "approval_queue"), ("get", "history")]
)
def test_htmx_requests_after_the_session_ended_send_the_whole_page_to_login(
    client: Client, method: str, name: str
) -> None:
    # Signed out in another tab: an htmx run or a poll must not swap the login page into the
    # results pane or the queue; the browser goes to the login page, back here afterwards.
    response = getattr(client, method)(
        reverse(name),
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/editor/?run=7"},
    )
    assert response.status_code == 200  # htmx acts only on a successful response
    assert response["HX-Redirect"] == "/accounts/login/?next=/editor/%3Frun%3D7"
    assert "Location" not in response


def test_sign_in_and_the_password_asked_again_start_in_their_field(
    client: Client, alice: Any
) -> None:
    # Keyboard users type at once instead of tabbing through the page to the field.
    login = client.get(reverse("account_login")).content.decode()
    assert re.search(r'<input [^>]*name="login"[^>]*autofocus', login)
    again = client_for(alice).get(reverse("account_reauthenticate")).content.decode()
    assert re.search(r'<input [^>]*name="password"[^>]*autofocus', again)


@pytest.mark.parametrize(
    ("sql", "changed"),
    [
        ("UPDATE customers SET city = city WHERE id = 1", True),
        # The rows shown come from the SELECT: they are not rows the UPDATE changed.
        ("UPDATE customers SET city = city WHERE id = 1; SELECT 7 AS x", False),
    ],
)
def test_only_rows_a_write_returned_are_called_changed(
    carol: Any, sqlite_conn: Any, sql: str, changed: bool
) -> None:
    response = client_for(carol).post(
        reverse("run_create"),
        {"connection": sqlite_conn.pk, "sql": sql},
        headers={"HX-Request": "true"},
    )
    assert QueryRun.objects.get().status == "succeeded"
    assert (b"data-changed-rows" in response.content) is changed


def test_pages_name_their_icon_so_browsers_do_not_ask_for_favicon_ico(alice: Any) -> None:
    from django.contrib.staticfiles import finders

    page = client_for(alice).get(reverse("editor"))
    assert b'<link rel="icon" href="/static/img/favicon.svg"' in page.content
    assert finders.find("img/favicon.svg")


DEMO_BANNER = b"public built-in secret key"


def test_every_page_says_when_warden_runs_on_the_public_key(alice: Any, carol: Any) -> None:
    from django.test import override_settings

    from governance.env import PUBLIC_DEMO_SECRET_KEY

    pages = [reverse("account_login"), "/django-admin/login/"]
    signed_in = [reverse("editor"), reverse("history"), "/django-admin/"]
    with override_settings(SECRET_KEY=PUBLIC_DEMO_SECRET_KEY):
        carol.is_staff = True
        carol.save()
        for path in pages:
            assert DEMO_BANNER in Client().get(path).content, path
        for path in signed_in:
            assert DEMO_BANNER in client_for(carol).get(path).content, path
    for path in pages:
        assert DEMO_BANNER not in Client().get(path).content, path
    assert DEMO_BANNER not in client_for(alice).get(reverse("editor")).content


def test_a_refused_submission_keeps_its_purpose_and_an_accepted_one_empties_it(
    alice: Any, sqlite_conn: Any
) -> None:
    # Refused: nothing was submitted, so the purpose typed is still this statement's.
    client = client_for(alice)
    data = {"connection": sqlite_conn.pk, "sql": " ", "purpose": "month-end <check>"}
    refused = client.post(reverse("run_create"), data)
    assert refused.status_code == 400
    assert b'value="month-end &lt;check&gt;"' in refused.content
    # Accepted through htmx: the page keeps its form, so the field is swapped out empty.
    accepted = client.post(
        reverse("run_create"), {**data, "sql": "SELECT 1"}, headers={"HX-Request": "true"}
    )
    (field,) = re.findall(r"<input id=\"purpose\"[^>]*>", accepted.content.decode())
    assert 'hx-swap-oob="true"' in field and "value=" not in field
    # A status poll of the same run leaves whatever is being typed for the next one alone.
    run = QueryRun.objects.get()
    poll = client.get(reverse("run_detail", args=[run.pk]), headers={"HX-Request": "true"})
    assert b'id="purpose"' not in poll.content

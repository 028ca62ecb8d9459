"""'Try this rule' on the guardrail form: the engine's own decisions for a rule as typed,
alone and among the saved guardrails; nothing runs, nothing is saved, admins only."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from governance.models import Guardrail, QueryRun
from tests.conftest import grant

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _rule(**values: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "hold-orders",
        "action": "deny",
        "priority": "5",
        "enabled": "on",
        "message": "",
        "table_pattern": "orders",
    }
    data.update(values)
    return data


def _try(connection: Any, sql: str, as_user: Any = None, **rule: Any) -> dict[str, Any]:
    return {
        **_rule(**rule),
        "try-sql": sql,
        "try-connection": str(connection.pk),
        "try-as_user": str(as_user.pk) if as_user else "",
    }


def _trial(response: Any) -> Any:
    assert response.status_code == 200, response.content
    trial = response.context["trial"]
    assert trial is not None, response.context["try_form"].errors
    return trial


def test_a_new_rule_is_tried_alone_and_with_the_saved_guardrails(carol: Any, pg_conn: Any) -> None:
    client = _client(carol)
    rules, events = Guardrail.objects.count(), AuditEvent.objects.count()
    response = client.post(reverse("guardrail_try"), _try(pg_conn, "SELECT id, status FROM orders"))
    trial = _trial(response)
    assert trial.in_force and trial.matched == (0,)
    assert trial.alone["decision"] == trial.with_rule["decision"] == "deny"
    assert trial.saved["decision"] == "allow"  # production-allow-reads, today
    assert trial.with_rule["reasons"][0]["rule"] == "hold-orders"
    text = response.content.decode()
    assert "Matches statement 1: it would <strong>deny it</strong>" in text
    assert "Saving this rule changes the decision for this statement" in text
    assert 'value="hold-orders"' in text  # no JS: the page again, as typed
    # nothing saved, nothing recorded, nothing ran
    assert Guardrail.objects.count() == rules and AuditEvent.objects.count() == events
    assert not QueryRun.objects.exists()


def test_an_edited_rule_replaces_its_saved_version(carol: Any, pg_conn: Any) -> None:
    reads = Guardrail.objects.get(name="production-allow-reads")
    values = _try(
        pg_conn,
        "SELECT * FROM customers",
        name=reads.name,
        action="require_approval",
        priority="60",
        table_pattern="",
        categories="read",
        environments="production",
    )
    trial = _trial(_client(carol).post(reverse("guardrail_edit_try", args=[reads.pk]), values))
    assert trial.rule.id == reads.pk
    assert trial.with_rule["decision"] == "require_approval"
    assert trial.saved["decision"] == "allow"
    reads.refresh_from_db()
    assert reads.action == "allow"  # unsaved


def test_the_htmx_try_sends_the_result_alone(carol: Any, mysql_conn: Any) -> None:
    response = _client(carol).post(
        reverse("guardrail_try"),
        _try(mysql_conn, "DELETE FROM orders WHERE id = 1", action="require_approval"),
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert b"<html" not in response.content and b'id="guardrail-try"' in response.content
    assert b'data-decision="require_approval"' in response.content


@pytest.mark.parametrize(
    ("pattern", "action", "sql", "matched"),
    [
        ("ORD*", "deny", 'SELECT * FROM "Orders"', True),  # case is ignored
        ("ord?rs", "deny", "SELECT * FROM orders", True),
        ("orders", "deny", "SELECT * FROM public.orders", True),  # no dot: any schema
        ("public.orders", "deny", "SELECT * FROM orders", True),  # unqualified: fails closed
        ("public.orders", "allow", "SELECT * FROM orders", False),  # allow needs the schema
        ("sales.orders", "deny", "SELECT * FROM public.orders", False),
        ("orders", "deny", "WITH orders AS (SELECT 1 AS x) SELECT x FROM orders", False),  # CTE
        ("[!o]*", "deny", "SELECT * FROM orders", False),
    ],
)
def test_the_documented_table_pattern_syntax(
    carol: Any, pg_conn: Any, pattern: str, action: str, sql: str, matched: bool
) -> None:
    values = _try(pg_conn, sql, table_pattern=pattern, action=action)
    trial = _trial(_client(carol).post(reverse("guardrail_try"), values))
    assert bool(trial.matched) is matched


def test_the_page_explains_the_table_pattern_syntax(carol: Any) -> None:
    page = _client(carol).get(reverse("guardrail_create")).content.decode()
    assert "Table pattern syntax" in page and "ignoring case" in page
    assert "Try this rule" in page and 'name="try-sql"' in page
    assert 'name="try-sql" required' not in page  # Save must not ask for a statement


def test_a_person_is_tried_with_their_own_grants_and_roles(
    carol: Any, alice: Any, pg_conn: Any
) -> None:
    write = "UPDATE orders SET status = 'x' WHERE id = 1"
    values = _try(pg_conn, write, as_user=alice, table_pattern="", categories="write")
    trial = _trial(_client(carol).post(reverse("guardrail_try"), values))
    # alice reads only: the capability check comes before any guardrail
    assert trial.with_rule["decision"] == "deny"
    assert trial.with_rule["reasons"][0]["rule"] == "capability" and not trial.matched
    grant(pg_conn, alice, "write")
    trial = _trial(_client(carol).post(reverse("guardrail_try"), values))
    assert trial.matched == (0,) and trial.with_rule["decision"] == "deny"
    # scoped to admins only: not in force for alice
    values = {**values, "groups": [str(carol.groups.get().pk)]}
    trial = _trial(_client(carol).post(reverse("guardrail_try"), values))
    assert not trial.in_force and not trial.matched
    assert trial.with_rule["decision"] == "require_approval"  # production-approve-changes
    assert b"Not in force here" in _client(carol).post(reverse("guardrail_try"), values).content


def test_a_disabled_rule_decides_alone_but_not_among_the_others(
    carol: Any, sqlite_conn: Any
) -> None:
    values = _try(sqlite_conn, "SELECT * FROM orders")
    del values["enabled"]
    trial = _trial(_client(carol).post(reverse("guardrail_try"), values))
    assert trial.alone["decision"] == "deny" and trial.with_rule == trial.saved


def test_masking_holds_count_as_in_a_real_submission(carol: Any, sqlite_conn: Any) -> None:
    from governance.services.catalog import catalog_refresh

    catalog_refresh(connection=sqlite_conn)
    probe = "SELECT id FROM customers WHERE ssn LIKE '1%'"
    values = _try(sqlite_conn, probe, table_pattern="nothing_here")
    trial = _trial(_client(carol).post(reverse("guardrail_try"), values))
    assert trial.saved["decision"] != "allow"  # the saved probe rule holds it


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("", "This field is required"),
        ("   ", "Empty statement"),
        ("SELECT 1\x00", "Null characters are not allowed"),
    ],
)
def test_bad_statements_are_form_errors(carol: Any, pg_conn: Any, sql: str, words: str) -> None:
    response = _client(carol).post(reverse("guardrail_try"), _try(pg_conn, sql))
    assert response.status_code == 200 and response.context["trial"] is None
    assert any(words in e for e in response.context["try_form"].errors["sql"])


def test_unparseable_sql_is_decided_not_a_server_error(carol: Any, pg_conn: Any) -> None:
    trial = _trial(_client(carol).post(reverse("guardrail_try"), _try(pg_conn, "SELEC * FORM")))
    assert trial.with_rule["decision"] == "deny"


def test_a_rule_with_errors_is_not_tried(carol: Any, pg_conn: Any) -> None:
    values = _try(pg_conn, "SELECT 1", priority="soon")
    response = _client(carol).post(reverse("guardrail_try"), values, HTTP_HX_REQUEST="1")
    assert b"Correct the fields marked in the rule" in response.content
    values = {**_try(pg_conn, "SELECT 1"), "try-connection": "999999"}
    response = _client(carol).post(reverse("guardrail_try"), values)
    assert "connection" in response.context["try_form"].errors


def test_a_rule_is_tried_before_it_has_a_free_name(carol: Any, pg_conn: Any) -> None:
    taken = _try(pg_conn, "SELECT * FROM orders", name="production-allow-reads")
    trial = _trial(_client(carol).post(reverse("guardrail_try"), taken))
    assert trial.matched == (0,)
    unnamed = _trial(
        _client(carol).post(reverse("guardrail_try"), _try(pg_conn, "SELECT 1", name=""))
    )
    assert unnamed.rule.name == "(this rule)"


@pytest.mark.parametrize("who", ["alice", "bob", "dave", "eve"])
def test_only_admins_try_rules(who: str, request: pytest.FixtureRequest, pg_conn: Any) -> None:
    client = _client(request.getfixturevalue(who))
    rule = Guardrail.objects.first()
    assert rule is not None
    for url in (reverse("guardrail_try"), reverse("guardrail_edit_try", args=[rule.pk])):
        assert client.post(url, _try(pg_conn, "SELECT 1")).status_code == 403


def test_trying_needs_a_post_a_csrf_token_and_a_sign_in(carol: Any, pg_conn: Any) -> None:
    url = reverse("guardrail_try")
    anonymous = Client().post(url, _try(pg_conn, "SELECT 1"))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert _client(carol).get(url).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(carol)
    assert strict.post(url, _try(pg_conn, "SELECT 1")).status_code == 403


@pytest.mark.parametrize("name", ["capability", "masking", "Credentials", "default-allow"])
def test_a_guardrail_may_not_take_the_name_of_one_of_wardens_own_reasons(
    carol: Any, pg_conn: Any, name: str
) -> None:
    from governance.models import Guardrail

    response = _client(carol).post(reverse("guardrail_create"), _rule(name=name))
    assert response.status_code == 200
    from html import unescape

    assert "names one of Warden's own reasons" in unescape(response.content.decode())
    assert not Guardrail.objects.filter(name__iexact=name).exists()

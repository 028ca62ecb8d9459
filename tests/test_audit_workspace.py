"""The auditor's workspace: the filtered trail, an event's page, streamed exports, and the
audit of looking at the audit trail."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.kinds import EventKind
from audit.models import AuditEvent
from audit.services import event_build

pytestmark = pytest.mark.django_db


def _event(days_ago: int = 0, **fields: Any) -> AuditEvent:
    event = event_build(**{"kind": EventKind.QUERY_SUBMITTED, **fields})
    event.created_at = timezone.now() - dt.timedelta(days=days_ago)
    from audit.chain import event_mac
    from audit.keys import mac_key

    event.mac = event_mac(event, mac_key())
    event.save(force_insert=True)
    return event


@pytest.fixture
def trail(db: Any) -> dict[str, AuditEvent]:
    return {
        "old": _event(10, actor_name="alice", connection_name="prod", run_id=7, decision="allow"),
        "held": _event(
            2,
            actor_name="alicia",
            connection_name="prod",
            run_id=8,
            decision="require_approval",
            sql="UPDATE t SET x = 1",
            detail={"reasons": [{"rule": "writes", "message": "a write"}]},
        ),
        "denied": _event(0, actor_name="bob", connection_name="staging", decision="deny"),
        "cli": _event(0, kind=EventKind.AUTH_LOGIN, actor_name="carol", channel="cli"),
    }


def _shown(page: Any) -> set[int]:
    return {e.pk for e in page.context["page"].object_list}


@pytest.fixture
def auditor(dave: Any) -> Client:
    client = Client()
    client.force_login(dave)
    return client


def test_each_filter_narrows_the_trail(auditor: Client, trail: dict[str, AuditEvent]) -> None:
    url = reverse("audit_events")
    today = timezone.localdate()
    cases = {
        "actor=ali": {"old", "held"},  # partial, any case
        "actor=ALICIA": {"held"},
        "connection=PROD": {"old", "held"},
        "run=8": {"held"},
        "decision=deny": {"denied"},
        "channel=cli": {"cli"},
        "kind=auth.&actor=carol": {"cli"},
        f"start={today - dt.timedelta(days=3)}&end={today - dt.timedelta(days=1)}": {"held"},
        f"start={today}&actor=o": {"denied", "cli"},
        f"end={today - dt.timedelta(days=5)}": {"old"},
    }
    for query, expected in cases.items():
        page = auditor.get(f"{url}?{query}")
        assert page.status_code == 200
        assert _shown(page) == {trail[name].pk for name in expected}, query


@pytest.mark.parametrize(
    "query, message",
    [
        ("run=abc", b"Enter a whole number"),
        ("run=-3", b"greater than or equal to 1"),
        ("start=2026-13-45", b"Enter a valid date"),
        ("start=2026-12-10&end=2026-12-01", b"The end date is before the start date"),
        ("kind=query.succ", b"Unknown event kind"),
        ("decision=maybe", b"Select a valid choice"),
        ("actor=" + "x" * 200, b"at most 150 characters"),
        ("run=99999999999999999999999", b"less than or equal to"),
        ("end=9999-12-31", b"Choose a date between 1970 and 9998"),
        ("start=0001-01-01", b"Choose a date between 1970 and 9998"),
    ],
)
def test_bad_filters_say_why_and_show_nothing(
    auditor: Client, trail: dict[str, AuditEvent], query: str, message: bytes
) -> None:
    page = auditor.get(f"{reverse('audit_events')}?{query}")
    assert page.status_code == 200
    assert message in page.content
    assert _shown(page) == set()
    export = auditor.get(f"{reverse('audit_export', args=['csv'])}?{query}")
    assert export.status_code == 400


def test_an_event_opens_on_its_own_page(auditor: Client, trail: dict[str, AuditEvent]) -> None:
    held = trail["held"]
    page = auditor.get(reverse("audit_event", args=[held.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "UPDATE t SET x = 1" in body and "a write" in body and held.mac in body
    assert "not sealed yet" in body
    assert auditor.get(reverse("audit_event", args=[10**9])).status_code == 404
    listing = auditor.get(reverse("audit_events")).content.decode()
    assert reverse("audit_event", args=[held.pk]) in listing


def test_looking_at_the_trail_is_itself_recorded(
    auditor: Client, trail: dict[str, AuditEvent], dave: Any
) -> None:
    auditor.get(reverse("audit_events"), {"actor": "ali", "decision": "allow"})
    auditor.get(reverse("audit_event", args=[trail["old"].pk]))
    viewed = AuditEvent.objects.filter(kind="audit.viewed").order_by("id")
    assert [e.detail for e in viewed] == [
        {"filters": {"actor": "ali", "decision": "allow"}, "page": 1},
        {"event": trail["old"].pk},
    ]
    assert {e.actor_name for e in viewed} == {"dave"}


def _body(response: Any) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def test_exports_stream_the_filtered_view_and_are_audited(
    auditor: Client, trail: dict[str, AuditEvent]
) -> None:
    query = {"connection": "prod"}
    response = auditor.get(reverse("audit_export", args=["csv"]), query)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [int(r["id"]) for r in rows] == [trail["old"].pk, trail["held"].pk]  # oldest first
    assert rows[1]["kind_label"] == "Statement submitted and decided"
    assert json.loads(rows[1]["detail"])["reasons"][0]["rule"] == "writes"

    response = auditor.get(reverse("audit_export", args=["jsonl"]), query)
    lines = [json.loads(line) for line in _body(response).splitlines()]
    assert [line["id"] for line in lines] == [trail["old"].pk, trail["held"].pk]
    assert lines[1]["sql"] == "UPDATE t SET x = 1" and lines[1]["mac"] == trail["held"].mac

    exported = AuditEvent.objects.filter(kind="audit.exported").order_by("id")
    assert [(e.detail["format"], e.detail["events"]) for e in exported] == [
        ("csv", 2),
        ("jsonl", 2),
    ]
    assert exported[0].detail["filters"] == {"connection": "prod"}
    assert auditor.get("/audit/export.xlsx").status_code == 404


def test_csv_cells_never_run_as_spreadsheet_formulas(auditor: Client, db: Any) -> None:
    _event(kind=EventKind.AUTH_LOGIN_FAILED, actor_name='=HYPERLINK("http://evil")')
    rows = list(csv.DictReader(io.StringIO(_body(auditor.get("/audit/export.csv")))))
    (row,) = [r for r in rows if r["kind"] == "auth.login_failed"]
    assert row["actor_name"] == '\'=HYPERLINK("http://evil")'


@pytest.mark.parametrize("who", ["alice", "bob", "eve"])
def test_only_auditors_and_admins_reach_the_trail(
    who: str, request: pytest.FixtureRequest, trail: dict[str, AuditEvent]
) -> None:
    client = Client()
    client.force_login(request.getfixturevalue(who))
    for url in (
        reverse("audit_events"),
        reverse("audit_event", args=[trail["old"].pk]),
        reverse("audit_export", args=["csv"]),
        reverse("audit_export", args=["jsonl"]),
    ):
        assert client.get(url).status_code == 403, url
    assert not AuditEvent.objects.filter(kind__in=["audit.viewed", "audit.exported"]).exists()
    anonymous = Client().get(reverse("audit_export", args=["csv"]))
    assert anonymous.status_code == 302


def test_admins_reach_it_too(carol: Any, trail: dict[str, AuditEvent]) -> None:
    client = Client()
    client.force_login(carol)
    assert client.get(reverse("audit_events")).status_code == 200


def test_auditors_read_the_configuration_but_change_nothing(
    dave: Any, carol: Any, sqlite_conn: Any
) -> None:
    from governance.models import Guardrail

    auditor = Client()
    auditor.force_login(dave)
    pages = [
        reverse("connection_list"),
        reverse("connection_detail", args=[sqlite_conn.pk]),
        reverse("guardrail_list"),
        reverse("catalog_overview"),
        reverse("catalog_connection", args=[sqlite_conn.pk]),
        reverse("approval_policy_list"),
    ]
    for url in pages:
        page = auditor.get(url)
        assert page.status_code == 200, url
        body = page.content.decode()
        assert 'method="post"' not in body.split("<main", 1)[1].split("</main>")[0].replace(
            "account_logout", ""
        ), url
        assert "Read-only" in body or url == reverse("catalog_overview"), url
    detail = auditor.get(reverse("connection_detail", args=[sqlite_conn.pk])).content.decode()
    assert "analyst" in detail  # the grants are listed
    guardrail = Guardrail.objects.first()
    assert guardrail is not None
    for url in (
        reverse("connection_create"),
        reverse("connection_edit", args=[sqlite_conn.pk]),
        reverse("guardrail_edit", args=[guardrail.pk]),
        reverse("approval_policy_create"),
    ):
        assert auditor.get(url).status_code == 403, url
    for url in (
        reverse("connection_test", args=[sqlite_conn.pk]),
        reverse("connection_delete", args=[sqlite_conn.pk]),
        reverse("guardrail_delete", args=[guardrail.pk]),
        reverse("catalog_discover", args=[sqlite_conn.pk]),
        reverse("masking_rule"),
    ):
        assert auditor.post(url).status_code == 403, url
    # the pages change nothing on POST either
    assert auditor.post(reverse("connection_list")).status_code in (403, 405)
    admin = Client()
    admin.force_login(carol)
    body = admin.get(reverse("connection_detail", args=[sqlite_conn.pk])).content.decode()
    assert "Revoke" in body and "Grant access" in body

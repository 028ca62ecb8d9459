"""Audit event kinds come from one registry (audit/kinds.py): recorded, labelled, filtered."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import ApprovalRequest
from audit.kinds import FAMILIES, LEGACY, EventKind, kind_label
from audit.models import AuditEvent
from audit.services import event_build
from tests.test_approvals import UPDATE, review, submit

ROOT = Path(__file__).resolve().parent.parent
APP_CODE = [
    path
    for package in ("governance", "approvals", "audit")
    for path in sorted((ROOT / package).rglob("*.py"))
    if "migrations" not in path.parts
]
# Every function that takes an event kind: the audit services and the wrappers around them.
RECORDERS = {"event_record", "event_build", "record", "event", "_audit", "_record_run"}
FAMILY_NAMES = sorted({k.split(".")[0] for k in EventKind.values})
KIND_NAME = re.compile(rf"^({'|'.join(FAMILY_NAMES)})\.[a-z_]+$")


def _kind_argument(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "kind":
            return keyword.value
    return call.args[0] if call.args else None


def _calls_recording_events() -> list[tuple[Path, ast.Call]]:
    calls = []
    for path in APP_CODE:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in RECORDERS:
                    calls.append((path, node))
    return calls


def test_every_place_that_records_an_event_names_a_registered_kind() -> None:
    calls = _calls_recording_events()
    assert len(calls) > 40  # the audit services, the wrappers and every call site
    built = []
    for path, call in calls:
        kind = _kind_argument(call)
        if kind is None and any(k.arg is None for k in call.keywords):
            continue  # event_record(**fields): passes its caller's kind through
        assert kind is not None, f"{path.name}:{call.lineno} records no kind"
        for node in ast.walk(kind):
            # a kind is a member of the registry, never text built or spelled out here
            if isinstance(node, ast.JoinedStr | ast.BinOp) or (
                isinstance(node, ast.Constant) and isinstance(node.value, str)
            ):
                built.append(f"{path.relative_to(ROOT)}:{call.lineno}")
            if isinstance(node, ast.Attribute) and getattr(node.value, "id", "") == "EventKind":
                assert node.attr in EventKind.__members__, f"{path.name}:{call.lineno}"
    assert not built, f"kinds spelled out instead of taken from EventKind: {built}"


def test_no_code_outside_the_registry_spells_an_event_kind() -> None:
    # filters, templates, messages: a kind's name appears only in audit/kinds.py
    spelled = []
    for path in [*APP_CODE, *sorted((ROOT / "templates").rglob("*.html"))]:
        if path == ROOT / "audit" / "kinds.py":
            continue
        text = path.read_text()
        for literal in re.findall(r"[\"']([a-z_]+\.[a-z_]+)[\"']", text):
            if KIND_NAME.match(literal) and (literal in EventKind.values or literal in LEGACY):
                spelled.append(f"{path.relative_to(ROOT)}: {literal}")
    assert not spelled, spelled


@pytest.mark.django_db
def test_recording_a_kind_that_is_not_registered_fails() -> None:
    with pytest.raises(ValueError, match=r"approval\.rejectd"):
        event_build(kind="approval.rejectd")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"query\.exploded"):
        event_build(kind="query.exploded")  # type: ignore[arg-type]
    assert event_build(kind=EventKind.AUTH_LOGIN).kind == "auth.login"


def test_every_kind_has_a_label_of_its_own_and_a_family_the_filter_offers() -> None:
    assert set(FAMILY_NAMES) == set(FAMILIES)
    labels = [kind.label for kind in EventKind]
    assert len(set(labels)) == len(labels)
    assert all(label and label != kind.value for kind, label in zip(EventKind, labels, strict=True))


@pytest.mark.django_db(transaction=True)
def test_a_rejection_is_recorded_and_told_as_rejected(alice: Any, bob: Any, ledger: Any) -> None:
    request = ApprovalRequest.objects.get(run=submit(alice, ledger, UPDATE))
    client = Client()
    client.force_login(bob)
    page = client.post(
        reverse("approval_review", args=[request.pk]),
        {"verdict": "reject", "comment": "wrong table"},
        follow=True,
    )
    assert f"You rejected request #{request.pk}.".encode() in page.content
    kinds = set(AuditEvent.objects.values_list("kind", flat=True))
    assert EventKind.APPROVAL_REJECTED in kinds and "approval.rejectd" not in kinds


@pytest.mark.django_db(transaction=True)
def test_an_approval_is_told_as_approved(alice: Any, bob: Any, ledger: Any) -> None:
    request = ApprovalRequest.objects.get(run=submit(alice, ledger, UPDATE))
    client = Client()
    client.force_login(bob)
    page = client.post(
        reverse("approval_review", args=[request.pk]), {"verdict": "approve"}, follow=True
    )
    assert f"You approved request #{request.pk}.".encode() in page.content
    assert AuditEvent.objects.filter(kind=EventKind.APPROVAL_APPROVED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_requester_is_mailed_who_rejected_in_words(
    alice: Any, bob: Any, ledger: Any, mailoutbox: Any
) -> None:
    alice.email = "alice@example.com"
    alice.save(update_fields=["email"])
    request = ApprovalRequest.objects.get(run=submit(alice, ledger, UPDATE))
    review(bob, request, approve=False, comment="wrong table")
    (mail,) = mailoutbox
    assert "bob rejected: wrong table" in mail.body and "rejectd" not in mail.body


@pytest.mark.django_db
def test_old_rows_keep_their_name_and_read_and_filter_as_the_current_kind(dave: Any) -> None:
    # The trail is append-only: rows stored as approval.rejectd are never rewritten.
    AuditEvent(kind="approval.rejectd", actor_name="bob").save(force_insert=True)
    AuditEvent(kind=EventKind.APPROVAL_REJECTED, actor_name="lead").save(force_insert=True)
    AuditEvent(kind=EventKind.APPROVAL_APPROVED, actor_name="carl").save(force_insert=True)
    assert kind_label("approval.rejectd") == EventKind.APPROVAL_REJECTED.label
    client = Client()
    client.force_login(dave)
    page = client.get(reverse("audit_events"), {"kind": EventKind.APPROVAL_REJECTED})
    rows = [e.actor_name for e in page.context["page"].object_list]
    assert sorted(rows) == ["bob", "lead"]
    body = page.content.decode()
    assert body.count(str(EventKind.APPROVAL_REJECTED.label)) >= 3  # two rows, one option
    assert "approval.rejectd" in body  # the stored name stays visible beside its label


@pytest.mark.django_db
def test_the_audit_filter_offers_every_kind_and_family_and_refuses_others(dave: Any) -> None:
    AuditEvent(kind=EventKind.QUERY_SUCCEEDED, actor_name="alice").save(force_insert=True)
    AuditEvent(kind=EventKind.AUTH_LOGIN, actor_name="alice").save(force_insert=True)
    client = Client()
    client.force_login(dave)
    page = client.get(reverse("audit_events"))
    options = re.findall(r'<option value="([^"]*)"', page.content.decode())
    assert set(EventKind.values) <= set(options) and "query." in options
    family = client.get(reverse("audit_events"), {"kind": "query."})
    assert [e.kind for e in family.context["page"].object_list] == ["query.succeeded"]
    unknown = client.get(reverse("audit_events"), {"kind": "query.succ"})
    assert unknown.status_code == 200
    assert list(unknown.context["page"].object_list) == []
    assert b"Unknown event kind" in unknown.content

"""The audit trail, for auditors and admins."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.keys import key_id, public_key_text
from audit.kinds import FAMILIES, EventKind, stored_names
from audit.models import AuditCheckpoint, AuditEvent
from governance.roles import ADMIN, AUDITOR, role_required


def _kind_choices() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """The filter's options from the registry: each family, then each of its kinds."""
    return [
        (
            f"{family}.",
            label,
            [(k.value, str(k.label)) for k in EventKind if k.startswith(f"{family}.")],
        )
        for family, label in FAMILIES.items()
    ]


@role_required(AUDITOR, ADMIN)
@require_GET
def audit_events(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.all()
    kind, actor, connection = (
        request.GET.get(name, "").replace("\x00", "").strip()[:size]
        for name, size in (("kind", 64), ("actor", 150), ("connection", 100))
    )
    error = ""
    if kind in EventKind.values:  # with the older names its rows were stored under
        events = events.filter(kind__in=stored_names(EventKind(kind)))
    elif kind.endswith(".") and kind[:-1] in FAMILIES:
        events = events.filter(kind__startswith=kind)
    elif kind:
        error, events = "Unknown event kind: choose one from the list.", events.none()
    if actor:
        events = events.filter(actor_name=actor)
    if connection:
        events = events.filter(connection_name=connection)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "audit/events.html",
        {
            "page": page,
            "kind": kind,
            "kinds": _kind_choices(),
            "actor": actor,
            "connection": connection,
            "error": error,
            "integrity": _integrity(),
        },
    )


def _integrity() -> dict[str, object]:
    """The last verification of the trail (when, by whom, the head), the last checkpoint and
    the public key that signs checkpoints, for the auditor to check independently."""
    verified = (
        AuditEvent.objects.filter(kind__in=[EventKind.AUDIT_VERIFIED, EventKind.AUDIT_BROKEN])
        .order_by("-id")
        .first()
    )
    public = public_key_text()
    return {
        "verified": verified,
        "intact": verified is not None and verified.kind == EventKind.AUDIT_VERIFIED,
        "checkpoint": AuditCheckpoint.objects.order_by("-id").first(),
        "public_key": public,
        "key_id": key_id(public),
    }

"""The audit trail, for auditors and admins."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.models import AuditEvent
from governance.roles import ADMIN, AUDITOR, role_required


@role_required(AUDITOR, ADMIN)
@require_GET
def audit_events(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.all()
    kind, actor, connection = (
        request.GET.get(name, "").replace("\x00", "").strip()[:size]
        for name, size in (("kind", 64), ("actor", 150), ("connection", 100))
    )
    if kind:
        events = events.filter(kind__startswith=kind)
    if actor:
        events = events.filter(actor_name=actor)
    if connection:
        events = events.filter(connection_name=connection)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "audit/events.html",
        {"page": page, "kind": kind, "actor": actor, "connection": connection},
    )

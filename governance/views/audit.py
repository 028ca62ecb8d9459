"""The audit trail, for auditors and admins: filter it, open an event, export what is shown.

Looking at the trail is itself recorded (`audit.viewed`, with the filters used), and so is
every export (`audit.exported`, with the filters, the format and the number of events)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.keys import key_id, public_key_text
from audit.kinds import EventKind, kind_label
from audit.models import AuditCheckpoint, AuditEvent
from governance.roles import ADMIN, AUDITOR, role_required
from governance.services.caller import record, web_caller
from governance.views.audit_filters import TrailFilter

PAGE_SIZE = 50
EXPORT_FIELDS = (
    "id",
    "created_at",
    "kind",
    "kind_label",
    "actor_id",
    "actor_name",
    "channel",
    "source_ip",
    "connection_id",
    "connection_name",
    "run_id",
    "categories",
    "decision",
    "risk",
    "rule",
    "row_count",
    "duration_ms",
    "sql",
    "error",
    "detail",
    "mac",
    "prev_hash",
    "hash",
)


def _audit(request: HttpRequest, kind: EventKind, **detail: Any) -> None:
    record(kind, web_caller(request), None, detail=detail)


@role_required(AUDITOR, ADMIN)
@require_GET
def audit_events(request: HttpRequest) -> HttpResponse:
    form = TrailFilter(request.GET or None)
    events = form.events() if form.is_bound else AuditEvent.objects.all()
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)  # read before this very view is recorded
    filters = form.active() if form.is_bound else {}
    _audit(request, EventKind.AUDIT_VIEWED, filters=filters, page=page.number)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/events.html",
        {
            "form": form,
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "integrity": _integrity(),
        },
    )


@role_required(AUDITOR, ADMIN)
@require_GET
def audit_event(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(AuditEvent, pk=pk)
    _audit(request, EventKind.AUDIT_VIEWED, event=event.pk)
    around = AuditEvent.objects.filter(run_id=event.run_id).order_by("id") if event.run_id else []
    return render(
        request,
        "audit/event.html",
        {
            "event": event,
            "detail": _detail_rows(event.detail),
            "detail_json": json.dumps(event.detail, indent=2, sort_keys=True, default=str),
            "run_events": around,
            "checkpoint": AuditCheckpoint.objects.filter(last_event_id__gte=event.pk)
            .order_by("id")
            .first(),
        },
    )


def _detail_rows(detail: Any) -> list[tuple[str, Any, bool]]:
    """Top-level detail fields as (label, value, is_structured) for a definition list."""
    if not isinstance(detail, dict):
        return [("detail", json.dumps(detail, default=str), True)]
    rows = []
    for name in sorted(detail):
        value = detail[name]
        structured = isinstance(value, dict | list)
        shown = json.dumps(value, indent=2, sort_keys=True, default=str) if structured else value
        rows.append((name.replace("_", " "), shown, structured))
    return rows


@role_required(AUDITOR, ADMIN)
@require_GET
def audit_export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    form = TrailFilter(request.GET)
    if not form.is_valid():
        return HttpResponse(
            "Invalid filters: "
            + "; ".join(f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items()),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    events = form.events().order_by("id")
    count = events.count()
    _audit(request, EventKind.AUDIT_EXPORTED, filters=form.active(), format=fmt, events=count)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    rows = events.iterator(chunk_size=2000)
    if fmt == "csv":
        body: Iterator[str] = _csv_lines(rows)
        content_type, suffix = "text/csv; charset=utf-8", "csv"
    else:
        body = (json.dumps(_as_record(e), default=str) + "\n" for e in rows)
        content_type, suffix = "application/x-ndjson; charset=utf-8", "jsonl"
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="warden-audit-{stamp}.{suffix}"'
    response["X-Warden-Events"] = str(count)
    response["Cache-Control"] = "no-store"
    return response


def _as_record(event: AuditEvent) -> dict[str, Any]:
    record_: dict[str, Any] = {name: getattr(event, name, None) for name in EXPORT_FIELDS}
    record_["kind_label"] = kind_label(event.kind)
    record_["created_at"] = event.created_at.isoformat(timespec="microseconds")
    return record_


class _Line:
    def write(self, value: str) -> str:
        return value


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula (a failed sign-in's
    user name is the attacker's to choose): such cells get a leading apostrophe."""
    if value is None:
        return ""
    text = (
        json.dumps(value, sort_keys=True, default=str)
        if isinstance(value, dict | list)
        else str(value)
    )
    return "'" + text if text.startswith(_FORMULA) else text


def _csv_lines(events: Iterator[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_FIELDS)
    for event in events:
        record_ = _as_record(event)
        yield writer.writerow([_cell(record_[name]) for name in EXPORT_FIELDS])


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

"""The audit trail, for auditors and admins: filter it, open an event, export what is shown.

Looking at the trail is itself recorded (`audit.viewed`, with the filters used), and so is
every export (`audit.exported`, with the filters, the format and the number of events)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.chain import FIELDS
from audit.keys import key_id, public_key_text
from audit.kinds import EventKind, kind_label
from audit.models import AuditCheckpoint, AuditEvent, ColumnAccess
from audit.ocsf import to_ocsf
from governance.csv_cells import safe_cell
from governance.models import QueryRun
from governance.roles import ADMIN, AUDITOR, role_required
from governance.services.caller import record, web_caller
from governance.views.audit_filters import TrailFilter

PAGE_SIZE = 50
# What an export holds: the id, every field the chain covers (audit/chain.py), the kind's label
# and the chain's own fields, so a recipient can recompute them.
EXPORT_FIELDS = ("id", *FIELDS, "kind_label", "mac", "prev_hash", "hash")


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
    elif fmt == "ocsf":  # for a SIEM: OCSF 1.3 records, one per line
        body = (json.dumps(to_ocsf(e), default=str) + "\n" for e in rows)
        content_type, suffix = "application/x-ndjson; charset=utf-8", "ocsf.jsonl"
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


def _csv_lines(events: Iterator[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_FIELDS)
    for event in events:
        record_ = _as_record(event)
        yield writer.writerow([safe_cell(record_[name]) for name in EXPORT_FIELDS])


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


ACCESS_KINDS = ("masked", "unmasked", "used", "copied", "written", "deleted")


@role_required(AUDITOR, ADMIN)
@require_GET
def access_overview(request: HttpRequest) -> HttpResponse:
    """Every sensitive column runs have reached, with how often and how, and by how many."""
    counts = {how: Count("id", filter=Q(how=how)) for how in ACCESS_KINDS}
    columns = (
        ColumnAccess.objects.values("connection_name", "table", "column")
        .annotate(
            total=Count("id"),
            people=Count("actor_id", distinct=True),
            last=Max("created_at"),
            **counts,
        )
        .order_by("connection_name", "table", "column")
    )
    page = Paginator(columns, 100).get_page(request.GET.get("page"))
    _audit(request, EventKind.AUDIT_VIEWED, view="sensitive columns", page=page.number)
    return render(request, "audit/access_overview.html", {"page": page, "kinds": ACCESS_KINDS})


def _access_page(request: HttpRequest, accesses: Any) -> Any:
    how = request.GET.get("how", "")
    if how in ACCESS_KINDS:
        accesses = accesses.filter(how=how)
    page = Paginator(accesses, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    statuses = dict(
        QueryRun.objects.filter(
            pk__in={a.run_id for a in page.object_list if a.run_id}
        ).values_list("pk", "status")
    )
    for access in page.object_list:
        access.run_status = statuses.get(access.run_id, "")
    return page, how if how in ACCESS_KINDS else ""


@role_required(AUDITOR, ADMIN)
@require_GET
def access_column(request: HttpRequest, connection: str, table: str, column: str) -> HttpResponse:
    """Who reached this column, when, and how: masked or not."""
    accesses = ColumnAccess.objects.filter(
        connection_name=connection, table=table.lower(), column=column.lower()
    ) | ColumnAccess.objects.filter(connection_name=connection, table=table.lower(), column="*")
    page, how = _access_page(request, accesses.order_by("-event_id"))
    _audit(
        request,
        EventKind.AUDIT_VIEWED,
        view="column access",
        column=f"{connection}:{table}.{column}",
        page=page.number,
    )
    return render(
        request,
        "audit/access_column.html",
        {
            "page": page,
            "how": how,
            "kinds": ACCESS_KINDS,
            "connection": connection,
            "table": table,
            "column": column,
            "query": f"how={how}" if how else "",
        },
    )


@role_required(AUDITOR, ADMIN)
@require_GET
def access_person(request: HttpRequest, actor_id: int) -> HttpResponse:
    """One identity: the sensitive columns it reached, and what changed about it."""
    accesses = ColumnAccess.objects.filter(actor_id=actor_id).order_by("-event_id")
    page, how = _access_page(request, accesses)
    user = get_user_model().objects.filter(pk=actor_id).first()
    name = (
        user.get_username()
        if user is not None
        else AuditEvent.objects.filter(actor_id=actor_id)
        .values_list("actor_name", flat=True)
        .order_by("-id")
        .first()
    )
    identity = AuditEvent.objects.filter(
        kind__regex=r"^(user|role|mfa|auth)\.", detail__user_id=actor_id
    ).order_by("-id")[:50]
    summary = (
        ColumnAccess.objects.filter(actor_id=actor_id)
        .values("connection_name", "table", "column", "how")
        .annotate(n=Count("id"), last=Max("created_at"))
        .order_by("connection_name", "table", "column", "how")
    )
    _audit(request, EventKind.AUDIT_VIEWED, view="identity", person=actor_id, page=page.number)
    return render(
        request,
        "audit/access_person.html",
        {
            "page": page,
            "how": how,
            "kinds": ACCESS_KINDS,
            "actor_id": actor_id,
            "name": name or f"user {actor_id}",
            "person": user,
            "roles": sorted(user.groups.values_list("name", flat=True)) if user else [],
            "identity": identity,
            "summary": summary,
            "query": f"how={how}" if how else "",
        },
    )

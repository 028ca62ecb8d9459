"""The SQL editor: submit, watch, page through results, cancel, history."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from governance import targets
from governance.crypto import DecryptionError
from governance.models import QueryRun
from governance.roles import ADMIN, ANALYST, role_required
from governance.services.access import UnknownConnection, connection_for, connections_for
from governance.services.masking import ENDED_EXEMPTION, exemption_ended
from governance.services.runs import InvalidSQL, run_cancel, run_submit, sql_reject
from governance.services.values import as_text
from governance.views.common import web_caller

EDITOR_ROLES = (ANALYST, ADMIN)


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _int(raw: str | None) -> int | None:
    """A positive id from a query parameter, or None: never a ValueError on '²'."""
    raw = (raw or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


def _masking_shown(run: QueryRun) -> dict[str, Any] | None:
    """The masking of the statement whose rows are shown, if any."""
    statements = (run.decision_detail.get("masking") or {}).get("statements") or []
    index = run.result_statement
    if index is None and run.columns:  # recorded before runs said which statement it was
        shown = [i for i, s in enumerate(statements) if s]
        index = shown[-1] if shown else None
    if index is None or not 0 <= index < len(statements):
        return None
    entry = statements[index]
    return entry if isinstance(entry, dict) else None


def _grid_columns(run: QueryRun) -> list[dict[str, Any]]:
    """Result columns with how each was masked (by position), for marks and tooltips."""
    masking = _masking_shown(run)
    rewritten = masking["columns"] if masking else []
    columns = []
    for i, column in enumerate(run.columns):
        meta = rewritten[i] if i < len(rewritten) else {}
        columns.append({**column, "masked": bool(meta.get("masked")), **_mask_text(meta)})
    return columns


def _mask_text(meta: dict[str, Any]) -> dict[str, str]:
    if not meta.get("masked"):
        return {"rule": "", "reason": ""}
    return {"rule": meta.get("rule") or meta.get("strategy") or "redact", "reason": meta["reason"]}


def _user(request: HttpRequest) -> Any:
    """The signed-in user (every view here is behind role_required)."""
    return request.user


def _get_run_for_user(request: HtmxHttpRequest, pk: int) -> QueryRun:
    run = get_object_or_404(QueryRun.objects.select_related("connection"), pk=pk)
    if run.user_id != request.user.pk:
        raise Http404("No such run.")
    return run


def _recent(request: HttpRequest) -> Any:
    return QueryRun.objects.filter(user=_user(request)).select_related("connection")[:8]


def _run_context(
    request: HtmxHttpRequest, run: QueryRun, *, with_recent: bool = False
) -> dict[str, Any]:
    ended = bool(run.rows) and exemption_ended(run)
    paginator = Paginator([] if ended else run.rows, settings.WARDEN_RESULT_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    columns = _grid_columns(run)
    context = {
        "run": run,
        "page": page,
        "first_row": page.start_index(),
        "grid_columns": columns,
        "grid_rows": [
            list(zip(map(as_text, row), columns, strict=False)) for row in page.object_list
        ],
        "masking": _masking_shown(run),
        "rows_withheld": ENDED_EXEMPTION if ended else "",
    }
    if with_recent:  # htmx: refresh the sidebar out of band
        context.update(recent=_recent(request), recent_oob=True)
    return context


@role_required(*EDITOR_ROLES)
@require_GET
def editor(request: HtmxHttpRequest) -> HttpResponse:
    connections = connections_for(request.user)
    sql, selected, run, origin = "", None, None, None
    if (run_id := _int(request.GET.get("run"))) is not None:
        run = origin = _get_run_for_user(request, run_id)
    if (source := _int(request.GET.get("from"))) is not None:
        origin = _get_run_for_user(request, source)
    unavailable = ""
    if origin is not None:
        sql, selected = origin.sql, origin.connection_id
        if all(c.pk != selected for c in connections):
            # No longer granted: preselecting another one (the browser takes the first) would
            # leave the statement one click from running on a connection nobody chose.
            unavailable, selected = origin.connection.name, None
    elif connections:
        selected = connections[0].pk
    context: dict[str, Any] = {
        "connections": connections,
        "selected": selected,
        "unavailable": unavailable,
        "sql": sql,
        "recent": _recent(request),
    }
    if run is not None:
        context.update(_run_context(request, run))
    return render(request, "governance/editor.html", context)


@role_required(*EDITOR_ROLES)
@require_POST
def run_create(request: HtmxHttpRequest) -> HttpResponse:
    caller = web_caller(request)
    sql = request.POST.get("sql", "")
    error = ""
    connection = None
    raw = request.POST.get("connection", "")
    try:
        connection = connection_for(user=request.user, name=_int(raw) or raw)
        run = run_submit(
            caller=caller, connection=connection, sql=sql, purpose=request.POST.get("purpose", "")
        )
    except UnknownConnection as exc:
        error = str(exc) if raw.strip() else "Choose a connection to run this statement on."
        sql_reject(caller=caller, connection=None, sql=sql, error=error)
    except InvalidSQL as exc:
        error = str(exc)
        sql_reject(caller=caller, connection=connection, sql=sql, error=error)
    if error:
        if request.htmx:
            return render(request, "governance/editor.html#submit-error", {"error": error})
        return render(
            request,
            "governance/editor.html",
            {
                "connections": connections_for(request.user),
                "selected": connection.pk if connection else None,
                "sql": sql if isinstance(sql, str) else "",
                "purpose": request.POST.get("purpose", ""),  # not submitted: still this one's
                "error": error,
                "recent": _recent(request),
            },
            status=400,
        )
    if request.htmx:
        run.refresh_from_db()  # in-process execution may already have finished it
        # The purpose was this statement's: the form's field is emptied for the next one.
        context = {**_run_context(request, run, with_recent=True), "purpose_oob": True}
        response = render(request, "governance/editor.html#run", context)
        response["HX-Push-Url"] = f"{reverse('editor')}?run={run.pk}"
        return response
    return redirect(f"{reverse('editor')}?run={run.pk}")


@role_required(*EDITOR_ROLES)
@require_GET
def run_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = _get_run_for_user(request, pk)
    if request.htmx:
        context = _run_context(request, run, with_recent=run.is_finished)
        return render(request, "governance/editor.html#run", context)
    return redirect(f"{reverse('editor')}?run={run.pk}")


@role_required(*EDITOR_ROLES)
@require_POST
def run_cancel_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = _get_run_for_user(request, pk)
    run_cancel(caller=web_caller(request), run=run)
    run.refresh_from_db()
    if request.htmx:
        return render(request, "governance/editor.html#run", _run_context(request, run))
    return redirect(f"{reverse('editor')}?run={run.pk}")


@role_required(*EDITOR_ROLES)
@require_GET
def history(request: HtmxHttpRequest) -> HttpResponse:
    runs = QueryRun.objects.filter(user=_user(request)).select_related("connection")
    status = request.GET.get("status", "")
    if status in QueryRun.Status.values:
        runs = runs.filter(status=status)
    page = Paginator(runs, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "governance/history.html",
        {"page": page, "status": status, "statuses": QueryRun.Status.choices},
    )


@role_required(*EDITOR_ROLES)
@require_GET
def connection_schema(request: HtmxHttpRequest, pk: int) -> JsonResponse:
    """Tables and columns for autocomplete, cached for five minutes per connection."""
    try:
        connection = connection_for(user=request.user, name=pk)
    except UnknownConnection as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    key = f"warden:schema:{connection.pk}:{connection.updated_at.timestamp()}"
    tables = cache.get(key)
    if tables is None:
        try:
            with targets.connect(connection.target_config()) as session:
                infos = session.introspect()
        except (targets.TargetError, DecryptionError):
            return JsonResponse({"tables": {}, "error": "Schema is unavailable."}, status=200)
        tables = {
            (
                t.name
                if t.schema in ("", "public", "main", connection.database)
                else f"{t.schema}.{t.name}"
            ): [c.name for c in t.columns]
            for t in infos
        }
        cache.set(key, tables, 300)
    return JsonResponse({"tables": tables, "dialect": connection.engine})

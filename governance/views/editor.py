"""The SQL editor: submit, watch, page through results, cancel, history."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from governance import targets
from governance.crypto import DecryptionError
from governance.models import Connection, QueryRun, SavedQuery
from governance.roles import ADMIN, ANALYST, role_required
from governance.services.access import (
    UnknownConnection,
    connection_for,
    connections_for,
    export_connection_ids,
)
from governance.services.exports import run_export_csv
from governance.services.masking import ENDED_EXEMPTION, exemption_ended
from governance.services.runs import InvalidSQL, run_cancel, run_submit, sql_reject
from governance.services.saved_queries import (
    my_saved_queries,
    saved_query_readable,
    shared_saved_queries,
)
from governance.services.schema import display_name, schema_for, schema_tables
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


SIDEBAR_SAVED = 10


def _page_context(request: HttpRequest, connections: list[Connection]) -> dict[str, Any]:
    """What every rendering of the editor page shows beside the statement."""
    return {
        "connections": connections,
        "exportable": export_connection_ids(request.user),
        "recent": _recent(request),
        "saved_mine": my_saved_queries(request.user)[:SIDEBAR_SAVED],
        "saved_shared": shared_saved_queries(request.user)[:SIDEBAR_SAVED],
    }


def editor_page(
    request: HttpRequest,
    *,
    sql: Any,
    connection: Connection | None,
    error: str,
    status: int = 400,
    **extra: Any,
) -> HttpResponse:
    """The editor again, with the statement as it was sent and what was wrong with it."""
    return render(
        request,
        "governance/editor.html",
        {
            **_page_context(request, connections_for(request.user)),
            "selected": connection.pk if connection else None,
            "sql": sql if isinstance(sql, str) else "",
            "purpose": request.POST.get("purpose", ""),  # not submitted: still this one's
            "error": error,
            **extra,
        },
        status=status,
    )


@role_required(*EDITOR_ROLES)
@require_GET
def editor(request: HtmxHttpRequest) -> HttpResponse:
    connections = connections_for(request.user)
    sql, selected, run, origin, saved = "", None, None, None, None
    if (run_id := _int(request.GET.get("run"))) is not None:
        run = origin = _get_run_for_user(request, run_id)
    if (source := _int(request.GET.get("from"))) is not None:
        origin = _get_run_for_user(request, source)
    if (saved_id := _int(request.GET.get("saved"))) is not None:
        try:  # opening a saved query fills the editor; it never runs anything
            saved = saved_query_readable(request.user, saved_id)
        except SavedQuery.DoesNotExist:
            raise Http404("No such saved query.") from None
    unavailable = ""
    if origin is not None:
        sql, selected = origin.sql, origin.connection_id
        if all(c.pk != selected for c in connections):
            # No longer granted: preselecting another one (the browser takes the first) would
            # leave the statement one click from running on a connection nobody chose.
            unavailable, selected = origin.connection.name, None
    elif saved is not None:
        sql, selected = saved.sql, saved.connection_id
        if selected is not None and all(c.pk != selected for c in connections):
            unavailable, selected = saved.connection.name, None  # type: ignore[union-attr]
        elif selected is None and connections:
            selected = connections[0].pk
    elif connections:
        selected = connections[0].pk
    context: dict[str, Any] = {
        **_page_context(request, connections),
        "selected": selected,
        "unavailable": unavailable,
        "sql": sql,
        "saved": saved,
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
        return editor_page(request, sql=sql, connection=connection, error=error)
    if request.htmx:
        run.refresh_from_db()  # in-process execution may already have finished it
        # The purpose was this statement's: the form's field is emptied for the next one.
        context = {**_run_context(request, run, with_recent=True), "purpose_oob": True}
        response = render(request, "governance/editor.html#run", context)
        response["HX-Push-Url"] = f"{reverse('editor')}?run={run.pk}"
        return response
    return redirect(f"{reverse('editor')}?run={run.pk}")


@role_required(*EDITOR_ROLES)
@require_POST
def run_export(request: HtmxHttpRequest) -> HttpResponseBase:
    """Download the statement's rows as CSV: an export run through `run_submit` (the export
    capability, one read statement, guardrails, masking inside the database, the audit
    trail), streamed as the target returns it, up to the connection's export row limit.

    A refused or held export streams nothing: the editor shows its run (denied with the
    reason, or held with its approval request). A form post, never htmx: the browser saves
    the answer as a file."""
    caller = web_caller(request)
    sql = request.POST.get("sql", "")
    raw = request.POST.get("connection", "")
    connection = None
    try:
        connection = connection_for(user=request.user, name=_int(raw) or raw)
        run = run_submit(
            caller=caller,
            connection=connection,
            sql=sql,
            purpose=request.POST.get("purpose", ""),
            mode=QueryRun.Mode.EXPORT,
        )
    except UnknownConnection as exc:
        error = str(exc) if raw.strip() else "Choose a connection to export from."
        sql_reject(caller=caller, connection=None, sql=sql, error=error)
        return editor_page(request, sql=sql, connection=None, error=error)
    except InvalidSQL as exc:
        sql_reject(caller=caller, connection=connection, sql=sql, error=str(exc))
        return editor_page(request, sql=sql, connection=connection, error=str(exc))
    if run.status != QueryRun.Status.QUEUED:  # denied or held: nothing ran, nothing streams
        return redirect(f"{reverse('editor')}?run={run.pk}")
    return _csv_download(run)


#: How much of an export is read before the response starts, and the size of what is sent
#: at a time (the drivers hand rows over one by one; a write per row would crawl).
EXPORT_BLOCK = 64 * 1024


def _blocks(chunks: Iterator[bytes]) -> Generator[bytes]:
    """`chunks` joined into blocks of about EXPORT_BLOCK bytes: memory stays bounded."""
    block: list[bytes] = []
    size = 0
    try:
        for chunk in chunks:
            block.append(chunk)
            size += len(chunk)
            if size >= EXPORT_BLOCK:
                yield b"".join(block)
                block, size = [], 0
        if block:
            yield b"".join(block)
    finally:
        # The reader went away: end the export now (its run records it as interrupted and
        # its target session closes), not whenever the generator is collected.
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _resume(first: bytes, blocks: Generator[bytes]) -> Generator[bytes]:
    """The block read ahead, then the rest; closing it (Django does, when the client goes
    away) closes the export."""
    try:
        yield first
        yield from blocks
    finally:
        blocks.close()


def _csv_download(run: QueryRun) -> HttpResponseBase:
    """Stream the export run `run` (just submitted and allowed) as a CSV attachment.

    The first block is read here, before any header is sent: a target that cannot be
    reached, or a statement that fails on its first rows, shows the failed run in the editor
    (its error told as every channel tells it) rather than a broken file, and an export that
    fits in one block is whole before its first byte leaves. A failure after that ends the
    download unfinished (the browser says it failed), and the run records why."""
    blocks = _blocks(run_export_csv(run=run))
    try:
        first = next(blocks, None)
    except (targets.TargetError, DecryptionError):
        first = None  # recorded on the run by the export
    if first is None:  # failed, or claimed by nobody else: nothing to send
        return redirect(f"{reverse('editor')}?run={run.pk}")
    response = StreamingHttpResponse(_resume(first, blocks), content_type="text/csv; charset=utf-8")
    # A connection's name is [a-z0-9_-]: nothing in it can break out of the header.
    response["Content-Disposition"] = (
        f'attachment; filename="{run.connection.name}-run-{run.pk}.csv"'
    )
    response["Cache-Control"] = "no-store"  # rows of production data: never kept by a cache
    response["X-Warden-Run"] = str(run.pk)
    return response


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
    try:
        rows = schema_tables(connection)
    except (targets.TargetError, DecryptionError):
        return JsonResponse({"tables": {}, "error": "Schema is unavailable."}, status=200)
    tables = {
        display_name(connection, schema, name): [c for c, _ in columns]
        for schema, name, _, columns in rows
    }
    return JsonResponse({"tables": tables, "dialect": connection.engine})


@role_required(*EDITOR_ROLES)
@require_GET
def schema_browser(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The connection's tables and columns, each column marked with how it comes back to
    this caller (masked and by which rule, scanned, or unmasked under their exemption).
    The editor loads the tree into its sidebar with htmx; without JS it is a page."""
    try:
        connection = connection_for(user=request.user, name=pk)
    except UnknownConnection:
        raise Http404("No such connection.") from None
    context: dict[str, Any] = {"connection": connection, "insertable": bool(request.htmx)}
    try:
        context["tables"] = schema_for(user=request.user, connection=connection)
    except (targets.TargetError, DecryptionError):
        context["tables"], context["unavailable"] = [], True
    template = "governance/schema.html#tree" if request.htmx else "governance/schema.html"
    return render(request, template, context)

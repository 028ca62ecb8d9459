"""Saved queries: save the editor's statement, list mine and those shared with me, rename,
share, delete. Opening one fills the editor (`/editor/?saved=<id>`); nothing here runs SQL."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.models import Connection, SavedQuery
from governance.models.queries import DESCRIPTION_MAX, TITLE_MAX
from governance.roles import role_required
from governance.services.access import UnknownConnection, connection_for, connections_for
from governance.services.saved_queries import (
    InvalidSavedQuery,
    SavedQueryFields,
    my_saved_queries,
    saved_query_clean,
    saved_query_create,
    saved_query_delete,
    saved_query_own,
    saved_query_update,
    shared_saved_queries,
)
from governance.views.common import web_caller
from governance.views.editor import EDITOR_ROLES, _int, editor_page


def _own_or_404(request: HttpRequest, pk: int) -> SavedQuery:
    """The caller's own query: another's, shared or not, is not there to change."""
    try:
        return saved_query_own(request.user, pk)
    except SavedQuery.DoesNotExist:
        raise Http404("No such saved query of yours.") from None


def _fields(request: HttpRequest) -> tuple[SavedQueryFields | None, Connection | None, str]:
    """The posted fields, checked; the connection must be one the caller may use."""
    raw = request.POST.get("connection", "").strip()
    connection = None
    try:
        if raw:
            connection = connection_for(user=request.user, name=_int(raw) or raw)
        fields = saved_query_clean(
            title=request.POST.get("title", ""),
            sql=request.POST.get("sql", ""),
            description=request.POST.get("description", ""),
            connection=connection,
            shared=request.POST.get("shared") in ("on", "1", "true"),
        )
    except (UnknownConnection, InvalidSavedQuery) as exc:
        return None, connection, str(exc)
    return fields, connection, ""


@role_required(*EDITOR_ROLES)
@require_POST
def saved_query_new(request: HttpRequest) -> HttpResponse:
    """Save the editor's statement under a title (from the editor's form)."""
    fields, connection, error = _fields(request)
    if fields is None:
        return editor_page(
            request,
            sql=request.POST.get("sql", ""),
            connection=connection,
            error=f"Not saved: {error}",
            save_title=request.POST.get("title", ""),
        )
    query = saved_query_create(caller=web_caller(request), fields=fields)
    shared = " and shared it" if query.shared else ""
    messages.success(request, f"Saved “{query.title}”{shared}.")
    return redirect(f"{reverse('editor')}?saved={query.pk}")


@role_required(*EDITOR_ROLES)
@require_GET
def saved_query_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "governance/saved_queries.html",
        {
            "mine": my_saved_queries(request.user),
            "shared": shared_saved_queries(request.user),
        },
    )


@role_required(*EDITOR_ROLES)
@require_http_methods(["GET", "POST"])
def saved_query_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename, describe, change the text or connection of, share or unshare my query."""
    query = _own_or_404(request, pk)
    error = ""
    values: dict[str, Any] = {
        "title": query.title,
        "sql": query.sql,
        "description": query.description,
        "connection": query.connection_id,
        "shared": query.shared,
    }
    if request.method == "POST":
        fields, connection, error = _fields(request)
        if fields is not None:
            saved_query_update(caller=web_caller(request), query=query, fields=fields)
            messages.success(request, f"Saved “{query.title}”.")
            return redirect("saved_query_list")
        values = {
            "title": request.POST.get("title", ""),
            "sql": request.POST.get("sql", ""),
            "description": request.POST.get("description", ""),
            "connection": connection.pk if connection else None,
            "shared": request.POST.get("shared") in ("on", "1", "true"),
        }
    return render(
        request,
        "governance/saved_query_form.html",
        {
            "query": query,
            "values": values,
            "error": error,
            "connections": connections_for(request.user),
            "title_max": TITLE_MAX,
            "description_max": DESCRIPTION_MAX,
        },
        status=400 if error else 200,
    )


@role_required(*EDITOR_ROLES)
@require_POST
def saved_query_remove(request: HttpRequest, pk: int) -> HttpResponse:
    query = _own_or_404(request, pk)
    saved_query_delete(caller=web_caller(request), query=query)
    messages.success(request, f"Deleted “{query.title}”.")
    return redirect("saved_query_list")

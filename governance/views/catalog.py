"""Admin screens for the catalog: sensitive columns, review, masking rules, exemptions."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from governance import targets
from governance.forms import ColumnReviewForm, ExemptionForm, MaskingRuleForm, TableLabelForm
from governance.models import (
    CatalogColumn,
    CatalogTable,
    Connection,
    MaskingRule,
    Source,
    UnmaskExemption,
)
from governance.roles import ADMIN, AUDITOR, role_required
from governance.services import catalog_admin
from governance.services.catalog import catalog_refresh
from governance.views.common import web_caller


@role_required(ADMIN, AUDITOR)
@require_GET
def catalog_overview(request: HttpRequest) -> HttpResponse:
    connections = Connection.objects.annotate(
        n_tables=Count("tables", distinct=True),
        n_columns=Count("tables__columns", distinct=True),
        n_sensitive=Count(
            "tables__columns", filter=~Q(tables__columns__semantic_type=""), distinct=True
        ),
        n_confirmed=Count(
            "tables__columns",
            filter=Q(tables__columns__source=Source.CONFIRMED),
            distinct=True,
        ),
    )
    rules = MaskingRule.objects.all()
    return render(
        request,
        "manage/catalog_overview.html",
        {"connections": connections, "rules": rules, "rule_form": MaskingRuleForm()},
    )


@role_required(ADMIN, AUDITOR)
@require_GET
def catalog_connection(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    show = request.GET.get("show", "sensitive")
    columns = CatalogColumn.objects.filter(table__connection=connection).select_related("table")
    if show != "all":
        columns = columns.exclude(semantic_type="")
    tables = CatalogTable.objects.filter(connection=connection)
    exemptions = UnmaskExemption.objects.filter(column__table__connection=connection)
    return render(
        request,
        "manage/catalog_connection.html",
        {
            "connection": connection,
            "columns": columns.order_by("table__name", "position"),
            "tables": tables,
            "show": show,
            "exemptions": exemptions.select_related("column__table", "user", "group"),
            "strategies": dict(MaskingRule.objects.values_list("semantic_type", "strategy")),
        },
    )


@role_required(ADMIN)
@require_POST
def catalog_discover(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    try:
        summary = catalog_refresh(connection=connection, caller=web_caller(request))
    except targets.TargetError as exc:
        messages.error(request, f"Discovery failed: {exc.kind}: {exc.message}")
    else:
        messages.success(
            request,
            f"Discovered {summary.tables} tables and {summary.columns} columns; "
            f"{summary.sensitive} sensitive.",
        )
    return redirect("catalog_connection", pk=pk)


def _column_page(
    request: HttpRequest,
    column: CatalogColumn,
    form: ColumnReviewForm,
    exemption_form: ExemptionForm,
    status: int = 200,
) -> HttpResponse:
    context = {
        "column": column,
        "form": form,
        "exemption_form": exemption_form,
        "exemptions": column.exemptions.select_related("user", "group"),
    }
    return render(request, "manage/column_review.html", context, status=status)


@role_required(ADMIN)
def column_review(request: HttpRequest, pk: int) -> HttpResponse:
    column = get_object_or_404(CatalogColumn.objects.select_related("table__connection"), pk=pk)
    initial = {
        "semantic_type": column.semantic_type,
        "sensitivity": column.sensitivity,
        "strategy": column.strategy,
        "free_text": column.free_text,
    }
    form = ColumnReviewForm(request.POST or None, initial=initial)
    exemption_form = ExemptionForm()
    if request.method == "POST":
        if request.POST.get("action") == "rediscover":
            catalog_admin.column_rediscover(caller=web_caller(request), column=column)
            messages.success(request, f"{column} is back under discovery.")
            return redirect("catalog_connection", pk=column.table.connection_id)
        if form.is_valid():
            catalog_admin.column_review(
                caller=web_caller(request), column=column, **form.cleaned_data
            )
            messages.success(request, f"Classification of {column} confirmed.")
            return redirect("catalog_connection", pk=column.table.connection_id)
    return _column_page(request, column, form, exemption_form)


@role_required(ADMIN)
@require_POST
def exemption_create(request: HttpRequest, pk: int) -> HttpResponse:
    column = get_object_or_404(CatalogColumn.objects.select_related("table__connection"), pk=pk)
    form = ExemptionForm(request.POST)
    if not form.is_valid():
        return _column_page(request, column, ColumnReviewForm(), form, status=400)
    catalog_admin.exemption_create(caller=web_caller(request), column=column, **form.cleaned_data)
    messages.success(request, f"Unmasked access to {column} granted.")
    return redirect("column_review", pk=pk)


@role_required(ADMIN)
@require_POST
def exemption_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    exemption = get_object_or_404(UnmaskExemption.objects.select_related("column__table"), pk=pk)
    column_pk = exemption.column_id
    catalog_admin.exemption_revoke(caller=web_caller(request), exemption=exemption)
    messages.success(request, "Exemption revoked.")
    return redirect("column_review", pk=column_pk)


@role_required(ADMIN)
@require_POST
def table_label(request: HttpRequest, pk: int) -> HttpResponse:
    table = get_object_or_404(CatalogTable, pk=pk)
    form = TableLabelForm(request.POST)
    if form.is_valid():
        catalog_admin.table_label_set(
            caller=web_caller(request), table=table, label=form.cleaned_data["label"]
        )
        messages.success(request, f"{table} is labelled {form.cleaned_data['label']}.")
    else:
        messages.error(request, "Choose a label.")
    return redirect("catalog_connection", pk=table.connection_id)


@role_required(ADMIN)
@require_POST
def masking_rule(request: HttpRequest) -> HttpResponse:
    form = MaskingRuleForm(request.POST)
    if form.is_valid():
        catalog_admin.masking_rule_set(caller=web_caller(request), **form.cleaned_data)
        messages.success(request, "Masking rule saved.")
    else:
        messages.error(request, "Choose a semantic type and a strategy.")
    return redirect("catalog_overview")

"""Admin screens: connections, access grants, guardrails. Auditors see the lists and details
read-only (the templates show no control that changes anything to them; every change is a
POST to an admin-only view)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.contrib import messages
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.forms import (
    ConnectionForm,
    GrantForm,
    GuardrailForm,
    GuardrailTryForm,
    triable,
)
from governance.models import AccessGrant, Connection, Guardrail
from governance.roles import ADMIN, AUDITOR, role_required
from governance.services import admin as admin_services
from governance.services import guardrail_trial
from governance.services.runs import InvalidSQL
from governance.views.common import web_caller
from governance.views.editor import HtmxHttpRequest


@role_required(ADMIN, AUDITOR)
@require_GET
def connection_list(request: HttpRequest) -> HttpResponse:
    connections = Connection.objects.all()
    return render(request, "manage/connection_list.html", {"connections": connections})


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def connection_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk) if pk else Connection()
    form = ConnectionForm(request.POST or None, instance=connection)
    if request.method == "POST" and form.is_valid():
        admin_services.connection_save(
            caller=web_caller(request),
            connection=form.save(commit=False),
            password=form.cleaned_data["password"],
            clear_password=form.cleaned_data["clear_password"],
        )
        messages.success(request, f"Connection {form.instance.name} saved.")
        return redirect("connection_detail", pk=form.instance.pk)
    return render(request, "manage/connection_form.html", {"form": form, "connection": connection})


@role_required(ADMIN)
@require_POST
def connection_form_test(request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
    """Try the connection form's values without saving them (a blank password on an edit
    tries the stored one); audited like the test of a saved connection. With htmx, only the
    result is sent back; without, the form page again, as typed, with the result."""
    connection = get_object_or_404(Connection, pk=pk) if pk else Connection()
    form = ConnectionForm(request.POST, instance=connection)
    result: dict[str, Any] = {}
    if triable(form):
        data = form.cleaned_data
        ok, message = admin_services.connection_test(
            caller=web_caller(request),
            connection=form.instance,
            password=data["password"] or ("" if data["clear_password"] else None),
        )
        result = {"ok": ok, "message": message}
    else:
        result = {"ok": False, "message": "Correct the fields marked below, then test again."}
        result["errors"] = [
            f"{form[name].label if name in form.fields else 'Form'}: "
            + " ".join(str(e) for e in errors)
            for name, errors in form.errors.items()
        ]
    context = {"form": form, "connection": connection, "test": result}
    if request.htmx:
        return render(request, "manage/connection_form.html#test-result", context)
    return render(request, "manage/connection_form.html", context)


@role_required(ADMIN, AUDITOR)
@require_GET
def connection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    grants = connection.grants.select_related("user", "group").order_by("id")
    return render(
        request,
        "manage/connection_detail.html",
        {"connection": connection, "grants": grants, "grant_form": GrantForm()},
    )


@role_required(ADMIN)
@require_POST
def connection_test(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    ok, message = admin_services.connection_test(caller=web_caller(request), connection=connection)
    (messages.success if ok else messages.error)(request, message)
    return redirect("connection_detail", pk=pk)


@role_required(ADMIN)
@require_POST
def connection_delete(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    try:
        admin_services.connection_delete(caller=web_caller(request), connection=connection)
    except ProtectedError:
        messages.error(request, "This connection has query history and cannot be deleted.")
        return redirect("connection_detail", pk=pk)
    messages.success(request, f"Connection {connection.name} deleted.")
    return redirect("connection_list")


@role_required(ADMIN)
@require_POST
def grant_create(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    form = GrantForm(request.POST)
    if not form.is_valid():
        grants = connection.grants.select_related("user", "group").order_by("id")
        return render(
            request,
            "manage/connection_detail.html",
            {"connection": connection, "grants": grants, "grant_form": form},
            status=400,
        )
    admin_services.grant_create(
        caller=web_caller(request), connection=connection, **form.cleaned_data
    )
    messages.success(request, "Access granted.")
    return redirect("connection_detail", pk=pk)


@role_required(ADMIN)
@require_POST
def grant_revoke(request: HttpRequest, pk: int, grant_pk: int) -> HttpResponse:
    grant = get_object_or_404(AccessGrant, pk=grant_pk, connection_id=pk)
    admin_services.grant_revoke(caller=web_caller(request), grant=grant)
    messages.success(request, "Access revoked.")
    return redirect("connection_detail", pk=pk)


@role_required(ADMIN, AUDITOR)
@require_GET
def guardrail_list(request: HttpRequest) -> HttpResponse:
    guardrails = Guardrail.objects.prefetch_related("connections", "groups", "exempt_groups")
    return render(request, "manage/guardrail_list.html", {"guardrails": guardrails})


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def guardrail_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    guardrail = get_object_or_404(Guardrail, pk=pk) if pk else Guardrail()
    form = GuardrailForm(request.POST or None, instance=guardrail)
    if request.method == "POST" and form.is_valid():
        admin_services.guardrail_save(caller=web_caller(request), form=form)
        messages.success(request, f"Guardrail {form.instance.name} saved.")
        return redirect("guardrail_list")
    context = {"form": form, "guardrail": guardrail, "try_form": GuardrailTryForm()}
    return render(request, "manage/guardrail_form.html", context)


@role_required(ADMIN)
@require_POST
def guardrail_try(request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
    """ "Try this rule": the rule as typed (unsaved) and the whole policy with it, decided for a
    statement. Nothing runs and nothing is saved. With htmx only the result is sent back;
    without, the form page again, as typed, with the result."""
    guardrail = get_object_or_404(Guardrail, pk=pk) if pk else Guardrail()
    form = GuardrailForm(request.POST, instance=guardrail)
    try_form = GuardrailTryForm(request.POST)
    trial: guardrail_trial.Trial | None = None
    problem = ""
    if not triable(form):
        problem = "Correct the fields marked in the rule, then try again."
    elif try_form.is_valid():
        data = form.cleaned_data
        rule = form.instance.to_rule(
            {name: data.get(name) or () for name in ("connections", "groups", "exempt_groups")}
        )
        typed_name = str(form["name"].value() or "").strip()
        try:
            trial = guardrail_trial.guardrail_try(
                rule=replace(rule, name=typed_name or "(this rule)"),
                enabled=bool(data.get("enabled")),
                connection=try_form.cleaned_data["connection"],
                sql=try_form.cleaned_data["sql"],
                as_user=try_form.cleaned_data["as_user"],
            )
        except InvalidSQL as exc:
            try_form.add_error("sql", str(exc))
    context = {
        "form": form,
        "guardrail": guardrail,
        "try_form": try_form,
        "trial": trial,
        "try_problem": problem,
    }
    if request.htmx:
        return render(request, "manage/guardrail_form.html#try-result", context)
    return render(request, "manage/guardrail_form.html", context)


@role_required(ADMIN)
@require_POST
def guardrail_delete(request: HttpRequest, pk: int) -> HttpResponse:
    guardrail = get_object_or_404(Guardrail, pk=pk)
    admin_services.guardrail_delete(caller=web_caller(request), guardrail=guardrail)
    messages.success(request, f"Guardrail {guardrail.name} deleted.")
    return redirect("guardrail_list")

"""Approver queue, request pages, reviews, and just-in-time access requests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from allauth.account.internal.flows.reauthentication import did_recently_reauthenticate
from allauth.core.exceptions import ReauthenticationRequired
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals.forms import AccessRequestForm, PolicyForm, UnmaskRequestForm
from approvals.models import RISKS, ApprovalPolicy, ApprovalRequest, Review
from approvals.policies import may_review
from approvals.policy_admin import policy_delete, policy_save
from approvals.services import (
    InvalidRequest,
    ReauthenticationNeeded,
    ReviewRefused,
    access_request,
    counted_approvals,
    needs_reauthentication,
    request_review,
    request_withdraw,
    unmask_request,
)
from audit.kinds import EventKind
from audit.models import AuditEvent
from governance.models import Agent, Connection
from governance.roles import ADMIN, ANALYST, APPROVER, AUDITOR, has_role, role_required
from governance.services.agents import agent_of
from governance.services.caller import web_caller

Status = ApprovalRequest.Status
AGES = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7)}
PAGE_SIZE = 25


def _requests() -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.select_related(
        "run", "connection", "requester", "column__table"
    ).prefetch_related("reviews__reviewer")


def _counted(page: Any) -> Any:
    """Each listed request's approvals that still count (their authors may still approve),
    and the agent that asked, when one did (whatever it asked: a statement, access, an
    unmask)."""
    agents = {
        a.user_id: a
        for a in Agent.objects.select_related("owner").filter(
            user_id__in={item.requester_id for item in page.object_list}
        )
    }
    for item in page.object_list:
        item.counted = len(counted_approvals(item))
        item.agent = agents.get(item.requester_id)
    return page


def _provenance(approval: ApprovalRequest) -> dict[str, Any]:
    """Who was behind the request (the run's record, or for access and unmask requests the
    `approval.requested` event's)."""
    if approval.run is not None and approval.run.provenance:
        return dict(approval.run.provenance)
    asked = (
        AuditEvent.objects.filter(kind=EventKind.APPROVAL_REQUESTED, detail__request=approval.pk)
        .only("detail")
        .first()
    )
    return dict((asked.detail or {}).get("provenance") or {}) if asked else {}


def _filtered(request: HttpRequest, requests: QuerySet[ApprovalRequest]) -> dict[str, Any]:
    """Apply the queue's filters; unknown values are ignored, never an error."""
    chosen = {
        "connection": request.GET.get("connection", ""),
        "risk": request.GET.get("risk", ""),
        "age": request.GET.get("age", ""),
        "status": request.GET.get("status", ""),
    }
    connection = chosen["connection"]
    if connection.isascii() and connection.isdigit() and len(connection) < 12:  # not "²"
        requests = requests.filter(connection_id=int(connection))
    if chosen["risk"] in RISKS:
        requests = requests.filter(risk=chosen["risk"])
    if chosen["age"] in AGES:
        requests = requests.filter(created_at__gte=timezone.now() - AGES[chosen["age"]])
    if chosen["status"] in Status.values and chosen["status"] != Status.PENDING:
        requests = requests.filter(status=chosen["status"])
    page = _counted(
        Paginator(requests.order_by("-created_at", "-id"), PAGE_SIZE).get_page(
            request.GET.get("page")
        )
    )
    return {
        "page": page,
        "chosen": chosen,
        "risks": RISKS,
        "ages": list(AGES),
        "connections": Connection.objects.order_by("name").only("pk", "name"),
    }


@role_required(APPROVER, ADMIN, AUDITOR)
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """Pending requests, newest first, refreshed live; approvers act on them."""
    context = _filtered(request, _requests().filter(status=Status.PENDING))
    context["tab"] = "pending"
    if getattr(request, "htmx", False):
        return render(request, "approvals/queue.html#rows", context)
    return render(request, "approvals/queue.html", context)


@role_required(APPROVER, ADMIN, AUDITOR)
@require_GET
def decided(request: HttpRequest) -> HttpResponse:
    context = _filtered(request, _requests().exclude(status=Status.PENDING))
    context.update(tab="history", statuses=[s for s in Status.choices if s[0] != "pending"])
    return render(request, "approvals/queue.html", context)


@role_required(ANALYST, APPROVER, ADMIN, AUDITOR)
@require_GET
def mine(request: HttpRequest) -> HttpResponse:
    requests = _requests().filter(requester_id=request.user.pk).order_by("-created_at", "-id")
    page = _counted(Paginator(requests, PAGE_SIZE).get_page(request.GET.get("page")))
    return render(request, "approvals/mine.html", {"page": page})


def _visible(request: HttpRequest, pk: int) -> ApprovalRequest:
    """Approvers, admins and auditors see every request; a requester sees their own."""
    found = _requests().prefetch_related("reviews__reviewer").filter(pk=pk).first()
    if found is None:
        raise Http404("No such request.")
    if found.requester_id != request.user.pk and not has_role(
        request.user, APPROVER, ADMIN, AUDITOR
    ):
        raise Http404("No such request.")
    return found


@login_required
@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _visible(request, pk)
    reviewed = any(r.reviewer_id == request.user.pk for r in approval.reviews.all())
    can_review = (
        approval.is_pending
        and not approval.is_overdue
        and approval.requester_id != request.user.pk
        and may_review(request.user, approval.approver_groups)
        and not reviewed
    )
    impact = approval.impact or {}
    rows, columns = impact.get("rows") or [], impact.get("columns") or []
    statements = [
        {
            **summary,
            "rows": rows[i] if i < len(rows) else None,
            "columns": columns[i] if i < len(columns) else [],
        }
        for i, summary in enumerate(approval.run.statement_summaries if approval.run else [])
    ]
    context = {
        "approval": approval,
        "agent": agent_of(approval.requester),
        "provenance": _provenance(approval),
        # approvals count only while their authors may still approve (not disabled or moved)
        "approved_count": len(counted_approvals(approval)),
        "statements": statements,
        "run": approval.run,
        "can_review": can_review,
        "needs_reauth": needs_reauthentication(approval),
        "reasons": [r for r in approval.run.reasons if r.get("action") != "allow"]
        if approval.run
        else [],
        # The delivery log names approvers' addresses: for the people who run the workflow.
        "deliveries": approval.deliveries.all()
        if has_role(request.user, APPROVER, ADMIN, AUDITOR)
        else [],
    }
    if getattr(request, "htmx", False) and request.GET.get("part") == "status":
        return render(request, "approvals/detail.html#status", context)
    return render(request, "approvals/detail.html", context)


@login_required
@require_POST
def review(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _visible(request, pk)
    verdict = request.POST.get("verdict")
    if verdict not in ("approve", "reject"):
        messages.error(request, "Choose approve or reject.")
        return redirect("approval_detail", pk=pk)
    reauthenticated = did_recently_reauthenticate(request)
    if needs_reauthentication(approval) and not reauthenticated:
        # allauth asks for the password again, then replays this POST.
        raise ReauthenticationRequired()
    try:
        request_review(
            caller=web_caller(request),
            request_id=pk,
            approve=verdict == "approve",
            comment=request.POST.get("comment", ""),
            reauthenticated=reauthenticated,
        )
    except ReauthenticationNeeded:
        raise ReauthenticationRequired() from None
    except ReviewRefused as exc:
        messages.error(request, str(exc))
        return redirect("approval_detail", pk=pk)
    messages.success(request, f"You {Review.Verdict.said(verdict)} request #{pk}.")
    if request.POST.get("next") == "queue":
        return redirect("approval_queue")
    return redirect("approval_detail", pk=pk)


@login_required
@require_POST
def withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _visible(request, pk)
    if approval.requester_id != request.user.pk:
        raise Http404("No such request.")
    if request_withdraw(caller=web_caller(request), request=approval):
        messages.success(request, f"Request #{pk} withdrawn.")
    else:
        messages.error(request, f"Request #{pk} is no longer pending.")
    return redirect("approval_detail", pk=pk)


def _jit(
    request: HttpRequest,
    form: forms.Form,
    create: Callable[..., ApprovalRequest],
    label: str,
    unmask: bool,
) -> HttpResponse:
    """A just-in-time request form: validate, create the request, or show what is wrong."""
    if request.method == "POST" and form.is_valid():
        try:
            created = create(caller=web_caller(request), **form.cleaned_data)
        except InvalidRequest as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{label} request #{created.pk} sent to approvers.")
            return redirect("approval_detail", pk=created.pk)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "unmask": unmask}
    return render(request, "approvals/request_access.html", context, status=status)


@role_required(ANALYST, APPROVER, ADMIN, AUDITOR)
@require_http_methods(["GET", "POST"])
def request_access(request: HttpRequest) -> HttpResponse:
    # Pre-filled from a link (the editor's denial): ?connection=<pk>&capabilities=ddl&…
    initial = {**request.GET.dict(), "capabilities": request.GET.getlist("capabilities")}
    form = AccessRequestForm(request.POST or None, initial=initial)
    return _jit(request, form, access_request, "Access", unmask=False)


@role_required(ANALYST, APPROVER, ADMIN, AUDITOR)
@require_http_methods(["GET", "POST"])
def request_unmask(request: HttpRequest) -> HttpResponse:
    form = UnmaskRequestForm(request.POST or None, user=request.user, initial=request.GET.dict())
    return _jit(request, form, unmask_request, "Unmask", unmask=True)


@role_required(ADMIN, AUDITOR)
@require_GET
def policy_list(request: HttpRequest) -> HttpResponse:
    policies = ApprovalPolicy.objects.prefetch_related("approver_groups", "connections")
    return render(request, "approvals/policy_list.html", {"policies": policies})


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def policy_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    policy = get_object_or_404(ApprovalPolicy, pk=pk) if pk else ApprovalPolicy()
    form = PolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        saved = policy_save(caller=web_caller(request), form=form)
        messages.success(request, f"Approval policy {saved.name} saved.")
        return redirect("approval_policy_list")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "approvals/policy_form.html", {"form": form, "policy": policy}, status=status
    )


@role_required(ADMIN)
@require_POST
def policy_remove(request: HttpRequest, pk: int) -> HttpResponse:
    policy = get_object_or_404(ApprovalPolicy, pk=pk)
    policy_delete(caller=web_caller(request), policy=policy)
    messages.success(request, f"Approval policy {policy.name} deleted.")
    return redirect("approval_policy_list")

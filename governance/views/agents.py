"""Agents and API tokens in the web pages: admins create and revoke agents and their tokens,
auditors see them, owners see their own agents, and everyone manages their personal tokens.
A token is shown once, on the page that answers the POST that made it (never in a URL, never
cached), and cannot be shown again."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.forms import AgentForm, TokenForm
from governance.models import Agent, ApiToken
from governance.roles import ADMIN, AUDITOR, has_role, role_refusal
from governance.services.agents import (
    AgentError,
    agent_create,
    agent_revoke,
    token_create,
    token_revoke,
)
from governance.views.common import web_caller


def _agents(request: HttpRequest) -> Any:
    agents = Agent.objects.select_related("user", "owner").prefetch_related(
        "user__groups", "user__api_tokens", "allowed_connections"
    )
    if has_role(request.user, ADMIN, AUDITOR):
        return agents
    return agents.filter(owner_id=request.user.pk)


def _shown(request: HttpRequest, token: str, *, whose: str, back: str) -> HttpResponse:
    response = render(
        request, "agents/token_shown.html", {"token": token, "whose": whose, "back": back}
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def agent_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "agents/list.html",
        {"agents": _agents(request), "can_manage": has_role(request.user, ADMIN)},
    )


@login_required
@require_GET
def agent_detail(request: HttpRequest, name: str) -> HttpResponse:
    agent = _agents(request).filter(user__username=name).first()
    if agent is None:
        raise Http404("No such agent.")
    return render(
        request,
        "agents/detail.html",
        {"agent": agent, "can_manage": has_role(request.user, ADMIN)},
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def agent_new(request: HttpRequest) -> HttpResponse:
    if not has_role(request.user, ADMIN):
        raise role_refusal(ADMIN)
    form = AgentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            agent, token = agent_create(
                caller=web_caller(request),
                name=data["name"],
                owner=data["owner"],
                groups=[g.name for g in data["roles"]],
                connections=[c.name for c in data["connections"]],
                expires_at=data["expires_at"],
                description=data["description"],
            )
        except AgentError as exc:
            form.add_error(None, str(exc))
        else:
            return _shown(request, token, whose=f"agent {agent.name}", back=agent.name)
    status = 400 if request.method == "POST" else 200
    return render(request, "agents/form.html", {"form": form}, status=status)


@login_required
@never_cache
@require_POST
def agent_token(request: HttpRequest, name: str) -> HttpResponse:
    if not has_role(request.user, ADMIN):
        raise role_refusal(ADMIN)
    agent = Agent.objects.select_related("user").filter(user__username=name).first()
    if agent is None:
        raise Http404("No such agent.")
    form = TokenForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "; ".join(str(e) for errors in form.errors.values() for e in errors)
        )
        return redirect("agent_detail", name=name)
    try:
        _, token = token_create(
            caller=web_caller(request),
            user=agent.user,
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
        )
    except AgentError as exc:
        messages.error(request, str(exc))
        return redirect("agent_detail", name=name)
    return _shown(request, token, whose=f"agent {agent.name}", back=agent.name)


@login_required
@require_POST
def agent_stop(request: HttpRequest, name: str) -> HttpResponse:
    if not has_role(request.user, ADMIN):
        raise role_refusal(ADMIN)
    try:
        agent = agent_revoke(caller=web_caller(request), name=name)
    except AgentError as exc:
        raise Http404(str(exc)) from None
    messages.success(
        request, f"Agent {agent.name} revoked: its account is disabled and every token revoked."
    )
    return redirect("agent_detail", name=name)


@login_required
@require_POST
def token_stop(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke a token: an admin any token, anyone else only their own personal ones."""
    token = ApiToken.objects.select_related("user").filter(pk=pk).first()
    if token is None or not (has_role(request.user, ADMIN) or token.user_id == request.user.pk):
        raise Http404("No such token.")
    token_revoke(caller=web_caller(request), key_id=token.key_id)
    messages.success(request, f"Token {token.shown} revoked.")
    agent = Agent.objects.filter(user_id=token.user_id).select_related("user").first()
    if agent is not None and token.user_id != request.user.pk:
        return redirect("agent_detail", name=agent.name)
    return redirect("my_tokens")


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def my_tokens(request: HttpRequest) -> HttpResponse:
    """A person's own tokens (for scripts and tools acting as them), and their agents."""
    me = int(request.user.pk or 0)  # signed in (login_required)
    if Agent.objects.filter(user_id=me).exists():
        raise PermissionDenied  # an agent has no web session anyway
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            _, token = token_create(
                caller=web_caller(request),
                user=request.user,
                name=form.cleaned_data["name"],
                expires_at=form.cleaned_data["expires_at"],
            )
        except AgentError as exc:
            form.add_error(None, str(exc))
        else:
            return _shown(request, token, whose="you", back="")
    context = {
        "form": form,
        "tokens": ApiToken.objects.filter(user_id=me),
        "agents": Agent.objects.filter(owner_id=me).select_related("user"),
    }
    return render(request, "agents/my_tokens.html", context, status=400 if form.errors else 200)

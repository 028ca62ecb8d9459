"""The people who use Warden: admins create accounts, change roles, deactivate and reactivate
them; auditors see the list and each person read-only, as on the other manage pages (every
change is a POST to an admin-only view). Agents are accounts too but never appear here: they
have their own pages under /agents/. Nothing here deletes an account."""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.forms import PersonForm, RolesForm
from governance.roles import ADMIN, AUDITOR, ROLES, has_role, role_required
from governance.services.accounts import (
    AccountError,
    account_create,
    account_deactivate,
    account_password_link,
    account_reactivate,
    account_roles_set,
)
from governance.views.common import web_caller

User = get_user_model()
PAGE_SIZE = 50
_FACTORS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)


def _people() -> QuerySet[Any]:
    """People, never agents, with what the list shows of each."""
    return (
        User._default_manager.filter(agent__isnull=True)
        .annotate(
            second_factor=Exists(
                Authenticator.objects.filter(user_id=OuterRef("pk"), type__in=_FACTORS)
            ),
            sso=Exists(SocialAccount.objects.filter(user_id=OuterRef("pk"))),
        )
        .prefetch_related("groups")
    )


def _person(pk: int) -> Any:
    person = _people().filter(pk=pk).first()
    if person is None:  # no such account, or an agent's: /agents/ is where those are seen
        raise Http404("No such person.")
    return person


def _clean(text: str) -> str:
    return text.replace("\x00", "").strip()[:150]  # PostgreSQL text never holds a NUL


@role_required(ADMIN, AUDITOR)
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    search = _clean(request.GET.get("q", ""))
    role = request.GET.get("role", "")
    state = request.GET.get("state", "")
    people = _people().order_by("username")
    if search:
        people = people.filter(
            Q(username__icontains=search)
            | Q(email__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
        )
    if role in ROLES:
        people = people.filter(groups__name=role)
    if state in ("active", "inactive"):
        people = people.filter(is_active=state == "active")
    page = Paginator(people, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "manage/user_list.html",
        {
            "page": page,
            "search": search,
            "role": role if role in ROLES else "",
            "state": state,
            "roles": ROLES,
            "query": query.urlencode(),
            "can_manage": has_role(request.user, ADMIN),
        },
    )


def _link_shown(request: HttpRequest, person: Any, path: str, *, created: bool) -> HttpResponse:
    """The set-password link, once, in the answer to the POST that made it: never in a URL
    or a message stored in the session, never cached."""
    response = render(
        request,
        "manage/user_link.html",
        {
            "person": person,
            "link": request.build_absolute_uri(path),
            "created": created,
            "valid_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@role_required(ADMIN)
@never_cache
@require_http_methods(["GET", "POST"])
def user_create(request: HttpRequest) -> HttpResponse:
    form = PersonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            person, path = account_create(
                caller=web_caller(request),
                username=data["username"],
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                roles=data["roles"],
            )
        except AccountError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            return _link_shown(request, person, path, created=True)
    status = 400 if request.method == "POST" else 200
    return render(request, "manage/user_form.html", {"form": form}, status=status)


def _detail(request: HttpRequest, person: Any, roles_form: RolesForm | None = None) -> Any:
    roles = sorted(g.name for g in person.groups.all() if g.name in ROLES)
    return {
        "person": person,
        "roles": roles,
        "roles_form": roles_form or RolesForm(initial={"roles": roles}),
        "can_manage": has_role(request.user, ADMIN),
        "is_me": person.pk == request.user.pk,
        "agents": person.owned_agents.select_related("user").order_by("user__username"),
        "tokens": person.api_tokens.filter(revoked_at__isnull=True).count(),
        "needs_password": person.is_active and not person.sso and not person.has_usable_password(),
    }


@role_required(ADMIN, AUDITOR)
@require_GET
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    person = _person(pk)
    return render(request, "manage/user_detail.html", _detail(request, person))


@role_required(ADMIN)
@require_POST
def user_roles(request: HttpRequest, pk: int) -> HttpResponse:
    person = _person(pk)
    form = RolesForm(request.POST)
    if form.is_valid():
        try:
            before, after = account_roles_set(
                caller=web_caller(request), user=person, roles=form.cleaned_data["roles"]
            )
        except AccountError as exc:
            form.add_error(None, str(exc))
        else:
            if before == after:
                messages.info(request, f"{person.get_username()}'s roles are unchanged.")
            else:
                shown = ", ".join(after) or "none"
                messages.success(request, f"{person.get_username()}'s roles are now: {shown}.")
            return redirect("user_detail", pk=pk)
    context = _detail(request, person, form)
    return render(request, "manage/user_detail.html", context, status=400)


def _refused(request: HttpRequest, pk: int, exc: AccountError) -> HttpResponse:
    messages.error(request, str(exc))
    return redirect("user_detail", pk=pk)


@role_required(ADMIN)
@require_POST
def user_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    person = _person(pk)
    try:
        done = account_deactivate(caller=web_caller(request), user=person)
    except AccountError as exc:
        return _refused(request, pk, exc)
    name = person.get_username()
    if done.get("already"):
        messages.info(request, f"{name} was already deactivated.")
    else:
        messages.success(
            request,
            f"{name} is deactivated: {done['sessions_ended']} session(s) ended, "
            f"{len(done['tokens_revoked'])} token(s) revoked"
            + (
                f", agents stopped: {', '.join(done['agents_stopped'])}."
                if done["agents_stopped"]
                else "."
            ),
        )
    return redirect("user_detail", pk=pk)


@role_required(ADMIN)
@require_POST
def user_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    person = _person(pk)
    try:
        done = account_reactivate(caller=web_caller(request), user=person)
    except AccountError as exc:
        return _refused(request, pk, exc)
    name = person.get_username()
    if done.get("already"):
        messages.info(request, f"{name} is already active.")
    else:
        messages.success(request, f"{name} can sign in again. Tokens revoked earlier stay revoked.")
    return redirect("user_detail", pk=pk)


@role_required(ADMIN)
@never_cache
@require_POST
def user_password_link(request: HttpRequest, pk: int) -> HttpResponse:
    person = _person(pk)
    try:
        path = account_password_link(caller=web_caller(request), user=person)
    except AccountError as exc:
        return _refused(request, pk, exc)
    return _link_shown(request, person, path, created=False)

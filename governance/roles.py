"""Roles are Django groups: analyst, approver, admin, auditor. Every view checks them."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django_htmx.http import HttpResponseClientRedirect

ANALYST = "analyst"
APPROVER = "approver"
ADMIN = "admin"
AUDITOR = "auditor"
ROLES = (ANALYST, APPROVER, ADMIN, AUDITOR)


def user_groups(user: Any) -> frozenset[str]:
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_warden_groups", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached |= {ADMIN}
        user._warden_groups = cached
    return cached


def groups_known(user: Any, names: Any) -> None:
    """Tell `user_groups` the groups of `user`, read with the account (no query of its own)."""
    known = frozenset(names)
    if user.is_superuser:
        known |= {ADMIN}
    user._warden_groups = known


class Refusal(PermissionDenied):
    """A refusal whose message Warden wrote for the person refused: the 403 page shows it.
    Any other PermissionDenied (Django's, a library's) gets the page's general words only,
    since its message was never meant for that person's eyes."""


def role_refusal(*roles: str) -> Refusal:
    """The refusal of a page for other roles, naming the role(s) to ask an admin for."""
    if len(roles) == 1:
        needed = f"the {roles[0]} role: ask an admin for it"
    else:
        needed = f"the {', '.join(roles[:-1])} or {roles[-1]} role: ask an admin for one"
    return Refusal(f"Your role does not allow this page. It needs {needed}.")


def has_role(user: Any, *roles: str) -> bool:
    return bool(user_groups(user) & set(roles))


def role_required(
    *roles: str,
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """Login required, then one of `roles`; anyone else gets 403.

    An htmx request without a session (signed out in another tab, session expired) sends the
    whole page to the login page: following the redirect would swap the login form into the
    results pane or a polled fragment."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @login_required
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not has_role(request.user, *roles):
                raise role_refusal(*roles)
            return view(request, *args, **kwargs)

        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            htmx = getattr(request, "htmx", None)
            if htmx and not request.user.is_authenticated:
                page = htmx.current_url_abs_path or request.get_full_path()
                return HttpResponseClientRedirect(redirect_to_login(page).url)
            return checked(request, *args, **kwargs)

        return wrapped

    return decorator

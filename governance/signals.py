"""Logins, logouts and failed logins go to the audit trail."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from audit.kinds import EventKind
from audit.services import event_record


def client_ip(request: HttpRequest | None) -> str | None:
    """The caller's address for the audit trail.

    Behind WARDEN_TRUSTED_PROXIES reverse proxies, the address the outermost trusted proxy saw
    (counted from the right of X-Forwarded-For, so a client cannot forge it).
    """
    if request is None:
        return None
    hops = settings.WARDEN_TRUSTED_PROXIES
    if hops:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                return None
    return request.META.get("REMOTE_ADDR") or None


@receiver(user_logged_in)
def _logged_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    event_record(kind=EventKind.AUTH_LOGIN, actor=user, source_ip=client_ip(request))


@receiver(user_logged_out)
def _logged_out(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:
        event_record(kind=EventKind.AUTH_LOGOUT, actor=user, source_ip=client_ip(request))


@receiver(user_login_failed)
def _login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Never record the attempted password; the username is what an investigator needs.
    name = str(credentials.get("username") or credentials.get("login") or "")[:150]
    event_record(kind=EventKind.AUTH_LOGIN_FAILED, actor_name=name, source_ip=client_ip(request))

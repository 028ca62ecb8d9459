"""Template tags for the allauth pages Warden overrides."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import get_adapter
from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def signup_open(context: dict[str, Any]) -> bool:
    """Whether a page may offer sign-up: the account adapter decides (closed in Warden, where
    admins create local accounts and the identity provider creates the others)."""
    request = context.get("request")
    return request is not None and bool(get_adapter(request).is_open_for_signup(request))

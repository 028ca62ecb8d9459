from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from governance.env import PUBLIC_DEMO_SECRET_KEY
from governance.roles import user_groups


def roles(request: HttpRequest) -> dict[str, Any]:
    groups = user_groups(request.user)
    return {
        "roles": groups,
        "is_admin": "admin" in groups,
        "is_analyst": "analyst" in groups,
        "is_auditor": "auditor" in groups,
        "is_approver": "approver" in groups,
    }


def demo(request: HttpRequest) -> dict[str, Any]:
    """Every page says so while Warden runs on the public built-in secret key."""
    return {"public_key_demo": settings.SECRET_KEY == PUBLIC_DEMO_SECRET_KEY}

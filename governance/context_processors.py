from __future__ import annotations

from typing import Any

from django.http import HttpRequest

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

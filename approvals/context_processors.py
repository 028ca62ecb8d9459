from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from approvals.models import ApprovalRequest
from governance.roles import APPROVER, has_role


def waiting(request: HttpRequest) -> dict[str, Any]:
    """How many pending requests this approver could still review (the nav badge)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not has_role(user, APPROVER):
        return {}
    return {
        "approvals_waiting": ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING)
        .exclude(requester=user)
        .exclude(reviews__reviewer=user)
        .count()
    }

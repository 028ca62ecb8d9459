from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from approvals.models import ApprovalRequest
from approvals.policies import may_review
from governance.roles import APPROVER, has_role


def waiting(request: HttpRequest) -> dict[str, Any]:
    """How many pending requests this approver could still review (the nav badge)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not has_role(user, APPROVER):
        return {}
    pending = (
        ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING)
        .exclude(requester=user)
        .exclude(reviews__reviewer=user)
        .values_list("approver_groups", flat=True)
    )
    # Only requests whose approver groups (a JSON list, filtered here for SQLite too) are theirs.
    return {"approvals_waiting": sum(may_review(user, groups) for groups in pending)}

"""Which policy applies to a request: who may approve it, how many must, and for how long."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from approvals.models import ApprovalPolicy
from governance.models import Connection
from governance.roles import APPROVER, user_groups

DEFAULT_REQUEST_TTL = dt.timedelta(hours=24)
DEFAULT_APPROVAL_TTL = dt.timedelta(hours=4)


@dataclass(frozen=True)
class Requirement:
    required: int
    groups: tuple[str, ...]
    request_ttl: dt.timedelta
    approval_ttl: dt.timedelta
    policy: ApprovalPolicy | None


def _specificity(policy: ApprovalPolicy, connection: Connection) -> int:
    if any(c.pk == connection.pk for c in policy.connections.all()):
        return 0
    if policy.environments:
        return 1
    return 2


def requirement_for(*, risk: str, connection: Connection) -> Requirement:
    """The first matching policy by priority, most specific first; else the built-in default."""
    candidates = [
        p
        for p in ApprovalPolicy.objects.filter(risk=risk).prefetch_related(
            "connections", "approver_groups"
        )
        if (not p.connections.all() or any(c.pk == connection.pk for c in p.connections.all()))
        and (not p.environments or connection.environment in p.environments)
    ]
    if candidates:
        policy = min(candidates, key=lambda p: (p.priority, _specificity(p, connection), p.pk))
        groups = tuple(sorted(g.name for g in policy.approver_groups.all())) or (APPROVER,)
        return Requirement(
            required=max(1, policy.required_approvals),
            groups=groups,
            request_ttl=policy.request_ttl,
            approval_ttl=policy.approval_ttl,
            policy=policy,
        )
    return Requirement(
        required=2 if risk == "critical" else 1,
        groups=(APPROVER,),
        request_ttl=DEFAULT_REQUEST_TTL,
        approval_ttl=DEFAULT_APPROVAL_TTL,
        policy=None,
    )


def may_review(user: Any, groups: list[str] | tuple[str, ...]) -> bool:
    """Belongs to one of the request's approver groups (fixed when it was made)."""
    return bool(user.is_authenticated and user.is_active and user_groups(user) & set(groups))

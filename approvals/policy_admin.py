"""Admins manage approval policies; every change is audited with what changed."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from approvals.forms import PolicyForm
from approvals.models import ApprovalPolicy
from audit.kinds import EventKind
from governance.services.caller import Caller, record


def _snapshot(policy: ApprovalPolicy) -> dict[str, Any]:
    return {
        "risk": policy.risk,
        "required_approvals": policy.required_approvals,
        "approver_groups": sorted(g.name for g in policy.approver_groups.all()),
        "connections": sorted(c.name for c in policy.connections.all()),
        "environments": sorted(policy.environments),
        "request_hours": policy.request_ttl.total_seconds() / 3600,
        "approval_hours": policy.approval_ttl.total_seconds() / 3600,
        "priority": policy.priority,
    }


@transaction.atomic
def policy_save(*, caller: Caller, form: PolicyForm) -> ApprovalPolicy:
    created = form.instance.pk is None
    before = {} if created else _snapshot(ApprovalPolicy.objects.get(pk=form.instance.pk))
    policy = form.save()
    after = _snapshot(policy)
    record(
        EventKind.APPROVAL_POLICY_CREATED if created else EventKind.APPROVAL_POLICY_UPDATED,
        caller,
        rule=policy.name,
        detail={"changes": {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}},
    )
    return policy


@transaction.atomic
def policy_delete(*, caller: Caller, policy: ApprovalPolicy) -> None:
    record(
        EventKind.APPROVAL_POLICY_DELETED,
        caller,
        rule=policy.name,
        detail={"snapshot": _snapshot(policy)},
    )
    policy.delete()

"""A request as plain data: what the CLI prints, notifications send and pages show."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from approvals.models import ApprovalRequest
from approvals.services import counted_approvals, requester_owner_id


def _owner_name(request: ApprovalRequest) -> str | None:
    owner = requester_owner_id(request)
    if owner is None:
        return None
    return str(get_user_model().objects.get(pk=owner).get_username())


def request_summary(request: ApprovalRequest, *, full: bool = False) -> dict[str, Any]:
    reviews = list(request.reviews.all())
    data: dict[str, Any] = {
        "id": request.pk,
        "kind": request.kind,
        "status": request.status,
        "risk": request.risk,
        "title": request.title,
        "connection": request.connection.name,
        "environment": request.connection.environment,
        "requester": request.requester.get_username(),
        # An agent asked: the person it acts for (who cannot approve it).
        "agent_for": _owner_name(request),
        "approvals": len(counted_approvals(request)),
        "required": request.required_approvals,
        "approver_groups": list(request.approver_groups),
        "created_at": request.created_at.isoformat(),
        "expires_at": request.expires_at.isoformat(),
        "decided_at": request.decided_at.isoformat() if request.decided_at else None,
    }
    if full:
        run = request.run
        data.update(
            purpose=request.purpose,
            sql=run.sql if run is not None else None,
            runs=list(run.statements) if run is not None else None,
            run=run.pk if run is not None else None,
            run_status=run.status if run is not None else None,
            capabilities=list(request.capabilities),
            column=str(request.column) if request.column_id else None,
            hours=request.duration.total_seconds() / 3600 if request.duration else None,
            reasons=[r for r in run.reasons if r.get("action") != "allow"] if run else [],
            impact=request.impact,
            reviews=[r.to_dict() for r in reviews],
        )
    return data

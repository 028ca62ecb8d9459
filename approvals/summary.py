"""A request as plain data: what the CLI prints, notifications send and pages show."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.http import HttpRequest, QueryDict
from django.urls import Resolver404, resolve

from approvals.models import ApprovalRequest
from approvals.services import counted_approvals, requester_owner_id
from governance.roles import ADMIN, APPROVER, AUDITOR, has_role
from governance.services.values import printable


def _owner_name(request: ApprovalRequest) -> str | None:
    owner = requester_owner_id(request)
    if owner is None:
        return None
    return str(get_user_model().objects.get(pk=owner).get_username())


STATEMENT_LINE_CHARS = 100


def statement_line(sql: str, limit: int = STATEMENT_LINE_CHARS) -> str:
    """A statement on one line, cut to `limit` characters with "…": what lists and titles
    show of it (control and bidi characters escaped, as everywhere a requester's text is).
    Its line breaks stay visible as "⏎": a line comment ends at one, and what follows runs
    (`WHERE id = 12 -- just one` and then `OR id > 0` on the next line) — joined with a
    space it would read as part of the comment."""
    lines = (" ".join(printable(part).split()) for part in sql.splitlines())
    line = " ⏎ ".join(part for part in lines if part)
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


# Where allauth keeps the POST it replays once the password is confirmed again.
_SUSPENDED = "account_reauthentication_state"


def reauthentication_subject(http_request: HttpRequest) -> dict[str, Any] | None:
    """The approval request a re-authentication page is asked for (its `next` is the review),
    with the verdict waiting to be replayed; None for any other page, or a request the user
    may not see."""
    target = http_request.POST.get("next") or http_request.GET.get("next") or ""
    try:
        match = resolve(urlsplit(target).path)
    except Resolver404:
        return None
    if match.url_name not in ("approval_review", "approval_detail"):
        return None
    approval = (
        ApprovalRequest.objects.select_related("run", "connection")
        .filter(pk=int(match.kwargs["pk"]))
        .first()
    )
    user = http_request.user
    if approval is None or not (
        approval.requester_id == user.pk or has_role(user, APPROVER, ADMIN, AUDITOR)
    ):
        return None
    verdict = ""
    suspended = http_request.session.get(_SUSPENDED) or {}
    with contextlib.suppress(TypeError, ValueError, KeyError):
        replayed = json.loads(suspended["request"])
        if replayed["path"] == urlsplit(target).path:
            verdict = QueryDict(replayed["POST"]).get("verdict") or ""
    return {"approval": approval, "verdict": verdict if verdict in ("approve", "reject") else ""}


def request_summary(request: ApprovalRequest, *, full: bool = False) -> dict[str, Any]:
    reviews = list(request.reviews.all())
    data: dict[str, Any] = {
        "id": request.pk,
        "kind": request.kind,
        "status": request.status,
        "risk": request.risk,
        "title": request.title,
        # What it would run, on one line (the full text is `sql`, with `full`).
        "statement": statement_line(request.run.sql) if request.run is not None else None,
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

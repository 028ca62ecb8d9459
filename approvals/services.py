"""The approval workflow: request, review, release, expire.

Every state change is a conditional UPDATE or happens under a row lock on the request, so
two approvers approving at the same moment release the statement once.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.models import ApprovalRequest, Review
from approvals.policies import may_review, requirement_for
from audit.kinds import EventKind
from audit.models import AuditEvent
from governance import metrics
from governance.models import (
    AccessGrant,
    Agent,
    Capability,
    CatalogColumn,
    Connection,
    QueryRun,
    UnmaskExemption,
)
from governance.services.agents import agent_refusal
from governance.services.caller import Caller, record
from governance.services.catalog_admin import catalog_bump
from governance.services.held import ReleaseRefused, run_close, run_recheck, run_release
from governance.services.runs import run_cancel

Status = ApprovalRequest.Status
Kind = ApprovalRequest.Kind

# Called after commit with (event, request id): notifications and impact previews hang here.
after_commit_hooks: list[Callable[[str, int], object]] = []

MIN_ACCESS = dt.timedelta(minutes=5)
MAX_ACCESS = dt.timedelta(days=7)


class ReviewRefused(Exception):
    """A review that may not be taken; the message says why."""


class ReauthenticationNeeded(ReviewRefused):
    """The review needs a recent re-authentication (critical statements, unmasked access)."""


class InvalidRequest(Exception):
    """An access request with bad input; the message says what is wrong."""


def _announce(event: str, request: ApprovalRequest) -> None:
    for hook in after_commit_hooks:
        transaction.on_commit(partial(hook, event, request.pk))


def _audit(kind: EventKind, caller: Caller, request: ApprovalRequest, **detail: Any) -> None:
    """An event about `request`; when an agent asked, every one of them says which agent and
    whose (the reviewer's events carry the reviewer's identity, not the agent's provenance)."""
    agent = (
        Agent.objects.select_related("user", "owner").filter(user_id=request.requester_id).first()
    )
    if agent is not None:
        detail["for_agent"] = {
            "agent": agent.user.get_username(),
            "owner": agent.owner.get_username(),
        }
    record(
        kind,
        caller,
        request.connection,
        run_id=request.run_id,
        sql=request.run.sql if request.run_id and request.run else "",
        risk=request.risk,
        detail={"request": request.pk, "kind": request.kind, **detail},
    )


def request_binding(request: ApprovalRequest) -> dict[str, Any]:
    """Everything that decides what an approval of `request` does and who may give it. It
    goes into the MAC'd `approval.requested` event when the request is made, and must still be
    what the row says when it is reviewed and fulfilled: a request row edited in the database
    (other approver groups, fewer approvals, more capabilities, longer, another column, another
    run) approves nothing."""
    binding = {
        "kind": request.kind,
        "requester_id": request.requester_id,
        "connection_id": request.connection_id,
        "run_id": request.run_id,
        "risk": request.risk,
        "required": request.required_approvals,
        "approver_groups": sorted(request.approver_groups or []),
        "capabilities": sorted(request.capabilities or []),
        "duration_s": request.duration.total_seconds() if request.duration else None,
        "column_id": request.column_id,
        "approval_ttl_s": request.approval_ttl.total_seconds() if request.approval_ttl else None,
        "expires_at": request.expires_at.isoformat(),
        "sql_sha256": request.sql_sha256,
        "statements_sha256": request.statements_sha256,
    }
    return dict(json.loads(json.dumps(binding, default=str)))


TAMPERED = (
    "Request #{pk} is not what was requested: it was changed in the database after it was "
    "made, so it can only be rejected."
)


def binding_problem(request: ApprovalRequest) -> str:
    """'' when a genuine `approval.requested` event binds the request as it stands now."""
    from audit.chain import mac_matches
    from audit.keys import mac_key, retired_keys

    keys = [mac_key(), *retired_keys().values()]
    wanted = request_binding(request)
    for event in AuditEvent.objects.filter(
        kind=EventKind.APPROVAL_REQUESTED, detail__request=request.pk
    ):
        detail = event.detail if isinstance(event.detail, dict) else {}
        if detail.get("binding") == wanted and any(mac_matches(event, k) for k in keys):
            return ""
    return TAMPERED.format(pk=request.pk)


def _new_request(
    *, kind: str, connection: Connection, requester: Any, risk: str, **fields: Any
) -> ApprovalRequest:
    need = requirement_for(risk=risk, connection=connection)
    now = timezone.now()
    return ApprovalRequest.objects.create(
        kind=kind,
        connection=connection,
        requester=requester,
        risk=risk,
        policy=need.policy,
        required_approvals=need.required,
        approver_groups=list(need.groups),
        created_at=now,
        expires_at=now + need.request_ttl,
        approval_ttl=need.approval_ttl,
        **fields,
    )


# ------------------------------------------------------------------ making requests


def request_create_for_run(run: QueryRun) -> ApprovalRequest:
    """Hold a statement for review (called inside the submitting transaction)."""
    request = _new_request(
        kind=Kind.STATEMENT,
        connection=run.connection,
        requester=run.user,
        risk=run.risk,
        run=run,
        sql_sha256=ApprovalRequest.digest(run.sql),
        statements_sha256=ApprovalRequest.statements_digest(run.statements),
        purpose=run.purpose,
    )
    caller = Caller.of_run(run)
    _audit(
        EventKind.APPROVAL_REQUESTED,
        caller,
        request,
        required=request.required_approvals,
        approver_groups=request.approver_groups,
        binding=request_binding(request),
    )
    _announce("requested", request)
    return request


def _duration(hours: Any) -> dt.timedelta:
    try:
        value = float(hours)
    except (TypeError, ValueError):
        raise InvalidRequest("Give the duration in hours, e.g. 2 or 0.5.") from None
    # NaN, infinity and numbers too large for a timedelta → 0 (refused below).
    finite = math.isfinite(value) and abs(value) < 1e6
    duration = dt.timedelta(hours=value) if finite else dt.timedelta(0)
    if not MIN_ACCESS <= duration <= MAX_ACCESS:
        raise InvalidRequest("Access can be requested for 5 minutes up to 7 days.")
    return duration


def plain_text(text: str) -> bool:
    """Text PostgreSQL can store: no NUL byte, and encodable as UTF-8 (argv can hold lone
    surrogates for bytes that are not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidRequest("Say why you need this access; approvers see the reason.")
    if len(reason) > 500:
        raise InvalidRequest("Keep the reason under 500 characters.")
    if "\x00" in reason or not _encodable(reason):
        raise InvalidRequest(
            "The reason holds characters that cannot be stored (NUL, unpaired surrogates)."
        )
    return reason.strip()


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate
        return False
    return True


POWERFUL_CAPABILITIES = frozenset({Capability.DDL.value, Capability.ADMIN.value})


def access_request(
    *, caller: Caller, connection: Connection, capabilities: Any, hours: Any, reason: Any
) -> ApprovalRequest:
    """Ask for capabilities on a connection for a time; approval creates an expiring grant."""
    if not isinstance(capabilities, list | tuple) or not capabilities:
        raise InvalidRequest("Choose at least one capability.")
    unknown = [c for c in capabilities if c not in Capability.values]
    if unknown:
        raise InvalidRequest(f"Unknown capability: {', '.join(map(str, unknown))[:100]}.")
    # Schema changes and administration can do what no review of one statement would catch:
    # asking for them is critical (the seeded policy: two approvers, re-authentication).
    risk = "critical" if POWERFUL_CAPABILITIES & set(capabilities) else "high"
    with transaction.atomic():
        request = _new_request(
            kind=Kind.ACCESS,
            connection=connection,
            requester=caller.user,
            risk=risk,
            capabilities=sorted(set(capabilities)),
            duration=_duration(hours),
            purpose=_reason(reason),
        )
        _audit(
            EventKind.APPROVAL_REQUESTED,
            caller,
            request,
            capabilities=request.capabilities,
            hours=request.duration.total_seconds() / 3600 if request.duration else None,
            binding=request_binding(request),
        )
        _announce("requested", request)
    return request


def unmask_request(
    *, caller: Caller, column: CatalogColumn, hours: Any, reason: Any
) -> ApprovalRequest:
    """Ask to see one masked column unmasked for a time; approval creates an exemption."""
    with transaction.atomic():
        request = _new_request(
            kind=Kind.UNMASK,
            connection=column.table.connection,
            requester=caller.user,
            risk="high",
            column=column,
            duration=_duration(hours),
            purpose=_reason(reason),
        )
        _audit(
            EventKind.APPROVAL_REQUESTED,
            caller,
            request,
            column=str(column),
            binding=request_binding(request),
        )
        _announce("requested", request)
    return request


# ------------------------------------------------------------------ reviewing


def needs_reauthentication(request: ApprovalRequest) -> bool:
    return request.risk == "critical" or request.kind == Kind.UNMASK


def _refusal(
    request: ApprovalRequest, reviewer: Any, now: dt.datetime, *, approve: bool = True
) -> str:
    if request.status != Status.PENDING:
        return f"Request #{request.pk} is already {request.get_status_display().lower()}."
    if request.expires_at <= now:
        return f"Request #{request.pk} has expired."
    if approve and (tampered := binding_problem(request)):
        return tampered  # before who may review: the groups on the row are not to be trusted
    if request.run is not None and request.run.status != QueryRun.Status.PENDING_APPROVAL:
        return f"Request #{request.pk} is being withdrawn: its run was cancelled."
    if reviewer.pk == request.requester_id:
        return "You cannot review your own request."
    if Agent.objects.filter(user_id=reviewer.pk).exists():
        return "An agent cannot review requests: approvals are decided by people."
    if reviewer.pk == requester_owner_id(request):
        return (
            f"Request #{request.pk} was made by an agent you own: its owner is on the "
            "requester's side and cannot review it."
        )
    if not may_review(reviewer, request.approver_groups):
        groups = ", ".join(request.approver_groups)
        return f"Only members of {groups} may review request #{request.pk}."
    if request.reviews.filter(reviewer=reviewer).exists():
        return f"You have already reviewed request #{request.pk}."
    return ""


def request_review(
    *,
    caller: Caller,
    request_id: int,
    approve: bool,
    comment: Any = "",
    reauthenticated: bool,
    now: dt.datetime | None = None,
) -> ApprovalRequest:
    """Approve or reject. The last required approval releases the statement or grants access.

    Raises ReviewRefused (self-review, not an approver, twice, decided, expired) or
    ReauthenticationNeeded.
    """
    if not isinstance(comment, str) or len(comment) > 1000:
        raise ReviewRefused("A comment is text of at most 1,000 characters.")
    if not plain_text(comment):
        raise ReviewRefused("A comment must be plain text (no NUL bytes, valid UTF-8).")
    comment = comment.strip()
    reviewer = caller.user
    now = now or timezone.now()
    expired = False
    with transaction.atomic():
        request = (
            ApprovalRequest.objects.select_for_update(of=("self",))
            .select_related("run", "connection", "requester")
            .filter(pk=request_id)
            .first()
        )
        if request is None:
            raise ReviewRefused(f"No approval request #{request_id}.")
        refusal = _refusal(request, reviewer, now, approve=approve)
        if refusal and request.status == Status.PENDING and request.expires_at <= now:
            _expire(request, now)  # commit the expiry, then refuse
            expired = True
        elif refusal:
            raise ReviewRefused(refusal)
        elif approve and not request.requester.is_active:
            raise ReviewRefused(
                f"The requester's account is disabled: request #{request.pk} can only be rejected."
            )
        elif approve and (agent_says := agent_refusal(request.requester, request.connection)):
            raise ReviewRefused(agent_says)
        elif needs_reauthentication(request) and not reauthenticated:
            raise ReauthenticationNeeded(
                "Confirm your password to review this request (critical statements and "
                "unmasked access need a recent sign-in)."
            )
        else:
            verdict = Review.Verdict.APPROVE if approve else Review.Verdict.REJECT
            Review.objects.create(
                request=request, reviewer=reviewer, verdict=verdict, comment=comment, created_at=now
            )
            kind = EventKind.APPROVAL_APPROVED if approve else EventKind.APPROVAL_REJECTED
            _audit(kind, caller, request, comment=comment)
            if not approve:
                _reject(request, reviewer, comment, now)
            elif len(attested_approvals(request)) >= request.required_approvals:
                _fulfil(request, caller, now)
            else:
                _announce("reviewed", request)
    if expired:
        raise ReviewRefused(refusal)
    return request


def requester_owner_id(request: ApprovalRequest) -> int | None:
    """When an agent asked, the id of the person who owns it (on the requester's side)."""
    owner = Agent.objects.filter(user_id=request.requester_id).values_list("owner_id", flat=True)
    return owner.first()


def counted_approvals(request: ApprovalRequest) -> list[Review]:
    """Approvals by people who may still approve it (not since removed from the groups or
    disabled), and who are not on the requester's side (the requester, or the owner of the
    agent that asked): an approval counts only while its author could give it."""
    sides = {request.requester_id, requester_owner_id(request)}
    approvals = list(request.approvals())
    agents = set(
        Agent.objects.filter(user_id__in=[r.reviewer_id for r in approvals]).values_list(
            "user_id", flat=True
        )
    )  # an agent's approval never counts (nor can one be given: see `_refusal`)
    return [
        r
        for r in approvals
        if r.reviewer_id not in sides
        and r.reviewer_id not in agents
        and may_review(r.reviewer, request.approver_groups)
    ]


def attested_approvals(request: ApprovalRequest) -> list[Review]:
    """The counted approvals that the audit trail attests: each needs its `approval.approved`
    event, with a MAC only Warden can write, by the same person. A review row written into the
    table by anyone else (the database credentials suffice for that, not for the MAC) does not
    release a statement or grant access."""
    from audit.chain import mac_matches
    from audit.keys import mac_key, retired_keys

    keys = [mac_key(), *retired_keys().values()]
    events = AuditEvent.objects.filter(
        kind=EventKind.APPROVAL_APPROVED, detail__request=request.pk
    ).only(*[f.name for f in AuditEvent._meta.concrete_fields])
    attested = {e.actor_id for e in events if any(mac_matches(e, k) for k in keys)}
    return [r for r in counted_approvals(request) if r.reviewer_id in attested]


def _decide_request(request: ApprovalRequest, status: str, now: dt.datetime) -> bool:
    decided = ApprovalRequest.objects.filter(pk=request.pk, status=Status.PENDING).update(
        status=status, decided_at=now
    )
    request.status, request.decided_at = status, now
    if decided:
        metrics.approval_decision_seconds.labels(request.kind, status).observe(
            max(0.0, (now - request.created_at).total_seconds())
        )
    return bool(decided)


def _reject(request: ApprovalRequest, reviewer: Any, comment: str, now: dt.datetime) -> None:
    _decide_request(request, Status.REJECTED, now)
    if request.run is not None:
        why = f": {comment}" if comment else "."
        run_close(
            run=request.run,
            status=QueryRun.Status.REJECTED,
            error=f"Rejected by {reviewer.get_username()}{why}",
            detail={"request": request.pk},
        )
    _announce("rejected", request)


def _check_binding(request: ApprovalRequest, run: QueryRun) -> None:
    """The held run is still the statement the request was made for, or ReleaseRefused."""
    if (
        ApprovalRequest.digest(run.sql) != request.sql_sha256
        or ApprovalRequest.statements_digest(run.statements) != request.statements_sha256
        or run.user_id != request.requester_id
        or run.connection_id != request.connection_id
    ):
        raise ReleaseRefused(
            "This is not the statement that was submitted for approval (it changed after the "
            "request was made), so the approval does not cover it. Submit it again."
        )


def _fulfil(request: ApprovalRequest, caller: Caller, now: dt.datetime) -> None:
    tampered = binding_problem(request)  # again: the row may have changed since the review
    if tampered:
        raise ReviewRefused(tampered)
    _decide_request(request, Status.APPROVED, now)
    approvers = [r.reviewer.get_username() for r in attested_approvals(request)]
    _audit(EventKind.APPROVAL_GRANTED, caller, request, approvers=approvers)
    if request.kind == Kind.STATEMENT and request.run is not None:
        run = request.run
        try:
            _check_binding(request, run)  # the exact statement first, then decide it afresh
            run_recheck(run)
        except ReleaseRefused as exc:
            run_close(
                run=run,
                status=QueryRun.Status.FAILED,
                error=str(exc),
                detail={"request": request.pk, "approvers": approvers},
            )
        else:
            run_release(
                run=run,
                approval={"id": request.pk, "approvers": approvers},
                run_before=now + request.approval_ttl,
            )
    elif request.kind == Kind.ACCESS and request.duration is not None:
        grant = AccessGrant.objects.create(
            connection=request.connection,
            user=request.requester,
            capabilities=request.capabilities,
            expires_at=now + request.duration,
            reason=f"Approval request #{request.pk}: {request.purpose}"[:500],
            created_by=caller.user,
        )
        _audit(
            EventKind.ACCESS_GRANTED,
            caller,
            request,
            grant=grant.pk,
            grantee=request.requester.get_username(),
            capabilities=grant.capabilities,
            expires_at=grant.expires_at.isoformat() if grant.expires_at else None,
            approvers=approvers,
        )
    elif request.kind == Kind.UNMASK and request.column is not None and request.duration:
        exemption = UnmaskExemption.objects.create(
            column=request.column,
            user=request.requester,
            expires_at=now + request.duration,
            reason=f"Approval request #{request.pk}: {request.purpose}"[:500],
            created_by=caller.user,
        )
        catalog_bump(request.column.table.connection)  # every process sees it at once
        _audit(
            EventKind.UNMASK_GRANTED,
            caller,
            request,
            exemption=exemption.pk,
            column=str(request.column),
            grantee=request.requester.get_username(),
            expires_at=exemption.expires_at.isoformat(),
            approvers=approvers,
        )
    _announce("approved", request)


# ------------------------------------------------------------------ withdrawing and expiring


def request_withdraw_for_run(run: QueryRun) -> None:
    """The requester cancelled the held run (called from governance's cancel hook)."""
    request = (
        ApprovalRequest.objects.select_related("run", "connection")
        .filter(run=run, status=Status.PENDING)
        .first()
    )
    if request is not None and _decide_request(request, Status.WITHDRAWN, timezone.now()):
        caller = Caller.of_run(run)
        _audit(EventKind.APPROVAL_WITHDRAWN, caller, request)
        _announce("withdrawn", request)


def request_withdraw(*, caller: Caller, request: ApprovalRequest) -> bool:
    """The requester takes back an access request (statements are withdrawn by cancelling)."""
    if request.requester_id != caller.user.pk:
        return False
    if request.run is not None:
        return run_cancel(caller=caller, run=request.run)
    with transaction.atomic():
        withdrawn = ApprovalRequest.objects.filter(pk=request.pk, status=Status.PENDING).update(
            status=Status.WITHDRAWN, decided_at=timezone.now()
        )
        if withdrawn:
            request.status = Status.WITHDRAWN
            _audit(EventKind.APPROVAL_WITHDRAWN, caller, request)
            _announce("withdrawn", request)
    return bool(withdrawn)


def _expire(request: ApprovalRequest, now: dt.datetime) -> None:
    _decide_request(request, Status.EXPIRED, now)
    caller = Caller(user=request.requester, channel="system")
    _audit(EventKind.APPROVAL_EXPIRED, caller, request, expires_at=request.expires_at.isoformat())
    if request.run is not None:
        run_close(
            run=request.run,
            status=QueryRun.Status.EXPIRED,
            error="No approver decided before the request expired; it did not run.",
            detail={"request": request.pk},
        )
    _announce("expired", request)


def requests_expire(*, now: dt.datetime | None = None) -> int:
    """Expire unanswered requests past their time (the beat task calls this every minute)."""
    now = now or timezone.now()
    expired = 0
    for pk in ApprovalRequest.objects.filter(
        status=Status.PENDING, expires_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            request = (
                ApprovalRequest.objects.select_for_update(of=("self",))
                .select_related("run", "connection", "requester")
                .filter(pk=pk, status=Status.PENDING)
                .first()
            )
            if request is not None:
                _expire(request, now)
                expired += 1
    return expired

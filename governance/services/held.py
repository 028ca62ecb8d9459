"""Held runs: released to run once approved, or closed as rejected or expired.

Approvals live a layer above; these services are how that layer moves a held run, always
with conditional UPDATEs so that a double click or two approvers at once release it once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.chain import mac_matches
from audit.keys import mac_key, retired_keys
from audit.kinds import EventKind
from audit.models import AuditEvent
from audit.services import MAX_SQL_CHARS
from governance import hooks
from governance.models import QueryRun
from governance.services.agents import agent_refusal
from governance.services.caller import Caller, record
from governance.services.runs import _decide, _dispatch, _masked_names, _to_run

Status = QueryRun.Status


class ReleaseRefused(Exception):
    """The held run cannot run as approved; the message says why, for people."""


def run_recheck(run: QueryRun, *, allowed_only: bool = False) -> list[str]:
    """Decide the held statement again for its requester, now.

    Returns the statements that would run. `allowed_only`: a statement that was allowed when
    submitted and waited long for a worker must still be allowed outright. Raises
    ReleaseRefused when the requester's account
    was disabled, when the statement is now denied (access revoked, a guardrail added) or when
    what would run differs from what was held (a masking rule or an exemption changed): an
    approval covers the exact rewritten SQL the approvers saw, never anything else.
    """
    if not run.user.is_active:
        raise ReleaseRefused("The requester's account is disabled, so the statement did not run.")
    refusal = agent_refusal(run.user, run.connection)
    if refusal:
        raise ReleaseRefused(f"{refusal} The statement did not run.")
    detail, plan = _decide(Caller.of_run(run), run.connection, run.sql, run.mode)
    if detail["decision"] == "deny":
        reasons = "; ".join(r["message"] for r in detail["reasons"] if r["action"] == "deny")
        raise ReleaseRefused(f"The statement is now denied: {reasons}")
    if allowed_only and detail["decision"] != "allow":
        raise ReleaseRefused("The statement now needs approval; it did not run. Submit it again.")
    statements = _to_run(detail["statements"], plan)
    if statements != run.statements or _masked_names(plan) != run.masked:
        raise ReleaseRefused(
            "The masking of this statement changed after it was submitted (a masking rule or "
            "an exemption changed), so the approval no longer covers what would run. "
            "Submit it again."
        )
    return statements


NOT_RELEASED = (
    "This statement needed approval and the audit trail holds no release of it by its "
    "approvers, so it did not run."
)


#: How a run refused before it reached the target ends: failed, and its audit event says it
#: never executed (evidence reports count executions from the trail).
def not_executed() -> dict[str, Any]:
    return {"error_kind": "denied", "_audit_detail": {"error_kind": "denied", "executed": False}}


CHANGED_SINCE_RELEASE = (
    "The statement to run is not the one its approvers released (it was changed in the "
    "database after submission or release), so it did not run."
)


def statements_digest(statements: list[str]) -> str:
    """The same digest approval requests keep of the rewritten statements."""
    return hashlib.sha256(json.dumps(statements).encode("utf-8")).hexdigest()


def _says(event: AuditEvent, sql: str) -> bool:
    """Whether the event's SQL is `sql` (the trail keeps the first MAX_SQL_CHARS of a longer
    one, with its length)."""
    cut = (event.detail or {}).get("sql_truncated_from")
    if cut is not None:
        return cut == len(sql) and event.sql == sql[:MAX_SQL_CHARS]
    return event.sql == sql


def release_problem(run: QueryRun) -> str:
    """Why the held `run` must not execute ('' when it may), from the trail alone.

    Checked by the worker just before a held run executes. It needs a genuine (MAC'd)
    `query.released` event for this run naming the same SQL text, rewritten statements, mode,
    connection and requester, and a genuine `query.submitted` event with the same text,
    connection and requester: a run row flipped to
    `queued` by hand has no release, and one whose SQL or statements were changed in the
    table, before or after the release (by hand, a trigger, or a lock held through the
    approval), no longer matches what was submitted and released. Runs allowed outright are
    not looked up, so reads pay nothing for it."""
    keys = [mac_key(), *retired_keys().values()]
    events = AuditEvent.objects.filter(
        kind__in=[EventKind.QUERY_RELEASED, EventKind.QUERY_SUBMITTED], run_id=run.pk
    )
    genuine = [e for e in events if any(mac_matches(e, key) for key in keys)]
    released = [e for e in genuine if e.kind == EventKind.QUERY_RELEASED]
    if not released:
        return NOT_RELEASED
    wanted = statements_digest(run.statements)
    submitted = [e for e in genuine if e.kind == EventKind.QUERY_SUBMITTED]

    def binds(event: AuditEvent) -> bool:
        """The event names this run's text, target and requester."""
        return (
            _says(event, run.sql)
            and event.connection_id == run.connection_id
            and event.actor_id == run.user_id
        )

    same = all(binds(e) for e in submitted) and bool(submitted)
    if not same or not any(
        binds(e)
        and (e.detail or {}).get("statements_sha256") == wanted
        and (e.detail or {}).get("mode") == run.mode
        for e in released
    ):
        return CHANGED_SINCE_RELEASE
    return ""


def run_release(*, run: QueryRun, approval: dict[str, Any], run_before: dt.datetime | None) -> bool:
    """Queue an approved held run (call inside the approving transaction).

    `approval` (request id and approvers) is kept on the run, so the outcome's audit event
    names the requester *and* the approvers. Returns False if the run was no longer held.
    """
    detail = {**run.decision_detail, "approval": approval}
    released = QueryRun.objects.filter(pk=run.pk, status=Status.PENDING_APPROVAL).update(
        status=Status.QUEUED, decision_detail=detail, run_before=run_before
    )
    if not released:
        return False
    run.status, run.decision_detail, run.run_before = Status.QUEUED, detail, run_before
    # What was approved, bound into the event's MAC: the worker runs nothing else.
    released_detail = {
        "approval": approval,
        "statements_sha256": statements_digest(run.statements),
        "mode": run.mode,
    }
    _record_run(EventKind.QUERY_RELEASED, run, detail=released_detail)
    if run.mode == QueryRun.Mode.INTERACTIVE:
        transaction.on_commit(partial(_dispatch, run))
    return True


def run_close(*, run: QueryRun, status: str, error: str, detail: dict[str, Any]) -> bool:
    """End a held run that will never run (rejected, expired, refused on release)."""
    assert status in (Status.REJECTED, Status.EXPIRED, Status.FAILED)
    closed = QueryRun.objects.filter(pk=run.pk, status=Status.PENDING_APPROVAL).update(
        status=status, error=error, finished_at=timezone.now()
    )
    if closed:
        run.status, run.error = status, error
        _record_run(QueryRun.OUTCOME_EVENTS[status], run, error=error, detail=detail)
        transaction.on_commit(partial(hooks.run_finished, run))
    return bool(closed)


def _record_run(kind: EventKind, run: QueryRun, **fields: Any) -> None:
    """Audit `kind` about a held run, naming its requester, connection, SQL and decision."""
    record(
        kind,
        Caller.of_run(run),
        run.connection,
        run_id=run.pk,
        sql=run.sql,
        decision=run.decision,
        risk=run.risk,
        **fields,
    )

"""What the token API and the MCP server share: the caller's connections, a run as clients
see it, who may read a run, the schema with what is masked. Errors are `ApiError`s with the
HTTP status a client should get (the MCP tools turn them into tool errors)."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

from django.urls import reverse
from ninja.errors import HttpError

from api.budgets import long_poll, run_slot
from approvals.policies import may_review
from governance.models import Agent, Connection, QueryRun
from governance.roles import ADMIN, ANALYST, AUDITOR, has_role
from governance.services.access import (
    UnknownConnection,
    capabilities_for,
    connection_for,
    connections_for,
)
from governance.services.caller import Caller
from governance.services.catalog import table_key
from governance.services.masking import (
    ENDED_EXEMPTION,
    active_exemptions,
    exemption_ended,
    masking_policy,
)
from governance.services.runs import InvalidSQL, run_submit, sql_reject

PAGE = 1000
MAX_PAGE = 5000


class ApiError(HttpError):
    """A refusal with the status a client gets and a message for people."""


def connection_of(bearer: Any, name: str) -> Connection:
    """A connection the caller may use: granted, and in its agent's allowed list if any."""
    try:
        connection = connection_for(user=bearer.user, name=name)
    except UnknownConnection:
        raise ApiError(404, f"No connection {name!r} that you may use.") from None
    agent: Agent | None = bearer.agent
    if agent is not None and not agent.allows(connection):
        raise ApiError(404, f"No connection {name!r} that you may use.")
    return connection


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def cursor_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("o"):
            raise ValueError
        value = int(text[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "The cursor is not one this API gave.") from None
    if value < 0:
        raise ApiError(400, "The cursor is not one this API gave.")
    return value


def run_body(
    run: QueryRun,
    *,
    offset: int = 0,
    limit: int = PAGE,
    rows_for: Any = None,
    allowed: Callable[[int], int] | None = None,
) -> dict[str, Any]:
    """A run as clients see it. Rows only for their submitter (`rows_for`, the reader, is the
    run's own account or None): a result can hold values unmasked by the submitter's
    exemption, which no one else may see, as in the web editor. `allowed` says how many of
    a page's rows may go out (the caller's rows budget, reserved): the page is cut there and
    `next_cursor` goes on from the first row not sent."""
    detail = run.decision_detail or {}
    approval = getattr(run, "approval", None) if run.status == "pending_approval" else None
    withheld = rows_for is not None and getattr(rows_for, "pk", None) != run.user_id
    ended = not withheld and bool(run.rows) and exemption_ended(run)
    withheld = withheld or ended
    rows = [] if withheld else (run.rows or [])
    page = rows[offset : offset + limit]
    if allowed is not None and page:
        page = page[: allowed(len(page))]
    more = offset + len(page) < len(rows)
    retry = None
    if run.status in (QueryRun.Status.QUEUED, QueryRun.Status.RUNNING):
        retry = 1
    elif run.status == QueryRun.Status.PENDING_APPROVAL:
        retry = 30
    return {
        "run": run.pk,
        "status": run.status,
        "decision": detail.get("decision", run.decision),
        "risk": detail.get("risk", run.risk),
        "reasons": [
            {"rule": r.get("rule", ""), "message": r.get("message", "")}
            for r in detail.get("reasons", [])
        ],
        "columns": [c["name"] for c in run.columns or []],
        "column_types": [c.get("type", "") for c in run.columns or []],
        "rows": page,
        "masked": list(run.masked or []),
        "row_count": run.row_count,
        "truncated": bool(run.truncated),
        "error": run.error or None,
        "approval": (
            {"id": approval.pk, "url": reverse("approval_detail", args=[approval.pk])}
            if approval is not None
            else None
        ),
        "status_url": reverse("api-v1:query_get", args=[run.pk]),
        "next_cursor": _cursor(offset + len(page)) if more else None,
        "callback": None,
        "rows_withheld": withheld,
        "rows_withheld_reason": (
            ENDED_EXEMPTION
            if ended
            else "Rows go to the run's submitter only."
            if withheld
            else None
        ),
        "retry_after": retry,
    }


def run_wait(run: QueryRun, seconds: float) -> QueryRun:
    if run.status not in (QueryRun.Status.QUEUED, QueryRun.Status.RUNNING):
        return run
    deadline = time.monotonic() + seconds
    delay = 0.01
    run.refresh_from_db()
    while run.status in (QueryRun.Status.QUEUED, QueryRun.Status.RUNNING):
        if time.monotonic() >= deadline:
            break
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
        run.refresh_from_db()
    return run


EDITOR_ROLES = (ANALYST, ADMIN)


def submit(
    bearer: Any,
    caller: Caller,
    *,
    connection: str,
    sql: str,
    purpose: str = "",
    wait_seconds: float = 0.0,
    submitted: Callable[[QueryRun], object] | None = None,
) -> QueryRun:
    """Submit SQL for a token's caller (API and MCP alike): an editor role, a connection it
    may use, a free runs-at-once slot, then the one path (`run_submit`). Waits up to
    `wait_seconds` for the outcome. `submitted` hears of the run as soon as it exists."""
    if not has_role(bearer.user, *EDITOR_ROLES):
        raise ApiError(403, "Your account has no analyst role: it cannot submit SQL.")
    target = connection_of(bearer, connection)
    lifetime = target.statement_timeout_ms / 1000
    with run_slot(bearer, caller, lifetime) as slot:
        try:
            run = run_submit(caller=caller, connection=target, sql=sql, purpose=purpose)
        except InvalidSQL as exc:
            sql_reject(caller=caller, connection=target, sql=sql, error=str(exc))
            raise ApiError(400, str(exc)) from None
        slot.bind(run)
    if submitted is not None:
        submitted(run)
    run = run_wait_capped(run, wait_seconds)
    if run.status not in (QueryRun.Status.QUEUED, QueryRun.Status.RUNNING):
        slot.release()
    return run


def run_wait_capped(run: QueryRun, seconds: float) -> QueryRun:
    """`run_wait`, for as long as a long-poll place is free (see `budgets.long_poll`)."""
    if run.status not in (QueryRun.Status.QUEUED, QueryRun.Status.RUNNING):
        return run
    with long_poll(seconds) as allowed:
        return run_wait(run, allowed)


def may_read(user: Any, run: QueryRun) -> bool:
    """The submitter, the owner of the agent that submitted it, an approver of its request,
    an auditor. Anyone else is told it does not exist."""
    if run.user_id == user.pk:
        return True
    if Agent.objects.filter(user_id=run.user_id, owner=user).exists():
        return True
    if has_role(user, AUDITOR):
        return True
    request = getattr(run, "approval", None)
    if request is None or Agent.objects.filter(user_id=user.pk).exists():
        return False  # an agent is never an approver, whatever groups it was given
    return may_review(user, request.approver_groups)


def requestable_connection(bearer: Any, name: str) -> Connection:
    """A connection one may ask access to: any (as on the web form), but for an agent only
    those in its allowed list, when it has one."""
    connection = Connection.objects.filter(name=name).first() if "\x00" not in name else None
    agent: Agent | None = bearer.agent
    if connection is not None and agent is not None and not agent.allows(connection):
        connection = None
    if connection is None:
        raise ApiError(404, f"No connection {name!r} that you may ask access to.")
    return connection


def masked_column(connection: Connection, table: str, column: str) -> Any:
    """A sensitive catalog column of `connection`, named as the schema endpoint names it."""
    if not table or not column:
        raise ApiError(400, "Name the table and the column to unmask.")
    for candidate in connection.tables.prefetch_related("columns"):
        if table_key(connection, candidate.schema, candidate.name) != table.lower():
            continue
        for found in candidate.columns.all():
            if found.name.lower() == column.lower() and found.semantic_type:
                return found
    raise ApiError(404, f"No masked column {table}.{column} on {connection.name}.")


def readable_run(bearer: Any, run_id: int) -> QueryRun:
    run = QueryRun.objects.select_related("approval").filter(pk=run_id).first()
    if run is None or not may_read(bearer.user, run):
        raise ApiError(404, f"No run {run_id} that you may read.")
    return run


def connections_of(bearer: Any) -> list[dict[str, Any]]:
    connections = connections_for(bearer.user)
    if bearer.agent is not None:
        connections = [c for c in connections if bearer.agent.allows(c)]
    return [
        {
            "name": c.name,
            "engine": c.engine,
            "environment": c.environment,
            "capabilities": sorted(capabilities_for(user=bearer.user, connection=c)),
        }
        for c in connections
    ]


def schema_of(bearer: Any, name: str) -> dict[str, Any]:
    connection = connection_of(bearer, name)
    policy = masking_policy(
        connection=connection, exemptions=active_exemptions(user=bearer.user, connection=connection)
    )
    rules = {(r.table, r.column): r for r in policy.rules}
    tables = []
    for table in connection.tables.prefetch_related("columns").order_by("schema", "name"):
        key = table_key(connection, table.schema, table.name)
        columns = []
        for column in table.columns.all():
            rule = rules.get((key, column.name.lower()))
            columns.append(
                {
                    "name": column.name,
                    "type": column.type,
                    "masked": rule is not None,
                    "masking": str(rule.strategy.value) if rule is not None else None,
                    "semantic_type": column.semantic_type or None,
                }
            )
        tables.append({"name": key, "kind": table.kind, "columns": columns})
    return {"connection": connection.name, "engine": connection.engine, "tables": tables}

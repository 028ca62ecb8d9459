"""Warden as an MCP server (the official `mcp` SDK): the token API's calls as tools.

Two transports, one set of tools: `python manage.py mcp` over stdio, authenticated by the
`WARDEN_TOKEN` environment variable, and Streamable HTTP at `/mcp` with a bearer token (each
POST answered with JSON, no session kept: see `api/mcp_http.py`). Every tool call checks the
token again (a revoked token stops a running stdio server at its next call), counts against
the caller's budgets, and goes the one governed path as the API, on channel `mcp`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from django.db import connection as db
from django.urls import reverse
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent

from api.auth import provenance_of, token_refused
from api.budgets import BudgetExceeded, BudgetsUnavailable, Reservation, check_request
from api.core import (
    ApiError,
    connection_of,
    connections_of,
    cursor_offset,
    masked_column,
    readable_run,
    requestable_connection,
    run_body,
    schema_of,
    submit,
)
from api.v1 import QueryIn  # the same validation as the API's
from approvals.services import InvalidRequest, access_request, unmask_request
from governance.models import QueryRun
from governance.roles import ROLES, has_role
from governance.services.agents import Bearer, TokenRefused, token_bearer
from governance.services.caller import Caller
from governance.services.runs import InvalidSQL


@dataclass(frozen=True)
class Presented:
    """The token a client presented, and from where."""

    token: str
    source_ip: str | None = None


#: A run as a tool returns it: built by `_answer`, advertised as the object it carries.
Answer = Annotated[CallToolResult, dict[str, Any]]

presented: ContextVar[Presented | None] = ContextVar("warden_mcp_token", default=None)

INSTRUCTIONS = """\
Warden governs SQL against production databases for you, under the rules people follow:
every statement is parsed, classified and checked by guardrails. Sensitive columns (names,
e-mails, phone numbers, national ids, card numbers, secrets, ...) come back masked inside the
database: you see a redaction, a partial value or a stable pseudonym, never the raw value;
`describe_schema` says which columns are masked and how. Writes, schema changes and other risky
statements may wait for a human approver (not your owner): `run_query` then returns
status `pending_approval` with the request's id, link and reasons; ask `get_query` later.
Denied statements come back with the reasons; do not try to get around them. Say why you run a
statement in `purpose`: approvers and auditors read it. Everything you do is audited."""

server = MCPServer("Warden", instructions=INSTRUCTIONS, version="1")


@contextmanager
def _call(*, submitting: bool = False, returns_rows: bool = False) -> Iterator[Bearer]:
    """The caller of this tool call, its budgets counted; errors become tool errors."""
    token = presented.get()
    try:
        if token is None:
            raise ToolError("Not authenticated: set WARDEN_TOKEN (stdio) or send a bearer token.")
        try:
            bearer = token_bearer(token.token)
        except TokenRefused as exc:
            token_refused(token.token, str(exc), token.source_ip, channel="mcp")
            raise ToolError(str(exc)) from None
        try:
            check_request(bearer, _caller(bearer), submitting=submitting, returns_rows=returns_rows)
            yield bearer
        except (BudgetExceeded, BudgetsUnavailable) as exc:
            raise ToolError(str(exc)) from None
        except ApiError as exc:
            raise ToolError(str(exc)) from None
        except (InvalidSQL, InvalidRequest) as exc:
            raise ToolError(str(exc)) from None
    finally:
        db.close()  # tools run in worker threads: leave no connection behind


def _caller(bearer: Bearer, metadata: dict[str, Any] | None = None) -> Caller:
    token = presented.get()
    return Caller(
        user=bearer.user,
        channel="mcp",
        source_ip=token.source_ip if token else None,
        provenance=provenance_of(bearer, metadata),
    )


def _answer(bearer: Bearer, run: QueryRun, **page: Any) -> CallToolResult:
    """The tool's answer as it goes out: the same JSON as text (for models that read text)
    and as structured content. Both travel, so both are taken from the bytes budget, before
    anything is sent: the budget counts what the client receives, not a model of it."""
    reservation = Reservation(bearer, _caller(bearer))
    body = run_body(run, allowed=reservation.rows_allowed, **page)
    text = json.dumps(body, default=str, separators=(",", ":"))
    reservation.send(len(json.dumps(text)) + len(text))  # the text goes as a JSON string
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=json.loads(text)
    )


@server.tool(
    description=(
        "The database connections you may use, with your capabilities on each (read, write, "
        "ddl, admin, export) and the environment (production, staging, development)."
    )
)
def list_connections() -> list[dict[str, Any]]:
    with _call() as bearer:
        return connections_of(bearer)


@server.tool(
    description=(
        "Tables and columns of a connection, with their types, and which columns are masked "
        "for you and how (redact, partial, hash, pseudonym). Write SQL against these names. "
        "A masked column always comes back masked, in every query."
    )
)
def describe_schema(connection: str) -> dict[str, Any]:
    if len(connection) > 64:
        raise ToolError("A connection name is at most 64 characters.")
    with _call() as bearer:
        return schema_of(bearer, connection)


MetadataValue = str | int | float | bool | None


@server.tool(
    description=(
        "Run SQL through Warden. Returns the masked result (status `succeeded`), or status "
        "`pending_approval` with the approval request's id, link and the reasons it waits for "
        "a human approver, or `denied` with the reasons. `purpose` says why (approvers read "
        "it); `metadata` may name your model, run or trace id and tool."
    )
)
def run_query(
    connection: str,
    sql: str,
    purpose: str = "",
    wait_seconds: float = 10.0,
    metadata: dict[str, MetadataValue] | None = None,
) -> Answer:
    try:
        body = QueryIn(
            connection=connection,
            sql=sql,
            purpose=purpose,
            wait_seconds=wait_seconds,
            metadata=metadata or {},
            callback_url=None,
        )
    except ValueError as exc:
        raise ToolError(f"Invalid arguments: {exc}") from None
    with _call(submitting=True, returns_rows=True) as bearer:
        run = submit(
            bearer,
            _caller(bearer, body.metadata or None),
            connection=body.connection,
            sql=body.sql,
            purpose=body.purpose,
            wait_seconds=body.wait_seconds,
        )
        try:
            return _answer(bearer, run)
        except (BudgetExceeded, BudgetsUnavailable) as exc:  # still says where the run is
            exc.run = run.pk
            raise


@server.tool(
    description=(
        "A run's status and result (`run` is the id run_query returned). Rows come "
        "`limit` at a time; pass `next_cursor` back as `cursor` for more. Cheap: nothing runs."
    )
)
def get_query(run: int, cursor: str | None = None, limit: int = 1000) -> Answer:
    with _call(returns_rows=True) as bearer:
        found: QueryRun = readable_run(bearer, run)
        if not 1 <= limit <= 5000:
            raise ToolError("limit must be between 1 and 5000.")
        return _answer(
            bearer,
            found,
            offset=cursor_offset(cursor),
            limit=limit,
            rows_for=bearer.user,
        )


@server.tool(
    description=(
        "Ask a human approver for access, for a time: `kind` `access` (capabilities on a "
        "connection: read, write, ddl, admin, export) or `unmask` (one masked column, by "
        "table and column, raw). Returns the request's id and link; you are told nothing "
        "more until it is decided (your owner cannot approve it)."
    )
)
def request_access(
    kind: Literal["access", "unmask"],
    connection: str,
    hours: float,
    reason: str,
    capabilities: list[str] | None = None,
    table: str = "",
    column: str = "",
) -> dict[str, Any]:
    if not reason or len(reason) > 500 or not 0.1 <= hours <= 168:
        raise ToolError("Give a reason (at most 500 characters) and 0.1 to 168 hours.")
    if len(connection) > 64 or len(table) > 300 or len(column) > 255:
        raise ToolError("Names are at most 64 (connection), 300 (table), 255 (column) characters.")
    with _call() as bearer:
        if not has_role(bearer.user, *ROLES):
            raise ToolError("Your account has no role: it cannot ask for access.")
        caller = _caller(bearer)
        if kind == "access":
            created = access_request(
                caller=caller,
                connection=requestable_connection(bearer, connection),
                capabilities=list(capabilities or []),
                hours=hours,
                reason=reason,
            )
        else:
            target = connection_of(bearer, connection)
            created = unmask_request(
                caller=caller,
                column=masked_column(target, table, column),
                hours=hours,
                reason=reason,
            )
        return {
            "id": created.pk,
            "kind": created.kind,
            "status": created.status,
            "risk": created.risk,
            "url": reverse("approval_detail", args=[created.pk]),
            "expires_at": created.expires_at.isoformat(),
        }


def tools() -> list[str]:
    return ["list_connections", "describe_schema", "run_query", "get_query", "request_access"]


def lowlevel() -> Any:
    """The SDK's protocol server behind `server` (for the HTTP bridge, which runs it per
    request without a session)."""
    return server._lowlevel_server

"""`/api/v1/`: submit SQL and read results, list connections and their schema, with a token.

Every statement goes the same path as the web editor's (`run_submit`: parsed, decided,
guardrails, approvals, masked inside the database, audited). The caller is the token's
account: a person's personal token, or an agent's (which holds only its own grants).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

from api.auth import TokenAuth, caller_of
from api.models import IdempotencyKey
from api.problems import problem
from approvals.policies import may_review
from governance.models import Agent, Connection, QueryRun
from governance.roles import ADMIN, ANALYST, AUDITOR, has_role
from governance.services.access import (
    UnknownConnection,
    capabilities_for,
    connection_for,
    connections_for,
)
from governance.services.agents import TokenRefused
from governance.services.catalog import table_key
from governance.services.masking import active_exemptions, masking_policy
from governance.services.runs import InvalidSQL, run_submit, sql_reject

api = NinjaAPI(
    title="Warden API",
    version="1",
    description=(
        "Governed SQL for agents and people. Every statement is parsed, classified, checked "
        "by guardrails, held for approval when risky, and run with sensitive columns masked "
        "inside the database; every call is in the audit trail. Authenticate with "
        "`Authorization: Bearer wdn_…` (a personal or agent token). Errors are "
        "`application/problem+json`."
    ),
    auth=TokenAuth(),
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)

#: Longest a POST waits for a worker before answering 202 with where to look.
MAX_WAIT_SECONDS = 30.0
PAGE = 1000
MAX_PAGE = 5000
EDITOR_ROLES = (ANALYST, ADMIN)
FINISHED = {
    QueryRun.Status.SUCCEEDED,
    QueryRun.Status.FAILED,
    QueryRun.Status.CANCELLED,
    QueryRun.Status.EXPIRED,
}


# ---------------------------------------------------------------- errors


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problem(request, 401, "Send a Warden token: Authorization: Bearer wdn_…")


@api.exception_handler(TokenRefused)
def _refused(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problem(request, 401, str(exc))


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "message": e.get("msg", "")}
        for e in exc.errors
    ]
    return problem(request, 422, "The request does not match the schema.", errors=errors)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problem(request, exc.status_code, str(exc))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logging.getLogger("warden.api").exception("API error on %s", request.path)
    return problem(request, 500, "Warden failed to handle the request; it is logged.")


# ---------------------------------------------------------------- schemas


class QueryIn(Schema):
    connection: str = Field(..., min_length=1, max_length=64, description="Connection name.")
    sql: str = Field(..., min_length=1, max_length=1_000_000, description="One or more statements.")
    purpose: str = Field("", max_length=500, description="Why: approvers and auditors read it.")
    wait_seconds: float = Field(
        10.0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="How long to wait for the result before answering 202 (at most 30).",
    )


class Reason(Schema):
    rule: str
    message: str


class ApprovalRef(Schema):
    id: int
    url: str


class QueryOut(Schema):
    run: int
    status: str = Field(..., description="succeeded, failed, pending_approval, queued, …")
    decision: str
    risk: str
    reasons: list[Reason]
    columns: list[str]
    column_types: list[str]
    rows: list[list[Any]]
    masked: list[str] = Field(..., description="Columns masked inside the database.")
    row_count: int | None
    truncated: bool = Field(..., description="The result stopped at the row cap.")
    error: str | None
    approval: ApprovalRef | None
    status_url: str
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next rows.")
    retry_after: int | None = Field(None, description="Seconds before asking again.")


class ConnectionOut(Schema):
    name: str
    engine: str
    environment: str
    capabilities: list[str]


class ColumnOut(Schema):
    name: str
    type: str
    masked: bool
    masking: str | None = Field(None, description="How it is masked for you, when it is.")
    semantic_type: str | None


class TableOut(Schema):
    name: str
    kind: str
    columns: list[ColumnOut]


class SchemaOut(Schema):
    connection: str
    engine: str
    tables: list[TableOut]


# ---------------------------------------------------------------- helpers


def _connection(request: HttpRequest, name: str) -> Connection:
    """A connection the caller may use: granted, and in its agent's allowed list if any."""
    bearer = request.auth  # type: ignore[attr-defined]
    try:
        connection = connection_for(user=bearer.user, name=name)
    except UnknownConnection:
        raise HttpError(404, f"No connection {name!r} that you may use.") from None
    agent: Agent | None = bearer.agent
    if agent is not None:
        allowed = set(agent.allowed_connections.values_list("pk", flat=True))
        if allowed and connection.pk not in allowed:
            raise HttpError(404, f"No connection {name!r} that you may use.")
    return connection


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("o"):
            raise ValueError
        value = int(text[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise HttpError(400, "The cursor is not one this API gave.") from None
    if value < 0:
        raise HttpError(400, "The cursor is not one this API gave.")
    return value


def _body(run: QueryRun, *, offset: int = 0, limit: int = PAGE) -> dict[str, Any]:
    detail = run.decision_detail or {}
    approval = getattr(run, "approval", None) if run.status == "pending_approval" else None
    rows = run.rows or []
    page = rows[offset : offset + limit]
    more = offset + limit < len(rows)
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
        "next_cursor": _cursor(offset + limit) if more else None,
        "retry_after": retry,
    }


def _respond(request: HttpRequest, run: QueryRun) -> HttpResponse:
    body = _body(run)
    if run.status == QueryRun.Status.DENIED:
        return problem(
            request,
            403,
            "The statement is denied: " + "; ".join(r["message"] for r in body["reasons"]),
            run=run.pk,
            reasons=body["reasons"],
            decision=body["decision"],
            risk=body["risk"],
        )
    status = 200 if run.status in FINISHED or run.status == QueryRun.Status.REJECTED else 202
    response = HttpResponse(
        json.dumps(body, default=str), status=status, content_type="application/json"
    )
    if body["retry_after"]:
        response["Retry-After"] = str(body["retry_after"])
    if status == 202:
        response["Location"] = body["status_url"]
    return response


def _wait(run: QueryRun, seconds: float) -> QueryRun:
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


def _may_read(user: Any, run: QueryRun) -> bool:
    """The submitter, the owner of the agent that submitted it, an approver of its request,
    an auditor. Anyone else is told it does not exist."""
    if run.user_id == user.pk:
        return True
    if Agent.objects.filter(user_id=run.user_id, owner=user).exists():
        return True
    if has_role(user, AUDITOR):
        return True
    request = getattr(run, "approval", None)
    return request is not None and may_review(user, request.approver_groups)


# ---------------------------------------------------------------- endpoints


@api.post(
    "/queries",
    url_name="query_create",
    response={200: QueryOut, 202: QueryOut},
    summary="Submit SQL",
    description=(
        "200 with the (masked) result when it ran; 202 when it waits for approval (the "
        "approval's id and link, the reasons) or for a worker (ask `status_url` again after "
        "`Retry-After`); 403 with the reasons when denied; 404 for a connection you may not "
        "use. Send an `Idempotency-Key` header so that a retried POST never submits twice."
    ),
)
def query_create(request: HttpRequest, body: QueryIn) -> HttpResponse:
    caller = caller_of(request)
    if not has_role(caller.user, *EDITOR_ROLES):
        raise HttpError(403, "Your account has no analyst role: it cannot submit SQL.")
    key = request.headers.get("Idempotency-Key", "")
    if key:
        replay = _idempotent(request, caller.user, key, body)
        if replay is not None:
            return replay
    connection = _connection(request, body.connection)
    try:
        run = run_submit(caller=caller, connection=connection, sql=body.sql, purpose=body.purpose)
    except InvalidSQL as exc:
        sql_reject(caller=caller, connection=connection, sql=body.sql, error=str(exc))
        if key:
            _forget(caller.user, key)
        raise HttpError(400, str(exc)) from None
    if key:
        IdempotencyKey.objects.filter(user=caller.user, key=key).update(run=run)
    return _respond(request, _wait(run, body.wait_seconds))


def _digest(body: QueryIn) -> str:
    text = json.dumps(body.dict(exclude={"wait_seconds"}), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _idempotent(request: HttpRequest, user: Any, key: str, body: QueryIn) -> HttpResponse | None:
    """None: go on and submit (the key is now taken). A response: what the first request
    with this key got, as it stands now."""
    if len(key) > 200 or not key.isprintable():
        raise HttpError(400, "The Idempotency-Key must be printable and at most 200 characters.")
    digest = _digest(body)
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(user=user, key=key, digest=digest)
        return None
    except IntegrityError:
        pass
    first = IdempotencyKey.objects.select_related("run").get(user=user, key=key)
    if first.digest != digest:
        raise HttpError(422, "This Idempotency-Key was used for a different request.")
    if first.run is None:
        raise HttpError(409, "A request with this Idempotency-Key is still being submitted.")
    return _respond(request, _wait(first.run, body.wait_seconds))


def _forget(user: Any, key: str) -> None:
    IdempotencyKey.objects.filter(user=user, key=key, run__isnull=True).delete()


@api.get(
    "/queries/{run_id}",
    url_name="query_get",
    response={200: QueryOut, 202: QueryOut},
    summary="A run's status and result",
    description=(
        "Cheap to call: no statement runs. Rows come a page at a time (`limit`, at most "
        "5000); pass `next_cursor` as `cursor` for the next. Only the submitter, the owner "
        "of the agent that submitted it, its approvers and auditors may read a run; anyone "
        "else gets 404."
    ),
)
def query_get(
    request: HttpRequest, run_id: int, cursor: str | None = None, limit: int = PAGE
) -> HttpResponse:
    user = caller_of(request).user
    run = QueryRun.objects.select_related("approval").filter(pk=run_id).first()
    if run is None or not _may_read(user, run):
        raise HttpError(404, f"No run {run_id} that you may read.")
    if not 1 <= limit <= MAX_PAGE:
        raise HttpError(400, f"limit must be between 1 and {MAX_PAGE}.")
    body = _body(run, offset=_offset(cursor), limit=limit)
    if run.status == QueryRun.Status.DENIED:
        return _respond(request, run)
    status = 202 if body["retry_after"] else 200
    response = HttpResponse(
        json.dumps(body, default=str), status=status, content_type="application/json"
    )
    if body["retry_after"]:
        response["Retry-After"] = str(body["retry_after"])
    return response


@api.get(
    "/connections",
    url_name="connection_list",
    response=list[ConnectionOut],
    summary="Connections you may use",
)
def connection_list(request: HttpRequest) -> list[dict[str, Any]]:
    bearer = request.auth  # type: ignore[attr-defined]
    connections = connections_for(bearer.user)
    if bearer.agent is not None:
        allowed = set(bearer.agent.allowed_connections.values_list("pk", flat=True))
        if allowed:
            connections = [c for c in connections if c.pk in allowed]
    return [
        {
            "name": c.name,
            "engine": c.engine,
            "environment": c.environment,
            "capabilities": sorted(capabilities_for(user=bearer.user, connection=c)),
        }
        for c in connections
    ]


@api.get(
    "/connections/{name}/schema",
    url_name="connection_schema",
    response=SchemaOut,
    summary="Tables, columns, types, and which columns are masked for you",
    description=(
        "From Warden's catalog of the connection (refreshed by discovery). A masked column "
        "comes back masked inside the database (redacted, partial, hashed or pseudonymised); "
        "an unmask exemption you hold shows it as not masked."
    ),
)
def connection_schema(request: HttpRequest, name: str) -> dict[str, Any]:
    connection = _connection(request, name)
    user = request.auth.user  # type: ignore[attr-defined]
    policy = masking_policy(
        connection=connection, exemptions=active_exemptions(user=user, connection=connection)
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

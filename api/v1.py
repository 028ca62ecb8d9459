"""`/api/v1/`: submit SQL and read results, list connections and their schema, with a token.

Every statement goes the same path as the web editor's (`run_submit`: parsed, decided,
guardrails, approvals, masked inside the database, audited). The caller is the token's
account: a person's personal token, or an agent's (which holds only its own grants).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import replace
from typing import Any, Literal

from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import ConfigDict, field_validator

from api.auth import TokenAuth, caller_of
from api.budgets import BudgetExceeded, BudgetsUnavailable, Reservation, check_request
from api.core import (
    MAX_PAGE,
    PAGE,
    connection_of,
    connections_of,
    cursor_offset,
    masked_column,
    readable_run,
    requestable_connection,
    run_body,
    run_wait_capped,
    schema_of,
    submit,
)
from api.models import IdempotencyKey
from api.parser import StrictParser, UnstorableInput
from api.problems import documented, problem
from approvals.callbacks import CallbackRefused, callback_register, callback_url_check
from approvals.services import InvalidRequest, access_request, unmask_request
from governance.models import QueryRun
from governance.roles import ROLES, has_role
from governance.services.agents import TokenRefused

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
    parser=StrictParser(),
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)

#: Longest a POST waits for a worker before answering 202 with where to look.
MAX_WAIT_SECONDS = 30.0
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


@api.exception_handler(BudgetExceeded)
def _over_budget(request: HttpRequest, exc: BudgetExceeded) -> HttpResponse:
    return problem(
        request,
        429,
        str(exc),
        headers={"Retry-After": str(exc.retry_after)},
        budget=exc.which,
        limit=exc.limit,
        **_ran(exc.run),
    )


@api.exception_handler(BudgetsUnavailable)
def _no_counters(request: HttpRequest, exc: BudgetsUnavailable) -> HttpResponse:
    return problem(request, 503, str(exc), headers={"Retry-After": "5"}, **_ran(exc.run))


def _ran(run: int | None) -> dict[str, Any]:
    """Where a run is, for a refusal of an answer whose statement ran."""
    if run is None:
        return {}
    return {"run": run, "status_url": reverse("api-v1:query_get", args=[run])}


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problem(request, 413, "The request body is larger than this server accepts.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, UnstorableInput):  # ninja's "Cannot parse": say what
        return problem(request, 400, f"Cannot parse the request body: {exc.__cause__}")
    return problem(request, exc.status_code, str(exc))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logging.getLogger("warden.api").exception("API error on %s", request.path)
    return problem(request, 500, "Warden failed to handle the request; it is logged.")


# ---------------------------------------------------------------- schemas


MetadataValue = str | int | float | bool | None


class QueryIn(Schema):
    # JSON types as the schema says: `false` is not a number of seconds, 1 is not text.
    model_config = ConfigDict(strict=True)

    connection: str = Field(
        ..., min_length=1, max_length=64, description="Connection name.", examples=["demo"]
    )
    sql: str = Field(
        ...,
        min_length=1,
        max_length=1_000_000,
        description="One or more statements.",
        examples=["SELECT id, email, country FROM customers WHERE id = 42"],
    )
    purpose: str = Field("", max_length=500, description="Why: approvers and auditors read it.")
    wait_seconds: float = Field(
        10.0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="How long to wait for the result before answering 202 (at most 30).",
    )
    callback_url: str | None = Field(
        None,
        max_length=2000,
        description=(
            "Where to POST the outcome when the run ends (a held statement decided and run, a "
            "long one done), signed in the Standard Webhooks format with the `callback.secret` "
            "this answer returns once."
        ),
    )
    metadata: dict[str, MetadataValue] = Field(
        default_factory=dict,
        description=(
            "What the agent says of itself, kept with the run and shown to approvers and "
            "auditors: e.g. model, agent_run, trace_id, tool. At most 20 keys of 64 "
            "characters; text values of at most 500."
        ),
    )

    @field_validator("metadata")
    @classmethod
    def _metadata_is_small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 20:
            raise ValueError("at most 20 keys")
        for key, item in value.items():
            if not key or len(key) > 64 or not key.isprintable():
                raise ValueError("keys are printable text of 1 to 64 characters")
            if isinstance(item, str) and (len(item) > 500 or "\x00" in item):
                raise ValueError("text values are at most 500 characters, without NUL")
            if (isinstance(item, float) and item != item) or item in (float("inf"), float("-inf")):
                raise ValueError("numbers must be finite")
        return value


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
    callback: dict[str, str] | None = Field(
        None, description="`secret`: what the callback is signed with; shown once."
    )
    retry_after: int | None = Field(None, description="Seconds before asking again.")
    rows_withheld: bool = Field(
        False,
        description="The rows are not shown: to the run's submitter only (its owner, "
        "approvers and auditors see its status and counts), and to no one once an unmask "
        "exemption the submitter held when it ran has ended.",
    )
    rows_withheld_reason: str | None = Field(None, description="Why the rows are withheld.")


class AccessRequestIn(Schema):
    model_config = ConfigDict(strict=True)

    kind: Literal["access", "unmask"] = Field(
        ..., description="`access`: capabilities on a connection; `unmask`: one column raw."
    )
    connection: str = Field(..., min_length=1, max_length=64)
    capabilities: list[str] = Field(
        default_factory=list, max_length=5, description="For `access`: read, write, ddl, …"
    )
    table: str = Field("", max_length=300, description="For `unmask`: as the schema names it.")
    column: str = Field("", max_length=255, description="For `unmask`.")
    hours: float = Field(..., ge=0.1, le=168, description="How long, once approved.")
    reason: str = Field(..., min_length=1, max_length=500, description="Approvers read it.")


class AccessRequestOut(Schema):
    id: int
    kind: str
    status: str
    risk: str
    url: str
    expires_at: str = Field(..., description="When it lapses unanswered.")


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


def _counted(reservation: Reservation, response: HttpResponse) -> HttpResponse:
    """The answer, once its bytes are taken from the budget (a 429 instead when they do not
    fit: its reserved rows go back)."""
    reservation.send(len(response.content))
    return response


def _respond(
    request: HttpRequest, run: QueryRun, *, callback_secret: str | None = None
) -> HttpResponse:
    try:
        return _answer(request, run, callback_secret)
    except (BudgetExceeded, BudgetsUnavailable) as exc:  # still says where the run is
        exc.run = run.pk
        raise


def _answer(request: HttpRequest, run: QueryRun, callback_secret: str | None) -> HttpResponse:
    reservation = Reservation(request.auth, caller_of(request))  # type: ignore[attr-defined]
    body = run_body(run, allowed=reservation.rows_allowed)
    if callback_secret:
        body["callback"] = {"secret": callback_secret}
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
    return _counted(reservation, response)


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
    openapi_extra=documented(400, 403, 404, 409, 413, 422),
)
def query_create(request: HttpRequest, body: QueryIn) -> HttpResponse:
    caller = caller_of(request, body.metadata or None)
    if body.callback_url:  # marks the run, so its end looks for the callback
        caller = replace(caller, provenance={**(caller.provenance or {}), "callback": True})
        try:
            callback_url_check(body.callback_url)
        except CallbackRefused as exc:
            raise HttpError(422, str(exc)) from None
    check_request(request.auth, caller, submitting=True, returns_rows=True)  # type: ignore[attr-defined]
    key = request.headers.get("Idempotency-Key", "")
    if key:
        replay = _idempotent(request, caller.user, key, body)
        if replay is not None:
            return replay
        # The run carries its key from its first write: a submission whose process died
        # before the key was bound is still found by a retry (never run twice).
        keyed_as = {"idempotency_key": key, "idempotency_digest": _digest(body)}
        caller = replace(caller, provenance={**(caller.provenance or {}), **keyed_as})

    def keyed(run: QueryRun) -> None:
        if key:
            IdempotencyKey.objects.filter(user=caller.user, key=key).update(run=run)

    try:
        run = submit(
            request.auth,  # type: ignore[attr-defined]
            caller,
            connection=body.connection,
            sql=body.sql,
            purpose=body.purpose,
            wait_seconds=body.wait_seconds,
            submitted=keyed,
        )
    except BaseException:
        if key:  # nothing was submitted: a retry with this key may try again
            _forget(caller.user, key)
        raise
    # A callback only for an answer that is not the outcome yet (a 202).
    waiting = run.status not in QueryRun.FINISHED
    secret = callback_register(run, body.callback_url) if body.callback_url and waiting else None
    return _respond(request, run, callback_secret=secret)


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
        run = _run_keyed(user, key, digest)
        if run is not None:  # submitted, but its process ended before binding the key
            IdempotencyKey.objects.filter(pk=first.pk, run__isnull=True).update(run=run)
            first.run = run
        elif timezone.now() - first.created_at > UNBOUND_KEY_EXPIRES:
            # Nothing was ever submitted with it (a submission writes its run at once): the
            # request that took it died first. This one may submit.
            taken = IdempotencyKey.objects.filter(
                pk=first.pk, run__isnull=True, created_at=first.created_at
            ).update(created_at=timezone.now())
            if taken:  # one retry wins; others racing it see the key taken again
                return None
            raise HttpError(409, "A request with this Idempotency-Key is still being submitted.")
        else:
            raise HttpError(409, "A request with this Idempotency-Key is still being submitted.")
    return _respond(request, run_wait_capped(first.run, body.wait_seconds))


#: A key taken by a request that wrote no run in this long was never used: a retry may.
UNBOUND_KEY_EXPIRES = dt.timedelta(minutes=2)


def _run_keyed(user: Any, key: str, digest: str) -> QueryRun | None:
    """The caller's run submitted with this key *and this body* (a key once freed may have
    been reused for another body)."""
    found: QueryRun | None = (
        QueryRun.objects.filter(
            user=user, provenance__idempotency_key=key, provenance__idempotency_digest=digest
        )
        .order_by("-pk")
        .first()
    )
    return found


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
    openapi_extra=documented(400, 403, 404, 422),
)
def query_get(
    request: HttpRequest, run_id: int, cursor: str | None = None, limit: int = PAGE
) -> HttpResponse:
    caller = caller_of(request)
    check_request(request.auth, caller, submitting=False, returns_rows=True)  # type: ignore[attr-defined]
    run = readable_run(request.auth, run_id)  # type: ignore[attr-defined]
    if not 1 <= limit <= MAX_PAGE:
        raise HttpError(400, f"limit must be between 1 and {MAX_PAGE}.")
    reservation = Reservation(request.auth, caller)  # type: ignore[attr-defined]
    body = run_body(
        run,
        offset=cursor_offset(cursor),
        limit=limit,
        rows_for=caller.user,
        allowed=reservation.rows_allowed,
    )
    if run.status == QueryRun.Status.DENIED:
        return _respond(request, run)
    status = 202 if body["retry_after"] else 200
    response = HttpResponse(
        json.dumps(body, default=str), status=status, content_type="application/json"
    )
    if body["retry_after"]:
        response["Retry-After"] = str(body["retry_after"])
    return _counted(reservation, response)


@api.get(
    "/connections",
    url_name="connection_list",
    response=list[ConnectionOut],
    summary="Connections you may use",
    openapi_extra=documented(),
)
def connection_list(request: HttpRequest) -> list[dict[str, Any]]:
    bearer = request.auth  # type: ignore[attr-defined]
    check_request(bearer, caller_of(request), submitting=False, returns_rows=False)
    return connections_of(bearer)


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
    openapi_extra=documented(404, 422),
)
def connection_schema(request: HttpRequest, name: str) -> dict[str, Any]:
    check_request(request.auth, caller_of(request), submitting=False, returns_rows=False)  # type: ignore[attr-defined]
    return schema_of(request.auth, name)  # type: ignore[attr-defined]


@api.post(
    "/access-requests",
    url_name="access_request_create",
    response={202: AccessRequestOut},
    summary="Ask for access or for one column unmasked, for a time",
    description=(
        "Like the web form: approvers review it, and approval creates an expiring grant "
        "(`access`) or an expiring unmask exemption (`unmask`). An agent's owner cannot "
        "approve it. 404 for a connection or column the caller may not ask about."
    ),
    openapi_extra=documented(400, 403, 404, 413, 422),
)
def access_request_create(request: HttpRequest, body: AccessRequestIn) -> HttpResponse:
    caller = caller_of(request)
    if not has_role(caller.user, *ROLES):
        raise HttpError(403, "Your account has no role: it cannot ask for access.")
    check_request(request.auth, caller, submitting=False, returns_rows=False)  # type: ignore[attr-defined]
    try:
        if body.kind == "access":
            connection = requestable_connection(request.auth, body.connection)  # type: ignore[attr-defined]
            created = access_request(
                caller=caller,
                connection=connection,
                capabilities=body.capabilities,
                hours=body.hours,
                reason=body.reason,
            )
        else:
            connection = connection_of(request.auth, body.connection)  # type: ignore[attr-defined]
            created = unmask_request(
                caller=caller,
                column=masked_column(connection, body.table, body.column),
                hours=body.hours,
                reason=body.reason,
            )
    except InvalidRequest as exc:
        raise HttpError(400, str(exc)) from None
    out = {
        "id": created.pk,
        "kind": created.kind,
        "status": created.status,
        "risk": created.risk,
        "url": reverse("approval_detail", args=[created.pk]),
        "expires_at": created.expires_at.isoformat(),
    }
    return HttpResponse(json.dumps(out), status=202, content_type="application/json")

"""The one path: submit → decide → hold / deny / queue → execute → record."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import event_record
from governance import engine, hooks, targets
from governance.crypto import DecryptionError
from governance.models import Connection, QueryRun
from governance.roles import has_role
from governance.services.access import decision_context, policy_rules
from governance.services.values import to_json_cell

log = logging.getLogger(__name__)

Status = QueryRun.Status


class InvalidSQL(Exception):
    """Input that is not SQL text at all (empty, too large, NUL bytes, invalid UTF-8)."""


@dataclass(frozen=True)
class Caller:
    user: Any
    channel: str = "web"
    source_ip: str | None = None


def sql_validate(sql: Any) -> str:
    if not isinstance(sql, str):
        raise InvalidSQL("SQL must be text.")
    try:
        size = len(sql.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidSQL("SQL is not valid UTF-8 text.") from None
    if "\x00" in sql:
        raise InvalidSQL("SQL contains a NUL byte, which no database accepts.")
    if not sql.strip():
        raise InvalidSQL("Empty statement: nothing to run.")
    limit = settings.WARDEN_QUERY_MAX_BYTES
    if size > limit:
        raise InvalidSQL(f"SQL is too large: {size:,} bytes; the limit is {limit:,} bytes.")
    return sql


def _printable(sql: Any) -> str:
    if not isinstance(sql, str):
        return repr(sql)[:1000]
    return sql.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _audit(kind: str, caller: Caller, connection: Connection | None, **fields: Any) -> None:
    event_record(
        kind=kind,
        actor=caller.user,
        channel=caller.channel,
        source_ip=caller.source_ip,
        connection_id=connection.pk if connection else None,
        connection_name=connection.name if connection else "",
        **fields,
    )


def sql_reject(*, caller: Caller, connection: Connection | None, sql: Any, error: str) -> None:
    """Record input refused before it reached the engine (never lost, never a 500)."""
    _audit("query.rejected", caller, connection, sql=_printable(sql), error=error, decision="deny")


def _decide(caller: Caller, connection: Connection, sql: str, mode: str) -> dict[str, Any]:
    context = decision_context(user=caller.user, connection=connection)
    decision = engine.decide(sql, dialect=connection.dialect, context=context, rules=policy_rules())
    detail = decision.to_dict()
    if mode == QueryRun.Mode.EXPORT and "export" not in context.capabilities:
        detail["decision"] = engine.Action.DENY.value
        detail["reasons"] = [
            *detail["reasons"],
            {
                "rule": "capability",
                "message": "You have no export access on this connection "
                "(it needs the 'export' capability).",
                "statement": None,
                "action": "deny",
            },
        ]
    return detail


def _deciding_rule(detail: dict[str, Any]) -> str:
    """The rule that made the batch's decision (the first reason with the batch's action)."""
    action = detail["decision"]
    for reason in detail["reasons"]:
        if reason.get("action") == action:
            return str(reason["rule"])
    return ""


def decision_check(*, caller: Caller, connection: Connection, sql: str) -> dict[str, Any]:
    """Decide only (`govern --check`): nothing runs, the check is audited."""
    sql = sql_validate(sql)
    detail = _decide(caller, connection, sql, QueryRun.Mode.CHECK)
    _audit(
        "query.checked",
        caller,
        connection,
        sql=sql,
        categories=[s["category"] for s in detail["statements"]],
        decision=detail["decision"],
        risk=detail["risk"],
        rule=_deciding_rule(detail),
    )
    return detail


def run_submit(
    *,
    caller: Caller,
    connection: Connection,
    sql: str,
    purpose: str = "",
    mode: str = QueryRun.Mode.INTERACTIVE,
) -> QueryRun:
    """The single entry point for every channel. Raises InvalidSQL for non-SQL input."""
    sql = sql_validate(sql)
    detail = _decide(caller, connection, sql, mode)
    action = detail["decision"]
    status = {
        "allow": Status.QUEUED,
        "require_approval": Status.PENDING_APPROVAL,
        "deny": Status.DENIED,
    }[action]
    statements = detail["statements"]
    with transaction.atomic():
        run = QueryRun.objects.create(
            user=caller.user,
            connection=connection,
            channel=caller.channel,
            source_ip=caller.source_ip,
            mode=mode,
            sql=sql,
            purpose=purpose[:500],
            status=status,
            decision=action,
            risk=detail["risk"],
            decision_detail=detail,
            statements=[s["sql"] for s in statements],
            read_only=all(s["category"] == "read" for s in statements),
            finished_at=timezone.now() if status == Status.DENIED else None,
        )
        _audit(
            "query.submitted",
            caller,
            connection,
            run_id=run.pk,
            sql=sql,
            categories=[s["category"] for s in statements],
            decision=action,
            risk=detail["risk"],
            rule=_deciding_rule(detail),
            detail={"reasons": detail["reasons"], "purpose": purpose[:500], "mode": mode},
        )
        if status == Status.PENDING_APPROVAL:
            for hook in hooks.held_run_hooks:
                hook(run)
        elif status == Status.QUEUED and mode == QueryRun.Mode.INTERACTIVE:
            from governance.tasks import execute_run

            run_id = run.pk
            transaction.on_commit(lambda: execute_run.delay(run_id))
    return run


def _start(run_id: int) -> QueryRun | None:
    started = QueryRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    if started != 1:
        return None  # already taken, cancelled, or redelivered
    return QueryRun.objects.select_related("connection", "user").get(pk=run_id)


def _cancel_checker(run_id: int, every_s: float = 0.25) -> Callable[[], bool]:
    """A cheap, throttled 'was this run cancelled?' for drivers that poll (SQLite)."""
    last = [0.0, False]

    def should_cancel() -> bool:
        now = time.monotonic()
        if now - float(last[0]) >= every_s:
            last[0] = now
            last[1] = QueryRun.objects.filter(pk=run_id, cancel_requested=True).exists()
        return bool(last[1])

    return should_cancel


def _public_error(run: QueryRun, exc: targets.TargetError) -> str:
    # Connection details (hosts, users, auth failures) are for administrators only.
    if exc.kind in ("connect", "auth") and not has_role(run.user, "admin"):
        return "Could not connect to the target database. An administrator can see why."
    if exc.kind == "timeout":
        timeout_s = run.connection.statement_timeout_ms / 1000
        return f"The statement ran longer than this connection's {timeout_s:g} s timeout."
    return exc.message


def _finish(run: QueryRun, status: str, started: float, **fields: Any) -> None:
    duration_ms = (time.perf_counter() - started) * 1000
    audit_detail = fields.pop("_audit_detail", None) or {}
    fields.update(status=status, finished_at=timezone.now(), duration_ms=duration_ms)
    QueryRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(**fields)
    caller = Caller(user=run.user, channel=run.channel, source_ip=run.source_ip)
    _audit(
        f"query.{status}",
        caller,
        run.connection,
        run_id=run.pk,
        sql=run.sql,
        categories=[s["category"] for s in run.statement_summaries],
        decision=run.decision,
        risk=run.risk,
        row_count=fields.get("row_count"),
        duration_ms=duration_ms,
        error=fields.get("error", ""),
        detail=audit_detail,
    )


def _fail(run: QueryRun, started: float, exc: targets.TargetError | DecryptionError) -> None:
    if isinstance(exc, DecryptionError):
        kind, public, private = (
            "connect",
            "The connection's stored secret cannot be used.",
            str(exc),
        )
    else:
        kind, public, private = exc.kind, _public_error(run, exc), exc.message
    status = Status.CANCELLED if kind == "cancelled" else Status.FAILED
    if status == Status.CANCELLED:
        public = "Cancelled on the target database."
    _finish(
        run,
        status,
        started,
        error=public,
        error_kind=kind,
        _audit_detail={"error_kind": kind, "target_error": private},
    )


def run_execute(*, run_id: int) -> None:
    """Execute a queued interactive run (called by the Celery task)."""
    run = _start(run_id)
    if run is None:
        return
    started = time.perf_counter()
    try:
        config = run.connection.target_config()
        with targets.connect(config, should_cancel=_cancel_checker(run.pk)) as session:
            if session.backend_id:
                QueryRun.objects.filter(pk=run.pk).update(backend_id=session.backend_id)
            result = session.execute(
                run.statements, read_only=run.read_only, max_rows=run.connection.row_cap
            )
    except (targets.TargetError, DecryptionError) as exc:
        _fail(run, started, exc)
        return
    _finish(
        run,
        Status.SUCCEEDED,
        started,
        columns=[{"name": c.name, "type": c.type} for c in result.columns],
        rows=[[to_json_cell(v) for v in row] for row in result.rows],
        row_count=result.row_count,
        truncated=result.truncated,
    )


def run_stream(*, run: QueryRun, batch_size: int = 5000) -> Iterator[Sequence[Any]]:
    """Execute an allowed export run here, yielding the header then rows, in constant memory.

    Stops at the connection's export row limit.
    """
    taken = _start(run.pk)
    if taken is None:
        return
    run = taken
    started = time.perf_counter()
    limit = run.connection.export_row_limit
    sent = 0
    try:
        config = run.connection.target_config()
        with targets.connect(config) as session:
            columns, batches = session.stream(
                run.statements[-1], read_only=True, batch_size=batch_size
            )
            yield [c.name for c in columns]
            for batch in batches:
                room = limit - sent
                chunk = batch[:room]
                sent += len(chunk)
                yield from chunk
                if sent >= limit:
                    break
    except (targets.TargetError, DecryptionError) as exc:
        _fail(run, started, exc)
        raise
    _finish(run, Status.SUCCEEDED, started, row_count=sent, truncated=sent >= limit)


def run_cancel(*, caller: Caller, run: QueryRun) -> bool:
    """Cancel a queued or running run. Returns False if it had already finished."""
    now = timezone.now()
    if QueryRun.objects.filter(
        pk=run.pk, status__in=[Status.QUEUED, Status.PENDING_APPROVAL]
    ).update(status=Status.CANCELLED, cancel_requested=True, finished_at=now, error="Cancelled."):
        _audit("query.cancelled", caller, run.connection, run_id=run.pk, sql=run.sql)
        return True
    if not QueryRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(cancel_requested=True):
        return False
    run.refresh_from_db(fields=["backend_id"])
    signalled = False
    if run.backend_id:
        try:
            signalled = targets.cancel(run.connection.target_config(), run.backend_id)
        except (targets.TargetError, DecryptionError) as exc:
            log.warning("cancel of run %s failed: %s", run.pk, type(exc).__name__)
    _audit(
        "query.cancel_requested",
        caller,
        run.connection,
        run_id=run.pk,
        sql=run.sql,
        detail={"signalled": signalled},
    )
    return True

"""The one path: submit → decide → hold / deny / queue → execute → record."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.kinds import EventKind
from governance import engine, hooks, metrics, targets
from governance.celery import app as celery_app
from governance.crypto import DecryptionError
from governance.logcontext import run_context
from governance.models import Connection, QueryRun
from governance.roles import ADMIN
from governance.services.access import decision_inputs
from governance.services.caller import Caller, event, record
from governance.services.cancel import cancel_checker, cancel_watch
from governance.services.errors import public_error
from governance.services.masking import (
    MaskPlan,
    keyed_statements,
    mask_plan,
    masked_columns,
    safety_net,
)
from governance.services.run_store import run_insert, run_is_queued, run_update
from governance.services.sensitive_access import sensitive_access
from governance.services.sessions import session_for, tagged
from governance.services.values import to_json_cell

log = logging.getLogger(__name__)

Status = QueryRun.Status


# Categories that need a read-write transaction; everything else runs read-only, so a
# classifier miss in them still cannot write.
CHANGES = frozenset({"write", "ddl", "code", "admin", "file", "privilege"})


class InvalidSQL(Exception):
    """Input that is not SQL text at all (empty, too large, NUL bytes, invalid UTF-8)."""


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


def purpose_validate(purpose: Any) -> str:
    if not isinstance(purpose, str) or "\x00" in purpose:
        raise InvalidSQL("The purpose must be plain text.")
    try:
        purpose.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidSQL("The purpose is not valid UTF-8 text.") from None
    return purpose.strip()[:500]


def _printable(sql: Any) -> str:
    if not isinstance(sql, str):
        return repr(sql)[:1000]
    return sql.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def sql_reject(*, caller: Caller, connection: Connection | None, sql: Any, error: str) -> None:
    """Record input refused before it reached the engine (never lost, never a 500)."""
    record(
        EventKind.QUERY_REJECTED,
        caller,
        connection,
        sql=_printable(sql),
        error=error,
        decision="deny",
    )


def _decide(
    caller: Caller,
    connection: Connection,
    sql: str,
    mode: str,
    inputs: tuple[engine.Context, tuple[engine.Rule, ...]] | None = None,
) -> tuple[dict[str, Any], MaskPlan | None]:
    """The engine's decision, with masking applied to every read (which can hold or deny).
    `inputs`: the context and rules to decide with, instead of the caller's and the saved
    guardrails (a guardrail being edited is tried with them)."""
    context, rules = inputs or decision_inputs(user=caller.user, connection=connection)
    analysis = engine.analyze(sql, connection.dialect)
    plan = None
    if analysis.error is None:
        statements = [{"sql": s.sql, "category": s.category.value} for s in analysis.statements]
        plan = mask_plan(user=caller.user, connection=connection, statements=statements)
        context = replace(
            context, probe_statements=plan.probe_statements, probe_reasons=plan.probe_reasons
        )
    decision = engine.decide(sql, dialect=connection.dialect, context=context, rules=rules)
    detail = decision.to_dict()
    refusals = _batch_refusals(detail, context, mode) + _credential_refusals(
        sql, connection, detail, context
    )
    if plan is not None:
        detail["masking"] = plan.to_dict()
        refusals += [("masking", held) for held in plan.held]
    for rule, message in refusals:
        detail["decision"] = engine.Action.DENY.value
        detail["reasons"] = [
            *detail["reasons"],
            {"rule": rule, "message": message, "statement": None, "action": "deny"},
        ]
    return detail, plan


def _submitted_detail(
    detail: dict[str, Any],
    purpose: str,
    mode: str,
    connection: Connection,
    statements: list[dict[str, Any]],
    plan: MaskPlan | None,
    status: str,
) -> dict[str, Any]:
    """What the `query.submitted` event keeps beside the statement: the reasons, the purpose,
    and the sensitive columns it reaches and how (none for a denied one: it reaches nothing)."""
    kept: dict[str, Any] = {"reasons": detail["reasons"], "purpose": purpose[:500], "mode": mode}
    if status != Status.DENIED:
        reached = sensitive_access(connection, statements, plan)
        if reached:
            kept["sensitive"] = reached
    return kept


def _to_run(statements: list[dict[str, Any]], plan: MaskPlan | None) -> list[str]:
    original = [s["sql"] for s in statements]
    return plan.statements(original) if plan is not None else original


def _masked_names(plan: MaskPlan | None) -> list[str]:
    """Masked output columns of the last read, as submitted (what ran records the masked
    columns of the statement whose rows it returned)."""
    if plan is None:
        return []
    shown = [r for r in plan.results if r is not None]
    return [c.name for c in shown[-1].columns if c.masked] if shown else []


def _batch_refusals(
    detail: dict[str, Any], context: engine.Context, mode: str
) -> list[tuple[str, str]]:
    """Rules about the whole batch that no guardrail can relax."""
    categories = [s["category"] for s in detail["statements"]]
    refusals = []
    if "transaction" in categories:
        refusals.append(
            (
                "transaction-control",
                "Warden runs every batch in a transaction of its own; remove BEGIN, COMMIT, "
                "ROLLBACK and SAVEPOINT statements.",
            )
        )
    if mode == QueryRun.Mode.EXPORT:
        if "export" not in context.capabilities:
            refusals.append(
                (
                    "capability",
                    "You have no export access on this connection "
                    "(it needs the 'export' capability).",
                )
            )
        if categories and categories != ["read"]:
            refusals.append(("export-single-read", "An export runs exactly one read statement."))
    return refusals


SERVER_FILES = (
    "This statement reads or writes files on the database server, where credentials are kept "
    "(password files, pg_hba.conf, keys); only administrators may do that."
)


def _credential_refusals(
    sql: str, connection: Connection, detail: dict[str, Any], context: engine.Context
) -> list[tuple[str, str]]:
    """Credentials and server files are for administrators only, whatever the guardrails say."""
    if ADMIN in context.groups:
        return []
    default_schema = connection.database if connection.dialect == "mysql" else ""
    uses = engine.credential_uses(sql, connection.dialect, default_schema=default_schema)
    refusals = [("credentials", use.message) for use in uses]
    if any(s["category"] == "file" for s in detail["statements"]):
        refusals.append(("server-files", SERVER_FILES))
    return refusals


def _deciding_rule(detail: dict[str, Any]) -> str:
    """The rule that made the batch's decision (the first reason with the batch's action)."""
    action = detail["decision"]
    for reason in detail["reasons"]:
        if reason.get("action") == action:
            return str(reason["rule"])
    return ""


def decision_preview(
    *,
    user: Any,
    connection: Connection,
    sql: str,
    context: engine.Context,
    rules: tuple[engine.Rule, ...],
) -> dict[str, Any]:
    """What `run_submit` would decide for `sql` from `user` with this context and these rules
    (every step of `_decide`: guardrails, masking holds, batch and credential refusals).
    Nothing runs and nothing is recorded. Raises InvalidSQL."""
    sql = sql_validate(sql)
    caller = Caller(user=user)
    detail, _ = _decide(caller, connection, sql, QueryRun.Mode.INTERACTIVE, (context, rules))
    return detail


def decision_check(*, caller: Caller, connection: Connection, sql: str) -> dict[str, Any]:
    """Decide only (`govern --check`): nothing runs, the check is audited."""
    sql = sql_validate(sql)
    detail, _ = _decide(caller, connection, sql, QueryRun.Mode.CHECK)
    record(
        EventKind.QUERY_CHECKED,
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
    purpose = purpose_validate(purpose)
    detail, plan = _decide(caller, connection, sql, mode)
    action = detail["decision"]
    status = {
        "allow": Status.QUEUED,
        "require_approval": Status.PENDING_APPROVAL,
        "deny": Status.DENIED,
    }[action]
    statements = detail["statements"]
    # Executed here once committed (embedded, eager mode): the run is recorded as already
    # claimed, so it needs no claim of its own. No worker can take it: it is never 'queued'.
    inline = (
        status == Status.QUEUED
        and mode == QueryRun.Mode.INTERACTIVE
        and celery_app.conf.task_always_eager
    )
    now = timezone.now()
    run = QueryRun(
        user=caller.user,
        connection=connection,
        channel=caller.channel,
        source_ip=caller.source_ip,
        mode=mode,
        sql=sql,
        purpose=purpose[:500],
        status=Status.RUNNING if inline else status,
        started_at=now if inline else None,
        decision=action,
        risk=detail["risk"],
        decision_detail=detail,
        statements=_to_run(statements, plan),
        provenance=dict(caller.provenance or {}),
        masked=_masked_names(plan),
        read_only=not any(s["category"] in CHANGES for s in statements),
        finished_at=now if status == Status.DENIED else None,
    )
    events = [
        event(
            EventKind.QUERY_SUBMITTED,
            caller,
            connection,
            sql=sql,
            categories=[s["category"] for s in statements],
            decision=action,
            risk=detail["risk"],
            rule=_deciding_rule(detail),
            detail=_submitted_detail(detail, purpose, mode, connection, statements, plan, status),
        )
    ]
    if plan is not None and status != Status.DENIED:
        events += [
            event(
                EventKind.UNMASK_USED,
                caller,
                connection,
                detail={
                    "exemption": exemption.pk,
                    "column": str(exemption.column),
                    "reason": exemption.reason,
                    "expires_at": exemption.expires_at.isoformat(),
                },
            )
            for exemption in plan.exemptions
        ]
    if status == Status.PENDING_APPROVAL:
        with transaction.atomic():  # the approval request commits with the run
            run_insert(run, events)
            for hook in hooks.held_run_hooks:
                hook(run)
        metrics.run_submitted(run)
        return run
    # One statement, or one transaction: committed here unless the caller holds a transaction
    # of its own, and then `on_commit` waits for that. An interactive read's intent need not
    # wait for the disk: its rows are released with its outcome, whose commit does (see
    # run_insert). An export streams rows before its outcome, so it waits here.
    lazy = run.read_only and status == Status.QUEUED and mode == QueryRun.Mode.INTERACTIVE
    run_insert(run, events, durable=not lazy)
    metrics.run_submitted(run)
    if inline:
        transaction.on_commit(partial(_execute, run, claimed=True))
    elif status == Status.QUEUED and mode == QueryRun.Mode.INTERACTIVE:
        transaction.on_commit(partial(_dispatch, run))
    return run


QUEUE_DOWN = "Warden could not hand the statement to a worker; it did not run. Try again."
APPROVAL_LAPSED = (
    "The approval expired before a worker could run the statement; it did not run. Submit it again."
)
UNEXPECTED = "Warden failed while running the statement; it has been recorded. Try again."


def _dispatch(queued: QueryRun) -> None:
    """Hand a committed run to a worker, or run it here in the embedded (eager) mode."""
    run_id = queued.pk
    if celery_app.conf.task_always_eager:
        run_execute(run_id=run_id, run=queued)
        return
    from governance.tasks import execute_run

    try:
        execute_run.delay(run_id)
    except Exception as exc:  # broker down: fail the run visibly rather than queue it forever
        log.error("could not queue run %s: %s", run_id, type(exc).__name__)
        if _start(queued):
            _finish(
                queued, Status.FAILED, time.perf_counter(), error=QUEUE_DOWN, error_kind="queue"
            )


def _start(run: QueryRun, backend_id: str | None = None) -> bool:
    """Claim a queued run (conditional UPDATE: a redelivered task or a second worker loses)."""
    now = timezone.now()
    claimed = QueryRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, backend_id=backend_id or ""
    )
    if claimed == 1:
        run.status, run.started_at, run.backend_id = Status.RUNNING, now, backend_id or ""
    return claimed == 1


def _finish(run: QueryRun, status: str, started: float, **fields: Any) -> None:
    duration_ms = (time.perf_counter() - started) * 1000
    audit_detail = fields.pop("_audit_detail", None) or {}
    if approval := run.decision_detail.get("approval"):
        audit_detail["approval"] = approval  # who approved it, beside who ran it
    fields.update(status=status, finished_at=timezone.now(), duration_ms=duration_ms)
    caller = Caller.of_run(run)
    outcome = event(
        QueryRun.OUTCOME_EVENTS[status],
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
    # The outcome and its event together; the caller's copy follows when the update took.
    if run_update(run.pk, Status.RUNNING, fields, outcome):
        for name, value in fields.items():
            setattr(run, name, value)
        log.info(
            "run %s %s in %.1f ms (%s on %s)",
            run.pk,
            status,
            duration_ms,
            run.channel,
            run.connection.name,
        )
        hooks.run_finished(run)


def _fail(run: QueryRun, started: float, exc: targets.TargetError | DecryptionError) -> None:
    error = public_error(run, exc)  # the server's words only where nothing sensitive is near
    _finish(
        run,
        Status.CANCELLED if error.kind == "cancelled" else Status.FAILED,
        started,
        error=error.shown,
        error_kind=error.kind,
        _audit_detail=error.audit,
    )


def _unexpected(run: QueryRun, started: float, exc: BaseException) -> None:
    _finish(
        run,
        Status.FAILED,
        started,
        error=UNEXPECTED,
        error_kind="internal",
        columns=[],
        rows=[],
        _audit_detail={"error_kind": "internal", "exception": type(exc).__name__},
    )


def run_execute(*, run_id: int, run: QueryRun | None = None) -> None:
    """Execute a queued interactive run (called by the Celery task, or in-process with the
    just-committed `run`; either way the claim below is what decides who runs it). Runs
    submitted in the embedded (eager) mode are claimed at submit and never queued."""
    if run is None and run_is_queued(run_id):  # a cheap look first: most deliveries are late
        run = (
            QueryRun.objects.select_related("connection", "user")
            .filter(pk=run_id, status=Status.QUEUED)
            .first()
        )
    if run is None:
        return  # cancelled, or already taken by another delivery of the task
    _execute(run, claimed=False)


def _poolable(run: QueryRun) -> bool:
    """Whether the run's session may serve another run afterwards: only after plain reads.

    A read-only transaction's ROLLBACK reverts settings, but not what an approved session
    statement leaves behind (an advisory lock, a seeded random generator, ...).
    """
    summaries = run.statement_summaries
    return run.read_only and bool(summaries) and all(s.get("category") == "read" for s in summaries)


def _execute(run: QueryRun, *, claimed: bool) -> None:
    """Run `run` and record its outcome; `claimed` when it was recorded as running at submit."""
    with run_context(run.pk):  # every log line about it names it
        _execute_run(run, claimed=claimed)


def _execute_run(run: QueryRun, *, claimed: bool) -> None:
    run_id = run.pk
    started = time.perf_counter()
    if run.run_before is not None and timezone.now() > run.run_before:
        if _start(run):
            _finish(run, Status.EXPIRED, started, error=APPROVAL_LAPSED, error_kind="expired")
        return
    if run.decision != "allow":
        from governance.services.held import not_executed, release_problem

        if refusal := release_problem(run):
            if _start(run):
                _finish(run, Status.FAILED, started, error=refusal, **not_executed())
            return
    approved = bool(run.decision_detail.get("approval"))
    waited = run.created_at is not None and run.created_at < timezone.now() - RECHECK_AFTER
    if approved or waited:
        # Approved a while ago, maybe, or waiting long for a worker (a lost task sent again):
        # access revoked or the requester disabled since then must stop it here, as at release.
        from governance.services.held import ReleaseRefused, not_executed, run_recheck

        try:
            run_recheck(run, allowed_only=not approved)
        except ReleaseRefused as exc:
            if _start(run):
                _finish(run, Status.FAILED, started, error=str(exc), **not_executed())
            return
    try:
        with (
            session_for(
                run.connection, pooled=_poolable(run), should_cancel=cancel_checker(run_id)
            ) as session,
            tagged(session, run),
        ):
            # Claim the run once connected, recording the backend so it can be cancelled.
            if not claimed:
                claimed = _start(run, session.backend_id)
                if not claimed:
                    return
            with cancel_watch(run, session.backend_id):
                result = session.execute(
                    run.statements,
                    read_only=run.read_only,
                    max_rows=run.connection.row_cap,
                    keyed=keyed_statements(run),
                )
    except (targets.TargetError, DecryptionError) as exc:
        # A failure to connect comes before the claim: claim it now to record the failure.
        if claimed or _start(run):
            _fail(run, started, exc)
        return
    except Exception as exc:
        # Never leave a run 'running' without an outcome in the audit trail.
        log.exception("run %s failed unexpectedly", run_id)
        if claimed or _start(run):
            _unexpected(run, started, exc)
        return
    try:
        # Exactly the statement whose rows came back is scanned and named as masked.
        shown, width = result.statement, len(result.columns)
        scrub = safety_net(run, statement=shown, width=width)
        _finish(
            run,
            Status.SUCCEEDED,
            started,
            columns=[{"name": c.name, "type": c.type} for c in result.columns],
            rows=[
                [to_json_cell(v) for v in row]
                for row in (scrub(result.rows) if scrub else result.rows)
            ],
            row_count=result.row_count,
            truncated=result.truncated,
            masked=masked_columns(run, statement=shown, width=width),
            result_statement=shown,
        )
    except Exception as exc:
        log.exception("run %s: storing the result failed", run_id)
        _unexpected(run, started, exc)


REAP_MARGIN = dt.timedelta(minutes=5)
# A queued run whose task message is gone (a broker restarted without persistence, a worker
# killed while holding it) is handed to the workers again after this long; the claim makes a
# second delivery harmless, so the worst a redelivery does is nothing.
REQUEUE_AFTER = dt.timedelta(minutes=2)
# ... and given up after this long: a statement an hour late is not what anyone asked for.
REQUEUE_GIVE_UP = dt.timedelta(hours=1)
# A run that waited this long for a worker is decided again before it runs (see _execute_run).
RECHECK_AFTER = dt.timedelta(seconds=60)
TOO_LATE = "No worker took this statement for an hour; it did not run. Submit it again."
LOST = "The worker running this statement stopped; it may not have finished."
EXPORT_LOST = "The download never started; the statement did not run."
EXPORT_REAP_AFTER = dt.timedelta(hours=6)


def runs_reap(*, now: dt.datetime | None = None) -> int:
    """Fail runs whose worker vanished (killed, OOM, lost broker): never 'running' forever.
    Hand queued runs whose task was lost to the workers again. Returns the runs failed."""
    now = now or timezone.now()
    reaped = 0
    for run in _with_refs(status=Status.RUNNING, started_at__lt=now - REAP_MARGIN):
        limit = dt.timedelta(milliseconds=run.connection.statement_timeout_ms) + REAP_MARGIN
        if run.mode == QueryRun.Mode.EXPORT:
            # An export streams for as long as its reader reads, in a web process that is
            # alive while it does: only one running for hours lost its process.
            limit = EXPORT_REAP_AFTER
        if run.started_at and run.started_at < now - limit:
            _fail_lost(run, LOST, time.perf_counter() - (now - run.started_at).total_seconds())
            reaped += 1
    # An export runs in the web request that streams it: one still queued was never started.
    reaped += _give_up(
        _with_refs(
            status=Status.QUEUED, mode=QueryRun.Mode.EXPORT, created_at__lt=now - REAP_MARGIN
        ),
        EXPORT_LOST,
    )
    reaped += _give_up(
        _with_refs(
            status=Status.QUEUED,
            mode=QueryRun.Mode.INTERACTIVE,
            created_at__lt=now - REQUEUE_GIVE_UP,
        ),
        TOO_LATE,
    )
    _requeue_lost(now)
    return reaped


def _with_refs(**lookup: Any) -> Any:
    return QueryRun.objects.select_related("connection", "user").filter(**lookup)[:1000]


def _fail_lost(run: QueryRun, error: str, started: float) -> None:
    _finish(
        run,
        Status.FAILED,
        started,
        error=error,
        error_kind="lost",
        _audit_detail={"error_kind": "lost"},
    )


def _give_up(runs: Any, error: str) -> int:
    """Fail queued runs that nothing will start (each claimed first: one pass acts once)."""
    failed = 0
    for run in runs:
        if _start(run):
            _fail_lost(run, error, time.perf_counter())
            failed += 1
    return failed


def _requeue_lost(now: dt.datetime) -> int:
    """Send the task again for interactive runs queued longer than REQUEUE_AFTER while the
    statement queue is empty (a backlog is waiting, not lost)."""
    if celery_app.conf.task_always_eager or not settings.REDIS_URL:
        return 0
    from governance import heartbeat

    try:
        if heartbeat.queue_depth("celery"):
            return 0
    except Exception as exc:  # the broker is down: next minute's pass tries again
        log.warning("could not read the queue to find lost runs: %s", type(exc).__name__)
        return 0
    waiting = list(
        QueryRun.objects.filter(
            status=Status.QUEUED,
            mode=QueryRun.Mode.INTERACTIVE,
            created_at__lt=now - REQUEUE_AFTER,
        ).values_list("pk", flat=True)[:1000]
    )
    for run_id in waiting:
        log.warning("run %s waited over %s for a worker: queued again", run_id, REQUEUE_AFTER)
        try:
            celery_app.send_task("governance.execute_run", args=[run_id])
        except Exception as exc:
            log.warning("could not queue run %s again: %s", run_id, type(exc).__name__)
            return 0
    return len(waiting)


def run_cancel(*, caller: Caller, run: QueryRun) -> bool:
    """Cancel a queued or running run. Returns False if it had already finished."""
    now = timezone.now()
    if QueryRun.objects.filter(
        pk=run.pk, status__in=[Status.QUEUED, Status.PENDING_APPROVAL]
    ).update(status=Status.CANCELLED, cancel_requested=True, finished_at=now, error="Cancelled."):
        record(EventKind.QUERY_CANCELLED, caller, run.connection, run_id=run.pk, sql=run.sql)
        for hook in hooks.cancelled_run_hooks:
            hook(run)
        run.status = Status.CANCELLED
        transaction.on_commit(partial(hooks.run_finished, run))
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
    record(
        EventKind.QUERY_CANCEL_REQUESTED,
        caller,
        run.connection,
        run_id=run.pk,
        sql=run.sql,
        detail={"signalled": signalled},
    )
    return True

"""`manage.py govern`: run SQL through exactly the same path as the web editor.

Exit codes: 0 executed/allowed, 1 execution failed, 2 usage, 3 waiting for approval, 4 denied.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from governance import targets
from governance.crypto import DecryptionError
from governance.models import QueryRun
from governance.services.access import UnknownConnection, connection_for
from governance.services.accounts import active_user
from governance.services.exports import run_export_csv
from governance.services.runs import (
    Caller,
    InvalidSQL,
    decision_check,
    run_submit,
    sql_reject,
)
from governance.services.values import as_text, printable

EXIT = {"ok": 0, "failed": 1, "usage": 2, "waiting": 3, "denied": 4}
STATUS_EXIT = {
    QueryRun.Status.SUCCEEDED: EXIT["ok"],
    QueryRun.Status.FAILED: EXIT["failed"],
    QueryRun.Status.CANCELLED: EXIT["failed"],
    QueryRun.Status.PENDING_APPROVAL: EXIT["waiting"],
    QueryRun.Status.DENIED: EXIT["denied"],
    QueryRun.Status.REJECTED: EXIT["denied"],
    QueryRun.Status.EXPIRED: EXIT["failed"],
}


class Command(BaseCommand):
    help = "Submit SQL as a user through Warden's governed path (decide, hold, run, audit)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("sql", help="The SQL to run; '-' reads it from standard input.")
        parser.add_argument("--as", dest="username", required=True, help="Acting user.")
        parser.add_argument("--connection", required=True, help="Connection name.")
        parser.add_argument("--check", action="store_true", help="Decide only; run nothing.")
        parser.add_argument("--format", choices=["table", "json", "csv"], default="table")
        parser.add_argument("--purpose", default="", help="Why you run this (approvers see it).")
        parser.add_argument(
            "--wait",
            type=float,
            default=None,
            help="Seconds to wait for a worker (default: "
            "the connection's statement timeout plus 30 s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # The statement runs in this process: its "run … ended" log line is for servers'
        # logs, not for the terminal that shows the result.
        logging.getLogger("governance.services.runs").setLevel(logging.WARNING)
        code = self._run(options)
        if code:
            sys.exit(code)

    def _run(self, options: dict[str, Any]) -> int:
        user = active_user(options["username"])
        if user is None:
            self.stderr.write(f"error: no active user {options['username']!r}")
            return EXIT["usage"]
        caller = Caller(user=user, channel="cli")
        sql = sys.stdin.read() if options["sql"] == "-" else options["sql"]
        fmt = options["format"]
        try:
            connection = connection_for(user=caller.user, name=options["connection"])
        except UnknownConnection as exc:
            sql_reject(caller=caller, connection=None, sql=sql, error=str(exc))
            self.stderr.write(f"error: {exc}")
            return EXIT["usage"]
        try:
            if options["check"]:
                detail = decision_check(caller=caller, connection=connection, sql=sql)
                self._emit_decision(detail, fmt)
                return {"allow": 0, "require_approval": 3, "deny": 4}[detail["decision"]]
            mode = QueryRun.Mode.EXPORT if fmt == "csv" else QueryRun.Mode.INTERACTIVE
            run = run_submit(
                caller=caller, connection=connection, sql=sql, purpose=options["purpose"], mode=mode
            )
        except InvalidSQL as exc:
            # Not SQL at all (empty, NUL bytes, invalid UTF-8, too large): a usage error.
            sql_reject(caller=caller, connection=connection, sql=sql, error=str(exc))
            self.stderr.write(f"error: {exc}")
            return EXIT["usage"]
        if mode == QueryRun.Mode.EXPORT and run.status == QueryRun.Status.QUEUED:
            return self._export(run)
        run = self._wait(run, options["wait"])
        if run.status in (QueryRun.Status.QUEUED, QueryRun.Status.RUNNING):
            self.stderr.write(
                f"error: run {run.pk} is still {run.status}; it goes on without this command"
            )
            return EXIT["failed"]
        self._emit_run(run, fmt)
        return STATUS_EXIT.get(QueryRun.Status(run.status), EXIT["failed"])

    def _wait(self, run: QueryRun, wait: float | None) -> QueryRun:
        deadline = time.monotonic() + (
            wait if wait is not None else run.connection.statement_timeout_ms / 1000 + 30
        )
        delay = 0.01
        if run.status in (QueryRun.Status.QUEUED, QueryRun.Status.RUNNING):
            run.refresh_from_db()  # unless it ran here, in the embedded mode, and is up to date
        while run.status in (QueryRun.Status.QUEUED, QueryRun.Status.RUNNING):
            if time.monotonic() > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
            run.refresh_from_db()
        return run

    def _export(self, run: QueryRun) -> int:
        out = sys.stdout.buffer
        try:
            for chunk in run_export_csv(run=run):
                out.write(chunk)
            out.flush()
        except (targets.TargetError, DecryptionError):
            run.refresh_from_db()
            self.stderr.write(f"error: {printable(run.error)}")
            return EXIT["failed"]
        return EXIT["ok"]

    def _emit_decision(self, detail: dict[str, Any], fmt: str) -> None:
        if fmt == "json":
            self.stdout.write(json.dumps(_decision_json(detail)))
            return
        self.stdout.write(f"decision: {detail['decision']} (risk {detail['risk']})")
        for reason in detail["reasons"]:
            self.stdout.write(f"  [{reason['rule']}] {reason['message']}")

    def _emit_run(self, run: QueryRun, fmt: str) -> None:
        if fmt == "json":
            approval = getattr(run, "approval", None) if run.status == "pending_approval" else None
            data = _decision_json(run.decision_detail)
            data.update(
                run=run.pk,
                status=run.status,
                columns=[c["name"] for c in run.columns],
                column_types=[c["type"] for c in run.columns],
                rows=run.rows,
                row_count=run.row_count,
                truncated=run.truncated,
                masked=run.masked,
                approval={"id": approval.pk} if approval is not None else None,
                error=run.error or None,
            )
            self.stdout.write(json.dumps(data, default=str))
            return
        if run.status in ("denied", "pending_approval"):
            self._emit_decision(run.decision_detail, fmt)
            if run.status == "pending_approval" and hasattr(run, "approval"):
                self.stdout.write(f"waiting for approval: request {run.approval.pk}")
            return
        if run.error:
            self.stderr.write(f"error: {printable(run.error)}")
            return
        if run.columns:
            self.stdout.write(_table([c["name"] for c in run.columns], run.rows))
        suffix = " (truncated at the row cap)" if run.truncated else ""
        self.stdout.write(f"({run.row_count} row{'s' if run.row_count != 1 else ''}{suffix})")


def _decision_json(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "decision": detail["decision"],
        "risk": detail["risk"],
        "statements": [
            {"category": s["category"], "risk": s["risk"], "tables": s["tables"]}
            for s in detail["statements"]
        ],
        "reasons": [{"rule": r["rule"], "message": r["message"]} for r in detail["reasons"]],
    }


def _cell(value: Any) -> str:
    """One table cell on one line: target data must not drive the terminal (escape sequences)
    nor split a row (newlines, tabs)."""
    text = printable(str(as_text(value)))
    return text.replace("\n", "\\n").replace("\t", "\\t")


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    columns = [_cell(c) for c in columns]
    cells = [["NULL" if v is None else _cell(v) for v in row] for row in rows]
    widths = [min(60, max([len(c)] + [len(r[i]) for r in cells])) for i, c in enumerate(columns)]
    line = " | ".join(c.ljust(w)[:w] for c, w in zip(columns, widths, strict=True))
    out = [line, "-+-".join("-" * w for w in widths)]
    out += [" | ".join(v.ljust(w)[:w] for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)

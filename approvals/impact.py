"""The impact preview approvers see before deciding: rows affected, columns touched, and
where sensitive data would flow. Row counts come from a dry run in a transaction that is
rolled back (or the planner's estimate where a dry run is unsafe); see governance.targets.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from approvals.models import ApprovalRequest
from governance import engine, targets
from governance.crypto import DecryptionError
from governance.engine.functions import SAFE_FUNCTIONS
from governance.services.errors import public_error
from governance.services.masking import catalog_facts, keyed_statements
from governance.services.sessions import session_for

log = logging.getLogger(__name__)

DML = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})
PREVIEW_TIMEOUT_MS = 5000


def _dry_runnable(statement: engine.Statement, dialect: str) -> bool:
    """A plain write calling only known-safe functions (a stored function could write
    somewhere a rollback does not reach)."""
    safe = SAFE_FUNCTIONS.get(dialect, frozenset())
    return (
        statement.category == engine.Category.WRITE
        and statement.kind.split()[0] in DML
        and all(f.lower() in safe for f in statement.functions)
    )


def _warnings(
    statements: tuple[engine.Statement, ...], sensitive: frozenset[Any], public: frozenset[str]
) -> list[str]:
    warnings = []
    for index, statement in enumerate(statements, start=1):
        copied = [
            f"{table}.{column}"
            for table, column in statement.copied_columns
            if (table, column) in sensitive
            or (column == "*" and any(t == table for t, _ in sensitive))
        ]
        if copied and statement.written_tables:
            into = ", ".join(statement.written_tables)
            flow = (
                "a public table"
                if any(t in public for t in statement.written_tables)
                else "another table"
            )
            sources = ", ".join(copied)
            warnings.append(
                f"Statement {index} copies sensitive data ({sources}) into {flow}: {into}."
            )
        if "unfiltered_write" in statement.flags:
            warnings.append(
                f"Statement {index} changes every row of {', '.join(statement.written_tables)}."
            )
    return warnings


def _probe_flows(run: Any) -> str:
    """Where the run's held inference probes flow, or "" when it has none."""
    statements = (run.decision_detail.get("masking") or {}).get("statements") or []
    flows = [
        f"{p['table']}.{p['column']} flows into {p['where']}"
        for s in statements
        if s
        for p in s.get("probes") or []
        if p.get("holds")
    ]
    return f"({'; '.join(sorted(set(flows)))}.)" if flows else ""


def impact_compute(request_id: int) -> dict[str, Any] | None:
    """Compute and store the impact of a held statement. Never raises for target trouble."""
    request = (
        ApprovalRequest.objects.select_related("run__connection")
        .filter(pk=request_id, kind=ApprovalRequest.Kind.STATEMENT)
        .first()
    )
    if request is None or request.run is None:
        return None
    run, connection = request.run, request.run.connection
    dialect = engine.dialect_for_engine(connection.engine)
    analysis = engine.analyze(run.sql, dialect)
    statements = analysis.statements
    sensitive, public = catalog_facts(connection)
    impact: dict[str, Any] = {
        "method": "none",
        "rows": [None] * len(run.statements),
        "estimated": False,
        "note": "",
        "error": "",
        "columns": [list(engine.columns_touched(s.sql, dialect)) for s in statements],
        "warnings": _warnings(statements, sensitive, public),
        "computed_at": timezone.now().isoformat(),
    }
    dml = [_dry_runnable(s, dialect) for s in statements]
    probes = _probe_flows(run)
    if probes:
        # A dry run's row counts answer the probe before anyone approved it (the review read a
        # whole SSN from four held DELETEs), and so would the planner's estimates on MariaDB,
        # which evaluates constant subqueries while planning: nothing is tried.
        impact["note"] = (
            "Not previewed: a row count would answer what the statement asks of sensitive "
            f"values, before anyone approved it. {probes}"
        )
    elif run.read_only:
        impact["note"] = "A read changes nothing."
    elif len(dml) != len(run.statements) or not any(dml):
        impact["note"] = "No row count: only plain INSERT, UPDATE, DELETE and MERGE are previewed."
    else:
        tables = sorted({t for s in statements for t in s.tables})
        timeout = min(PREVIEW_TIMEOUT_MS, connection.statement_timeout_ms)
        try:
            with session_for(connection, pooled=False) as session:
                preview = session.preview(
                    run.statements,
                    dml=dml,
                    tables=tables,
                    timeout_ms=timeout,
                    keyed=keyed_statements(run),
                )
        except (targets.TargetError, DecryptionError) as exc:
            impact["error"] = "The target database could not be reached for a preview."
            log.warning("impact preview of request %s failed: %s", request_id, type(exc).__name__)
        else:
            impact.update(
                method=preview.method,
                rows=list(preview.rows),
                estimated=preview.estimated,
                note=preview.note,
                # The requester sees this before anyone approved: where the statement touches
                # sensitive tables, the error is told by its code, never the server's words.
                error=(
                    public_error(run, preview.error, preview_ms=timeout).shown
                    if preview.error
                    else ""
                ),
            )
    ApprovalRequest.objects.filter(pk=request_id).update(impact=impact)
    return impact

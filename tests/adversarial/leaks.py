"""Leak detection for the adversarial suites: raw sensitive values, also disguised.

An attacker who gets a value out rarely gets it verbatim: digits become letters, text is
reversed, encoded, hashed or has its punctuation spelled out. Every check scans rows, error
text and whole JSON documents for each raw value under each disguise.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

import psycopg
import pymysql

from tests.conftest import MY, PG

DIGITS_TO_LETTERS = str.maketrans("0123456789", "abcdefghij")
MIN_LENGTH = 6  # shorter values (a 4-digit tail) are what partial masking shows on purpose


def disguises(value: str) -> set[str]:
    """``value`` and the forms a hostile query can turn it into (all lower case)."""
    text = value.lower()
    forms = {
        text,
        text[::-1],
        text.translate(DIGITS_TO_LETTERS),
        text[::-1].translate(DIGITS_TO_LETTERS),
        text.replace("@", " at ").replace(".", " dot "),
        text.replace("@", "(at)").replace(".", "(dot)"),
        text.encode().hex(),
        hashlib.md5(value.encode()).hexdigest(),  # noqa: S324 - what an attacker would try
        hashlib.sha256(value.encode()).hexdigest(),
    }
    encoded = base64.b64encode(value.encode()).decode().rstrip("=").lower()
    if len(encoded) >= MIN_LENGTH:
        forms.add(encoded)
    digits = "".join(c for c in text if c.isdigit())
    if len(digits) >= 9:  # an SSN or a card number without its separators
        forms |= {digits, digits[::-1], digits.translate(DIGITS_TO_LETTERS)}
    return {f for f in forms if len(f) >= MIN_LENGTH}


class Secrets:
    """Every disguise of a set of raw values, for fast substring scanning."""

    def __init__(self, values: Iterable[Any]) -> None:
        self.forms: dict[str, str] = {}
        for value in values:
            if value is None or len(str(value)) < MIN_LENGTH:
                continue
            for form in disguises(str(value)):
                self.forms.setdefault(form, str(value))

    def found_in(self, text: str) -> list[tuple[str, str]]:
        """(raw value, disguise) pairs present in ``text`` (case-insensitive)."""
        lowered = text.lower()
        return [(raw, form) for form, raw in self.forms.items() if form in lowered]

    def assert_absent(self, what: str, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, default=str)
        found = self.found_in(text)
        assert not found, f"{what} leaks {found[:3]}: {text[:500]}"


def target_rows(connection: Any, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read straight from a connection's target (the ground truth)."""
    if connection.engine == "sqlite":
        with sqlite3.connect(connection.database) as lite:
            return list(lite.execute(sql))
    if connection.engine == "mysql":
        my = pymysql.connect(database=connection.database, **MY)
        try:
            with my.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            my.close()
    with psycopg.connect(dbname=connection.database, **PG) as pg:
        return list(pg.execute(sql).fetchall())


def run_document(run: Any) -> dict[str, Any]:
    """Everything Warden keeps or shows about a run: its fields and every audit event."""
    from audit.models import AuditEvent

    events = [
        {
            "kind": e.kind,
            "error": e.error,
            "detail": e.detail,
            "row_count": e.row_count,
        }
        for e in AuditEvent.objects.filter(run_id=run.pk)
    ]
    from approvals.models import ApprovalRequest, Delivery

    approvals = [
        {"impact": a.impact, "purpose": a.purpose, "status": a.status}
        for a in ApprovalRequest.objects.filter(run_id=run.pk)
    ]
    deliveries = list(Delivery.objects.filter(request__run_id=run.pk).values("event", "last_error"))
    return {
        "approvals": approvals,
        "deliveries": deliveries,
        "status": run.status,
        "error": run.error,
        "rows": run.rows,
        "columns": run.columns,
        "decision_detail": run.decision_detail,
        "statements": run.statements,
        "events": events,
    }

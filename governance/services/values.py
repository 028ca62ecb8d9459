"""Turning driver values into JSON-safe cells, keeping NULL distinct from the text 'NULL'."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

MAX_CELL_CHARS = 10_000


def to_json_cell(value: Any, *, whole: bool = False) -> Any:
    """A cell for the results grid and JSON: huge text and binary are shortened for display
    unless `whole` (an export, which is the data itself)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, str):
        # PostgreSQL's jsonb (the app database) cannot hold NUL: show it, do not store it.
        value = value.replace("\x00", "\\x00")
        if whole or len(value) <= MAX_CELL_CHARS:
            return value
        return value[:MAX_CELL_CHARS] + "…"
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if whole:
            return "\\x" + raw.hex()
        return "\\x" + raw[:2048].hex() + ("…" if len(raw) > 2048 else "")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_json_cell(v, whole=whole) for v in value]
    if isinstance(value, dict):
        return {
            to_json_cell(str(k), whole=whole): to_json_cell(v, whole=whole)
            for k, v in value.items()
        }
    return str(value)


def to_csv_cell(value: Any) -> str:
    if value is None:
        return ""
    cell = to_json_cell(value, whole=True)
    return cell if isinstance(cell, str) else str(cell)

"""Turning driver values into JSON-safe cells, keeping NULL distinct from the text 'NULL'."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import unicodedata
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
        return _duration(value)
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


def _duration(value: dt.timedelta) -> str:
    """[-]HH:MM:SS[.ffffff] in whole hours, as MySQL writes a TIME (and PostgreSQL reads an
    interval), never Python's '-1 day, 23:00:00' for minus one hour."""
    sign = "-" if value < dt.timedelta(0) else ""
    micro = abs(value) // dt.timedelta(microseconds=1)
    seconds, micro = divmod(micro, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{micro:06d}" if micro else text


def as_text(cell: Any) -> Any:
    """A stored cell as a person reads it: JSON and arrays as JSON (null, true, double quotes),
    never Python's repr; other cells unchanged."""
    if isinstance(cell, list | dict):
        return json.dumps(cell, ensure_ascii=False)
    return cell


def to_csv_cell(value: Any) -> str:
    if value is None:
        return ""
    cell = as_text(to_json_cell(value, whole=True))
    return cell if isinstance(cell, str) else str(cell)


def printable(text: str) -> str:
    """Control and format characters escaped (\\x1b, \\u202e; a lone \\r shown, then a line
    break): what a requester wrote must not
    drive the approver's terminal (erase or overwrite the statement under review), nor reorder
    what a browser displays (a right-to-left override)."""
    # A carriage return ends a line comment on PostgreSQL: it is shown, and breaks the line,
    # so that what follows it never reads as part of the comment.
    return "".join(
        c
        if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf")
        else "\\r\n"
        if c == "\r"
        else c.encode("unicode_escape").decode("ascii")
        for c in text.replace("\r\n", "\n")
    )

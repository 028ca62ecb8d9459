"""PostgreSQL: a query wrapped so that the server refuses rows too large to fetch (pure Python).

A DataRow arrives whole, so a client-side check sees a 1 GB value only once it is in the
worker's memory. The wrapper makes the server check every row before sending it::

    WITH warden_k AS (SELECT <constants>)
    SELECT w.* FROM warden_k, (SELECT * FROM (
    <query>
    ) AS warden_u OFFSET 0) AS w WHERE CASE WHEN <too large> THEN <fail> ... ELSE true END

``OFFSET 0`` keeps the query a subquery of its own, so its rows are checked once, after its
own WHERE and in its own order, and nothing of it runs twice. A row is refused when it is
larger than one row may be, or (a capped read) when it takes the running total of the rows
so far, kept in a transaction-local setting, past the run's budget, or (exports) when one of
its values is larger than a value may be. ``pg_column_size(ROW(w.*))`` measures the row with
its values decompressed, as they will be sent (their text can be a few times larger: the
client counts that exactly as they arrive). Functions are named in pg_catalog, so that
nothing on the search path can stand in for them.
A refusal is a cast of a sentinel text to integer, so the error carries it (see ``refusal``).

Wrapping text is dangerous: text that is not a query on its own can close the parenthesis
(``TABLE t) AS x CROSS JOIN (SELECT * FROM secret``) and make a different query. The caller
must therefore have the server parse the statement alone first (an unnamed Parse, or a
``DECLARE`` that it ends) and send the wrapper only if that succeeded. Trailing semicolons
and comments, fine alone but not inside parentheses, are cut by ``query_end``, a lexer of
PostgreSQL's strings, identifiers and comments. Should it ever disagree with the server,
the text after the query contains no quote, dollar or comment end, so a cut inside a string
or comment leaves it open to the end: the server refuses the text, nothing runs.
"""

from __future__ import annotations

import re

# What a refusal casts to integer, so that the error says which bound the row passed.
SENTINELS = {
    "warden:too-large-total:": "total",
    "warden:too-large-row:": "row",
    "warden:too-large-cell:": "cell",
}
ROW_VALUES = 16  # a row may be as large as this many values of the largest size


def row_bound(cell_limit: int, run_limit: int) -> int:
    """The largest row the server sends: room for ROW_VALUES values, within the run's budget.

    It keeps what one row becomes in Python (lists of numbers, dicts of JSON: several times
    its size) bounded before the values are counted one by one.
    """
    return min(int(run_limit), ROW_VALUES * int(cell_limit))


_CONSTANTS = (
    "WITH warden_k AS (SELECT 'warden.fetched_bytes'::text AS k, ''::text AS e, '0'::text AS z,"
    " 'warden:too-large-total:'::text AS t, 'warden:too-large-row:'::text AS r,"
    " 'warden:too-large-cell:'::text AS c)\n"
)
PREFIX = _CONSTANTS + "SELECT w.* FROM warden_k, (SELECT * FROM (\n"
_SIZE = "pg_catalog.pg_column_size(ROW(w.*))"
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")


def guarded(
    statement: str,
    *,
    cell_limit: int,
    run_limit: int,
    rows: int | None = None,
    exact_cells: bool = False,
    standard_strings: bool = True,
) -> tuple[str, int]:
    """The wrapped query and the length of what precedes the statement in it.

    Every row larger than ``row_bound`` is refused. ``rows``: at most that many rows are
    fetched, and the row that takes them past ``run_limit`` is refused (a running total is
    only kept of rows over the budget's share of one row, so what is sent stays under twice
    ``run_limit``). ``exact_cells``: every value over ``cell_limit``, measured as text, is
    refused too (rows over a quarter of it are looked into); otherwise the caller counts the
    values as they arrive. Small rows, the common case, cost one measure of their size. The
    statement must already have been parsed alone by the server.
    """
    body = statement[: query_end(statement, standard_strings=standard_strings)]
    cell, run = int(cell_limit), int(run_limit)
    largest = row_bound(cell, run)
    small = cell // 4 if exact_cells else largest
    whens = [f"WHEN {_SIZE} > {largest} THEN {_fail('r')}"]
    if rows is not None:
        small = min(small, run // max(1, rows))
        running = (
            "pg_catalog.set_config(warden_k.k, (coalesce(nullif(pg_catalog.current_setting("
            f"warden_k.k, true), warden_k.e), warden_k.z)::bigint + {_SIZE})::text, true)::bigint"
        )
        whens.append(f"WHEN {running} > {run} THEN {_fail('t')}")
    if exact_cells:
        whens.append(
            "WHEN EXISTS (SELECT FROM pg_catalog.json_each_text(pg_catalog.to_json(w)) AS v"
            f" WHERE pg_catalog.octet_length(v.value) > {cell}) THEN {_fail('c')}"
        )
    suffix = (
        f"\n) AS warden_u OFFSET 0) AS w WHERE CASE WHEN {_SIZE} <= {small} THEN true "
        + " ".join(whens)
        + " ELSE true END"
    )
    return PREFIX + body + suffix, len(PREFIX)


def _fail(sentinel: str) -> str:
    # Not a constant (the row's size is in it), so it is evaluated only for a refused row.
    return f"CAST(warden_k.{sentinel} || {_SIZE} AS integer) = 0"


def refusal(message: str) -> str | None:
    """Which bound a guard's refusal passed ("total", "row" or "cell"), from the error's
    text; None when it is not a refusal."""
    for sentinel, bound in SENTINELS.items():
        if f'"{sentinel}' in message:
            return bound
    return None


def query_end(statement: str, *, standard_strings: bool = True) -> int:
    """The offset just after the statement's last token that is not a semicolon.

    What follows it (semicolons, blanks, comments) may be dropped.

    >>> text = "SELECT 'a;' AS \\"b;\\" /* c; */ ; -- d;"
    >>> text[: query_end(text)]
    'SELECT \\'a;\\' AS "b;"'
    """
    if ";" not in statement:
        return len(statement)  # a trailing comment is ended by the newline after it
    i, n, end = 0, len(statement), 0
    while i < n:
        char = statement[i]
        if char.isspace() or char == ";":
            i += 1
            continue
        if statement.startswith("--", i):
            newline = statement.find("\n", i)
            i = n if newline < 0 else newline + 1
            continue
        if statement.startswith("/*", i):
            i = _comment_end(statement, i)
            continue
        if char == "'":
            escapes = not standard_strings or _escape_prefix(statement, i)
            i = _quoted_end(statement, i, "'", escapes)
        elif char == '"':
            i = _quoted_end(statement, i, '"', False)
        elif char == "$" and not _in_word(statement, i) and _DOLLAR_TAG.match(statement, i):
            i = _dollar_end(statement, i)
        else:
            i += 1
        end = i
    return min(end, n)


def _dollar_end(text: str, i: int) -> int:
    tag = _DOLLAR_TAG.match(text, i)
    assert tag is not None
    close = text.find(tag.group(0), tag.end())
    return len(text) if close < 0 else close + len(tag.group(0))


def _comment_end(text: str, i: int) -> int:
    depth, i = 1, i + 2
    while i < len(text) and depth:
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _quoted_end(text: str, i: int, quote: str, escapes: bool) -> int:
    i += 1
    while i < len(text):
        char = text[i]
        if escapes and char == "\\":
            i += 2
            continue
        if char == quote:
            if text.startswith(quote, i + 1):  # doubled: still inside
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)


def _in_word(text: str, i: int) -> bool:
    """Whether the character before ``i`` continues an identifier or a number."""
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_$")


def _escape_prefix(text: str, i: int) -> bool:
    """E'…' (backslash escapes): an E right before the quote, starting a token of its own."""
    return i > 0 and text[i - 1] in "eE" and not _in_word(text, i - 1)

"""Impact preview of held writes: the parts the drivers share (pure Python, no I/O).

Before an approver decides on a held write, the driver tells how many rows it would change:
it runs the batch's plain writes (INSERT, UPDATE, DELETE, MERGE) in a transaction that is
always rolled back, or asks the planner where a rollback would not undo them. Nothing else is
ever run ahead of time: schema changes take strong locks (PostgreSQL) or commit implicitly
(MySQL), and transaction control could make a dry run stick.

The caller says which statements are plain writes (``dml``, from its own parse); the driver
checks the statement's first word as well, so a mistake there cannot run a COMMIT. The
statements are previewed in order up to the first one that is not a plain write: what comes
after it may depend on its effect. A caller should pass False for a write that calls a
function outside its known-safe catalogue: a stored function can reach what a rollback does
not (a MyISAM table, dblink, a session-level advisory lock).

A dry run is not entirely free of side effects: sequences / AUTO_INCREMENT counters advance,
and rows it changes stay locked until the rollback (at most ``timeout_ms``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .base import Preview, TargetError, check_statements, first_keyword, own_error

PLAIN_WRITES = frozenset({"insert", "update", "delete", "merge", "replace", "with"})
DRY_RUN_NOTE = (
    "Ran inside a transaction that was rolled back: no row was changed (sequence and "
    "AUTO_INCREMENT counters may have moved on)."
)
ONLY_PLAIN_WRITES = "Only plain INSERT, UPDATE, DELETE and MERGE statements are tried beforehand."


def plan(
    statements: Sequence[str], dml: Sequence[bool], *, executable_comments: bool = False
) -> tuple[list[str], int]:
    """The statements, and how many of them (from the first) may be previewed.

    ``executable_comments``: MySQL runs the text of ``/*! … */`` comments, so a statement
    holding one is never previewed there.
    """
    try:
        items = check_statements(statements, 0)
    except TargetError as exc:
        raise ValueError(exc.message) from None
    if isinstance(dml, str) or len(dml) != len(items):
        raise ValueError("dml must hold one flag per statement")
    count = 0
    for statement, flag in zip(items, dml, strict=True):
        if not flag or first_keyword(statement) not in PLAIN_WRITES:
            break
        if executable_comments and ("/*!" in statement or "/*M!" in statement.upper()):
            break
        count += 1
    return items, count


class Budget:
    """One time limit for the whole preview, handed out statement by statement."""

    def __init__(self, timeout_ms: int) -> None:
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be > 0")
        self._end = time.monotonic() + timeout_ms / 1000

    def remaining_ms(self) -> int:
        """Milliseconds left; raises TargetError("timeout") once none are."""
        left = int((self._end - time.monotonic()) * 1000)
        if left <= 0:
            raise own_error("timeout", "the preview ran out of time")
        return left


def try_statements(
    items: Sequence[str],
    count: int,
    *,
    start: Callable[[], str | None],
    step: Callable[[int, str, bool], int | None],
    rollback: Callable[[], None],
    db_error: type[BaseException],
    map_error: Callable[[Any], TargetError],
) -> Preview:
    """Preview the first ``count`` of ``items``, one driver's way, and always roll back.

    ``start`` opens the transaction and says why a dry run must not happen (None: it may);
    ``step(index, statement, dry_run)`` runs the statement or asks the planner, and returns
    its rows. The error of a preview that stopped says at which statement.
    """
    rows: list[int | None] = [None] * len(items)
    current: int | None = None  # the statement being tried
    method, note = "none", "The preview could not start; nothing was run."
    error: TargetError | None = None
    try:
        obstacle = start()
        if obstacle is None:
            method, note = "dry_run", DRY_RUN_NOTE
        else:
            method = "explain"
            note = f"{obstacle}, so nothing was run: these are the planner's estimates."
        for current, statement in enumerate(items[:count]):
            rows[current] = step(current, statement, method == "dry_run")
    except TargetError as exc:
        error = exc
    except db_error as exc:
        error = map_error(exc)
    finally:
        rollback()
    if error is not None and current is not None:
        rows[current] = None
        error.at(current)
    return outcome(method, rows, count, note, error)


def not_previewed(count: int, why: str) -> Preview:
    return Preview("none", (None,) * count, False, f"Not previewed. {ONLY_PLAIN_WRITES} {why}")


def outcome(
    method: str,
    rows: Sequence[int | None],
    previewed: int,
    note: str,
    error: TargetError | None = None,
) -> Preview:
    """The Preview of a run that tried the first ``previewed`` statements of ``rows``.

    ``error`` (with the index of the statement where it stopped) is kept as it is: its
    message may quote data, so the note never includes it and callers choose what to show.
    """
    parts = [note]
    if previewed < len(rows):
        parts.append(
            f"Statement {previewed + 1} is not a plain write, so it and the statements after it"
            " were not tried."
        )
    if error is not None and error.statement is not None:
        parts.append(f"The preview stopped at statement {error.statement + 1}.")
    return Preview(method, tuple(rows), method == "explain", " ".join(parts), error)

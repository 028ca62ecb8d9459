"""Which columns a statement touches: what approvers see in an impact preview."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

MAX_COLUMNS = 50


def columns_touched(sql: str, dialect: str) -> tuple[str, ...]:
    """Columns a single statement reads or writes, `table.column` where the table is known.

    Written columns come first (UPDATE ... SET targets, INSERT column lists). Best effort for
    display only: unreadable SQL gives an empty tuple, never an error.
    """
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except SqlglotError:
        return ()
    if tree is None:
        return ()
    aliases = {t.alias_or_name.lower(): t.name.lower() for t in tree.find_all(exp.Table) if t.name}
    written: dict[str, None] = {}
    targets: set[int] = set()
    target = tree.args.get("this")
    target_name = target.name.lower() if isinstance(target, exp.Table) else ""
    if isinstance(tree, exp.Update):
        for assignment in tree.expressions:
            if isinstance(assignment, exp.EQ) and isinstance(assignment.this, exp.Column):
                written[_qualified(assignment.this, aliases, target_name)] = None
                targets.add(id(assignment.this))
    if isinstance(tree, exp.Insert) and isinstance(target, exp.Schema):
        name = target.this.name.lower() if isinstance(target.this, exp.Table) else ""
        for column in target.expressions:
            written[f"{name}.{column.name.lower()}" if name else column.name.lower()] = None
    seen = dict(written)
    for column in tree.find_all(exp.Column):
        if id(column) in targets:
            continue
        seen[_qualified(column, aliases, target_name if len(aliases) == 1 else "")] = None
    return tuple(list(seen)[:MAX_COLUMNS])


def _qualified(column: exp.Column, aliases: dict[str, str], default: str) -> str:
    name = "*" if isinstance(column.this, exp.Star) else column.name.lower()
    table = aliases.get(column.table.lower(), column.table.lower()) if column.table else default
    return f"{table}.{name}" if table else name

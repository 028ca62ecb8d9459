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


def columns_written(sql: str, dialect: str) -> tuple[frozenset[tuple[str, str]], bool]:
    """(table, column) pairs a single write stores values into, lower-case, the table as the
    statement names it (schema-qualified if it was); column ``*`` when the statement writes or
    removes whole rows (an INSERT without a column list, DELETE, MERGE, REPLACE). The flag says
    whether rows are removed. Unreadable SQL gives ``{("?", "*")}``: the record of who touched
    what errs towards more, never less."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except SqlglotError:
        return frozenset({("?", "*")}), False
    if tree is None:
        return frozenset({("?", "*")}), False
    written: set[tuple[str, str]] = set()
    target = tree.args.get("this")
    table = target.this if isinstance(target, exp.Schema) else target
    name = _table_name(table) if isinstance(table, exp.Table) else "?"
    if isinstance(tree, exp.Update):
        for assignment in tree.expressions:
            column = assignment.this if isinstance(assignment, exp.EQ) else None
            if isinstance(column, exp.Column):
                written.add((name, column.name.lower()))
            else:
                written.add((name, "*"))
        return frozenset(written or {(name, "*")}), False
    if isinstance(tree, exp.Insert):
        if isinstance(target, exp.Schema) and target.expressions:
            return frozenset((name, c.name.lower()) for c in target.expressions), False
        return frozenset({(name, "*")}), False
    if isinstance(tree, exp.Delete):
        return frozenset({(name, "*")}), True
    if isinstance(tree, exp.Merge):
        return frozenset({(name, "*")}), True
    return frozenset({(name, "*")}), False


def _table_name(table: exp.Table) -> str:
    return f"{table.db}.{table.name}".lower() if table.db else table.name.lower()

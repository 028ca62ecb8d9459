"""Inference probes (restricted columns used in predicates) and sensitive-column touches."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from .lineage import LineageError, Trace, Tracer
from .types import RESTRICTED_TYPES, MaskingPolicy

# Anywhere a value decides which rows, how many rows, or which branch: an inference channel.
_CLAUSES = (
    exp.Where,
    exp.Having,
    exp.Order,
    exp.Group,
    exp.Qualify,
    exp.Limit,
    exp.Offset,
    exp.Fetch,
    exp.If,
    exp.Filter,
)


def in_clause(column: exp.Column) -> bool:
    child: exp.Expr = column
    node = column.parent
    while node is not None:
        if isinstance(node, _CLAUSES):
            return True
        if isinstance(node, exp.Join):
            return child.arg_key in ("on", "using")
        if isinstance(node, exp.From):
            return False
        child, node = node, node.parent
    return False


def probes_and_touch(
    tree: exp.Expr, tracer: Tracer, policy: MaskingPolicy
) -> tuple[tuple[tuple[str, str], ...], bool]:
    scopes: dict[int, Scope] = {id(s.expression): s for s in tracer.root.traverse()}
    probes: set[tuple[str, str]] = set()
    touched = False
    for column in tree.find_all(exp.Column):
        holder = column.parent
        while holder is not None and id(holder) not in scopes:
            holder = holder.parent
        if holder is None or isinstance(column.this, exp.Star):
            continue
        scope = scopes[id(holder)]
        try:
            if column.table:
                trace = tracer.column(column, scope)
            else:
                select = scope.expression
                named = [
                    p for p in getattr(select, "expressions", []) if p.alias_or_name == column.name
                ]
                trace = tracer.expr(named[0].unalias(), scope) if named else Trace()
        except LineageError:
            continue
        for db, table, name in trace.sources | trace.counted:
            rule = policy.rule_for(table, name, db)
            if rule is None:
                continue
            touched = True
            if rule.semantic_type in RESTRICTED_TYPES and in_clause(column):
                probes.add((table, name))
    return tuple(sorted(probes)), touched

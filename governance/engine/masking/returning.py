"""``mask_write``: what a write returns (``RETURNING``) is masked like a read.

``UPDATE customers SET city = 'x' WHERE id = 1 RETURNING email`` reveals the email as surely
as a SELECT would. The RETURNING list is traced as ``SELECT <list> FROM <written table>
[, <FROM / USING tables>]``, masked by ``mask_select``, and spliced back in place of the
original list: the write itself runs exactly as written, never regenerated. Values returned
from inside a data-modifying CTE cannot be traced that way, so such statements are held when
they touch protected tables.

``sample_changes`` adds ``RETURNING *`` (masked the same way) to a plain write, so the person
who ran it sees a sample of the rows it changed.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from .fallback import held_result
from .functions import normalize_dialect
from .guards import names_in_text, ruled_names, table_use
from .probes import Probe
from .rewrite import mask_select
from .types import MaskingPolicy, MaskResult

_WRITES = (exp.Update, exp.Delete, exp.Insert)


def mask_write(sql: str, dialect: str, policy: MaskingPolicy) -> MaskResult | None:
    """The write with its RETURNING list masked; None when it returns no rows. Never raises."""
    try:
        return _mask_write(sql, normalize_dialect(dialect), policy)
    except Exception as exc:  # fail closed on anything unexpected
        return held_result(
            f"Warden could not analyse what this statement returns ({type(exc).__name__})."
        )


def _mask_write(sql: str, dialect: str, policy: MaskingPolicy) -> MaskResult | None:
    if not policy.rules:
        return None
    statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    if len(statements) != 1:
        return held_result("Masking applies to exactly one statement at a time.")
    tree = statements[0]
    if isinstance(tree, exp.Command):
        named = names_in_text(sql, dialect, ruled_names(policy))
        if named:
            return held_result(
                f"Warden cannot fully parse this {tree.name.upper()} statement, so it cannot "
                f"tell what it copies or returns from {', '.join(named)}, which hold sensitive "
                "columns; it is refused. Write it as a plain INSERT, UPDATE or DELETE."
            )
        return None
    returning = tree.args.get("returning") if isinstance(tree, _WRITES) else None
    nested = [r for r in tree.find_all(exp.Returning) if r is not returning]
    if nested:
        use = table_use(tree, dialect, policy)
        if use.ruled or use.unknown:
            return held_result(
                "Values returned from inside a data-modifying WITH clause cannot be masked; "
                "this statement touches protected tables. Return only from the outer statement."
            )
    if returning is None:
        return None
    probe = _as_select(tree, returning)
    if probe is None:
        return held_result("Warden cannot tell which table this RETURNING clause reads.")
    result = mask_select(probe.sql(dialect=dialect), dialect, policy)
    if result.held:
        return result
    if not any(c.masked for c in result.columns):
        return MaskResult(sql, result.columns, result.touches_sensitive, False, None, ())
    rewritten = sqlglot.parse_one(result.sql, read=dialect)
    if result.conservative or not isinstance(rewritten, exp.Select) or rewritten.args.get("with"):
        return held_result(
            "Warden could not trace every column this RETURNING clause reveals; return only "
            "plain columns of the written table."
        )
    start = _returning_start(sql, dialect)
    if start is None:
        return held_result("Warden cannot tell where this statement's RETURNING clause starts.")
    listed = ", ".join(p.sql(dialect=dialect) for p in rewritten.expressions)
    returned = f"{sql[:start]}RETURNING {listed}"
    return MaskResult(returned, result.columns, True, False, None, (), result.keyed)


def sample_changes(sql: str, dialect: str, policy: MaskingPolicy) -> MaskResult | None:
    """``sql`` (one plain INSERT, UPDATE or DELETE) returning the rows it changes, masked.

    None when no sample can be added safely: other dialects (MySQL has no RETURNING), writes
    that already return, clauses that must follow RETURNING (``ORDER BY``/``LIMIT``), or
    anything that cannot be masked exactly.
    """
    try:
        dialect = normalize_dialect(dialect)
        if dialect not in ("postgres", "sqlite"):
            return None
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
        if len(statements) != 1 or not isinstance(statements[0], _WRITES):
            return None
        tree = statements[0]
        if any(tree.args.get(k) for k in ("order", "limit", "with", "with_")):
            return None
        if next(tree.find_all(exp.Returning), None) is not None:
            return None
        candidate = f"{sql.rstrip().rstrip(';').rstrip()}\nRETURNING *"
        check = sqlglot.parse(candidate, read=dialect)
        if len(check) != 1 or not _same_write(tree, check[0], dialect):
            return None
        if not policy.rules:
            return MaskResult(candidate, (), False, False, None, ())
        result = _mask_write(candidate, dialect, policy)
        if result is None or result.held or result.conservative:
            return None
        return result
    except Exception:
        return None  # no sample rather than a guess


def _same_write(original: exp.Expr, candidate: exp.Expr | None, dialect: str) -> bool:
    """The candidate is the original write plus ``RETURNING *``, and nothing else."""
    if candidate is None or not isinstance(candidate.args.get("returning"), exp.Returning):
        return False
    stripped = candidate.copy()
    stripped.set("returning", None)
    return stripped.sql(dialect=dialect) == original.sql(dialect=dialect)


def _returning_start(sql: str, dialect: str) -> int | None:
    """Offset of the statement's own RETURNING keyword (outside any parentheses)."""
    depth, found = 0, None
    for token in sqlglot.tokenize(sql, read=dialect):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        elif token.token_type == TokenType.RETURNING and depth == 0:
            found = token.start
    return found


def _as_select(tree: exp.Expr, returning: exp.Returning) -> exp.Select | None:
    """``SELECT <returning list> FROM <written table>, <other tables of the write>``."""
    target = tree.this
    if isinstance(target, exp.Schema):  # INSERT INTO t (a, b)
        target = target.this
    if not isinstance(target, exp.Table):
        return None
    select = exp.Select(expressions=[e.copy() for e in returning.expressions])
    select = select.from_(target.copy())
    others: list[exp.Expr] = []
    source = tree.args.get("from_") or tree.args.get("from")
    if isinstance(source, exp.From):
        others = [source.this, *source.expressions]
    using = tree.args.get("using")
    if isinstance(using, list):
        others += using
    for table in others:
        select = select.join(table.copy())
    for join in tree.args.get("joins") or []:
        select = select.join(join.copy())
    return select


def write_probes(sql: str, dialect: str, policy: MaskingPolicy) -> tuple[Probe, ...]:
    """Inference probes of a write, and the sensitive values it copies. Never raises.

    A write says how many rows it changed, so its WHERE is as much an oracle as a read's; and a
    value it stores (``UPDATE customers SET city = ssn``, ``INSERT … SELECT email``) can be
    read back from a column that is not masked, so every sensitive value a write stores is a
    ``copy`` probe, held for an approver whatever the environment.
    """
    try:
        dialect = normalize_dialect(dialect)
        if not policy.rules:
            return ()
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
        if len(statements) != 1 or isinstance(statements[0], exp.Command):
            return ()  # several statements or a command: mask_write refuses what it must
        tree = statements[0]
        if isinstance(tree, exp.Merge):
            use = table_use(tree, dialect, policy)
            return tuple(
                Probe(table, "*", "copy", "a MERGE, which Warden does not trace", True)
                for table in sorted(use.ruled | use.unknown)
            )
        found: set[Probe] = set()
        for query, copies in _probe_queries(tree):
            result = mask_select(query.sql(dialect=dialect), dialect, policy)
            if result.held:
                use = table_use(tree, dialect, policy)
                names = sorted(use.ruled | use.unknown) or ["?"]
                return tuple(
                    Probe(t, "*", "copy", "a write Warden cannot trace", True) for t in names
                )
            found.update(result.probes)
            if not copies:
                continue
            for column in result.columns:
                for table, name in column.sources:
                    if policy.rule_for(table, name) is not None:
                        found.add(Probe(table, name, "copy", "the values the write stores", True))
        return tuple(sorted(found))
    except Exception:  # fail closed: an approver looks at what Warden cannot read
        return (Probe("?", "*", "copy", "a write Warden could not analyse", True),)


def _probe_queries(tree: exp.Expr) -> list[tuple[exp.Query, bool]]:
    """Queries equivalent to what a write reads: (query, whether its select list is stored)."""
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    with_ = tree.args.get("with_") or tree.args.get("with")
    queries: list[tuple[exp.Query, bool]] = []

    def reading(expressions: list[exp.Expr], where: exp.Expr | None) -> exp.Select:
        select = exp.Select(expressions=[e.copy() for e in expressions] or [exp.Literal.number(1)])
        if isinstance(target, exp.Table):
            select = select.from_(target.copy())
        source = tree.args.get("from_") or tree.args.get("from")
        if isinstance(source, exp.From):
            for table in [source.this, *source.expressions]:
                select = select.join(table.copy())
        for table in tree.args.get("using") or []:
            select = select.join(table.copy())
        for join in tree.args.get("joins") or []:
            select = select.join(join.copy())
        if where is not None:
            select.set("where", where.copy())
        if with_ is not None:
            select.set("with_", with_.copy())
        return select

    if isinstance(tree, exp.Update):
        values = [e.expression for e in tree.expressions if isinstance(e, exp.EQ)]
        queries.append((reading(values, tree.args.get("where")), True))
    elif isinstance(tree, exp.Delete):
        queries.append((reading([], tree.args.get("where")), False))
    elif isinstance(tree, exp.Insert):
        source = tree.expression
        if isinstance(source, exp.Values):
            for row in source.expressions:
                items = row.expressions if isinstance(row, exp.Tuple) else [row]
                select = exp.Select(expressions=[e.copy() for e in items])
                if with_ is not None:
                    select.set("with_", with_.copy())
                queries.append((select, True))
        elif isinstance(source, exp.Query):
            query = source.copy()
            if with_ is not None and not query.args.get("with_"):
                query.set("with_", with_.copy())
            queries.append((query, True))
        conflict = tree.args.get("conflict")
        if isinstance(conflict, exp.OnConflict):
            updates = [e.expression for e in conflict.args.get("expressions") or []]
            if updates:
                queries.append((reading(updates, conflict.args.get("where")), True))
    return queries

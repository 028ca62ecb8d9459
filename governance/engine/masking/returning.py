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

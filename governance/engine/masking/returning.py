"""``mask_write``: what a write returns (``RETURNING``) is masked like a read.

``UPDATE customers SET city = 'x' WHERE id = 1 RETURNING email`` reveals the email as surely
as a SELECT would. The RETURNING list is traced as ``SELECT <list> FROM <written table>
[, <FROM / USING tables>]``, masked by ``mask_select``, and put back. Values returned from inside
a data-modifying CTE cannot be traced that way, so such statements are held when they touch
protected tables.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from .fallback import held_result
from .functions import normalize_dialect
from .guards import table_use
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
    masked = tree.copy()
    masked.set("returning", exp.Returning(expressions=rewritten.expressions))
    return MaskResult(masked.sql(dialect=dialect), result.columns, True, False, None, ())


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

"""Helpers shared by the rewriter: held results, projection names, conservative masking."""

from __future__ import annotations

from sqlglot import exp

from .functions import mask_expression
from .probes import Probe
from .types import MaskResult, OutputColumn, Strategy

WRAPPER = "warden_q"


def held_result(sentence: str, *, conservative: bool = False) -> MaskResult:
    return MaskResult("", (), True, conservative, sentence, ())


def bare(projection: exp.Expr) -> exp.Expr:
    """The projection's value without its alias (qualify aliases subqueries in place)."""
    node = projection.unalias()
    if isinstance(node, exp.Subquery) and node.alias:
        node = node.copy()
        node.set("alias", None)
    return node


def natural_name(node: exp.Expr, dialect: str) -> str:
    if isinstance(node, exp.Column):
        return node.name
    if dialect == "postgres":
        if isinstance(node, exp.Func):
            return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        return "?column?"
    return node.sql(dialect=dialect)


def plain_columns(tree: exp.Expr) -> tuple[OutputColumn, ...]:
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.left
    if not isinstance(select, exp.Select):
        return ()
    return tuple(
        OutputColumn(p.alias_or_name or "?column?", (), False, None, None, "no sensitive table")
        for p in select.expressions
    )


def given_name(projection: exp.Expr) -> str:
    if isinstance(projection, exp.Alias):
        return projection.alias
    if isinstance(projection, exp.Column):
        return projection.name
    return ""


def _safe_conservatively(node: exp.Expr) -> bool:
    node = node.unalias()
    if isinstance(node, exp.Count):
        arg = node.this
        return arg is None or isinstance(arg, exp.Star | exp.Column)
    return isinstance(node, exp.Literal) and not node.is_string


def conservative_result(
    tree: exp.Expr,
    dialect: str,
    why: str,
    probes: tuple[Probe, ...] = (),
    *,
    refusal: str = "",
) -> MaskResult:
    """Every output redacted (names still resolved by the database), every restricted column
    named anywhere a probe; statements that cannot be redacted column by column are held
    (with ``refusal`` when given)."""
    held = refusal or (
        f"Warden could not trace which columns this statement reveals ({why}) and cannot "
        "mask it safely; name the columns explicitly and use tables known to the catalogue."
    )
    if not isinstance(tree, exp.Select | exp.SetOperation):
        return held_result(held, conservative=True)
    first: exp.Expr = tree
    while isinstance(first, exp.SetOperation):
        first = first.left
    if not isinstance(first, exp.Select) or any(
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
        for p in first.expressions
    ):
        return held_result(held, conservative=True)
    reason = f"lineage could not be traced ({why}): masked conservatively"
    columns: list[OutputColumn] = []
    redact = Strategy.REDACT
    if isinstance(tree, exp.Select):
        query = tree.copy()
        new: list[exp.Expr] = []
        for projection in query.expressions:
            name = given_name(projection) or natural_name(bare(projection), dialect)
            if _safe_conservatively(projection):
                new.append(projection)
                columns.append(
                    OutputColumn(name, (), False, None, None, "count() reveals no values")
                )
                continue
            masked = mask_expression(projection.unalias(), "secret", redact, dialect)
            new.append(exp.alias_(masked, name, quoted=True))
            columns.append(OutputColumn(name, (), True, "redact", None, reason))
        query.set("expressions", new)
        return MaskResult(query.sql(dialect=dialect), tuple(columns), True, True, None, probes)
    names = [f"warden_c{i}" for i in range(len(first.expressions))]
    projections: list[exp.Expr] = []
    for index, projection in enumerate(first.expressions):
        name = given_name(projection) or natural_name(bare(projection), dialect)
        ref = exp.column(names[index], quoted=True)
        masked = mask_expression(ref, "secret", redact, dialect)
        projections.append(exp.alias_(masked, name, quoted=True))
        columns.append(OutputColumn(name, (), True, "redact", None, reason))
    cte = exp.CTE(
        this=tree.copy(),
        alias=exp.TableAlias(
            this=exp.to_identifier(WRAPPER, quoted=True),
            columns=[exp.to_identifier(n, quoted=True) for n in names],
        ),
    )
    wrapper = exp.select(*projections).from_(
        exp.Table(this=exp.to_identifier(WRAPPER, quoted=True))
    )
    wrapper.set("with_", exp.With(expressions=[cte]))
    return MaskResult(wrapper.sql(dialect=dialect), tuple(columns), True, True, None, probes)

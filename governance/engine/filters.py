"""Does a WHERE clause actually narrow down the rows a write touches?"""

from __future__ import annotations

from sqlglot import exp

_ALWAYS_FOR_SAME_SIDES: dict[type[exp.Expr], bool] = {
    exp.EQ: True,
    exp.NullSafeEQ: True,
    exp.GTE: True,
    exp.LTE: True,
    exp.NEQ: False,
    exp.GT: False,
    exp.LT: False,
}


def _unwrap(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _is_constant(node: exp.Expr) -> bool:
    """No column and no subquery: the value is the same for every row."""
    return not any(isinstance(n, exp.Column | exp.Query) for n in node.walk())


def _literal_value(node: exp.Expr) -> float | str | None:
    node = _unwrap(node)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        try:
            return float(node.this)
        except ValueError:
            return None
    return None


def _compare_literals(node: exp.Binary) -> bool | None:
    left, right = _literal_value(node.this), _literal_value(node.expression)
    if left is None or right is None or type(left) is not type(right):
        return None
    ops = {
        exp.EQ: lambda a, b: a == b,
        exp.NEQ: lambda a, b: a != b,
        exp.GT: lambda a, b: a > b,
        exp.GTE: lambda a, b: a >= b,
        exp.LT: lambda a, b: a < b,
        exp.LTE: lambda a, b: a <= b,
    }
    op = ops.get(type(node))
    return None if op is None else bool(op(left, right))


def truth(node: exp.Expr) -> bool | None:
    """True when a condition holds for every row, False when for none, None when it filters.

    >>> from sqlglot import parse_one
    >>> truth(parse_one("x > 0 OR 1 = 1"))
    True
    >>> truth(parse_one("id = 5")) is None
    True
    """
    node = _unwrap(node)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Not):
        inner = truth(node.this)
        return None if inner is None else not inner
    if isinstance(node, exp.And):
        parts = [truth(node.this), truth(node.expression)]
        if False in parts:
            return False
        return True if parts == [True, True] else None
    if isinstance(node, exp.Or):
        parts = [truth(node.this), truth(node.expression)]
        if True in parts:
            return True
        return False if parts == [False, False] else None
    if isinstance(node, exp.Binary) and type(node) in _ALWAYS_FOR_SAME_SIDES:
        compared = _compare_literals(node)
        if compared is not None:
            return compared
        if node.this == node.expression and not any(
            isinstance(n, exp.Func) for n in node.this.walk()
        ):
            return _ALWAYS_FOR_SAME_SIDES[type(node)]
    if _is_constant(node):
        # Constant conditions (WHERE 1, WHERE 'a' IN ('a'), WHERE $1) select all rows or none.
        return True
    return None


def is_unfiltered(where: exp.Expr | None) -> bool:
    """No WHERE, or a WHERE that every row satisfies (WHERE 1=1, WHERE x=x, ... OR TRUE)."""
    if where is None:
        return True
    condition = where.this if isinstance(where, exp.Where) else where
    return truth(condition) is True

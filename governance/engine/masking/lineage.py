"""Column lineage over a *qualified* sqlglot tree, using sqlglot's scopes.

``trace_outputs`` says, for each projection of the outermost query, which base columns feed
its value, whether it is a plain passthrough of them ("direct") and, if not, how it was
derived. Columns only counted (``count(x)``) are kept apart: counting reveals no values.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, build_scope

Source = tuple[str, str, str]  # (db, table, column); db may be ""

_EMPTY: frozenset[Source] = frozenset()


class LineageError(Exception):
    """The tree holds a construct whose lineage cannot be traced."""


@dataclass(frozen=True)
class Trace:
    sources: frozenset[Source] = _EMPTY
    counted: frozenset[Source] = _EMPTY
    direct: bool = False
    how: str = ""
    unknown: bool = False
    # The value shares a set-operation position with rows that do not come from the same
    # columns (literals, generated rows, other columns): sorting or grouping on it compares
    # the sensitive value with values of the caller's choosing.
    mixed: bool = False

    def derived(self, how: str) -> Trace:
        if not self.sources:
            return Trace(counted=self.counted, unknown=self.unknown, mixed=self.mixed)
        return Trace(self.sources, self.counted, False, self.how or how, self.unknown, self.mixed)


_CONSTANT = Trace()


def combine(traces: list[Trace], how: str, *, direct: bool = False) -> Trace:
    sources = frozenset().union(*(t.sources for t in traces)) if traces else _EMPTY
    counted = frozenset().union(*(t.counted for t in traces)) if traces else _EMPTY
    unknown = any(t.unknown for t in traces)
    mixed = any(t.mixed for t in traces)
    if direct and traces and all(t.direct or not t.sources for t in traces) and sources:
        return Trace(sources, counted, True, "", unknown, mixed)
    inner = next((t.how for t in traces if t.how and t.sources), "")
    return Trace(sources, counted, False, (how or inner) if sources else "", unknown, mixed)


def describe(node: exp.Expr) -> str:
    """A short human description of how ``node`` transforms its inputs."""
    if isinstance(node, exp.DPipe | exp.Concat | exp.ConcatWs):
        return "concatenation"
    if isinstance(node, exp.Cast | exp.TryCast):
        return "cast"
    if isinstance(node, exp.Case | exp.If):
        return "CASE expression"
    if isinstance(node, exp.Coalesce):
        return "COALESCE"
    if isinstance(node, exp.Window):
        return "window function"
    if isinstance(node, exp.Binary):
        return "arithmetic or comparison"
    if isinstance(node, exp.Subquery | exp.Exists):
        return "subquery"
    if isinstance(node, exp.Func):
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        kind = "aggregate" if isinstance(node, exp.AggFunc) else "function"
        return f"{kind} {name.lower()}()"
    return f"{type(node).__name__.lower()} expression"


class Tracer:
    """Memoised lineage over the scopes of one qualified statement."""

    def __init__(self, tree: exp.Expr) -> None:
        root = build_scope(tree)
        if root is None:
            raise LineageError("no query scope")
        self.root: Scope = root
        self._memo: dict[tuple[int, int], Trace] = {}
        self._active: set[tuple[int, int]] = set()
        self._by_expression: dict[int, Scope] = {}
        for scope in root.traverse():
            self._by_expression.setdefault(id(scope.expression), scope)

    # -- outputs of a scope --------------------------------------------------------------

    def outputs(self) -> list[tuple[exp.Expr, Trace]]:
        """(projection, trace) for each output of the outermost query."""
        query = self.root.expression
        if isinstance(query, exp.Select):
            return [(p, self.expr(p.unalias(), self.root)) for p in query.expressions]
        if isinstance(query, exp.SetOperation):
            first = _leftmost(query)
            return [(p, self.position(self.root, i)) for i, p in enumerate(first.expressions)]
        raise LineageError(f"unsupported top-level {type(query).__name__}")

    def position(self, scope: Scope, index: int) -> Trace:
        key = (id(scope), index)
        if key in self._memo:
            return self._memo[key]
        if key in self._active:  # recursive CTE: the self-reference adds nothing new
            return Trace(direct=True)
        self._active.add(key)
        try:
            result = self._position(scope, index)
        finally:
            self._active.discard(key)
        self._memo[key] = result
        return result

    def _position(self, scope: Scope, index: int) -> Trace:
        query = scope.expression
        if isinstance(query, exp.Subquery):
            query = query.unnest()
        if isinstance(query, exp.Select):
            if index >= len(query.expressions):
                raise LineageError("projection index out of range")
            return self.expr(query.expressions[index].unalias(), scope)
        if isinstance(query, exp.SetOperation):
            branches = [
                self._branch_scope(scope, query.left),
                self._branch_scope(scope, query.right),
            ]
            traces = [self.position(branch, index) for branch in branches]
            sources = [t.sources for t in traces]
            if any(sources) and any(s != sources[0] for s in sources):
                # A literal in another branch would be masked like the column, so the mask
                # (a pseudonym) would answer for values of the caller's choosing; and sorting
                # or grouping the position compares the value with those other values.
                mixed = combine(traces, "set operation mixing the column with other values")
                return Trace(mixed.sources, mixed.counted, False, mixed.how, mixed.unknown, True)
            return combine(traces, "", direct=True)
        raise LineageError(f"cannot trace outputs of {type(query).__name__}")

    def _branch_scope(self, scope: Scope, branch: exp.Expr) -> Scope:
        node = branch.unnest() if isinstance(branch, exp.Subquery) else branch
        for child in scope.set_operation_scopes:
            if child.expression is node or child.expression is branch:
                return child
        found = self._by_expression.get(id(node))
        if found is None:
            raise LineageError("set operation branch without scope")
        return found

    def named(self, scope: Scope, name: str) -> Trace:
        query = scope.expression
        if isinstance(query, exp.Subquery):
            query = query.unnest()
        if isinstance(query, exp.SetOperation):
            query = _leftmost(query)
        if isinstance(query, exp.Select):
            indexes = [i for i, p in enumerate(query.expressions) if p.alias_or_name == name]
            if not indexes:
                raise LineageError(f"column {name!r} not found in derived table")
            if len(indexes) > 1:
                # Several outputs with one name (SQLite allows it; `t.name` reads the first):
                # which one is read is the server's choice, so the value is mixed (redacted),
                # never a direct reference a pseudonym could be applied to.
                how = "one of several outputs of the same name"
                merged = combine([self.position(scope, i) for i in indexes], how)
                return Trace(
                    merged.sources,
                    merged.counted,
                    False,
                    how if merged.sources else "",
                    merged.unknown,
                    True,
                )
            return combine([self.position(scope, i) for i in indexes], "", direct=True)
        if isinstance(query, exp.Lateral) and isinstance(query.this, exp.Subquery):
            inner = self._by_expression.get(id(query.this.unnest()))
            if inner is not None:
                return self.named(inner, name)
        # LATERAL / UNNEST / table functions: every column inside feeds every output
        return self._opaque(scope.expression, scope)

    def _opaque(self, node: exp.Expr, scope: Scope) -> Trace:
        traces: list[Trace] = []
        for child in scope.sources.values():
            if isinstance(child, Scope) and _inside(child.expression, node):
                traces.extend(self.position(child, i) for i in range(_width(child)))
        for column in node.find_all(exp.Column):
            traces.append(self.column(column, scope))
        return combine(traces, describe(node)).derived(describe(node))

    # -- expressions ----------------------------------------------------------------------

    def column(self, column: exp.Column, scope: Scope) -> Trace:
        if isinstance(column.this, exp.Star):
            raise LineageError("whole-row reference")
        table = column.table
        holder: Scope | None = scope
        while holder is not None:
            source = holder.sources.get(table)
            if source is not None:
                break
            holder = holder.parent
        else:
            raise LineageError(f"cannot resolve column {column.sql()}")
        if isinstance(source, exp.Table):
            if isinstance(source.this, exp.Identifier):
                return Trace(frozenset({(source.db, source.name, column.name)}), direct=True)
            return self._opaque(source, holder)
        # recursive CTEs: sqlglot hands the recursive branch a private copy of the anchor's
        # scope; use the traversed one, which knows the anchor's own sources
        source = self._by_expression.get(id(source.expression), source)
        return self.named(source, column.name)

    def expr(self, node: exp.Expr, scope: Scope) -> Trace:
        if isinstance(node, exp.Star):
            if isinstance(node.parent, exp.Count):
                return _CONSTANT
            raise LineageError("unexpanded *")
        if isinstance(node, exp.Column):
            return self.column(node, scope)
        if isinstance(node, exp.Paren | exp.Alias):
            return self.expr(node.this, scope)
        if isinstance(node, exp.Literal | exp.Null | exp.Boolean | exp.Placeholder):
            return _CONSTANT
        if isinstance(node, exp.Count) and _plain_count(node):
            arg = node.this
            args = arg.expressions if isinstance(arg, exp.Distinct) else [arg]
            traces = [self.expr(a, scope) for a in args if isinstance(a, exp.Column)]
            # Counting a derived value (a column of a derived table computed from a sensitive
            # one) counts its NULLs, which a CASE or NULLIF upstream can turn into an oracle.
            if any(t.sources and not t.direct for t in traces):
                return combine(traces, "aggregate count()").derived("aggregate count()")
            counted = (
                frozenset().union(*(t.sources | t.counted for t in traces)) if traces else _EMPTY
            )
            return Trace(counted=counted, unknown=any(t.unknown for t in traces))
        if isinstance(node, exp.Subquery | exp.Exists) or (
            isinstance(node, exp.Query) and not isinstance(node, exp.Subquery)
        ):
            query = node.this if isinstance(node, exp.Subquery | exp.Exists) else node
            if isinstance(query, exp.Subquery):
                query = query.unnest()
            child = self._by_expression.get(id(query))
            if child is None:
                raise LineageError("subquery without scope")
            traces = [self.position(child, i) for i in range(_width(child))]
            if isinstance(node, exp.Subquery) and len(traces) == 1:
                return traces[0]
            return combine(traces, "subquery")
        if isinstance(node, exp.Window):
            return self._children(node, scope).derived("window function")
        return self._children(node, scope).derived(describe(node))

    def _children(self, node: exp.Expr, scope: Scope) -> Trace:
        traces = [self.expr(child, scope) for child in node.iter_expressions()]
        return combine(traces, describe(node))


def _plain_count(node: exp.Count) -> bool:
    """count(*), count(col) or count(DISTINCT col, …): a count that reveals no values.

    Any other argument (CASE, functions, comparisons) can turn a count into an oracle that
    spells a value out one character at a time, so it is treated as derived.
    """
    arg = node.this
    if isinstance(arg, exp.Distinct):
        return all(isinstance(e, exp.Column) for e in arg.expressions)
    return arg is None or isinstance(arg, exp.Star | exp.Column)


def _leftmost(query: exp.Expr) -> exp.Select:
    while isinstance(query, exp.SetOperation | exp.Subquery):
        query = query.left if isinstance(query, exp.SetOperation) else query.this
    if not isinstance(query, exp.Select):
        raise LineageError(f"set operation branch is a {type(query).__name__}")
    return query


def _inside(node: exp.Expr, container: exp.Expr) -> bool:
    current: exp.Expr | None = node.parent
    while current is not None:
        if current is container:
            return True
        current = current.parent
    return False


def _width(scope: Scope) -> int:
    query = scope.expression
    if isinstance(query, exp.Subquery):
        query = query.unnest()
    if isinstance(query, exp.Select | exp.SetOperation):
        return len(_leftmost(query).expressions)
    return 0

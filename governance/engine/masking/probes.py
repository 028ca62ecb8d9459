"""Where sensitive values flow (taint), and which flows are inference probes.

A sensitive value may leave the database only through its masking expression (it reaches an
output column, which lineage masks) or through an aggregate that reveals no value of it
(``count(x)`` of a plain column). Every other use lets the value shape what comes back, so it
is a *probe*:

* ``filter``    WHERE, HAVING, QUALIFY, FILTER, join conditions: which rows (a boolean oracle);
* ``case``      a CASE/IF condition or a simple CASE's operand: which branch;
* ``order``     ORDER BY, a window's ORDER BY: the order of rows;
* ``group``     GROUP BY, window PARTITION BY, DISTINCT ON, DISTINCT below the output, UNION,
                INTERSECT and EXCEPT, ``count(DISTINCT …)``: values compared with each other
                (and with constants an attacker mixes in);
* ``generator`` arguments of FROM-clause and set-returning functions, LATERAL, LIMIT/OFFSET,
                recursive-CTE steps, range joins against another row source: the value becomes
                a number of rows (one query reads it whole);
* ``computed``  functions, casts or operators applied to the raw value before it is masked:
                their errors and timing depend on it.

A probe on a restricted column (national ids, cards, IBANs, secrets, or a column marked
restricted) is held for approval, whatever its kind; a ``generator`` probe is held for every
sensitive column, since it reads values whole rather than one guess at a time. Other probes
on non-restricted columns (a lookup by e-mail) are what analysts do every day and are allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from .lineage import LineageError, Trace, Tracer
from .types import ColumnRule, MaskingPolicy

#: Set-returning functions that may appear in a select list (PostgreSQL): rows from a value.
SET_RETURNING = frozenset(
    {
        "generate_series",
        "generate_subscripts",
        "unnest",
        "regexp_split_to_table",
        "regexp_matches",
        "string_to_table",
        "json_array_elements",
        "json_array_elements_text",
        "jsonb_array_elements",
        "jsonb_array_elements_text",
        "json_each",
        "json_each_text",
        "jsonb_each",
        "jsonb_each_text",
        "json_object_keys",
        "jsonb_object_keys",
        "json_populate_recordset",
        "jsonb_populate_recordset",
        "json_to_recordset",
        "jsonb_to_recordset",
        "jsonb_path_query",
        "ts_stat",
        "ts_debug",
        "ts_parse",
        "ts_token_type",
        "pg_options_to_table",
        "aclexplode",
        "json_tree",
    }
)
_SRF_CLASSES: tuple[type[exp.Expr], ...] = (exp.UDTF, exp.ExplodingGenerateSeries)
#: Probe kinds held on every sensitive column, restricted or not: they read values whole.
HOLDING_KINDS = frozenset({"generator", "copy"})

_WORDS = {
    "filter": "a filter or join condition",
    "case": "a CASE condition",
    "order": "an ORDER BY",
    "group": "a comparison of values (GROUP BY, DISTINCT, UNION, INTERSECT, EXCEPT)",
    "generator": "a row generator",
    "computed": "a computation before masking",
    "uncertain": "a statement whose lineage Warden cannot trace",
    "copy": "the values a write stores",
    "star": "a `*` whose columns Warden cannot trace",
}


#: Columns every row has without a catalogue listing them (PostgreSQL, MySQL, SQLite).
_SYSTEM_COLUMNS = frozenset(
    {"xmin", "xmax", "cmin", "cmax", "ctid", "tableoid", "oid", "_rowid", "rowid", "_rowid_"}
)


def _carrying_star(star: exp.Star) -> bool:
    """Whether this `*` hands its columns to something other than the output or a count."""
    node: exp.Expr = star
    if isinstance(node.parent, exp.Column):  # t.*
        node = node.parent
    parent = node.parent
    if isinstance(parent, exp.Count):
        return False
    if isinstance(parent, exp.Select) and node.arg_key == "expressions":
        if parent.parent is None:  # the outer select list: held by the conservative rewrite
            return False
        if isinstance(parent.parent, exp.Exists):  # EXISTS (SELECT * …) reads no column
            return False
    return True


@dataclass(frozen=True, order=True)
class Probe:
    """A sensitive column whose value shapes the result other than through its mask."""

    table: str
    column: str
    kind: str  # filter | case | order | group | generator | computed | uncertain
    where: str  # where the value flows, in words
    restricted: bool

    @property
    def holds(self) -> bool:
        """Whether the statement waits for an approver (the guardrail decides)."""
        return self.restricted or self.kind in HOLDING_KINDS

    def sentence(self) -> str:
        return f"{self.table}.{self.column} flows into {self.where}"


def describe_probes(probes: Iterable[Probe]) -> str:
    """One sentence naming where the held probes' values flow."""
    parts: list[str] = []
    for probe in sorted(p for p in probes if p.holds):
        text = probe.sentence()
        if text not in parts:
            parts.append(text)
    if not parts:
        return ""
    shown = parts[:4] + ([f"{len(parts) - 4} more"] if len(parts) > 4 else [])
    return "Where the values flow: " + "; ".join(shown) + "."


# ------------------------------------------------------------------------------- flows


def _function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.ExplodingGenerateSeries | exp.GenerateSeries):
        return "generate_series"
    if isinstance(node, exp.Func):
        return node.sql().split("(", 1)[0].strip().lower() or node.sql_name().lower()
    return type(node).__name__.lower()


def _is_set_returning(node: exp.Expr) -> bool:
    return isinstance(node, _SRF_CLASSES) or (
        isinstance(node, exp.Func) and _function_name(node) in SET_RETURNING
    )


def _row_source(subquery: exp.Expr) -> bool:
    """A subquery (or query) used as a row source: FROM, JOIN, LATERAL, a CTE."""
    parent = subquery.parent
    return isinstance(parent, exp.From | exp.Join | exp.Lateral | exp.CTE | exp.Table)


def _in_recursive_cte(node: exp.Expr) -> bool:
    current: exp.Expr | None = node.parent
    while current is not None:
        if isinstance(current, exp.CTE):
            with_ = current.parent
            if isinstance(with_, exp.With) and with_.args.get("recursive"):
                return True
        current = current.parent
    return False


@dataclass(frozen=True)
class Flow:
    """Where one column reference's value goes: probes found on the way, and the end."""

    probes: tuple[tuple[str, str], ...]  # (kind, where)
    computed: bool  # transformed on the way (functions, casts, operators)
    end: str  # "output" | "counted" | "row-source" | "probe"


def flow_of(column: exp.Column) -> Flow:
    """Walk from a column reference to the root, noting every place its value shapes rows."""
    found: list[tuple[str, str]] = []
    computed = False
    child: exp.Expr = column
    node = column.parent

    def probe(kind: str, where: str) -> None:
        if kind == "generator" and any(k == "generator" for k, _ in found):
            return  # the innermost row generator says it best
        found.append((kind, where))

    while node is not None:
        key = child.arg_key
        if isinstance(node, exp.Paren | exp.Alias | exp.Tuple | exp.Ordered):
            pass
        elif isinstance(node, exp.Count) and key == "this" and not computed:
            if isinstance(child, exp.Distinct):
                probe("group", "count(DISTINCT …)")
            return Flow(tuple(found), computed, "counted")
        elif isinstance(node, exp.Distinct):
            if isinstance(node.parent, exp.Count):
                pass  # count(DISTINCT x): decided at the Count
            elif key == "on":
                probe("group", "DISTINCT ON")
            else:
                probe("group", "DISTINCT")
        elif isinstance(node, exp.Where | exp.Having | exp.Qualify):
            if isinstance(node.parent, exp.Filter):
                probe("filter", "an aggregate's FILTER (WHERE …)")
            else:
                probe("filter", f"a {node.key.upper()} condition")
        elif isinstance(node, exp.Join):
            if key in ("on", "using", "match_condition"):
                probe("filter", "a join condition")
        elif isinstance(node, exp.Lateral):
            if key == "this" and isinstance(child, exp.Func):
                probe("generator", f"the arguments of {_function_name(child)}() in LATERAL")
            else:
                probe("generator", "a LATERAL row source")
        elif isinstance(node, exp.Table):
            if key == "this" and isinstance(child, exp.Func):
                probe("generator", f"the arguments of {_function_name(child)}() in FROM")
            else:
                probe("generator", "a row source in FROM")
        elif isinstance(node, exp.From):
            pass  # its Table, LATERAL or VALUES said where
        elif isinstance(node, exp.Limit | exp.Offset | exp.Fetch):
            probe("generator", f"{node.key.upper()}")
        elif isinstance(node, exp.Order):
            probe(
                "order",
                "a window's ORDER BY" if isinstance(node.parent, exp.Window) else "ORDER BY",
            )
        elif isinstance(node, exp.Group):
            probe("group", "GROUP BY")
        elif isinstance(node, exp.Window):
            if key == "partition_by":
                probe("group", "a window's PARTITION BY")
            else:
                computed = True
        elif isinstance(node, exp.If) and key == "this":
            probe("case", "a CASE condition")
        elif isinstance(node, exp.Case) and key == "this":
            probe("case", "a CASE operand")
        elif isinstance(node, exp.SetOperation):
            if isinstance(node, exp.Intersect | exp.Except):
                probe("group", f"{node.key.upper()} (values compared across branches)")
            elif node.args.get("distinct"):
                probe("group", "UNION (duplicates removed by comparing values)")
        elif isinstance(node, exp.Select):
            if key != "expressions":
                pass  # a clause node below already said where
            elif node.args.get("distinct") is not None and _dedup_before_mask(node):
                probe("group", "DISTINCT")
            parent = node.parent
            if isinstance(parent, exp.Subquery) and _row_source(parent):
                return Flow(tuple(found), computed, "row-source")
            if isinstance(parent, exp.CTE | exp.Lateral):
                return Flow(tuple(found), computed, "row-source")
        elif isinstance(node, exp.Subquery):
            if _row_source(node):
                return Flow(tuple(found), computed, "row-source")
        elif isinstance(node, exp.CTE | exp.With):
            return Flow(tuple(found), computed, "row-source")
        else:  # a function, cast, operator, comparison…: the value is computed on
            in_from = isinstance(node.parent, exp.Table | exp.Lateral | exp.From | exp.Join)
            if _is_set_returning(node) and not in_from:  # FROM functions: said at the Table
                probe("generator", f"the set-returning function {_function_name(node)}()")
            computed = True
        child, node = node, node.parent
    return Flow(tuple(found), computed, "probe" if found else "output")


def _dedup_before_mask(select: exp.Select) -> bool:
    """DISTINCT compares raw values unless the masks are applied in this very select list
    (the outermost SELECT, masked in place)."""
    distinct = select.args.get("distinct")
    if isinstance(distinct, exp.Distinct) and distinct.args.get("on") is not None:
        return False  # DISTINCT ON: its expressions are probes of their own
    return select.parent is not None


# ------------------------------------------------------------------------------- probes

Resolve = Callable[[exp.Column], list[tuple[ColumnRule, str]]]


_CONNECTIVES = (exp.And, exp.Or, exp.Not, exp.Xor, exp.Where, exp.Having, exp.Qualify, exp.Join)


_ITEMS = (exp.Ordered, exp.Group, exp.Distinct, exp.Limit, exp.Offset, exp.Fetch, exp.Filter)


def _atomic_predicate(column: exp.Column) -> exp.Expr:
    """The expression around ``column`` that one clause item compares, sorts or groups by: the
    largest node below AND/OR/NOT, a clause, an ORDER BY or GROUP BY item, a window's keys."""
    node: exp.Expr = column
    while node.parent is not None:
        parent = node.parent
        if isinstance(parent, _CONNECTIVES + _ITEMS):
            break
        if isinstance(parent, exp.Window) and node.arg_key == "partition_by":
            break
        if isinstance(parent, exp.Select) and node.arg_key != "expressions":
            break
        node = parent
    return node


#: Whether ``other`` can stand beside the sensitive ``column`` in one expression without
#: carrying values of the caller's choosing: a column of the very same row (the same base
#: table instance), or a sensitive column as stored (real data, not a dictionary).
#: It answers "row" (the same row), "stored" (a sensitive column as stored) or "" (neither).
Kin = Callable[[exp.Column, exp.Column], str]


def _stands_alone(other: exp.Column, root: exp.Expr) -> bool:
    """Whether ``other`` is compared as it is stored, not through a function or an operator
    (``extract(doy FROM c2.date_of_birth)`` turns another customer's birthday into a table of
    numbers 1 to 366)."""
    node: exp.Expr = other
    while node is not root and node.parent is not None:
        parent = node.parent
        if isinstance(parent, exp.Select) and node.arg_key != "expressions":
            return False  # a clause of a subquery, not its value
        if not isinstance(parent, _PASS_THROUGH):
            return False
        node = parent
    return True


_COMPARISONS: tuple[type[exp.Expr], ...] = (
    exp.EQ,
    exp.NEQ,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
)
#: What a stored value may pass through and still be itself: parentheses, comparisons, IN
#: lists, AND/OR, a subquery's select list and alias, set operations.
_PASS_THROUGH: tuple[type[exp.Expr], ...] = (
    exp.Paren,
    *_COMPARISONS,
    exp.In,
    exp.Connector,
    exp.Alias,
    exp.Select,
    exp.Subquery,
    exp.SetOperation,
)


def _entangled(column: exp.Column, root: exp.Expr, kin: Kin) -> bool:
    """Whether ``root`` (the expression around the value) relates it to another row source.

    ``s.ch IN (substr(c.email, p.k, 1))``, ``o.id = ascii(substr(c.email, k, 1))``,
    ``ORDER BY abs(o.id - ascii(…))``, ``o.id - ascii(…) AS diff`` in a derived table: whatever
    the operator or clause, a column of another row source that is not itself a stored
    sensitive value then carries the value out, or counts it, in one query (a dense id column
    is a dictionary of numbers). Comparing with literals, with the same row, or with another
    sensitive column as stored (``u.email = c.email``) stays a lookup.
    """
    for other in root.find_all(exp.Column):
        if other is column or isinstance(other.this, exp.Star):
            continue
        relation = kin(column, other)
        if relation == "row" or (relation == "stored" and _stands_alone(other, root)):
            continue
        return True
    # Values that change from row to row without being columns are row sources too: a
    # set-returning function (`generate_series(…)` in ORDER BY), a window function
    # (`row_number() OVER ()`), a random number.
    return any(
        isinstance(node, exp.Window | exp.Rand) or _is_set_returning(node) for node in root.walk()
    )


def _projection_root(column: exp.Column) -> exp.Expr | None:
    """The select-list item holding ``column`` when it reaches one without crossing a clause."""
    node: exp.Expr = column
    while node.parent is not None:
        parent = node.parent
        if isinstance(parent, exp.Select):
            return node if node.arg_key == "expressions" else None
        if isinstance(parent, _CONNECTIVES + _ITEMS):
            return None
        node = parent
    return None


def column_probes(
    column: exp.Column,
    rules: list[tuple[ColumnRule, str]],
    kin: Kin,
    *,
    mixed: bool = False,
) -> list[Probe]:
    """Probes of one column reference whose value comes from ``rules`` (rule, table);
    ``mixed``: the value shares a set-operation position with other rows (see Trace)."""
    flow = flow_of(column)
    recursive = _in_recursive_cte(column)
    probes: list[Probe] = []
    for rule, table in rules:
        restricted = rule.restricted
        for kind, where in flow.probes:
            if recursive and kind != "generator":
                kind, where = "generator", f"{where} inside a recursive CTE"
            elif kind != "generator" and mixed:
                kind, where = "generator", f"{where} over a set operation mixing it with other rows"
            elif kind != "generator" and _entangled(column, _atomic_predicate(column), kin):
                kind, where = "generator", f"{where} that relates it to another row source"
            probes.append(Probe(table, rule.column, kind, where, restricted))
        root = _projection_root(column) if flow.end == "row-source" else None
        if root is not None and _entangled(column, root, kin):
            where = "a derived table's column that relates it to another row source"
            probes.append(Probe(table, rule.column, "generator", where, restricted))
        if flow.computed and restricted and not flow.probes:
            where = _WORDS["computed"]
            if flow.end == "row-source":
                where = "a computation in a derived table"
            probes.append(Probe(table, rule.column, "computed", where, True))
    return probes


def _extreme_row_probes(
    column: exp.Column, rules: list[tuple[ColumnRule, str]], kin: Kin
) -> list[Probe]:
    """SQLite fills a bare column beside a min()/max() aggregate from the row that aggregate
    picked: the value inside it then chooses which row's other columns come back (an order
    probe), and, related to another row source (``min(abs(o.id - unicode(…)))``), reads it
    out through that source's columns (a generator)."""
    aggregate = column.find_ancestor(exp.Min, exp.Max)
    if aggregate is None:
        return []
    select = aggregate.find_ancestor(exp.Select)
    if select is None or not _has_bare_column(select):
        return []
    if _entangled(column, aggregate, kin):
        kind, where = "generator", "a min()/max() that relates it to another row source"
    else:
        kind, where = "order", "a min()/max() whose row SQLite returns the other columns from"
    return [Probe(table, rule.column, kind, where, rule.restricted) for rule, table in rules]


def _has_bare_column(select: exp.Select) -> bool:
    group = select.args.get("group")
    grouped = {e.sql() for e in group.expressions} if group is not None else set()
    for projection in select.expressions:
        for column in projection.find_all(exp.Column):
            if isinstance(column.find_ancestor(exp.AggFunc, exp.Select), exp.AggFunc):
                continue  # inside an aggregate of this select
            if column.sql() not in grouped:
                return True
    return False


def probes_and_touch(
    tree: exp.Expr,
    tracer: Tracer,
    policy: MaskingPolicy,
    fallback: Resolve,
    dialect: str = "",
) -> tuple[tuple[Probe, ...], bool]:
    """Every probe in a qualified tree, and whether any sensitive column is referenced.

    A reference lineage cannot resolve is judged by name (``fallback``): never skipped.
    """
    scopes: dict[int, Scope] = {id(s.expression): s for s in tracer.root.traverse()}
    probes: set[Probe] = set()
    touched = False

    def trace_of(column: exp.Column) -> Trace | None:
        holder = column.parent
        while holder is not None and id(holder) not in scopes:
            holder = holder.parent
        if holder is None:
            return None
        scope = scopes[id(holder)]
        try:
            if column.table:
                return tracer.column(column, scope)
            select = scope.expression
            named = [
                p for p in getattr(select, "expressions", []) if p.alias_or_name == column.name
            ]
            return tracer.expr(named[0].unalias(), scope) if named else Trace()
        except LineageError:
            return None

    def resolve(column: exp.Column) -> list[tuple[ColumnRule, str]]:
        trace = trace_of(column)
        if trace is None:
            return fallback(column)
        found = []
        for db, table, name in sorted(trace.sources | trace.counted):
            rule = policy.rule_for(table, name, db)
            if rule is not None:
                found.append((rule, table))
        if trace.unknown and not found:
            return fallback(column)
        if not column.table:
            # A bare name that sqlglot read as an output alias (ORDER BY, GROUP BY, HAVING):
            # servers differ on whether it means the alias or an input column (MySQL reads
            # `ORDER BY f(ssn)` as the column even when `c.id AS ssn` is selected), so it may
            # be either.
            found += [hit for hit in fallback(column) if hit not in found]
        return found

    def base_instance(column: exp.Column) -> tuple[int, str] | None:
        """(scope, alias) of the base table a qualified column is read from, else None."""
        holder = column.parent
        while holder is not None and id(holder) not in scopes:
            holder = holder.parent
        if holder is None or not column.table:
            return None
        scope: Scope | None = scopes[id(holder)]
        while scope is not None:
            source = scope.sources.get(column.table)
            if source is not None:
                named = isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier)
                return (id(scope), column.table) if named else None
            scope = scope.parent
        return None

    def kin(column: exp.Column, other: exp.Column) -> str:
        mine = base_instance(column)
        if mine is not None and mine == base_instance(other):
            return "row"  # the same row of the same table
        trace = trace_of(other)
        stored = (
            trace is not None
            and trace.direct
            and not trace.mixed
            and bool(trace.sources)
            and all(policy.rule_for(t, c, d) is not None for d, t, c in trace.sources)
        )
        return "stored" if stored else ""

    for column, rules in _sensitive_references(tree, resolve):
        touched = True
        trace = trace_of(column)
        mixed = trace is not None and trace.mixed
        probes.update(column_probes(column, rules, kin, mixed=mixed))
        if dialect == "sqlite":
            probes.update(_extreme_row_probes(column, rules, kin))
    for operation in tree.find_all(exp.SetOperation):
        scope = scopes.get(id(operation))
        if scope is not None:
            probes.update(_set_order_probes(operation, scope, tracer, policy))
    return tuple(sorted(probes)), touched


def _set_order_probes(
    operation: exp.SetOperation, scope: Scope, tracer: Tracer, policy: MaskingPolicy
) -> set[Probe]:
    """A set operation's own ORDER BY (``ORDER BY 2``, ``ORDER BY ssn``) sorts the raw values
    of a position: an order probe on its sources, a generator when other rows share it."""
    order = operation.args.get("order")
    if not isinstance(order, exp.Order):
        return set()
    first: exp.Expr = operation
    while isinstance(first, exp.SetOperation):
        first = first.left
    if isinstance(first, exp.Subquery):
        first = first.unnest()
    names = [p.alias_or_name for p in getattr(first, "expressions", [])]
    found: set[Probe] = set()
    for ordered in order.expressions:
        key = ordered.this if isinstance(ordered, exp.Ordered) else ordered
        positions: list[int] = []
        if isinstance(key, exp.Literal) and key.is_int:
            positions = [int(key.this) - 1]
        elif isinstance(key, exp.Column) and not key.table and key.name in names:
            positions = [names.index(key.name)]
        else:  # an expression over the outputs: every position it may read
            positions = [names.index(c.name) for c in key.find_all(exp.Column) if c.name in names]
        for index in positions:
            if not 0 <= index < len(names):
                continue
            try:
                trace = tracer.position(scope, index)
            except LineageError:
                continue
            for db, table, name in sorted(trace.sources):
                rule = policy.rule_for(table, name, db)
                if rule is None:
                    continue
                kind, where = "order", "the ORDER BY of a set operation"
                if trace.mixed:
                    kind, where = "generator", f"{where} mixing it with other rows"
                found.add(Probe(table, rule.column, kind, where, rule.restricted))
    return found


def _sensitive_references(
    tree: exp.Expr, resolve: Resolve
) -> Iterator[tuple[exp.Column, list[tuple[ColumnRule, str]]]]:
    """Every column reference in ``tree`` whose value comes from a ruled column, with the rules."""
    for column in tree.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            continue
        rules = resolve(column)
        if rules:
            yield column, rules


def derived_outputs(tree: exp.Expr) -> dict[str, dict[str, list[exp.Expr]]]:
    """For each subquery or CTE alias, its output names and the expressions behind each (every
    branch of a set operation, by position); ``*`` when a star leaves names open."""
    found: dict[str, dict[str, list[exp.Expr]]] = {}
    nodes: list[tuple[str, exp.Expr | None]] = [
        (node.alias.lower(), node.this) for node in tree.find_all(exp.Subquery) if node.alias
    ]
    nodes += [(cte.alias.lower(), cte.this) for cte in tree.find_all(exp.CTE) if cte.alias]
    for alias, query in nodes:
        if not isinstance(query, exp.Query):
            continue
        outputs = found.setdefault(alias, {})
        branches = [query] if isinstance(query, exp.Select) else list(_branches(query))
        names: list[str] = []
        for number, branch in enumerate(branches):
            for index, projection in enumerate(branch.expressions):
                if isinstance(projection, exp.Star) or (
                    isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
                ):
                    outputs.setdefault("*", []).append(projection)
                    continue
                if number == 0:
                    names.append(projection.alias_or_name.lower())
                if index < len(names):
                    outputs.setdefault(names[index], []).append(projection.unalias())
    return found


def _branches(query: exp.Expr) -> Iterator[exp.Select]:
    if isinstance(query, exp.SetOperation):
        yield from _branches(query.left)
        yield from _branches(query.right)
    elif isinstance(query, exp.Select):
        yield query
    elif isinstance(query, exp.Subquery):
        yield from _branches(query.this)


def by_name(
    policy: MaskingPolicy,
    aliases: dict[str, str],
    tables: Iterable[str],
    alias_tables: dict[str, frozenset[str]] | None = None,
    derived: dict[str, dict[str, list[exp.Expr]]] | None = None,
) -> Resolve:
    """Resolve a column by name when lineage cannot: through its qualifier's tables when
    known (every table a reused alias names), through the expressions a subquery or CTE
    gives that name (``s.e`` of ``(SELECT email AS e …) s``), else against every table the
    statement names, and against every rule when a table is not in the catalogue (a stale
    catalogue must not hide an SSN column)."""
    named = sorted(set(tables))
    alias_tables = alias_tables or {}
    derived = derived or {}

    def through_derived(
        qualifier: str, name: str, depth: int
    ) -> list[tuple[ColumnRule, str]] | None:
        """What a derived table's output ``name`` carries; None when it is not one."""
        sources = [qualifier] if qualifier else sorted(derived)
        found: list[tuple[ColumnRule, str]] = []
        matched = False
        for source in sources:
            outputs = derived.get(source)
            if outputs is None:
                continue
            exprs = outputs.get(name, [])
            if not exprs and "*" in outputs:  # a star: any column of its tables, by name
                exprs = [exp.column(name)]
            matched = matched or bool(exprs)
            for expr in exprs:
                for inner in (
                    expr.find_all(exp.Column) if not isinstance(expr, exp.Column) else [expr]
                ):
                    if not isinstance(inner.this, exp.Star):
                        found += lookup(inner, depth + 1)
        return found if matched or qualifier else None

    memo: dict[tuple[str, str], list[tuple[ColumnRule, str]] | None] = {}

    def carried_by(qualifier: str, name: str, depth: int) -> list[tuple[ColumnRule, str]] | None:
        key = (qualifier, name)
        if key not in memo:
            memo[key] = []  # a name that refers back to itself carries nothing more
            memo[key] = through_derived(qualifier, name, depth)
        return memo[key]

    def lookup(column: exp.Column, depth: int = 0) -> list[tuple[ColumnRule, str]]:
        name = column.name.lower()
        qualifier = column.table.lower()
        found: list[tuple[ColumnRule, str]] = []
        if depth < 8 and (qualifier in derived or (not qualifier and derived)):
            carried = carried_by(qualifier, name, depth)
            if carried is not None:
                found += carried
                # the same alias may also name a base table elsewhere (another scope, or
                # twice in one FROM on SQLite): its rules count too
                if qualifier and qualifier not in alias_tables:
                    return found
        if qualifier and qualifier in alias_tables:
            candidates = sorted(alias_tables[qualifier])
        elif qualifier and qualifier in aliases:
            candidates = [aliases[qualifier]]
        elif qualifier:
            candidates = [qualifier]
        else:
            candidates = named
        unknown = False
        for table in candidates:
            bare = table.rsplit(".", 1)[-1]
            db = table.rsplit(".", 1)[0] if "." in table else ""
            rule = policy.rule_for(bare, name, db)
            if rule is not None:
                found.append((rule, bare))
            elif bare not in policy.table_names:
                unknown = True
        if unknown or (not candidates):
            found += [
                (rule, rule.table.rsplit(".", 1)[-1])
                for (table, col), rule in sorted(policy.rule_index.items())
                if col == name
            ]
        return found

    def resolve(column: exp.Column) -> list[tuple[ColumnRule, str]]:
        return sorted(set(lookup(column)), key=lambda pair: (pair[1], pair[0].column))

    return resolve


def uncertain_probes(
    tree: exp.Expr, resolve: Resolve, policy: MaskingPolicy, aliases: dict[str, str]
) -> tuple[Probe, ...]:
    """Probes of a statement whose lineage cannot be traced: every restricted column named
    anywhere holds it, as does any sensitive value in a row generator."""

    probes: set[Probe] = set()
    # Aliases that name something other than one catalogued table somewhere in the statement
    # (a subquery, a CTE, a table function, or two different tables in different scopes).
    naming: dict[str, set[str]] = {}
    for node in tree.find_all(exp.Table):
        alias = (node.alias or node.name).lower()
        naming.setdefault(alias, set()).add(node.sql().lower() if node.alias else alias)
    for derived in tree.find_all(exp.Subquery, exp.CTE, exp.Lateral, exp.Unnest):
        if derived.alias:
            naming.setdefault(derived.alias.lower(), set()).add("(derived)")
    ambiguous = {alias for alias, names in naming.items() if len(names) > 1}

    def kin(column: exp.Column, other: exp.Column) -> str:
        """Lineage being unknown, only a column of a catalogued table that holds a rule (a
        sensitive value as stored): qualifiers can repeat across scopes, and a derived column
        can be named like a sensitive one."""
        qualifier = other.table.lower()
        table = aliases.get(qualifier) if qualifier and qualifier not in ambiguous else None
        if table is None:
            return ""
        bare = table.rsplit(".", 1)[-1]
        db = table.rsplit(".", 1)[0] if "." in table else ""
        return "stored" if policy.rule_for(bare, other.name, db) is not None else ""

    for column, rules in _sensitive_references(tree, resolve):
        probes.update(column_probes(column, rules, kin))
        for rule, table in rules:
            if rule.restricted:
                probes.add(Probe(table, rule.column, "uncertain", _WORDS["uncertain"], True))
    # A `*` (or `t.*`) carries every column of its tables unnamed, into a row comparison, an
    # IN list, a set operation or an ORDER BY position: every sensitive column it may carry is
    # a generator probe (held), lineage being unknown. Only the outer select list (refused by
    # the conservative rewrite), count(*) and an EXISTS subquery's select list are exempt.
    if any(_carrying_star(star) for star in tree.find_all(exp.Star)):
        for name in sorted({column for (_, column) in policy.rule_index}):
            for rule, table in resolve(exp.column(name)):
                probes.add(Probe(table, rule.column, "generator", _WORDS["star"], True))
    # A name no catalogued table, subquery, CTE or alias provides (a column of a clause lineage
    # does not know, of a table missing from the catalogue) may carry any value: related to
    # another row source where it shapes the result, it holds every sensitive column of the
    # statement's tables (a generator).
    provided = set(policy.all_columns) | _SYSTEM_COLUMNS
    provided.update(a.alias.lower() for a in tree.find_all(exp.Alias) if a.alias)
    for outputs in derived_outputs(tree).values():
        provided.update(outputs)
    for column in tree.find_all(exp.Column):
        if isinstance(column.this, exp.Star) or column.name.lower() in provided:
            continue
        if resolve(column):
            continue
        flow = flow_of(column)
        if flow.probes and _entangled(column, _atomic_predicate(column), kin):
            for name in sorted({c for (_, c) in policy.rule_index}):
                for rule, table in resolve(exp.column(name)):
                    where = (
                        f"a statement relating {column.sql()}, a value Warden cannot trace, "
                        "to another row source"
                    )
                    probes.add(Probe(table, rule.column, "generator", where, True))
    # USING (col) and NATURAL joins compare columns that are not Column nodes until qualified.
    for join in tree.find_all(exp.Join):
        names = [i.name for i in join.args.get("using") or [] if isinstance(i, exp.Identifier)]
        natural = str(join.args.get("method") or "").upper() == "NATURAL"
        if natural:  # every same-named column: any rule of any table it may join
            names = sorted({column for (_, column) in policy.rule_index})
        for name in names:
            for rule, table in resolve(exp.column(name)):
                where = "a NATURAL JOIN" if natural else "a join's USING list"
                probes.add(Probe(table, rule.column, "filter", where, rule.restricted))
    return tuple(sorted(probes))

"""``mask_select``: rewrite one read so sensitive outputs are masked inside the database."""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from .explain import explain_result
from .fallback import WRAPPER, bare, conservative_result, held_result, natural_name, plain_columns
from .functions import keyed, mask_expression, normalize_dialect
from .guards import (
    TableUse,
    attribute_call,
    bare_alias_name,
    held_reason,
    table_use,
    whole_row_after_qualify,
)
from .lineage import Trace, Tracer
from .probes import Resolve, by_name, derived_outputs, probes_and_touch, uncertain_probes
from .types import ColumnRule, MaskingPolicy, MaskResult, OutputColumn, Strategy

# EXPLAIN is not here: explain.py decides which forms plan without evaluating values.
_SAFE_COMMANDS = frozenset({"SHOW", "DESCRIBE", "DESC", "SET", "RESET", "USE"})


class _Unsupported(Exception):
    pass


def mask_select(sql: str, dialect: str, policy: MaskingPolicy) -> MaskResult:
    """Rewrite ``sql`` (one read) so every sensitive output is masked; never raises."""
    try:
        return _cached(sql, dialect, policy)
    except Exception as exc:  # fail closed on anything unexpected
        return held_result(
            f"Warden could not analyse this statement safely ({type(exc).__name__})."
        )


def clear_mask_cache() -> None:
    _cached.cache_clear()


@lru_cache(maxsize=4096)
def _cached(sql: str, dialect: str, policy: MaskingPolicy) -> MaskResult:
    try:
        dialect = normalize_dialect(dialect)
    except ValueError as exc:
        return held_result(str(exc), conservative=True)
    explained = explain_result(sql, dialect, policy, mask_select)
    if explained is not None:
        return explained
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except Exception:
        return held_result(
            "The statement could not be parsed, so Warden cannot tell which columns it reveals.",
            conservative=True,
        )
    if len(statements) != 1:
        return held_result("Masking applies to exactly one statement at a time.", conservative=True)
    tree = statements[0]
    if dialect == "mysql":
        _fold_column_case(tree)
    _exists_reads_no_column(tree)
    held = held_reason(tree, dialect, policy)
    if held:
        return held_result(held)
    if isinstance(tree, exp.Command) and tree.name.upper() not in _SAFE_COMMANDS:
        return held_result(
            f"Warden cannot see what this {tree.name.upper()} statement returns (it may run "
            "SQL prepared elsewhere), so it cannot be masked."
        )
    if not policy.rules:
        return MaskResult(sql, plain_columns(tree), False, False, None, ())
    use = table_use(tree, dialect, policy)
    sensitive = bool(use.ruled or use.unknown)
    if not isinstance(tree, exp.Query):
        if sensitive:
            return held_result(
                "Only SELECT statements can be masked; this one reads protected tables."
            )
        return MaskResult(sql, (), False, False, None, ())
    derived = derived_outputs(tree)
    uncertain = by_name(
        policy,
        use.table_aliases,
        use.table_aliases.values(),
        alias_tables=use.alias_tables,
        derived=derived,
    )
    if use.unknown:
        names = ", ".join(sorted(use.unknown))
        missing = (
            f"No such table: {names}. It is not in this connection's catalog: it does not "
            "exist, or it was created after the last discovery (an administrator can run "
            "discovery from the catalog page)."
        )
        whole = bare_alias_name(tree, dialect, use) or attribute_call(
            tree, dialect, policy, use, derived
        )
        if whole:
            return held_result(whole, conservative=True)
        return conservative_result(
            tree,
            dialect,
            f"no table {names} in the catalog",
            uncertain_probes(tree, uncertain, policy, use.table_aliases),
            refusal=missing,
        )
    try:
        qualified = qualify(
            tree.copy(),
            dialect=dialect,
            schema=_schema(policy),
            expand_stars=True,
            validate_qualify_columns=True,
            db="public" if dialect == "postgres" and _has_db(policy) else None,
        )
        _drop_column_schemas(qualified)
        tracer = Tracer(qualified)
        outputs = tracer.outputs()
    except Exception as exc:
        if not sensitive:
            quoted = _string_in_quotes(tree, dialect, policy, use)
            if quoted:
                return held_result(quoted, conservative=True)
            return MaskResult(sql, plain_columns(tree), False, False, None, ())
        whole = (
            bare_alias_name(tree, dialect, use)
            or _string_in_quotes(tree, dialect, policy, use)
            or attribute_call(tree, dialect, policy, use, derived)
        )
        if whole:
            return held_result(whole, conservative=True)
        return conservative_result(
            tree,
            dialect,
            _why_untraced(exc),
            uncertain_probes(tree, uncertain, policy, use.table_aliases),
        )
    if sensitive:
        whole = whole_row_after_qualify(qualified, dialect, policy, use)
        if whole:
            return held_result(whole)
    return _rewrite(
        sql, tree, qualified, tracer, outputs, dialect, policy, uncertain, bool(use.ruled)
    )


def _string_in_quotes(
    tree: exp.Expr, dialect: str, policy: MaskingPolicy, use: TableUse
) -> str | None:
    """SQLite reads a double-quoted name that is no column as a string (``"fullname"``), so a
    misspelt column would come back as a column of stars, and a condition on it be always
    true: refuse it as the unknown column it is (a column of none of the statement's tables,
    when they are all catalogued)."""
    if dialect != "sqlite" or use.unknown:
        return None
    known: set[str] = {a.alias.lower() for a in tree.find_all(exp.Alias)}
    for tables in use.alias_tables.values():
        for table in tables:
            bare = table.rsplit(".", 1)[-1]
            known.update(c for (t, c) in policy.column_types if t.rsplit(".", 1)[-1] == bare)
    for outputs in derived_outputs(tree).values():
        if "*" in outputs:
            return None
        known.update(outputs)
    for column in tree.find_all(exp.Column):
        ident = column.this
        if not isinstance(ident, exp.Identifier) or not ident.quoted:
            continue
        name = ident.name.lower()
        if name not in known:
            return (
                f'No such column: "{ident.name}". SQLite would read a double-quoted name that '
                "is no column as a string; write strings in single quotes."
            )
    return None


def _fold_column_case(tree: exp.Expr) -> None:
    """MySQL/MariaDB read column names and column aliases in any case (``ID`` is ``id``),
    where sqlglot's MySQL dialect compares them exactly (table names and table aliases are
    case-sensitive on the server too, so they are left alone): fold them to lower case, so
    the qualifier resolves what the server resolves instead of giving up on lineage."""
    for column in tree.find_all(exp.Column):
        ident = column.this
        if isinstance(ident, exp.Identifier):
            column.set("this", exp.to_identifier(ident.name.lower(), quoted=ident.quoted))
    for alias in tree.find_all(exp.Alias):
        ident = alias.args.get("alias")
        if isinstance(ident, exp.Identifier):
            alias.set("alias", exp.to_identifier(ident.name.lower(), quoted=ident.quoted))
    for table_alias in tree.find_all(exp.TableAlias):
        names = table_alias.columns
        if names:
            table_alias.set(
                "columns",
                [exp.to_identifier(n.name.lower(), quoted=n.quoted) for n in names],
            )


def _exists_reads_no_column(tree: exp.Expr) -> None:
    """``EXISTS (SELECT * …)`` → ``EXISTS (SELECT 1 …)``: the same statement (EXISTS reads
    no column, and a list of stars holds no aggregate), but the qualifier no longer expands
    the star into columns that seem to flow into the condition."""
    for exists in tree.find_all(exp.Exists):
        select = exists.this
        if (
            isinstance(select, exp.Select)
            and select.expressions
            and all(
                isinstance(p, exp.Star)
                or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
                for p in select.expressions
            )
        ):
            select.set("expressions", [exp.Literal.number(1)])


def _drop_column_schemas(qualified: exp.Expr) -> None:
    """``public.customers.ssn`` → ``customers.ssn``: the qualifier gives every table an alias,
    after which the server no longer matches a schema-qualified column to it (PostgreSQL
    answers "missing FROM-clause entry"); every column names its source's alias now."""
    for column in qualified.find_all(exp.Column):
        if column.args.get("db") or column.args.get("catalog"):
            column.set("db", None)
            column.set("catalog", None)


def _why_untraced(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "could not be resolved" in text or "Unknown column" in text:
        return f"{text}; if it is not a system column, the database will say it does not exist"
    return text


def _has_db(policy: MaskingPolicy) -> bool:
    return any("." in table for table, _ in policy.schema)


@lru_cache(maxsize=64)
def _schema(policy: MaskingPolicy) -> dict[str, object]:
    nested = _has_db(policy)
    schema: dict[str, object] = {}
    for table, columns in policy.schema:
        mapping = {column.lower(): ctype or "text" for column, ctype in columns}
        if nested:
            db, _, name = table.rpartition(".")
            inner = schema.setdefault(db or "public", {})
            assert isinstance(inner, dict)
            inner[name] = mapping
        else:
            schema[table] = mapping
    return schema


# ------------------------------------------------------------------------ decisions


def _decide(trace: Trace, policy: MaskingPolicy) -> tuple[ColumnRule | None, Strategy | None, str]:
    ruled = sorted(
        (s, r) for s in trace.sources if (r := policy.rule_for(s[1], s[2], s[0])) is not None
    )
    names = ", ".join(f"{s[1]}.{s[2]}" for s, _ in ruled)
    if trace.unknown:
        return None, Strategy.REDACT, "lineage could not be traced: masked conservatively"
    if not ruled:
        counted = [s for s in trace.counted if policy.rule_for(s[1], s[2], s[0])]
        if counted:
            return None, None, "count() reveals no values"
        return None, None, "no sensitive source" if trace.sources else "constant or no source"
    kinds = {(r.strategy, r.semantic_type) for _, r in ruled}
    # Direct only when every source is this one kind of column: a pseudonym over a position
    # that also carries other columns' values would pseudonymise values of the caller's choice.
    if trace.direct and len(kinds) == 1 and len(ruled) == len(trace.sources):
        rule = ruled[0][1]
        if rule.strategy == Strategy.SCAN:
            return None, None, f"free text from {names}: scanned for PII on the way out"
        return rule, rule.strategy, f"direct reference to {names}"
    how = trace.how or "mixed sources"
    return ruled[0][1], Strategy.REDACT, f"derived from {names} ({how})"


def _original_projections(original: exp.Expr) -> list[exp.Expr] | None:
    if isinstance(original, exp.Select) and not any(
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
        for p in original.expressions
    ):
        return list(original.expressions)
    return None


def _value_with_type(
    node: exp.Expr, sources: frozenset[tuple[str, str, str]], policy: MaskingPolicy
) -> exp.Expr:
    value = node.copy()
    if len(sources) == 1 and isinstance(value, exp.Expression):
        db, table, column = next(iter(sources))
        ctype = policy.type_of(table, column, db)
        if ctype:
            try:
                value.type = exp.DataType.build(ctype)
            except Exception:
                value.type = None
    return value


# ------------------------------------------------------------------------ rewriting


def _rewrite(
    sql: str,
    original: exp.Expr,
    qualified: exp.Expr,
    tracer: Tracer,
    outputs: list[tuple[exp.Expr, Trace]],
    dialect: str,
    policy: MaskingPolicy,
    uncertain: Resolve,
    use_ruled: bool = True,
) -> MaskResult:
    user_aliases = {a.alias for a in original.find_all(exp.Alias)}
    originals = _original_projections(original)
    probes, touched = probes_and_touch(qualified, tracer, policy, uncertain, dialect)
    columns: list[OutputColumn] = []
    masks: list[tuple[int, Strategy, ColumnRule | None, str]] = []
    for index, (projection, trace) in enumerate(outputs):
        rule, strategy, reason = _decide(trace, policy)
        alias = projection.alias if isinstance(projection, exp.Alias) else ""
        generated = alias.startswith("_col_") and alias not in user_aliases
        if generated or not alias:
            source = projection
            if originals is not None and len(originals) == len(outputs):
                source = originals[index]
            name = natural_name(bare(source), dialect)
        else:
            name = alias
        sources = tuple(sorted({(s[1], s[2]) for s in trace.sources | trace.counted}))
        if any(policy.rule_for(s[1], s[2], s[0]) for s in trace.sources | trace.counted):
            touched = True
        if strategy is not None:
            touched = True
            masks.append((index, strategy, rule, name))
        columns.append(
            OutputColumn(
                name,
                sources,
                strategy is not None,
                str(strategy) if strategy is not None else None,
                rule.rule if rule is not None else None,
                reason,
            )
        )
    conservative = any(t.unknown for _, t in outputs)
    if not masks and not touched and not use_ruled:
        return MaskResult(sql, tuple(columns), touched, conservative, None, probes)
    # A statement on tables with sensitive columns runs as Warden understood it: sqlglot's own
    # text of the statement it analysed, never the caller's. Where the server would read the
    # caller's text differently (a name spelled so the two disagree), it runs what Warden read.
    query = qualified
    if isinstance(query, exp.Select):
        _mask_in_place(query, outputs, masks, user_aliases, dialect, policy)
    else:
        query = _wrap(query, outputs, masks, columns, dialect, policy)
    uses_key = any(keyed(strategy) for _, strategy, _, _ in masks)
    sql = query.sql(dialect=dialect)
    return MaskResult(sql, tuple(columns), True, conservative, None, probes, uses_key)


def _mask_for(
    value: exp.Expr,
    trace: Trace,
    strategy: Strategy,
    rule: ColumnRule | None,
    dialect: str,
    policy: MaskingPolicy,
) -> exp.Expr:
    semantic = rule.semantic_type if rule else "secret"
    typed = _value_with_type(value, trace.sources, policy)
    return mask_expression(typed, semantic, strategy, dialect)


def _mask_in_place(
    select: exp.Select,
    outputs: list[tuple[exp.Expr, Trace]],
    masks: list[tuple[int, Strategy, ColumnRule | None, str]],
    user_aliases: set[str],
    dialect: str,
    policy: MaskingPolicy,
) -> None:
    by_index = {index: (strategy, rule, name) for index, strategy, rule, name in masks}
    replacements: dict[str, exp.Expr] = {}
    new: list[exp.Expr] = []
    distinct = bool(select.args.get("distinct"))
    for index, projection in enumerate(select.expressions):
        alias = projection.alias if isinstance(projection, exp.Alias) else ""
        raw = bare(projection)
        if index in by_index:
            strategy, rule, name = by_index[index]
            masked = _mask_for(raw, outputs[index][1], strategy, rule, dialect, policy)
            new.append(exp.alias_(masked, name, quoted=True))
            if alias:
                replacements[alias] = exp.column(name, quoted=True) if distinct else raw
        elif alias.startswith("_col_") and alias not in user_aliases:
            new.append(raw.copy())
            replacements[alias] = raw
        else:
            new.append(projection)
    select.set("expressions", new)
    order = select.args.get("order")
    if order is not None and replacements:
        for column in list(order.find_all(exp.Column)):
            if not column.table and column.name in replacements:
                column.replace(replacements[column.name].copy())


def _wrap(
    query: exp.Expr,
    outputs: list[tuple[exp.Expr, Trace]],
    masks: list[tuple[int, Strategy, ColumnRule | None, str]],
    columns: list[OutputColumn],
    dialect: str,
    policy: MaskingPolicy,
) -> exp.Expr:
    by_index = {index: (strategy, rule) for index, strategy, rule, _ in masks}
    inner_names = [p.alias_or_name for p, _ in outputs]
    if len(set(inner_names)) != len(inner_names):
        first = _leftmost_select(query)
        inner_names = [f"warden_c{i}" for i in range(len(inner_names))]
        first.set(
            "expressions",
            [
                exp.alias_(p.unalias(), n, quoted=True)
                for p, n in zip(first.expressions, inner_names, strict=True)
            ],
        )
    projections: list[exp.Expr] = []
    for index, name in enumerate(inner_names):
        ref = exp.column(name, table=WRAPPER, quoted=True)
        if index in by_index:
            strategy, rule = by_index[index]
            value: exp.Expr = _mask_for(ref, outputs[index][1], strategy, rule, dialect, policy)
        else:
            value = ref
        projections.append(exp.alias_(value, columns[index].name, quoted=True))
    with_ = query.args.get("with_")
    moved: dict[str, exp.Expr] = {}
    order = query.args.get("order")
    if order is not None and _order_movable(order, inner_names):
        for ordered in order.expressions:
            key = ordered.this
            if isinstance(key, exp.Literal):
                ordered.set(
                    "this", exp.column(inner_names[int(key.this) - 1], table=WRAPPER, quoted=True)
                )
            else:
                ordered.set("this", exp.column(key.name, table=WRAPPER, quoted=True))
        moved["order"] = order.pop()
        for arg in ("limit", "offset"):
            node = query.args.get(arg)
            if node is not None:
                moved[arg] = node.pop()
    if with_ is not None:
        with_.pop()
    wrapper = exp.select(*projections).from_(
        exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(WRAPPER, quoted=True)))
    )
    for arg, node in moved.items():
        wrapper.set(arg, node)
    if with_ is not None:
        wrapper.set("with_", with_)
    return wrapper


def _order_movable(order: exp.Order, names: list[str]) -> bool:
    for ordered in order.expressions:
        key = ordered.this
        if isinstance(key, exp.Literal) and key.is_int and 1 <= int(key.this) <= len(names):
            continue
        if isinstance(key, exp.Column) and not key.table and key.name in names:
            continue
        return False
    return True


def _leftmost_select(query: exp.Expr) -> exp.Select:
    while isinstance(query, exp.SetOperation | exp.Subquery):
        query = query.left if isinstance(query, exp.SetOperation) else query.this
    if not isinstance(query, exp.Select):
        raise _Unsupported("set operation branch is not a SELECT")
    return query

"""EXPLAIN on connections with masked columns: allowed where planning evaluates no values.

A plan shows the statement's shape, never its rows, so ``EXPLAIN <statement>`` runs as written
under the rules of the statement it explains: that statement goes through ``mask_select``, and
if it would be held, so is the EXPLAIN; its inference probes are the EXPLAIN's (estimates
answer a probe as a count would). What runs the statement or prints more than the plan stays
refused:

* PostgreSQL plans without reading rows. Allowed: ``EXPLAIN stmt`` and the options FORMAT,
  COSTS, SUMMARY and GENERIC_PLAN (any option may be switched off). ANALYZE runs the statement;
  VERBOSE prints output expressions; SETTINGS, BUFFERS, WAL, TIMING, SERIALIZE, MEMORY report on
  the server or need ANALYZE.
* SQLite compiles without reading rows: ``EXPLAIN`` and ``EXPLAIN QUERY PLAN``.
* MariaDB and MySQL read "const" rows (a lookup by a unique key) and evaluate constant
  subqueries while planning: ``EXPLAIN FORMAT=JSON`` prints the conditions with the values it
  read substituted, and the tabular form says "Impossible WHERE noticed after reading const
  tables" when they fail. Allowed: the tabular form (``EXPLAIN``, ``DESCRIBE``,
  ``FORMAT=TRADITIONAL``) of a statement that uses sensitive columns nowhere but in its outer
  select list. FORMAT=JSON/TREE, EXTENDED, PARTITIONS and ANALYZE are refused.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from ..lexing import is_command_payload, tokenize
from .fallback import held_result
from .types import MaskingPolicy, MaskResult

Mask = Callable[[str, str, MaskingPolicy], MaskResult]  # mask_select

_EXPLAIN_WORDS = {
    "postgres": {"EXPLAIN"},
    "sqlite": {"EXPLAIN"},
    "mysql": {"EXPLAIN", "DESCRIBE", "DESC"},
}
_EXPLAINABLE = frozenset(
    {"SELECT", "WITH", "VALUES", "TABLE", "(", "INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE"}
)
_PG_SAFE_OPTIONS = frozenset({"FORMAT", "COSTS", "SUMMARY", "GENERIC_PLAN"})
_OFF = frozenset({"FALSE", "OFF", "0"})
_MYSQL_TABULAR = frozenset({"TRADITIONAL"})

_RUNS = "runs the statement"
_PRINTS = "prints more than the plan"


def _option_refusal(name: str, why: str) -> str:
    return (
        f"EXPLAIN with {name} {why}, which masking cannot protect on a connection with masked "
        "columns; plain EXPLAIN shows the plan."
    )


def _postgres_options(tokens: list[Token]) -> tuple[int, str | None]:
    """(where the explained statement starts in ``tokens``, why the options are refused)."""
    if tokens and tokens[0].token_type == TokenType.L_PAREN:
        groups: list[list[Token]] = [[]]
        i = 1
        while i < len(tokens) and tokens[i].token_type != TokenType.R_PAREN:
            if tokens[i].token_type == TokenType.COMMA:
                groups.append([])
            else:
                groups[-1].append(tokens[i])
            i += 1
        if i >= len(tokens):
            return i, "EXPLAIN's option list is not closed."
        for group in groups:
            if not group:
                return i, "EXPLAIN has an empty option."
            name, value = group[0].text.upper(), group[1:]
            switched_off = (
                len(value) == 1
                and value[0].token_type != TokenType.STRING
                and value[0].text.upper() in _OFF
            )
            if name not in _PG_SAFE_OPTIONS and not switched_off:
                why = _RUNS if name in {"ANALYZE", "ANALYSE"} else _PRINTS
                return i, _option_refusal(name, why)
        return i + 1, None
    if tokens and tokens[0].text.upper() in {"ANALYZE", "ANALYSE", "VERBOSE"}:
        name = tokens[0].text.upper()
        return 0, _option_refusal(name, _PRINTS if name == "VERBOSE" else _RUNS)
    return 0, None


def _mysql_options(tokens: list[Token]) -> tuple[int, str | None]:
    words = [t.text.upper() for t in tokens]
    if words[:1] and words[0] in {"ANALYZE", "EXTENDED", "PARTITIONS"}:
        return 0, _option_refusal(words[0], _RUNS if words[0] == "ANALYZE" else _PRINTS)
    if words[:2] == ["FORMAT", "="] and len(tokens) > 2:
        if words[2] not in _MYSQL_TABULAR:
            return 0, _option_refusal(
                f"FORMAT={tokens[2].text}",
                "prints the conditions with the values MariaDB/MySQL read while planning",
            )
        return 3, None
    return 0, None


def _sqlite_options(tokens: list[Token]) -> tuple[int, str | None]:
    if [t.text.upper() for t in tokens[:2]] == ["QUERY", "PLAN"]:
        return 2, None
    return 0, None


_OPTIONS = {"postgres": _postgres_options, "mysql": _mysql_options, "sqlite": _sqlite_options}


def _after_keyword(sql: str, dialect: str) -> tuple[str, str, list[Token]] | None:
    """(the leading keyword, the text after it, that text's tokens), None for no statement."""
    tokens, _ = tokenize(sql, dialect)
    if not tokens:
        return None
    if is_command_payload(tuple(tokens), dialect):
        rest = tokens[1].text  # sqlglot keeps the rest of EXPLAIN ... as one raw string
    elif len(tokens) > 1:
        rest = sql[tokens[1].start :]
    else:
        rest = ""
    return tokens[0].text.upper(), rest, tokenize(rest, dialect)[0] if rest else []


def explain_result(sql: str, dialect: str, policy: MaskingPolicy, mask: Mask) -> MaskResult | None:
    """The masking result of ``EXPLAIN <statement>``, or None when ``sql`` is not one.

    MariaDB's ``ANALYZE <statement>`` runs the statement: held. MySQL's ``EXPLAIN t`` describes
    a table, which is not an EXPLAIN of a statement.
    """
    try:
        found = _after_keyword(sql, dialect)
    except Exception:
        return None  # mask_select cannot parse it either, and holds it
    if found is None:
        return None
    first, rest, tokens = found
    wraps = bool(tokens) and tokens[0].text.upper() in (_EXPLAINABLE - {"TABLE"}) | {"FORMAT"}
    if dialect == "mysql" and first == "ANALYZE" and wraps:  # not ANALYZE TABLE
        return held_result(_option_refusal("ANALYZE", _RUNS))
    if first not in _EXPLAIN_WORDS[dialect]:
        return None
    start, refused = _OPTIONS[dialect](tokens)
    if start >= len(tokens):
        return held_result(refused or "EXPLAIN needs a statement to explain.")
    if refused is not None:
        return held_result(refused)
    word = tokens[start].text.upper()
    describes_table = start == 0 and tokens[0].token_type != TokenType.FOR
    if dialect == "mysql" and word not in _EXPLAINABLE and describes_table:
        return None  # EXPLAIN t is DESCRIBE t
    if word not in _EXPLAINABLE:
        return held_result(
            f"EXPLAIN {tokens[start].text} is not a plan of a query Warden can check, so it is "
            "refused on a connection with masked columns."
        )
    inner_sql = rest[tokens[start].start :]
    inner = mask(inner_sql, dialect, policy)
    if inner.held:
        return held_result(f"Warden refuses the statement this EXPLAIN explains: {inner.held}")
    if dialect == "mysql":
        reason = _planner_reads(inner_sql, policy)
        if reason:
            return held_result(reason)
    # A plan evaluates no value, so a computation on one raises no error and takes no time:
    # only the probes that shape the estimates (filters, joins, grouping…) remain.
    probes = tuple(p for p in inner.probes if p.kind != "computed")
    return MaskResult(sql, (), inner.touches_sensitive, False, None, probes)


# ------------------------------------------------------------------------ MariaDB / MySQL


def _ruled_columns(tree: exp.Expr, policy: MaskingPolicy) -> frozenset[str]:
    """Names of ruled columns of the tables the statement reads (any alias, conservatively)."""
    tables = {
        t.name.lower() for t in tree.find_all(exp.Table) if isinstance(t.this, exp.Identifier)
    }
    return frozenset(
        rule.column
        for rule in policy.rules
        if rule.table.lower() in tables or rule.table.lower().rsplit(".", 1)[-1] in tables
    )


def _outer_selects(tree: exp.Expr) -> list[exp.Select]:
    if isinstance(tree, exp.Select):
        return [tree]
    if isinstance(tree, exp.SetOperation):
        return _outer_selects(tree.left) + _outer_selects(tree.right)
    if isinstance(tree, exp.Subquery):
        return _outer_selects(tree.this)
    return []


def _in_outer_projection(node: exp.Expr, outer: list[exp.Select]) -> bool:
    select = node.find_ancestor(exp.Select)
    if select is None or not any(select is o for o in outer):
        return False
    child = node
    while child.parent is not select:
        if child.parent is None:
            return False
        child = child.parent
    return child.arg_key == "expressions"


def _mentions(node: exp.Expr, names: set[str]) -> bool:
    """Whether ``node`` uses one of ``names`` or a ``*``."""
    for found in node.find_all(exp.Column, exp.Star):
        if isinstance(found, exp.Star) or isinstance(found.this, exp.Star):
            if not isinstance(found.parent, exp.Count):  # count(*) reveals no values
                return True
            continue
        if found.name.lower() in names:
            return True
    return False


def _sensitive_names(tree: exp.Expr, ruled: frozenset[str]) -> set[str]:
    """Ruled column names, and every alias given to an expression that uses one."""
    names = set(ruled)
    changed = True
    while changed:
        changed = False
        for alias in tree.find_all(exp.Alias):
            name = alias.alias.lower()
            if name and name not in names and _mentions(alias.this, names):
                names.add(name)
                changed = True
    return names


def _sensitive_position(tree: exp.Expr, outer: list[exp.Select], names: set[str]) -> int | None:
    """A GROUP BY / ORDER BY position (``ORDER BY 2``) that points at a sensitive output."""
    scopes: list[tuple[exp.Select, exp.Expr]] = []
    for select in outer:
        scopes += [(select, select.args[key]) for key in ("group", "order") if select.args.get(key)]
    if isinstance(tree, exp.SetOperation) and tree.args.get("order") and outer:
        scopes.append((outer[0], tree.args["order"]))
    for select, clause in scopes:
        for item in clause.expressions:
            key = item.this if isinstance(item, exp.Ordered) else item
            if isinstance(key, exp.Literal) and key.is_int:
                position = int(key.this)
                projections = select.expressions
                if not 1 <= position <= len(projections):
                    return position
                if _mentions(projections[position - 1], names):
                    return position
    return None


def _planner_reads(sql: str, policy: MaskingPolicy) -> str | None:
    """Why MariaDB/MySQL could evaluate a sensitive value while planning ``sql``, or None."""
    try:
        tree = sqlglot.parse_one(sql, read="mysql")
    except Exception:
        return "EXPLAIN of a statement Warden cannot parse is refused where columns are masked."
    ruled = _ruled_columns(tree, policy)
    if not ruled:
        return None
    names = _sensitive_names(tree, ruled)
    outer = _outer_selects(tree)
    for join in tree.find_all(exp.Join):
        if str(join.args.get("method") or "").upper() == "NATURAL":
            return _planner_message("a NATURAL join")
        for ident in join.args.get("using") or []:
            if isinstance(ident, exp.Expr) and ident.name.lower() in names:
                return _planner_message(ident.name)
    for node in tree.find_all(exp.Column, exp.Star):
        if _in_outer_projection(node, outer):
            continue
        if isinstance(node, exp.Star) or isinstance(node.this, exp.Star):
            if isinstance(node.parent, exp.Count):
                continue
            tables = sorted({t.name for t in tree.find_all(exp.Table) if t.name})
            return _planner_message("* of " + ", ".join(tables))
        if node.name.lower() in names:
            return _planner_message(node.name)
    position = _sensitive_position(tree, outer, names)
    if position is not None:
        return _planner_message(f"the output at position {position}")
    return None


def _planner_message(what: str) -> str:
    return (
        f"On MariaDB/MySQL, EXPLAIN reads rows while planning, and {what} is used outside the "
        "outer select list (a condition, join, sort, grouping or subquery), so the plan could "
        "reveal masked values; EXPLAIN is allowed there only when sensitive columns appear in "
        "the outer select list alone."
    )

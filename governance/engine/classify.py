"""Classification rules over a parsed statement: small pure functions, like sqlglot's optimizer.

``classify_tree`` picks the rule for the statement's root node and then lets every node of the
tree make the verdict worse (a DELETE inside a CTE, a call to pg_read_file, FOR UPDATE ...).
A root node no rule knows returns None: the caller falls back to keywords, then to unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from sqlglot import exp

from .filters import is_unfiltered
from .functions import SQLITE_SCHEMA_PRAGMAS, SYSTEM_SCHEMAS, function_effect
from .types import Category, Risk
from .verdict import Verdict, unknown

Rule = Callable[[exp.Expr, str], Verdict | None]

_DDL_OBJECTS = frozenset(
    {"TABLE", "VIEW", "INDEX", "SCHEMA", "SEQUENCE", "DATABASE", "TYPE", "DOMAIN",
     "MATERIALIZED VIEW", "COLLATION", "STATISTICS", "COLUMN", "CONSTRAINT"}
)  # fmt: skip
_CODE_OBJECTS = frozenset({"FUNCTION", "PROCEDURE", "TRIGGER", "RULE", "MACRO", "EVENT"})
_PRIVILEGE_OBJECTS = frozenset({"ROLE", "USER", "GROUP", "POLICY"})
_READ_PRAGMAS = SQLITE_SCHEMA_PRAGMAS | {"compile_options"}
_PRIVILEGE_SETTINGS = frozenset({"role", "password", "session_authorization", "default_role"})


def table_name(table: exp.Table) -> str:
    """``catalog.db.name`` as written, lower-cased."""
    return ".".join(part.lower() for part in (table.catalog, table.db, table.name) if part)


def _is_named_table(node: exp.Expr) -> bool:
    return isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier)


def _target(node: exp.Expr | None) -> list[exp.Table]:
    """The table inside a write target (``t``, ``t (a, b)``)."""
    if isinstance(node, exp.Schema):
        node = node.this
    return [node] if isinstance(node, exp.Table) and _is_named_table(node) else []


def _written(node: exp.Expr) -> list[exp.Table]:
    """Tables a node writes to (or changes the structure of)."""
    if isinstance(node, exp.Insert | exp.Update | exp.Merge | exp.Alter | exp.Comment):
        return _target(node.this)
    if isinstance(node, exp.Delete):
        return _target(node.this) + [t for t in node.args.get("tables") or [] if _is_named_table(t)]
    if isinstance(node, exp.Create | exp.Drop) and _object_kind(node) in _DDL_OBJECTS:
        dropped = [t for t in node.args.get("tables") or [] if _is_named_table(t)]
        return _target(node.this) + dropped
    if isinstance(node, exp.TruncateTable):
        return [t for t in node.expressions if _is_named_table(t)]
    if isinstance(node, exp.Copy) and node.args.get("kind"):
        return _target(node.this)
    if isinstance(node, exp.Select) and isinstance(node.args.get("into"), exp.Into):
        return _target(node.args["into"].this)
    return []


def tables_of(tree: exp.Expr) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tables read or written, tables written), CTE names left out, in order of appearance."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    tables: dict[str, None] = {}
    for table in tree.find_all(exp.Table, bfs=False):
        if not _is_named_table(table):
            continue
        name = table_name(table)
        if not (table.db or table.catalog) and name in ctes:
            continue
        tables[name] = None
    written: dict[str, None] = {}
    for node in tree.walk():
        for table in _written(node):
            written[table_name(table)] = None
    return tuple(tables), tuple(written)


def _aliases(tree: exp.Expr) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        if _is_named_table(table):
            aliases[table.alias_or_name.lower()] = table_name(table)
    return aliases


def _copy_sources(node: exp.Expr) -> list[exp.Expr]:
    """The parts of a write whose values land in the target."""
    if isinstance(node, exp.Insert | exp.Create):
        return [node.expression] if node.expression else []
    if isinstance(node, exp.Update):
        return list(node.expressions)
    if isinstance(node, exp.Merge):
        return [node.args["whens"]] if node.args.get("whens") else []
    if isinstance(node, exp.Select) and node.args.get("into"):
        return list(node.expressions)
    return []


def copied_columns(tree: exp.Expr) -> tuple[tuple[str, str], ...]:
    aliases = _aliases(tree)
    found: dict[tuple[str, str], None] = {}
    for node in tree.walk():
        for source in _copy_sources(node):
            for item in source.walk():
                if isinstance(item, exp.Column):
                    table = aliases.get(item.table.lower(), item.table.lower())
                    column = "*" if isinstance(item.this, exp.Star) else item.name.lower()
                    found[(table, column)] = None
                elif isinstance(item, exp.Star) and not isinstance(item.parent, exp.Column):
                    found[("", "*")] = None
    return tuple(found)


# --- rules for the root node -------------------------------------------------------------


def _query(node: exp.Expr, dialect: str) -> Verdict | None:
    if isinstance(node, exp.Values):
        return Verdict(Category.READ, Risk.LOW, "VALUES")
    if isinstance(node, exp.Query):
        kind = node.key.upper() if isinstance(node, exp.SetOperation) else "SELECT"
        return Verdict(Category.READ, Risk.LOW, kind)
    return None


def _dml(node: exp.Expr, dialect: str) -> Verdict | None:
    if isinstance(node, exp.Insert):
        flags = {"upsert"} if node.args.get("conflict") else set()
        if str(node.args.get("alternative") or "").upper() == "REPLACE":
            flags.add("replace")
        if isinstance(node.expression, exp.Query):
            flags.add("insert_select")
        return Verdict(Category.WRITE, Risk.MEDIUM, "INSERT", frozenset(flags))
    if isinstance(node, exp.Update | exp.Delete):
        kind = node.key.upper()
        if is_unfiltered(node.args.get("where")):
            return Verdict(Category.WRITE, Risk.CRITICAL, kind, frozenset({"unfiltered_write"}))
        return Verdict(Category.WRITE, Risk.MEDIUM, kind)
    if isinstance(node, exp.Merge):
        return Verdict(Category.WRITE, Risk.MEDIUM, "MERGE")
    return None


def _object_kind(node: exp.Expr) -> str:
    return str(node.args.get("kind") or "").upper()


def _ddl(node: exp.Expr, dialect: str) -> Verdict | None:
    if isinstance(node, exp.TruncateTable):
        return Verdict(Category.DDL, Risk.CRITICAL, "TRUNCATE", frozenset({"truncate"}))
    if isinstance(node, exp.Comment):
        return Verdict(Category.DDL, Risk.HIGH, "COMMENT ON " + _object_kind(node))
    if not isinstance(node, exp.Create | exp.Drop | exp.Alter):
        return None
    verb, kind = node.key.upper(), _object_kind(node)
    label = f"{verb} {kind}".strip()
    if kind in _PRIVILEGE_OBJECTS:
        return Verdict(Category.PRIVILEGE, Risk.CRITICAL, label)
    if isinstance(node, exp.Drop) and kind in _DDL_OBJECTS | _CODE_OBJECTS:
        return Verdict(Category.DDL, Risk.CRITICAL, label, frozenset({"drop"}))
    if kind in _CODE_OBJECTS:
        return Verdict(Category.CODE, Risk.CRITICAL, label)
    if kind in _DDL_OBJECTS:
        return Verdict(Category.DDL, Risk.HIGH, label)
    return unknown(label)


def _privilege(node: exp.Expr, dialect: str) -> Verdict | None:
    if isinstance(node, exp.Grant | exp.Revoke):
        return Verdict(Category.PRIVILEGE, Risk.CRITICAL, node.key.upper())
    return None


def _set_item(item: exp.Expr) -> Verdict:
    kind = str(item.args.get("kind") or "").upper()
    if kind == "TRANSACTION":
        text = " ".join(e.name.upper() for e in item.expressions)
        if "WRITE" in text:
            return Verdict(Category.SESSION, Risk.HIGH, "SET TRANSACTION")
        return Verdict(Category.TRANSACTION, Risk.MEDIUM, "SET TRANSACTION")
    target = item.this.this if isinstance(item.this, exp.EQ) else item.this
    if kind == "GLOBAL" or (
        isinstance(target, exp.SessionParameter)
        and str(target.args.get("kind") or "").lower() in {"global", "persist"}
    ):
        return Verdict(Category.ADMIN, Risk.CRITICAL, "SET GLOBAL")
    name = target.name.lower() if isinstance(target, exp.Expr) else ""
    if name in _PRIVILEGE_SETTINGS:
        return Verdict(Category.PRIVILEGE, Risk.CRITICAL, "SET " + name.upper())
    return Verdict(Category.SESSION, Risk.HIGH, "SET")


def _session(node: exp.Expr, dialect: str) -> Verdict | None:
    if isinstance(node, exp.Set):
        verdicts = [_set_item(item) for item in node.expressions]
        if not verdicts:
            return Verdict(Category.SESSION, Risk.HIGH, "SET")
        result = verdicts[0]
        for other in verdicts[1:]:
            result = result.worsen(other.category, other.risk)
        return result
    if isinstance(node, exp.Use):
        return Verdict(Category.SESSION, Risk.HIGH, "USE")
    if isinstance(node, exp.Pragma):
        target = node.this.this if isinstance(node.this, exp.EQ) else node.this
        name = target.name.lower() if isinstance(target, exp.Expr) else ""
        if name in _READ_PRAGMAS:
            return Verdict(Category.READ, Risk.LOW, "PRAGMA")
        return Verdict(Category.SESSION, Risk.HIGH, "PRAGMA")
    return None


def _transaction(node: exp.Expr, dialect: str) -> Verdict | None:
    kinds: dict[type[exp.Expr], str] = {
        exp.Transaction: "BEGIN",
        exp.Commit: "COMMIT",
        exp.Rollback: "ROLLBACK",
    }
    kind = kinds.get(type(node))
    return None if kind is None else Verdict(Category.TRANSACTION, Risk.MEDIUM, kind)


def _copy(node: exp.Expr, dialect: str) -> Verdict | None:
    if not isinstance(node, exp.Copy):
        return None
    loading = bool(node.args.get("kind"))
    files = node.args.get("files") or []
    stdio = {"STDIN"} if loading else {"STDOUT"}
    if files and all(isinstance(f, exp.Identifier) and f.name.upper() in stdio for f in files):
        if loading:
            return Verdict(Category.WRITE, Risk.MEDIUM, "COPY FROM STDIN")
        return Verdict(Category.READ, Risk.LOW, "COPY TO STDOUT")
    return Verdict(Category.FILE, Risk.CRITICAL, "COPY", frozenset({"server_file"}))


def _files_and_admin(node: exp.Expr, dialect: str) -> Verdict | None:
    if isinstance(node, exp.Attach | exp.Detach):
        return Verdict(Category.FILE, Risk.CRITICAL, node.key.upper() + " DATABASE")
    if isinstance(node, exp.Kill):
        return Verdict(Category.ADMIN, Risk.CRITICAL, "KILL")
    if isinstance(node, exp.Analyze):
        return Verdict(Category.ADMIN, Risk.HIGH, "ANALYZE")
    if isinstance(node, exp.Show):
        return Verdict(Category.READ, Risk.LOW, "SHOW")
    return None


def _describe(node: exp.Expr, dialect: str) -> Verdict | None:
    if not isinstance(node, exp.Describe):
        return None
    inner = node.this
    if _is_named_table(inner):
        return Verdict(Category.READ, Risk.LOW, "DESCRIBE")
    if not isinstance(inner, exp.Expr):
        return unknown("EXPLAIN")
    verdict = classify_tree(inner, dialect)
    if str(node.args.get("style") or "").upper() == "ANALYZE":
        return replace(verdict, kind="EXPLAIN ANALYZE " + verdict.kind).with_flags(
            "explain_analyze"
        )
    return explain_plain(verdict)


def explain_plain(inner: Verdict) -> Verdict:
    """EXPLAIN without ANALYZE plans a query or DML statement without running it."""
    if inner.category in (Category.READ, Category.WRITE):
        return replace(
            inner,
            category=Category.READ,
            risk=Risk.LOW,
            kind="EXPLAIN " + inner.kind,
            flags=frozenset({"explain"}),
            written_tables=(),
            copied_columns=(),
        )
    return replace(inner, kind="EXPLAIN " + inner.kind)


ROOT_RULES: tuple[Rule, ...] = (
    _query,
    _dml,
    _ddl,
    _privilege,
    _session,
    _transaction,
    _copy,
    _files_and_admin,
    _describe,
)


# --- rules every node of the tree applies ------------------------------------------------


_EFFECT_PHRASES: dict[Category, str] = {
    Category.UNKNOWN: "a function Warden does not know to be safe",
    Category.SESSION: "which changes session or database state",
    Category.ADMIN: "which is a database administration function",
    Category.FILE: "which reads or writes files on the database server",
    Category.CODE: "which runs SQL given as text or calls out of the database",
    Category.WRITE: "which changes stored data",
}


def _function_name(func: exp.Func) -> str:
    if isinstance(func, exp.Anonymous):
        return func.name.lower()
    return func.sql_name().lower()


def _qualifier(func: exp.Func) -> str | None:
    parent = func.parent
    if isinstance(parent, exp.Dot) and parent.expression is func:
        return parent.this.sql().lower() if isinstance(parent.this, exp.Expr) else ""
    return None


def _function_effect(func: exp.Func, dialect: str) -> Verdict | None:
    name = _function_name(func)
    qualifier = _qualifier(func)
    if qualifier is not None and qualifier not in SYSTEM_SCHEMAS.get(dialect, frozenset()):
        effect: tuple[Category, Risk] | None = (Category.UNKNOWN, Risk.HIGH)
    else:
        effect = function_effect(name, dialect)
    if effect is None:
        return None
    category, risk = effect
    flags = ("unknown_function",) if category == Category.UNKNOWN else ("function:" + name,)
    note = f"Calls {name}(), {_EFFECT_PHRASES[category]}."
    return Verdict(category, risk, "", frozenset(flags), note=note)


def _node_effects(node: exp.Expr, root: exp.Expr, dialect: str) -> Iterator[Verdict]:
    nested_dml = isinstance(node, exp.Insert | exp.Update | exp.Delete | exp.Merge)
    if nested_dml and node is not root and not node.find_ancestor(exp.When):
        nested = _dml(node, dialect)
        if nested is not None:
            yield nested.with_flags("writable_cte")
    if isinstance(node, exp.Select):
        into = node.args.get("into")
        if isinstance(into, exp.Into):
            if _target(into.this):
                yield Verdict(Category.WRITE, Risk.MEDIUM, "", frozenset({"select_into"}))
            else:
                yield Verdict(Category.SESSION, Risk.HIGH, "", frozenset({"select_into_variable"}))
        if node.args.get("locks"):
            yield Verdict(Category.WRITE, Risk.MEDIUM, "", frozenset({"locking_read"}))
    if isinstance(node, exp.PropertyEQ) and isinstance(node.this, exp.Parameter):
        # MySQL `@v := value` inside a query stores the raw value in the session, where a
        # later statement reads it unmasked.
        yield Verdict(Category.SESSION, Risk.HIGH, "", frozenset({"assigns_variable"}))
    if isinstance(node, exp.Func):
        effect = _function_effect(node, dialect)
        if effect is not None:
            yield effect
    if dialect == "postgres":
        yield from _attribute_call_effects(node)
    if dialect == "sqlite" and _is_named_table(node) and node.name.lower().startswith("pragma_"):
        # `FROM pragma_integrity_check` calls the table-valued function without parentheses
        yield from _bare_pragma_effect(node.name.lower())


def _attribute_call_effects(node: exp.Expr) -> Iterator[Verdict]:
    """PostgreSQL's attribute notation calls a function: ``(x).f`` is ``f(x)``, and ``t.f``
    is ``f(t)`` when ``t`` has no column ``f``. ``(x).f`` is judged as the call it is (a
    field of a composite value reads the same, and is judged as an unknown function); ``t.f``
    only when ``f`` is a function with an effect, since without the catalogue it may be a
    column."""
    name = ""
    if isinstance(node, exp.Dot) and isinstance(node.this, exp.Paren):
        name = node.expression.name.lower() if isinstance(node.expression, exp.Expr) else ""
        effect = function_effect(name, "postgres") if name else None
    elif isinstance(node, exp.Column) and node.table and isinstance(node.this, exp.Identifier):
        name = node.name.lower()
        effect = function_effect(name, "postgres")
        if effect is not None and effect[0] == Category.UNKNOWN:
            effect = None
    else:
        return
    if effect is None:
        return
    category, risk = effect
    flags = ("unknown_function",) if category == Category.UNKNOWN else ("function:" + name,)
    note = f"Calls {name}() in attribute notation, {_EFFECT_PHRASES[category]}."
    yield Verdict(category, risk, "", frozenset(flags), note=note)


def _bare_pragma_effect(name: str) -> Iterator[Verdict]:
    effect = function_effect(name, "sqlite")
    if effect is not None:
        category, risk = effect
        note = f"Calls {name}(), {_EFFECT_PHRASES[category]}."
        yield Verdict(category, risk, "", frozenset({"unknown_function"}), note=note)


def functions_of(tree: exp.Expr) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for func in tree.find_all(exp.Func):
        if not isinstance(func, exp.Connector | exp.Case | exp.Cast | exp.If | exp.Exists):
            names[_function_name(func)] = None
    return tuple(names)


def classify_tree(tree: exp.Expr, dialect: str) -> Verdict:
    """Classify a parsed statement; a root no rule knows is unknown."""
    verdict = classify_root(tree, dialect) or unknown(tree.key.upper())
    return _with_tree_facts(verdict, tree, dialect)


def classify_root(tree: exp.Expr, dialect: str) -> Verdict | None:
    for rule in ROOT_RULES:
        verdict = rule(tree, dialect)
        if verdict is not None:
            return verdict
    return None


def _with_tree_facts(verdict: Verdict, tree: exp.Expr, dialect: str) -> Verdict:
    # EXPLAIN: the inner rules already decided. CREATE FUNCTION/TRIGGER: the body does not run now.
    defines_code = isinstance(tree, exp.Create) and _object_kind(tree) in _CODE_OBJECTS
    if not isinstance(tree, exp.Describe) and not defines_code:
        for node in tree.walk():
            for effect in _node_effects(node, tree, dialect):
                verdict = verdict.worsen(
                    effect.category, effect.risk, *effect.flags, note=effect.note
                )
    tables, written = tables_of(tree)
    return replace(
        verdict,
        tables=tables,
        written_tables=written,
        functions=functions_of(tree),
        copied_columns=copied_columns(tree),
    )

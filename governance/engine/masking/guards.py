"""Statements that must not run masked or raw (held), and what tables a statement reads.

All checks walk the parsed (unqualified) sqlglot tree; nothing here looks at SQL text,
except string *literals*, which are themselves parsed to find queries hidden in strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from ..functions import function_effect
from ..types import Category
from .types import MaskingPolicy

#: Functions that run SQL (or dump whole tables) given as text: masking cannot reach inside.
HIDDEN_SQL_FUNCTIONS: dict[str, frozenset[str]] = {
    "postgres": frozenset(
        {
            "query_to_xml",
            "query_to_xmlschema",
            "query_to_xml_and_xmlschema",
            "table_to_xml",
            "table_to_xmlschema",
            "table_to_xml_and_xmlschema",
            "cursor_to_xml",
            "cursor_to_xmlschema",
            "schema_to_xml",
            "schema_to_xmlschema",
            "schema_to_xml_and_xmlschema",
            "database_to_xml",
            "database_to_xmlschema",
            "database_to_xml_and_xmlschema",
            "dblink",
            "dblink_exec",
            "dblink_open",
            "dblink_fetch",
            "dblink_send_query",
            "dblink_get_result",
            "ts_stat",
            "crosstab",
            "crosstab2",
            "crosstab3",
            "crosstab4",
            "connectby",
            "pg_stat_get_activity",
            "pg_stat_statements",
            "lo_get",
            "lo_export",
            "pg_read_file",
            "pg_read_binary_file",
        }
    ),
    "mysql": frozenset({"load_file"}),
    "sqlite": frozenset({"eval", "readfile", "load_extension", "fts3_tokenizer"}),
}

#: Catalogue views that expose stored values or other sessions' SQL: (schema or "", name).
_HELD_TABLES: dict[str, frozenset[str]] = {
    "postgres": frozenset(
        {
            "pg_stats",
            "pg_stats_ext",
            "pg_stats_ext_exprs",
            "pg_statistic",
            "pg_statistic_ext_data",
            "pg_stat_activity",
            "pg_stat_statements",
            "pg_largeobject",
            "pg_prepared_statements",
        }
    ),
    # innodb_trx.trx_query holds other sessions' SQL, innodb_locks.lock_data locked key values
    "mysql": frozenset(
        {
            "processlist",
            "general_log",
            "slow_log",
            "innodb_trx",
            "innodb_locks",
            "innodb_lock_waits",
        }
    ),
    # sqlite_stmt: SQL of the statements prepared on the connection; sqlite_dbpage: raw pages
    "sqlite": frozenset({"sqlite_stat3", "sqlite_stat4", "sqlite_stmt", "sqlite_dbpage"}),
}
#: System tables held where their schema is named, or bare when the catalogue has no user table
#: of that name: statistics and histograms (min/max values, bucket bounds), full-text index
#: words, the optimizer trace (the query with the values of const rows substituted) and the
#: session's user variables.
_HELD_SYSTEM_TABLES: dict[str, frozenset[tuple[str, str]]] = {
    "postgres": frozenset(),
    "mysql": frozenset(
        {
            ("mysql", "column_stats"),
            ("mysql", "table_stats"),
            ("mysql", "index_stats"),
            ("mysql", "innodb_table_stats"),
            ("mysql", "innodb_index_stats"),
            ("information_schema", "column_statistics"),
            ("information_schema", "innodb_ft_index_table"),
            ("information_schema", "innodb_ft_index_cache"),
            ("information_schema", "optimizer_trace"),
            ("information_schema", "user_variables"),
        }
    ),
    "sqlite": frozenset(),
}
_OTHERS_SQL = "exposes other sessions' SQL text"
_ECHOED = "repeats values quoted by an earlier statement's warnings (unmasked)"
#: MySQL/MariaDB SHOW statements that print SQL text or values that masking cannot reach.
_HELD_SHOWS: dict[str, str] = {
    "PROCESSLIST": _OTHERS_SQL,
    "ENGINE": _OTHERS_SQL,
    "BINLOG EVENTS": _OTHERS_SQL,
    "RELAYLOG EVENTS": _OTHERS_SQL,
    "WARNINGS": _ECHOED,
    "ERRORS": _ECHOED,
}
_HELD_SCHEMAS: dict[str, frozenset[str]] = {
    "postgres": frozenset(),
    "mysql": frozenset({"performance_schema", "sys"}),
    "sqlite": frozenset(),
}
_SYSTEM_SCHEMAS: dict[str, frozenset[str]] = {
    "postgres": frozenset({"pg_catalog", "information_schema"}),
    "mysql": frozenset({"information_schema", "mysql"}),
    "sqlite": frozenset(),
}
_SQLITE_SYSTEM = frozenset({"sqlite_master", "sqlite_schema", "sqlite_sequence", "sqlite_stat1"})


@dataclass(frozen=True)
class TableUse:
    ruled: frozenset[str]  # catalogue tables with rules
    unknown: frozenset[str]  # neither in the catalogue nor a system table
    derived_aliases: frozenset[str]  # aliases of CTEs, subqueries and table functions
    table_aliases: dict[str, str]  # alias -> table name (base tables; the most sensitive)
    # alias -> every base table it names somewhere in the statement (aliases repeat across
    # scopes: `FROM customers o … EXISTS (SELECT 1 FROM orders o)`)
    alias_tables: dict[str, frozenset[str]] = field(default_factory=dict)


def _function_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _is_system(table: exp.Table, dialect: str) -> bool:
    db, name = table.db.lower(), table.name.lower()
    if db in _SYSTEM_SCHEMAS[dialect]:
        return True
    if dialect == "postgres" and not db and name.startswith("pg_"):
        return True
    return dialect == "sqlite" and (name in _SQLITE_SYSTEM or name.startswith("pragma_"))


def table_use(tree: exp.Expr, dialect: str, policy: MaskingPolicy) -> TableUse:
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    ruled: set[str] = set()
    unknown: set[str] = set()
    derived: set[str] = set(cte_names)
    aliases: dict[str, str] = {}
    every: dict[str, set[str]] = {}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            if table.alias:
                derived.add(table.alias.lower())
            continue
        name = table.name.lower()
        full = f"{table.db.lower()}.{name}" if table.db else name
        if name in cte_names and not table.db and name not in policy.table_names:
            continue  # a CTE; one named like a catalogued table may not be it in every scope
        alias = (table.alias or table.name).lower()
        every.setdefault(alias, set()).add(full)
        aliases[alias] = full
        # A schema- or database-qualified name of a table with rules is that table (MySQL's
        # `shop.customers`, SQLite's `main.customers`), or one like it the catalogue does not
        # know: either way it counts as ruled (fail closed).
        if full in policy.ruled_tables or name in policy.ruled_tables:
            ruled.add(full)
        elif full in policy.table_names or (
            name in policy.table_names and not (table.db and policy.qualified_names)
        ):
            continue
        elif not _is_system(table, dialect):
            unknown.add(full)
    for node in tree.find_all(exp.Subquery, exp.Lateral, exp.Unnest):
        if node.alias:
            derived.add(node.alias.lower())
    for alias, tables in every.items():  # a reused alias stands for its most sensitive table
        aliases[alias] = min(tables, key=lambda t: (t not in ruled, t not in unknown, t))
    alias_tables = {alias: frozenset(tables) for alias, tables in every.items()}
    return TableUse(frozenset(ruled), frozenset(unknown), frozenset(derived), aliases, alias_tables)


def _hidden_query(literal: exp.Literal, dialect: str, policy: MaskingPolicy) -> str | None:
    text = literal.this
    if not isinstance(text, str) or len(text) < 8 or not any(c.isspace() for c in text):
        return None
    try:
        inner = sqlglot.parse_one(text, read=dialect)
    except Exception:
        return None
    if inner is None or not isinstance(inner, exp.Query | exp.Command):
        return None
    use = table_use(inner, dialect, policy)
    if use.ruled or use.unknown or held_reason(inner, dialect, policy, depth=1):
        return ", ".join(sorted(use.ruled | use.unknown)) or "a protected view"
    return None


#: Words of SHOW statements sqlglot keeps as raw text (MariaDB's SHOW EXPLAIN/ANALYZE FOR
#: <connection> prints another session's plan with the literals of its conditions).
_HELD_SHOW_WORDS = frozenset(
    {"EXPLAIN", "ANALYZE", "PROCESSLIST", "ENGINE", "BINLOG", "RELAYLOG", "WARNINGS", "ERRORS"}
)


#: MySQL/MariaDB SHOW forms that describe the schema or the server (sqlglot's Show names);
#: every other SHOW is held: PROFILES prints the session's statements, USER_VARIABLES its
#: variables, and new forms appear with every server release.
_DESCRIBING_SHOWS = frozenset(
    {
        "TABLES",
        "COLUMNS",
        "INDEX",
        "CREATE TABLE",
        "CREATE VIEW",
        "CREATE DATABASE",
        "CREATE SCHEMA",
        "CREATE TRIGGER",
        "CREATE FUNCTION",
        "CREATE PROCEDURE",
        "CREATE EVENT",
        "TABLE STATUS",
        "DATABASES",
        "SCHEMAS",
        "VARIABLES",
        "STATUS",
        "ENGINES",
        "STORAGE ENGINES",
        "PLUGINS",
        "COLLATION",
        "CHARACTER SET",
        "CHARSET",
        "TRIGGERS",
        "EVENTS",
        "FUNCTION STATUS",
        "PROCEDURE STATUS",
        "OPEN TABLES",
        "PRIVILEGES",
        # credentials: refused to everyone but admins before masking (governance.engine
        # .credentials), and they hold no masked value
        "GRANTS",
        "CREATE USER",
    }
)


def _describing_command(tree: exp.Command) -> bool:
    """A SHOW that sqlglot keeps as text, whose first words are a describing form."""
    rest = tree.args.get("expression")
    text = rest.name if isinstance(rest, exp.Expr) else str(rest or "")
    words = text.upper().split()
    return bool(words) and (
        " ".join(words[:2]) in _DESCRIBING_SHOWS
        or (len(words) == 1 and words[0] in _DESCRIBING_SHOWS)
    )


def _held_show_command(tree: exp.Expr) -> bool:
    if not (isinstance(tree, exp.Command) and tree.name.upper() == "SHOW"):
        return False
    rest = tree.args.get("expression")
    rest = rest.name if isinstance(rest, exp.Expr) else str(rest or "")
    try:
        tokens = sqlglot.tokenize(rest, read="mysql")
    except Exception:
        return True
    return any(token.text.upper() in _HELD_SHOW_WORDS for token in tokens)


def _held_system_table(db: str, name: str, dialect: str, policy: MaskingPolicy) -> bool:
    for schema, held in _HELD_SYSTEM_TABLES[dialect]:
        if name == held and (db == schema or (not db and name not in policy.table_names)):
            return True
    return False


def held_reason(
    tree: exp.Expr, dialect: str, policy: MaskingPolicy, *, depth: int = 0
) -> str | None:
    """A sentence saying why ``tree`` must not run at all, or None."""
    if isinstance(tree, exp.Show) and tree.name.upper() in _HELD_SHOWS:
        what = tree.name.upper()
        return f"SHOW {what} {_HELD_SHOWS[what]}, which masking cannot protect."
    if dialect == "mysql" and (
        _held_show_command(tree)
        or (isinstance(tree, exp.Show) and tree.name.upper() not in _DESCRIBING_SHOWS)
        or (
            isinstance(tree, exp.Command)
            and tree.name.upper() == "SHOW"
            and not _describing_command(tree)
        )
    ):
        return (
            "Only SHOW statements that describe the schema or the server's settings run on a "
            "connection with masked columns; others can print statements' text, the session's "
            "variables or values quoted by earlier statements, which masking cannot protect."
        )
    for func in tree.find_all(exp.Func):
        name = _function_name(func)
        if name in HIDDEN_SQL_FUNCTIONS[dialect]:
            return (
                f"{name}() runs SQL or reads data that Warden cannot see, so masking could "
                "not apply to what it returns."
            )
    if dialect == "postgres":  # attribute notation: (x).ts_stat is ts_stat(x)
        for dot in tree.find_all(exp.Dot):
            name = dot.expression.name.lower() if isinstance(dot.expression, exp.Expr) else ""
            if isinstance(dot.this, exp.Paren) and name in HIDDEN_SQL_FUNCTIONS[dialect]:
                return (
                    f"{name}() runs SQL or reads data that Warden cannot see, so masking could "
                    "not apply to what it returns."
                )
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        db, name = table.db.lower(), table.name.lower()
        if (
            name in _HELD_TABLES[dialect]
            or db in _HELD_SCHEMAS[dialect]
            or _held_system_table(db, name, dialect, policy)
        ):
            where = f"{db}.{name}" if db else name
            return (
                f"{where} exposes stored values or other sessions' SQL text, which masking "
                "cannot protect."
            )
    if tree.find(exp.RecursiveWithSearch) is not None:
        return (
            "The CYCLE and SEARCH clauses of a recursive CTE add columns that carry the values "
            "of the columns they list, which Warden cannot trace; write the recursion without "
            "them."
        )
    for alias in tree.find_all(exp.TableAlias):
        if alias.columns and isinstance(alias.parent, exp.Table):
            return (
                "Renaming a table's columns in its alias hides where values come from, so it "
                "cannot be masked; select the columns by name instead."
            )
    if depth == 0:
        for literal in tree.find_all(exp.Literal):
            if literal.is_string:
                found = _hidden_query(literal, dialect, policy)
                if found:
                    return (
                        f"A string in this statement holds a query over {found}; SQL hidden "
                        "in strings cannot be masked."
                    )
        whole = whole_row_reference(tree, dialect, policy)
        if whole:
            return whole
    return None


def whole_row_reference(tree: exp.Expr, dialect: str, policy: MaskingPolicy) -> str | None:
    """A whole-row reference (``row_to_json(c)``, ``c::text``, ``ROW(c.*)``) to masked data."""
    use = table_use(tree, dialect, policy)
    referenced_columns: set[str] = set()
    for full in use.table_aliases.values():
        for table_name, column_name in policy.column_types:
            if table_name.rsplit(".", 1)[-1] == full.rsplit(".", 1)[-1]:
                referenced_columns.add(column_name)
    for column in tree.find_all(exp.Column):
        alias = ""
        if isinstance(column.this, exp.Star):
            parent = column.parent
            if isinstance(parent, exp.Select) and column.arg_key == "expressions":
                continue  # t.* in a select list: expanded by qualification
            if isinstance(parent, exp.Count):
                continue
            alias = column.table.lower()
        elif not column.table and not column.db:
            name = column.name.lower()
            known = name in use.table_aliases or name in use.derived_aliases
            if known and name not in referenced_columns:
                alias = name
        if not alias:
            continue
        base = use.table_aliases.get(alias)
        if base is None:
            sensitive = bool(use.ruled or use.unknown)
        else:
            sensitive = base in use.ruled or base in use.unknown
        if sensitive:
            return (
                f"{column.sql(dialect=dialect)} refers to a whole row of {base or alias}, "
                "which holds masked columns; select the columns you need instead."
            )
    return None


def whole_row_after_qualify(
    qualified: exp.Expr, dialect: str, policy: MaskingPolicy, use: TableUse
) -> str | None:
    """A bare name the qualifier read as a whole row (``exp.TableColumn``), as PostgreSQL
    does when no column of that name is in scope, of anything but a table without rules.

    The pre-check above is statement-wide and cannot see scopes; this one is exact, since the
    qualifier resolves names scope by scope as the server does.
    """
    if dialect == "postgres":
        # A name the qualifier left bare refers to an output alias (ORDER BY, HAVING, DISTINCT
        # ON): inside an expression PostgreSQL reads it against the FROM items instead, where
        # one spelled like an alias is that whole row (`1 AS status … ORDER BY
        # to_jsonb(status)` over `customers status`).
        aliases = set(use.table_aliases) | set(use.derived_aliases)
        for column in qualified.find_all(exp.Column):
            if column.table or not isinstance(column.this, exp.Identifier):
                continue
            if column.name.lower() in aliases:
                return (
                    f"{column.name} names both an output column and a table, subquery or CTE "
                    "of this statement, so PostgreSQL may read it as that whole row, which "
                    "may hold masked columns; rename one of them."
                )
    for node in qualified.find_all(exp.TableColumn):
        name = node.name.lower()
        base = use.table_aliases.get(name)
        plain = (
            base is not None
            and name not in use.derived_aliases
            and base not in use.ruled
            and base not in use.unknown
        )
        if not plain:
            return (
                f"{node.name} refers to a whole row of {base or name}, which may hold masked "
                "columns; select the columns you need instead (or rename the alias)."
            )
    return None


def bare_alias_name(tree: exp.Expr, dialect: str, use: TableUse) -> str | None:
    """Lineage unknown, on PostgreSQL: a bare name spelled like an alias of a table, subquery
    or CTE may be a whole row there (the server decides by scope), so it is refused."""
    if dialect != "postgres":
        return None
    aliases = set(use.table_aliases) | set(use.derived_aliases)
    for column in tree.find_all(exp.Column):
        if column.table or column.db or isinstance(column.this, exp.Star):
            continue
        if column.name.lower() in aliases:
            return (
                f"{column.name} is spelled like an alias in this statement, so it may refer to "
                "a whole row, which may hold masked columns; rename the alias or qualify the "
                "column."
            )
    return None


#: PostgreSQL's system columns: every table has them, the catalogue lists none.
PG_SYSTEM_COLUMNS = frozenset({"xmin", "xmax", "cmin", "cmax", "ctid", "tableoid", "oid"})


def attribute_call(
    tree: exp.Expr,
    dialect: str,
    policy: MaskingPolicy,
    use: TableUse,
    derived: dict[str, dict[str, list[exp.Expr]]],
) -> str | None:
    """Lineage unknown, on PostgreSQL: ``t.f`` where ``t`` has no column ``f`` is ``f(t)``, a
    function of the whole row (``c.concat``, ``customers.to_jsonb``): refused as the unknown
    column it looks like. Columns of catalogued tables, system columns and the outputs of
    subqueries and CTEs pass; so does a name of an uncatalogued table that is no function."""
    if dialect != "postgres":
        return None
    for column in tree.find_all(exp.Column):
        if not column.table or not isinstance(column.this, exp.Identifier):
            continue
        qualifier, name = column.table.lower(), column.name.lower()
        if name in PG_SYSTEM_COLUMNS:
            continue
        if qualifier in derived:
            outputs = derived[qualifier]
            if name in outputs or "*" in outputs:
                continue
        elif qualifier in use.alias_tables:
            # a reused alias: a column of one of its tables, or of all when it is also a
            # function's name (in the other scope it would call the function)
            having = [_has_column(table, name, policy) for table in use.alias_tables[qualifier]]
            effect = function_effect(name, "postgres")
            if all(having) or (
                any(having) and effect is not None and effect[0] == Category.UNKNOWN
            ):
                continue
        else:
            continue  # an outer reference or a name the server will refuse
        return (
            f"No such column: {column.table}.{column.name}. PostgreSQL would read it as "
            f"{column.name}({column.table}), a function of the whole row, which may hold "
            "masked columns."
        )
    return None


def _has_column(table: str, name: str, policy: MaskingPolicy) -> bool:
    bare = table.rsplit(".", 1)[-1]
    db = table.rsplit(".", 1)[0] if "." in table else ""
    if bare not in policy.table_names and table not in policy.table_names:
        # not catalogued: a name is a column unless it is a function the engine knows
        effect = function_effect(name, "postgres")
        return effect is not None and effect[0] == Category.UNKNOWN
    return policy.type_of(bare, name, db) is not None


def ruled_names(policy: MaskingPolicy) -> frozenset[str]:
    """Bare names of the tables that hold a masked column."""
    return frozenset(name.rsplit(".", 1)[-1] for name in policy.ruled_tables)


def names_in_text(sql: str, dialect: str, names: frozenset[str]) -> list[str]:
    """Which of ``names`` (lower-case table names) appear as words in ``sql``, parsed or not.

    Works from the tokens, so it also reads statements sqlglot keeps as a generic command
    (its tokenizer holds a command's remainder as one string, which is read again). Text that
    cannot be tokenized answers as if it named everything: callers use this to fail closed.
    """
    found: set[str] = set()
    texts = [sql]
    for _ in range(4):  # a command wrapping a command: a few levels at most
        if not texts:
            return sorted(found)
        text = texts.pop()
        try:
            tokens = sqlglot.tokenize(text, read=dialect)
        except (TokenError, ValueError):
            return sorted(names) or ["(unreadable text)"]
        for index, token in enumerate(tokens):
            if token.token_type == TokenType.STRING:
                if index > 0 and index == len(tokens) - 1 and token.end >= len(text.rstrip()) - 1:
                    texts.append(token.text)  # possibly a command's unparsed remainder
                continue
            if token.text.lower() in names:
                found.add(token.text.lower())
    return sorted(found | ({"(text too deeply nested)"} if texts else set()))

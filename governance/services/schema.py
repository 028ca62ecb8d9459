"""The schema a person sees in the editor: tables, columns, and how each column comes back to
them (masked and by which rule, scanned, or unmasked under their exemption).

Which tables: exactly what the connection's introspection lists (schema.json, autocomplete,
and the sidebar read the same cached list). How a column comes back: the engine's own answer
for this caller, got by asking the masking rewrite (`mask_select`) about a statement that
reads every column of the table directly, with the caller's masking policy (the catalog, the
rules and *their* exemptions): the same decision a run of `SELECT col FROM table` gets,
never a second, looser one worked out here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from sqlglot import exp

from governance import targets
from governance.engine import masking
from governance.models import Connection
from governance.services.catalog import DEFAULT_SCHEMAS, table_key
from governance.services.masking import active_exemptions, masking_policy

SCHEMA_CACHE_SECONDS = 300

#: One table as introspected: (schema, name, kind, ((column, type), ...)).
TableRow = tuple[str, str, str, tuple[tuple[str, str], ...]]


def _default_schema(connection: Connection, schema: str) -> bool:
    return schema in DEFAULT_SCHEMAS or schema == connection.database


def schema_tables(connection: Connection) -> list[TableRow]:
    """The connection's tables and views, introspected as its target account sees them
    (system schemas left out), cached for five minutes and dropped when the connection
    changes. Raises targets.TargetError or DecryptionError when the target cannot tell."""
    key = f"warden:schema:v2:{connection.pk}:{connection.updated_at.timestamp()}"
    rows: list[TableRow] | None = cache.get(key)
    if rows is None:
        with targets.connect(connection.target_config()) as session:
            infos = session.introspect()
        rows = [
            (t.schema, t.name, t.kind, tuple((c.name, c.type) for c in t.columns)) for t in infos
        ]
        cache.set(key, rows, SCHEMA_CACHE_SECONDS)
    return rows


def display_name(connection: Connection, schema: str, name: str) -> str:
    """How a table is written in a statement: bare in the default schema, qualified elsewhere
    (the names autocomplete offers)."""
    return name if _default_schema(connection, schema) else f"{schema}.{name}"


@dataclass(frozen=True)
class SchemaColumn:
    name: str
    type: str
    insert: str  # the column as written in the connection's dialect (quoted where needed)
    masked: bool
    rule: str  # the masking rule, e.g. "email: partial"; "" when not masked
    reason: str  # the engine's words for its decision
    scanned: bool  # free text, scanned for embedded PII on the way out
    exempt_until: Any = None  # unmasked for this caller under an exemption, until then

    @property
    def label(self) -> str:
        """The rule for people: "email (partial)" for the rule "email: partial"."""
        semantic, _, strategy = self.rule.partition(": ")
        return f"{semantic} ({strategy})" if strategy else semantic


@dataclass(frozen=True)
class SchemaTable:
    name: str
    kind: str
    insert: str
    columns: tuple[SchemaColumn, ...]
    held: str  # why reading it directly would be held ("" when not)

    @property
    def masked_count(self) -> int:
        return sum(1 for c in self.columns if c.masked)


def _identifier(name: str, dialect: str) -> str:
    # sqlglot quotes only a name that needs it (a keyword, capitals, spaces).
    return exp.to_identifier(name).sql(dialect=dialect)  # type: ignore[no-any-return]


def _direct_read(connection: Connection, row: TableRow) -> str:
    """`SELECT <each column> FROM <table>` in the connection's dialect, every name quoted."""
    schema, name, _, columns = row
    table = exp.table_(
        name, db=None if _default_schema(connection, schema) else schema, quoted=True
    )
    select = exp.select(*(exp.column(c, quoted=True) for c, _ in columns)).from_(table)
    return select.sql(dialect=connection.dialect)  # type: ignore[no-any-return]


def schema_for(*, user: Any, connection: Connection) -> list[SchemaTable]:
    """Every table of `connection` with how each of its columns comes back to `user`."""
    exemptions = active_exemptions(user=user, connection=connection)
    policy = masking_policy(connection=connection, exemptions=exemptions)
    exempt = {
        (
            table_key(connection, e.column.table.schema, e.column.table.name),
            e.column.name.lower(),
        ): e.expires_at
        for e in exemptions
    }
    dialect = connection.dialect
    tables = []
    for row in schema_tables(connection):
        schema, name, kind, columns = row
        key = table_key(connection, schema, name)
        result = masking.mask_select(_direct_read(connection, row), dialect, policy)
        held = result.held or ""
        traced = result.columns if not held and len(result.columns) == len(columns) else ()
        if not held and not traced and columns:
            held = "Warden could not tell how this table's columns are masked."
        shown = []
        for index, (column, ctype) in enumerate(columns):
            out = traced[index] if traced else None
            rule = policy.rule_for(key, column)
            shown.append(
                SchemaColumn(
                    name=column,
                    type=ctype,
                    insert=_identifier(column, dialect),
                    masked=bool(out and out.masked),
                    rule=(out.rule or out.strategy or "redact") if out and out.masked else "",
                    reason=out.reason if out else "",
                    scanned=bool(
                        out
                        and not out.masked
                        and rule is not None
                        and rule.strategy == masking.Strategy.SCAN
                    ),
                    exempt_until=exempt.get((key, column.lower())),
                )
            )
        insert = ".".join(
            _identifier(part, dialect)
            for part in ([] if _default_schema(connection, schema) else [schema]) + [name]
        )
        tables.append(
            SchemaTable(
                name=display_name(connection, schema, name),
                kind=kind,
                insert=insert,
                columns=tuple(shown),
                held=held,
            )
        )
    return tables

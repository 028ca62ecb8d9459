"""Value types of the masking engine: rules, policies and results (all frozen, hashable)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .probes import Probe

#: Semantic types whose mere use in a predicate is worth reporting (inference probes).
RESTRICTED_TYPES = frozenset({"national_id", "credit_card", "iban", "secret"})


class Strategy(StrEnum):
    REDACT = "redact"
    PARTIAL = "partial"
    PSEUDONYM = "pseudonym"
    NULL = "null"
    GENERALIZE = "generalize"
    # Free text that contains PII: passed through only when selected as is (the caller then
    # scans it on the way out); anything computed from it is redacted, since a transformation
    # (replace, translate, reverse…) would hide what it contains from the detectors.
    SCAN = "scan"


@dataclass(frozen=True)
class ColumnRule:
    """Mask ``table.column`` (lower case; ``table`` may be ``schema.table``) with ``strategy``."""

    table: str
    column: str
    semantic_type: str
    strategy: Strategy
    rule: str
    sensitivity: str = ""  # the catalogue's sensitivity label, when an admin set one

    @property
    def restricted(self) -> bool:
        """Restricted columns may not shape a result at all (see probes)."""
        return self.sensitivity == "restricted" or self.semantic_type in RESTRICTED_TYPES


@dataclass(frozen=True)
class MaskingPolicy:
    """The catalogue (for qualification / ``*`` expansion) and the rules; hashable."""

    schema: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    rules: frozenset[ColumnRule]

    @cached_property
    def rule_index(self) -> dict[tuple[str, str], ColumnRule]:
        """(table, column) -> rule; a ``schema.table`` rule is also indexed by bare table."""
        index: dict[tuple[str, str], ColumnRule] = {}
        for rule in sorted(self.rules, key=lambda r: (r.table, r.column, r.rule)):
            index[(rule.table.lower(), rule.column.lower())] = rule
        return index

    @cached_property
    def column_types(self) -> dict[tuple[str, str], str]:
        return {
            (table.lower(), column.lower()): ctype
            for table, columns in self.schema
            for column, ctype in columns
        }

    @cached_property
    def table_names(self) -> frozenset[str]:
        names: set[str] = set()
        for table, _ in self.schema:
            names.add(table.lower())
            names.add(table.lower().rsplit(".", 1)[-1])
        return frozenset(names)

    @cached_property
    def qualified_names(self) -> bool:
        """Whether the catalogue names tables with their schema (PostgreSQL): a qualified
        name it does not hold is then an unknown table, not the table of the same bare name."""
        return any("." in table for table, _ in self.schema)

    @cached_property
    def ruled_tables(self) -> frozenset[str]:
        """Names (qualified and bare) of tables with at least one rule."""
        names: set[str] = set()
        for table, _ in self.rule_index:
            names.add(table)
            names.add(table.rsplit(".", 1)[-1])
        return frozenset(names)

    @cached_property
    def all_columns(self) -> frozenset[str]:
        return frozenset(column for _, column in self.column_types)

    def rule_for(self, table: str, column: str, db: str = "") -> ColumnRule | None:
        table, column = table.lower(), column.lower()
        if db:
            found = self.rule_index.get((f"{db.lower()}.{table}", column))
            if found is not None:
                return found
        found = self.rule_index.get((table, column))
        if found is not None:
            return found
        # a rule written for schema.table matches an unqualified reference to that table
        for (rule_table, rule_column), rule in self.rule_index.items():
            if rule_column == column and rule_table.rsplit(".", 1)[-1] == table:
                return rule
        return None

    def type_of(self, table: str, column: str, db: str = "") -> str | None:
        table, column = table.lower(), column.lower()
        if db and (f"{db.lower()}.{table}", column) in self.column_types:
            return self.column_types[(f"{db.lower()}.{table}", column)]
        found = self.column_types.get((table, column))
        if found is not None:
            return found
        for (name, col), ctype in self.column_types.items():
            if col == column and name.rsplit(".", 1)[-1] == table:
                return ctype
        return None


@dataclass(frozen=True)
class OutputColumn:
    name: str
    sources: tuple[tuple[str, str], ...]
    masked: bool
    strategy: str | None
    rule: str | None
    reason: str


@dataclass(frozen=True)
class MaskResult:
    sql: str
    columns: tuple[OutputColumn, ...]
    touches_sensitive: bool
    conservative: bool
    held: str | None
    probes: tuple[Probe, ...]
    keyed: bool = False  # the SQL needs the pseudonym key bound at execution

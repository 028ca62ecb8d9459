"""Guardrails: capabilities first, then the first matching rule per statement decides."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any

from .analyzer import analyze
from .types import (
    Action,
    Analysis,
    Category,
    Risk,
    Statement,
    max_risk,
    risk_rank,
    strictest,
)


@dataclass(frozen=True)
class Rule:
    """Plain-data mirror of a guardrail row."""

    id: int
    name: str
    action: Action
    priority: int = 100
    message: str = ""
    environments: frozenset[str] = frozenset()
    connections: frozenset[int] = frozenset()
    groups: frozenset[str] = frozenset()
    exempt_groups: frozenset[str] = frozenset()
    categories: frozenset[Category] = frozenset()
    min_risk: Risk | None = None
    table_pattern: str = ""
    function_name: str = ""
    unfiltered_write: bool = False
    sensitive_to_public: bool = False
    restricted_predicate: bool = False

    def __hash__(self) -> int:
        # Rules are hashed on every cached decide(); compute the field hash once.
        cached: int | None = self.__dict__.get("_cached_hash")
        if cached is None:
            cached = hash(_rule_key(self))
            object.__setattr__(self, "_cached_hash", cached)
        return cached


def _rule_key(rule: Rule) -> tuple[Any, ...]:
    return (
        rule.id, rule.name, rule.action, rule.priority, rule.message, rule.environments,
        rule.connections, rule.groups, rule.exempt_groups, rule.categories, rule.min_risk,
        rule.table_pattern, rule.function_name, rule.unfiltered_write, rule.sensitive_to_public,
        rule.restricted_predicate,
    )  # fmt: skip


@dataclass(frozen=True)
class Context:
    """Who asks, where: the plain facts a decision depends on."""

    environment: str
    connection_id: int
    groups: frozenset[str]
    capabilities: frozenset[str]
    sensitive_columns: frozenset[tuple[str, str]] = frozenset()
    public_tables: frozenset[str] = frozenset()
    # Statements (by index) that filter, join, group or sort on a restricted column: inference
    # probes, found by the masking rewrite.
    probe_statements: frozenset[int] = frozenset()
    # (statement index, where the probed values flow), said in the guardrail's reason.
    probe_reasons: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Reason:
    rule: str
    rule_id: int | None
    message: str
    statement: int | None
    action: Action | None = None  # what this reason decided for its statement


@dataclass(frozen=True)
class Decision:
    action: Action
    risk: Risk
    analysis: Analysis
    reasons: tuple[Reason, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the shape every channel shows."""
        return {
            "decision": self.action.value,
            "risk": self.risk.value,
            "statements": [
                {
                    "index": s.index,
                    "category": s.category.value,
                    "risk": s.risk.value,
                    "kind": s.kind,
                    "tables": list(s.tables),
                    "written_tables": list(s.written_tables),
                    "sql": s.sql,
                    "explanation": s.explanation,
                }
                for s in self.analysis.statements
            ],
            "reasons": [
                {
                    "rule": r.rule,
                    "message": r.message,
                    "statement": r.statement,
                    "action": r.action.value if r.action else self.action.value,
                }
                for r in self.reasons
            ],
            "error": self.analysis.error,
        }


# --- capabilities ------------------------------------------------------------------------

_NEEDED_CAPABILITY: dict[str, str] = {
    Category.READ: "read",
    Category.WRITE: "write",
    Category.DDL: "ddl",
}
_CAPABILITY_WORDS = {
    "read": "read",
    "write": "write",
    "ddl": "schema-change (DDL)",
    "admin": "administrative",
}


def needed_capability(category: str) -> str:
    """The capability a statement of this category needs on its connection.

    >>> needed_capability("ddl"), needed_capability("privilege")
    ('ddl', 'admin')
    """
    return _NEEDED_CAPABILITY.get(category, "admin")  # StrEnum keys: a plain string finds them


def capability_reason(statement: Statement, context: Context) -> Reason | None:
    """A denial when the caller lacks the capability the statement's category needs."""
    if not context.capabilities:
        return Reason("capability", None, "You have no access to this connection.", statement.index)
    needed = needed_capability(statement.category)
    if needed in context.capabilities:
        return None
    message = (
        f"You have no {_CAPABILITY_WORDS[needed]} access on this connection "
        f"(this {statement.category.value} statement needs the '{needed}' capability)."
    )
    return Reason("capability", None, message, statement.index)


# --- rule scope and match ----------------------------------------------------------------


def applies_to(rule: Rule, context: Context) -> bool:
    """Whether the rule is in force for this caller on this connection."""
    if rule.environments and context.environment not in rule.environments:
        return False
    if rule.connections and context.connection_id not in rule.connections:
        return False
    if rule.groups and not rule.groups & context.groups:
        return False
    return not rule.exempt_groups & context.groups


def _table_matches(pattern: str, table: str, lenient: bool) -> bool:
    """fnmatch on the name as written and on its last part; ``lenient`` also lets an
    unqualified name match a schema-qualified pattern (used for restricting rules)."""
    pattern = pattern.lower()
    bare = table.rsplit(".", 1)[-1]
    if fnmatchcase(table, pattern) or ("." not in pattern and fnmatchcase(bare, pattern)):
        return True
    return (
        lenient
        and "." in pattern
        and "." not in table
        and fnmatchcase(table, pattern.rsplit(".", 1)[-1])
    )


def _same_table(a: str, b: str) -> bool:
    return a == b or a.rsplit(".", 1)[-1] == b.rsplit(".", 1)[-1]


def copies_sensitive_to_public(statement: Statement, context: Context) -> bool:
    """A write into a public table whose copied values come from a sensitive column."""
    if not context.sensitive_columns or not context.public_tables:
        return False
    if not any(_same_table(t, p) for t in statement.written_tables for p in context.public_tables):
        return False
    sources = [t for t in statement.tables if t not in statement.written_tables] or list(
        statement.tables
    )
    for table, column in statement.copied_columns:
        for s_table, s_column in context.sensitive_columns:
            column_hit = column in {"*", s_column}
            table_hit = (
                _same_table(table, s_table)
                if table
                else any(_same_table(t, s_table) for t in sources)
            )
            if column_hit and table_hit:
                return True
    return False


Criterion = Callable[[Rule, Statement, Context], bool | None]


def _by_category(rule: Rule, statement: Statement, context: Context) -> bool | None:
    return statement.category in rule.categories if rule.categories else None


def _by_risk(rule: Rule, statement: Statement, context: Context) -> bool | None:
    if rule.min_risk is None:
        return None
    return risk_rank(statement.risk) >= risk_rank(rule.min_risk)


def _by_table(rule: Rule, statement: Statement, context: Context) -> bool | None:
    if not rule.table_pattern:
        return None
    lenient = rule.action != Action.ALLOW
    return any(_table_matches(rule.table_pattern, t, lenient) for t in statement.tables)


def _by_function(rule: Rule, statement: Statement, context: Context) -> bool | None:
    if not rule.function_name:
        return None
    return rule.function_name.lower() in statement.functions


def _by_unfiltered(rule: Rule, statement: Statement, context: Context) -> bool | None:
    return "unfiltered_write" in statement.flags if rule.unfiltered_write else None


def _by_sensitive(rule: Rule, statement: Statement, context: Context) -> bool | None:
    return copies_sensitive_to_public(statement, context) if rule.sensitive_to_public else None


def _by_probe(rule: Rule, statement: Statement, context: Context) -> bool | None:
    return statement.index in context.probe_statements if rule.restricted_predicate else None


CRITERIA: tuple[Criterion, ...] = (
    _by_category,
    _by_risk,
    _by_table,
    _by_function,
    _by_unfiltered,
    _by_sensitive,
    _by_probe,
)


def matches(rule: Rule, statement: Statement, context: Context) -> bool:
    """All criteria the rule sets must hold; a rule without criteria matches everything."""
    return all(criterion(rule, statement, context) is not False for criterion in CRITERIA)


# --- messages ----------------------------------------------------------------------------

_ACTION_PHRASES = {
    Action.ALLOW: "allows",
    Action.REQUIRE_APPROVAL: "requires an approver for",
    Action.DENY: "blocks",
}


def rule_message(rule: Rule, statement: Statement) -> str:
    if rule.message:
        return rule.message
    what = f"this {statement.category.value} statement ({statement.kind})"
    return f"Guardrail '{rule.name}' {_ACTION_PHRASES[rule.action]} {what}."


# --- decide ------------------------------------------------------------------------------


def _decide_statement(
    statement: Statement, context: Context, rules: tuple[Rule, ...]
) -> tuple[Action, Reason]:
    denied = capability_reason(statement, context)
    if denied is not None:
        return Action.DENY, replace(denied, action=Action.DENY)
    if "reserved" in statement.flags:  # no guardrail can allow it
        message = f"{statement.explanation} It never runs."
        return Action.DENY, Reason("reserved", None, message, statement.index, Action.DENY)
    is_unknown = statement.category == Category.UNKNOWN
    for rule in rules:
        if not applies_to(rule, context) or not matches(rule, statement, context):
            continue
        # Fail closed: only a deny, or a rule that names the unknown category, decides unknowns.
        if is_unknown and rule.action != Action.DENY and Category.UNKNOWN not in rule.categories:
            continue
        message = rule_message(rule, statement)
        if rule.restricted_predicate:
            flows = dict(context.probe_reasons).get(statement.index)
            message = f"{message} {flows}" if flows else message
        return rule.action, Reason(rule.name, rule.id, message, statement.index, rule.action)
    if is_unknown:
        message = f"{statement.explanation} Unrecognised statements are never run."
        return Action.DENY, Reason("unknown-statement", None, message, statement.index, Action.DENY)
    message = "No guardrail applies to this statement, so it is allowed."
    return Action.ALLOW, Reason("default-allow", None, message, statement.index, Action.ALLOW)


def _ordered(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    return tuple(sorted(rules, key=lambda rule: (rule.priority, rule.id)))


def _decide(sql: str, dialect: str, context: Context, rules: tuple[Rule, ...]) -> Decision:
    analysis = analyze(sql, dialect)
    if analysis.error is not None and analysis.syntax_error:
        # Nothing was understood, so nothing can run; a typo is not a high risk.
        reason = Reason("syntax-error", None, f"{analysis.error}.", None, Action.DENY)
        return Decision(Action.DENY, Risk.LOW, analysis, (reason,))
    if analysis.error is not None:
        message = f"Warden could not analyze this SQL, so it will not run it: {analysis.error}"
        reason = Reason("parse-error", None, message, None, Action.DENY)
        return Decision(Action.DENY, Risk.HIGH, analysis, (reason,))
    ordered = _ordered(rules)
    actions: list[Action] = []
    reasons: list[Reason] = []
    for statement in analysis.statements:
        action, reason = _decide_statement(statement, context, ordered)
        actions.append(action)
        reasons.append(reason)
    risk = max_risk(*(s.risk for s in analysis.statements))
    return Decision(strictest(*actions), risk, analysis, tuple(reasons))


_decide_cached = functools.lru_cache(maxsize=4096)(_decide)


def decide(sql: str, *, dialect: str, context: Context, rules: tuple[Rule, ...]) -> Decision:
    """Analyze ``sql`` and decide allow / require_approval / deny for ``context``. Never raises."""
    if len(sql) > 100_000:
        return _decide(sql, dialect, context, rules)
    return _decide_cached(sql, dialect, context, rules)


def clear_decide_cache() -> None:
    _decide_cached.cache_clear()

"""Plain value types shared by the analyzer and the policy layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Category(StrEnum):
    READ = "read"
    WRITE = "write"
    DDL = "ddl"
    PRIVILEGE = "privilege"
    SESSION = "session"
    CODE = "code"
    FILE = "file"
    ADMIN = "admin"
    TRANSACTION = "transaction"
    UNKNOWN = "unknown"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Action(StrEnum):
    ALLOW = "allow"
    REQUIRE_APPROVAL = "require_approval"
    DENY = "deny"


RISK_ORDER: tuple[Risk, ...] = (Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.CRITICAL)
ACTION_ORDER: tuple[Action, ...] = (Action.ALLOW, Action.REQUIRE_APPROVAL, Action.DENY)

# When one statement does several things (an UPDATE calling pg_read_file, a SELECT calling an
# unknown function) the most dangerous category names it. Unknown is last: fail closed.
CATEGORY_ORDER: tuple[Category, ...] = (
    Category.READ,
    Category.TRANSACTION,
    Category.WRITE,
    Category.DDL,
    Category.SESSION,
    Category.ADMIN,
    Category.PRIVILEGE,
    Category.CODE,
    Category.FILE,
    Category.UNKNOWN,
)

_RISK_RANK = {risk: i for i, risk in enumerate(RISK_ORDER)}
_ACTION_RANK = {action: i for i, action in enumerate(ACTION_ORDER)}
_CATEGORY_RANK = {category: i for i, category in enumerate(CATEGORY_ORDER)}


def risk_rank(risk: Risk) -> int:
    """Position of ``risk`` in LOW < MEDIUM < HIGH < CRITICAL."""
    return _RISK_RANK[risk]


def action_rank(action: Action) -> int:
    """Position of ``action`` in ALLOW < REQUIRE_APPROVAL < DENY."""
    return _ACTION_RANK[action]


def max_risk(*risks: Risk) -> Risk:
    return max(risks, key=risk_rank, default=Risk.LOW)


def strictest(*actions: Action) -> Action:
    return max(actions, key=action_rank, default=Action.ALLOW)


def worse_category(a: Category, b: Category) -> Category:
    return a if _CATEGORY_RANK[a] >= _CATEGORY_RANK[b] else b


@dataclass(frozen=True)
class Statement:
    """One statement of a batch, classified."""

    index: int
    sql: str
    category: Category
    risk: Risk
    kind: str
    tables: tuple[str, ...] = ()
    written_tables: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    flags: frozenset[str] = frozenset()
    explanation: str = ""
    # Columns whose values a write copies into its target: (table, column). The table is ""
    # when it cannot be resolved and the column is "*" for a star; used by sensitive_to_public.
    copied_columns: tuple[tuple[str, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Analysis:
    """Every statement of a batch, or the reason the batch could not be read."""

    dialect: str
    statements: tuple[Statement, ...]
    error: str | None = None
    syntax_error: bool = False  # the error is a syntax error in the user's text

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def risk(self) -> Risk:
        if self.error is not None:
            return Risk.LOW if self.syntax_error else Risk.HIGH
        return max_risk(*(s.risk for s in self.statements))

    @property
    def category(self) -> Category:
        """The most dangerous category in the batch (unknown when it did not parse)."""
        if self.error is not None or not self.statements:
            return Category.UNKNOWN
        result = Category.READ
        for statement in self.statements:
            result = worse_category(result, statement.category)
        return result

    @property
    def categories(self) -> frozenset[Category]:
        return frozenset(s.category for s in self.statements)

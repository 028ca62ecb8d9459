"""The demo-data masking policy used by the masking tests."""

from __future__ import annotations

from governance.demo_data import _SCHEMA
from governance.engine.masking import ColumnRule, MaskingPolicy, Strategy

KEY = b"test-key-'quoted'\\slash-0123456789"

RULES: tuple[tuple[str, str, str, Strategy], ...] = (
    ("customers", "email", "email", Strategy.PARTIAL),
    ("customers", "phone", "phone", Strategy.PARTIAL),
    ("customers", "ssn", "national_id", Strategy.REDACT),
    ("customers", "full_name", "person_name", Strategy.PSEUDONYM),
    ("customers", "date_of_birth", "date_of_birth", Strategy.GENERALIZE),
    ("customers", "street_address", "street_address", Strategy.REDACT),
    ("payment_cards", "card_number", "credit_card", Strategy.PARTIAL),
    ("employees", "work_email", "email", Strategy.PSEUDONYM),
    ("employees", "salary_cents", "financial", Strategy.GENERALIZE),
    ("api_credentials", "api_key", "secret", Strategy.REDACT),
)

_LOGICAL = {"pk": "bigint", "ref": "bigint", "json": "json", "timestamp": "timestamp"}


def rules() -> frozenset[ColumnRule]:
    return frozenset(
        ColumnRule(table, column, semantic, strategy, f"{semantic}: {strategy}")
        for table, column, semantic, strategy in RULES
    )


def static_policy() -> MaskingPolicy:
    """The policy built from the demo schema definition (no database needed)."""
    schema = tuple(
        (table, tuple((name, _LOGICAL.get(logical, logical)) for name, logical, _ in columns))
        for table, columns in _SCHEMA.items()
    )
    return MaskingPolicy(schema=schema, rules=rules())


def policy_from(columns: dict[str, list[tuple[str, str]]]) -> MaskingPolicy:
    schema = tuple((table, tuple(cols)) for table, cols in sorted(columns.items()))
    return MaskingPolicy(schema=schema, rules=rules())

"""Warden's SQL governance engine: pure Python and sqlglot, no Django, no I/O, no clock.

``analyze`` says what each statement of a batch does; ``decide`` applies capabilities and
guardrails to say whether it may run. Both are cached and never raise on bad input.
"""

from __future__ import annotations

from . import masking, pii
from .analyzer import analyze, clear_analyze_cache, dialect_for_engine
from .credentials import CredentialUse, clear_credentials_cache, credential_uses
from .defaults import DEFAULT_RULES
from .policy import (
    Context,
    Decision,
    Reason,
    Rule,
    clear_decide_cache,
    copies_sensitive_to_public,
    decide,
)
from .touched import columns_touched, columns_written
from .types import (
    ACTION_ORDER,
    CATEGORY_ORDER,
    RISK_ORDER,
    Action,
    Analysis,
    Category,
    Risk,
    Statement,
    action_rank,
    max_risk,
    risk_rank,
    strictest,
)


def clear_caches() -> None:
    """Forget cached analyses and decisions (tests, or after changing catalogues)."""
    clear_analyze_cache()
    clear_decide_cache()
    clear_credentials_cache()


__all__ = [
    "ACTION_ORDER",
    "CATEGORY_ORDER",
    "DEFAULT_RULES",
    "RISK_ORDER",
    "Action",
    "Analysis",
    "Category",
    "Context",
    "CredentialUse",
    "Decision",
    "Reason",
    "Risk",
    "Rule",
    "Statement",
    "action_rank",
    "analyze",
    "clear_caches",
    "columns_touched",
    "columns_written",
    "copies_sensitive_to_public",
    "credential_uses",
    "decide",
    "dialect_for_engine",
    "masking",
    "max_risk",
    "pii",
    "risk_rank",
    "strictest",
]

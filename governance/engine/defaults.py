"""The built-in guardrails: sensible protection with zero setup.

Lower priority numbers are evaluated first and the first matching rule decides, so the
order is: never-run rules, then production approvals, then allows. Ids are placeholders;
the app's migration seeds one row per rule.
"""

from __future__ import annotations

from .policy import Rule
from .types import Action, Category, Risk

PRODUCTION = frozenset({"production"})
NON_PRODUCTION = frozenset({"staging", "development"})
ADMINS = frozenset({"admin"})

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        id=1,
        name="deny-sensitive-to-public",
        action=Action.DENY,
        priority=10,
        sensitive_to_public=True,
        message=(
            "This statement copies values from a sensitive column into a public table; "
            "Warden never runs it."
        ),
    ),
    Rule(
        id=2,
        name="deny-unknown-statements",
        action=Action.DENY,
        priority=20,
        categories=frozenset({Category.UNKNOWN}),
        message=(
            "Warden could not establish what this statement does, so it does not run it. "
            "An administrator can add a guardrail that allows it."
        ),
    ),
    Rule(
        id=9,
        name="hold-restricted-predicates",
        action=Action.REQUIRE_APPROVAL,
        priority=25,
        restricted_predicate=True,
        categories=frozenset({Category.READ, Category.WRITE}),
        message=(
            "A sensitive value shapes this statement's result other than through its mask: a "
            "restricted column (national ids, card numbers, IBANs, secrets) is filtered, "
            "joined, sorted, grouped or computed on, a sensitive value feeds a row generator, "
            "or a write stores one. That can reveal masked values, so an approver must review "
            "it first."
        ),
    ),
    Rule(
        id=3,
        name="production-deny-dangerous",
        action=Action.DENY,
        priority=30,
        environments=PRODUCTION,
        exempt_groups=ADMINS,
        categories=frozenset(
            {Category.PRIVILEGE, Category.SESSION, Category.CODE, Category.FILE, Category.ADMIN}
        ),
        message=(
            "Privilege changes, session settings, code, file access and administration "
            "commands are never run on production by Warden; ask an administrator."
        ),
    ),
    Rule(
        id=4,
        name="production-approve-critical",
        action=Action.REQUIRE_APPROVAL,
        priority=40,
        environments=PRODUCTION,
        exempt_groups=ADMINS,
        min_risk=Risk.CRITICAL,
        message=(
            "This statement is critical on production (it drops, truncates or changes every "
            "row of a table); an approver must review it first."
        ),
    ),
    Rule(
        id=5,
        name="production-approve-changes",
        action=Action.REQUIRE_APPROVAL,
        priority=50,
        environments=PRODUCTION,
        exempt_groups=ADMINS,
        categories=frozenset({Category.WRITE, Category.DDL}),
        message="Changes to production data or structure need an approver first.",
    ),
    Rule(
        id=6,
        name="production-allow-reads",
        action=Action.ALLOW,
        priority=60,
        environments=PRODUCTION,
        categories=frozenset({Category.READ}),
        message="Reads are allowed on production.",
    ),
    Rule(
        id=7,
        name="non-production-approve-critical",
        action=Action.REQUIRE_APPROVAL,
        priority=70,
        environments=NON_PRODUCTION,
        exempt_groups=ADMINS,
        min_risk=Risk.CRITICAL,
        message="This statement is critical (it drops, truncates or changes every row); "
        "an approver must review it first.",
    ),
    Rule(
        id=8,
        name="non-production-allow-reads-and-writes",
        action=Action.ALLOW,
        priority=80,
        environments=NON_PRODUCTION,
        categories=frozenset({Category.READ, Category.WRITE}),
        message="Reads and writes are allowed outside production.",
    ),
)

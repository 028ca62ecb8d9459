"""A guardrail tried before it is saved: what it, and the whole policy with it, would decide.

The decisions are the engine's own (`runs.decision_preview`: parse, classify, masking holds,
guardrails, batch refusals), made with the rule as the admin typed it. Nothing runs on the
target, nothing is saved and nothing is recorded: the admin who tries sees the policy anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.contrib.auth.models import AnonymousUser

from governance import engine
from governance.engine.policy import applies_to
from governance.models import Capability, Connection
from governance.services.access import decision_inputs
from governance.services.runs import decision_preview

# A rule not saved yet gets the next id when it is: it comes after the saved rules of the same
# priority (the engine orders by priority, then id).
UNSAVED_ID = 2**31 - 1


@dataclass(frozen=True)
class Trial:
    rule: engine.Rule
    in_force: bool  # its scope (environments, connections, groups) covers this context
    enabled: bool
    matched: tuple[int, ...]  # the statements (0-based) the rule decided, alone
    alone: dict[str, Any]  # the decision with this rule as the only guardrail
    with_rule: dict[str, Any]  # every enabled guardrail, this one as typed
    saved: dict[str, Any]  # every enabled guardrail as saved now
    as_user: Any  # None: anyone holding every capability, in no role

    @property
    def changes_decision(self) -> bool:
        return self.with_rule["decision"] != self.saved["decision"]


def guardrail_try(
    *, rule: engine.Rule, enabled: bool, connection: Connection, sql: str, as_user: Any = None
) -> Trial:
    """Decide `sql` on `connection` for `as_user` (their grants and roles; None: every
    capability and no role) with `rule` alone, with the saved guardrails plus `rule` in place
    of its saved version, and with the saved guardrails. Raises runs.InvalidSQL."""
    user = as_user if as_user is not None else AnonymousUser()
    context, saved_rules = decision_inputs(user=user, connection=connection)
    if as_user is None:
        context = replace(context, capabilities=frozenset(Capability.values), groups=frozenset())
    if rule.id is None:
        rule = replace(rule, id=UNSAVED_ID)
    others = tuple(r for r in saved_rules if r.id != rule.id)
    typed = (*others, rule) if enabled else others
    alone = decision_preview(
        user=user, connection=connection, sql=sql, context=context, rules=(rule,)
    )
    return Trial(
        rule=rule,
        in_force=applies_to(rule, context),
        enabled=enabled,
        matched=tuple(
            r["statement"]
            for r in alone["reasons"]
            if r["rule"] == rule.name and r["statement"] is not None
        ),
        alone=alone,
        with_rule=decision_preview(
            user=user, connection=connection, sql=sql, context=context, rules=typed
        ),
        saved=decision_preview(
            user=user, connection=connection, sql=sql, context=context, rules=saved_rules
        ),
        as_user=as_user,
    )

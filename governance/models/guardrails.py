"""Guardrails as data: admins edit them; the engine evaluates their plain-data mirror."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import Group
from django.db import models

from governance import engine


class Guardrail(models.Model):
    class Action(models.TextChoices):
        ALLOW = "allow", "Allow"
        REQUIRE_APPROVAL = "require_approval", "Require approval"
        DENY = "deny", "Deny"

    name = models.CharField(max_length=100, unique=True)
    message = models.CharField(
        max_length=500, blank=True, help_text="The sentence shown to the person whose SQL matches."
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    priority = models.IntegerField(default=100, help_text="Lower numbers are evaluated first.")
    enabled = models.BooleanField(default=True)
    # Scope (empty = any)
    environments = models.JSONField(default=list, blank=True)
    connections = models.ManyToManyField(
        "governance.Connection", blank=True, related_name="guardrails"
    )
    groups = models.ManyToManyField(Group, blank=True, related_name="guardrails")
    exempt_groups = models.ManyToManyField(Group, blank=True, related_name="exempt_guardrails")
    # Match (all given criteria must hold; none given = every statement)
    categories = models.JSONField(default=list, blank=True)
    min_risk = models.CharField(
        max_length=16, blank=True, choices=[(r.value, r.value) for r in engine.Risk]
    )
    table_pattern = models.CharField(max_length=200, blank=True)
    function_name = models.CharField(max_length=100, blank=True)
    unfiltered_write = models.BooleanField(
        default=False, help_text="UPDATE or DELETE without a WHERE that filters."
    )
    sensitive_to_public = models.BooleanField(
        default=False, help_text="Writes data read from a sensitive column into a public table."
    )
    restricted_predicate = models.BooleanField(
        default=False,
        help_text=(
            "A sensitive value shapes the result other than through its mask: any use of a "
            "restricted column, or a row generator fed by any sensitive column (an inference "
            "probe)."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return self.name

    def to_rule(self, scope: Mapping[str, Iterable[Any]] | None = None) -> engine.Rule:
        """The engine's mirror. `scope`: the connections, groups and exempt_groups as a form
        holds them, for a rule not saved as it stands (tried before saving)."""
        if scope is None:
            scope = {
                "connections": self.connections.all(),
                "groups": self.groups.all(),
                "exempt_groups": self.exempt_groups.all(),
            }
        return engine.Rule(
            id=self.pk,
            name=self.name,
            action=engine.Action(self.action),
            priority=self.priority,
            message=self.message,
            environments=frozenset(self.environments),
            connections=frozenset(c.pk for c in scope["connections"]),
            groups=frozenset(g.name for g in scope["groups"]),
            exempt_groups=frozenset(g.name for g in scope["exempt_groups"]),
            categories=frozenset(engine.Category(c) for c in self.categories),
            min_risk=engine.Risk(self.min_risk) if self.min_risk else None,
            table_pattern=self.table_pattern,
            function_name=self.function_name,
            unfiltered_write=self.unfiltered_write,
            sensitive_to_public=self.sensitive_to_public,
            restricted_predicate=self.restricted_predicate,
        )

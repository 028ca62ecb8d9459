"""Inference probes are held by default: a guardrail admins can relax."""

from __future__ import annotations

from typing import Any

from django.db import migrations

RULE = {
    "name": "hold-restricted-predicates",
    "action": "require_approval",
    "priority": 25,
    "message": (
        "This statement filters, joins, groups or sorts on a restricted column (national ids, "
        "card numbers, IBANs, secrets), which can reveal masked values one guess at a time; an "
        "approver must review it first."
    ),
    "categories": ["read"],
    "restricted_predicate": True,
}


def seed(apps: Any, schema_editor: Any) -> None:
    Guardrail = apps.get_model("governance", "Guardrail")
    Guardrail.objects.get_or_create(name=RULE["name"], defaults=RULE)


def unseed(apps: Any, schema_editor: Any) -> None:
    apps.get_model("governance", "Guardrail").objects.filter(name=RULE["name"]).delete()


class Migration(migrations.Migration):
    dependencies = [("governance", "0005_guardrail_restricted_predicate")]

    operations = [migrations.RunPython(seed, unseed)]

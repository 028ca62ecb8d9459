"""The inference-probe guardrail now also holds row generators fed by any sensitive column,
and writes (their WHERE is an oracle through the row count, and what they store can be read
back unmasked)."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

OLD = (
    "This statement filters, joins, groups or sorts on a restricted column (national ids, "
    "card numbers, IBANs, secrets), which can reveal masked values one guess at a time; an "
    "approver must review it first."
)
NEW = (
    "A sensitive value shapes this statement's result other than through its mask: a "
    "restricted column (national ids, card numbers, IBANs, secrets) is filtered, joined, "
    "sorted, grouped or computed on, a sensitive value feeds a row generator, or a write "
    "stores one. That can reveal masked values, so an approver must review it first."
)


def reword(apps: Any, schema_editor: Any) -> None:
    # Only the seeded wording and scope: an admin's own message or categories stay.
    Guardrail = apps.get_model("governance", "Guardrail")
    Guardrail.objects.filter(name="hold-restricted-predicates", message=OLD).update(message=NEW)
    for rule in Guardrail.objects.filter(name="hold-restricted-predicates"):
        if list(rule.categories) == ["read"]:
            rule.categories = ["read", "write"]
            rule.save(update_fields=["categories"])


def unreword(apps: Any, schema_editor: Any) -> None:
    Guardrail = apps.get_model("governance", "Guardrail")
    Guardrail.objects.filter(name="hold-restricted-predicates", message=NEW).update(message=OLD)
    for rule in Guardrail.objects.filter(name="hold-restricted-predicates"):
        if sorted(rule.categories) == ["read", "write"]:
            rule.categories = ["read"]
            rule.save(update_fields=["categories"])


class Migration(migrations.Migration):
    dependencies = [("governance", "0008_queryrun_leaner_indexes")]

    operations = [
        migrations.AlterField(
            model_name="guardrail",
            name="restricted_predicate",
            field=models.BooleanField(
                default=False,
                help_text=(
                    "A sensitive value shapes the result other than through its mask: any use "
                    "of a restricted column, or a row generator fed by any sensitive column (an "
                    "inference probe)."
                ),
            ),
        ),
        migrations.RunPython(reword, unreword),
    ]


seed = reword  # tests re-seed the default rows after a flush (tests/conftest.py)

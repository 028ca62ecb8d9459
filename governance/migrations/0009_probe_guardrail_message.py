"""The inference-probe guardrail now also holds row generators fed by any sensitive column."""

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
    "sorted, grouped or computed on, or a sensitive value feeds a row generator. That can "
    "reveal masked values, so an approver must review it first."
)


def reword(apps: Any, schema_editor: Any) -> None:
    # Only the seeded wording: an admin's own message stays.
    Guardrail = apps.get_model("governance", "Guardrail")
    Guardrail.objects.filter(name="hold-restricted-predicates", message=OLD).update(message=NEW)


def unreword(apps: Any, schema_editor: Any) -> None:
    Guardrail = apps.get_model("governance", "Guardrail")
    Guardrail.objects.filter(name="hold-restricted-predicates", message=NEW).update(message=OLD)


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

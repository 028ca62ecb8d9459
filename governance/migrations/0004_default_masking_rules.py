"""Zero-setup masking: one strategy per semantic type (admins change them later)."""

from __future__ import annotations

from typing import Any

from django.db import migrations

DEFAULT_STRATEGIES = {
    "email": "partial",
    "phone": "partial",
    "national_id": "redact",
    "credit_card": "partial",
    "iban": "partial",
    "person_name": "pseudonym",
    "street_address": "redact",
    "date_of_birth": "generalize",
    "ip_address": "pseudonym",
    "secret": "redact",
    "financial": "generalize",
}


def seed(apps: Any, schema_editor: Any) -> None:
    MaskingRule = apps.get_model("governance", "MaskingRule")
    for semantic_type, strategy in DEFAULT_STRATEGIES.items():
        MaskingRule.objects.get_or_create(
            semantic_type=semantic_type, defaults={"strategy": strategy}
        )


def unseed(apps: Any, schema_editor: Any) -> None:
    apps.get_model("governance", "MaskingRule").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("governance", "0003_catalog")]

    operations = [migrations.RunPython(seed, unseed)]

"""Zero-setup protection: the four roles and the default guardrail set.

The rules are a snapshot of governance.engine.DEFAULT_RULES when this migration was written;
later changes to the defaults come in their own migrations, never by editing this one.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

ROLES = ("analyst", "approver", "admin", "auditor")
DEFAULT_GUARDRAILS: list[dict[str, Any]] = [
    {
        "name": "deny-sensitive-to-public",
        "action": "deny",
        "priority": 10,
        "message": "This statement copies values from a sensitive column into a public table; Warden never runs it.",
        "environments": [],
        "exempt_groups": [],
        "categories": [],
        "min_risk": "",
        "unfiltered_write": False,
        "sensitive_to_public": True,
    },
    {
        "name": "deny-unknown-statements",
        "action": "deny",
        "priority": 20,
        "message": "Warden could not establish what this statement does, so it does not run it. An administrator can add a guardrail that allows it.",
        "environments": [],
        "exempt_groups": [],
        "categories": ["unknown"],
        "min_risk": "",
        "unfiltered_write": False,
        "sensitive_to_public": False,
    },
    {
        "name": "production-deny-dangerous",
        "action": "deny",
        "priority": 30,
        "message": "Privilege changes, session settings, code, file access and administration commands are never run on production by Warden; ask an administrator.",
        "environments": ["production"],
        "exempt_groups": ["admin"],
        "categories": ["admin", "code", "file", "privilege", "session"],
        "min_risk": "",
        "unfiltered_write": False,
        "sensitive_to_public": False,
    },
    {
        "name": "production-approve-critical",
        "action": "require_approval",
        "priority": 40,
        "message": "This statement is critical on production (it drops, truncates or changes every row of a table); an approver must review it first.",
        "environments": ["production"],
        "exempt_groups": ["admin"],
        "categories": [],
        "min_risk": "critical",
        "unfiltered_write": False,
        "sensitive_to_public": False,
    },
    {
        "name": "production-approve-changes",
        "action": "require_approval",
        "priority": 50,
        "message": "Changes to production data or structure need an approver first.",
        "environments": ["production"],
        "exempt_groups": ["admin"],
        "categories": ["ddl", "write"],
        "min_risk": "",
        "unfiltered_write": False,
        "sensitive_to_public": False,
    },
    {
        "name": "production-allow-reads",
        "action": "allow",
        "priority": 60,
        "message": "Reads are allowed on production.",
        "environments": ["production"],
        "exempt_groups": [],
        "categories": ["read"],
        "min_risk": "",
        "unfiltered_write": False,
        "sensitive_to_public": False,
    },
    {
        "name": "non-production-approve-critical",
        "action": "require_approval",
        "priority": 70,
        "message": "This statement is critical (it drops, truncates or changes every row); an approver must review it first.",
        "environments": ["development", "staging"],
        "exempt_groups": ["admin"],
        "categories": [],
        "min_risk": "critical",
        "unfiltered_write": False,
        "sensitive_to_public": False,
    },
    {
        "name": "non-production-allow-reads-and-writes",
        "action": "allow",
        "priority": 80,
        "message": "Reads and writes are allowed outside production.",
        "environments": ["development", "staging"],
        "exempt_groups": [],
        "categories": ["read", "write"],
        "min_risk": "",
        "unfiltered_write": False,
        "sensitive_to_public": False,
    },
]


def seed(apps: Any, schema_editor: Any) -> None:
    Group = apps.get_model("auth", "Group")
    Guardrail = apps.get_model("governance", "Guardrail")
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
    for row in DEFAULT_GUARDRAILS:
        data = dict(row)
        exempt = data.pop("exempt_groups")
        guardrail, created = Guardrail.objects.get_or_create(name=data["name"], defaults=data)
        if created:
            guardrail.exempt_groups.set([groups[name] for name in exempt])


def unseed(apps: Any, schema_editor: Any) -> None:
    Guardrail = apps.get_model("governance", "Guardrail")
    Guardrail.objects.filter(name__in=[row["name"] for row in DEFAULT_GUARDRAILS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(seed, unseed)]

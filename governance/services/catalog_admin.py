"""Admins' catalog decisions: confirm, change or clear a classification; labels; exemptions."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.kinds import EventKind
from governance.models import (
    CatalogColumn,
    CatalogTable,
    Connection,
    MaskingRule,
    Source,
    UnmaskExemption,
)
from governance.services.caller import Caller, record


def catalog_bump(connection: Connection) -> None:
    """Drop cached masking plans and exemption lists of this connection (every process)."""
    Connection.objects.filter(pk=connection.pk).update(catalog_version=F("catalog_version") + 1)


@transaction.atomic
def column_review(
    *,
    caller: Caller,
    column: CatalogColumn,
    semantic_type: str,
    sensitivity: str,
    strategy: str,
    free_text: bool = False,
) -> CatalogColumn:
    """Confirm or change a column's classification (an empty type clears it); it then sticks."""
    before = [column.semantic_type, column.sensitivity, column.strategy, column.source]
    column.semantic_type, column.sensitivity = semantic_type, sensitivity
    column.strategy, column.free_text = strategy, free_text and bool(semantic_type)
    column.source = Source.CONFIRMED
    column.confirmed_by = caller.user
    column.confirmed_at = timezone.now()
    column.save()
    connection = column.table.connection
    catalog_bump(connection)
    record(
        EventKind.CATALOG_COLUMN_REVIEWED,
        caller,
        connection,
        detail={
            "column": str(column),
            "before": before,
            "after": [semantic_type, sensitivity, strategy, Source.CONFIRMED],
        },
    )
    return column


@transaction.atomic
def column_rediscover(*, caller: Caller, column: CatalogColumn) -> None:
    """Hand a column back to discovery (its next run re-proposes a classification)."""
    column.source = Source.DISCOVERED
    column.confirmed_by, column.confirmed_at = None, None
    column.save()
    catalog_bump(column.table.connection)
    record(
        EventKind.CATALOG_COLUMN_RELEASED,
        caller,
        column.table.connection,
        detail={"column": str(column)},
    )


@transaction.atomic
def table_label_set(*, caller: Caller, table: CatalogTable, label: str) -> None:
    before = table.label
    table.label, table.label_source = label, Source.CONFIRMED
    table.save()
    catalog_bump(table.connection)
    record(
        EventKind.CATALOG_TABLE_LABELLED,
        caller,
        table.connection,
        detail={"table": table.qualified_name, "before": before, "after": label},
    )


@transaction.atomic
def masking_rule_set(*, caller: Caller, semantic_type: str, strategy: str) -> None:
    rule, _ = MaskingRule.objects.get_or_create(
        semantic_type=semantic_type, defaults={"strategy": strategy}
    )
    before = rule.strategy
    rule.strategy = strategy
    rule.save()
    # Cached masking plans are keyed by catalog version: move every connection's.
    Connection.objects.update(catalog_version=F("catalog_version") + 1)
    record(
        EventKind.MASKING_RULE_CHANGED,
        caller,
        detail={"semantic_type": semantic_type, "before": before, "after": strategy},
    )


@transaction.atomic
def exemption_create(
    *, caller: Caller, column: CatalogColumn, user: Any, group: Any, expires_at: Any, reason: str
) -> UnmaskExemption:
    exemption = UnmaskExemption.objects.create(
        column=column,
        user=user,
        group=group,
        expires_at=expires_at,
        reason=reason,
        created_by=caller.user,
    )
    catalog_bump(column.table.connection)
    record(
        EventKind.UNMASK_GRANTED,
        caller,
        column.table.connection,
        detail={
            "exemption": exemption.pk,
            "column": str(column),
            "grantee": str(user or group),
            "expires_at": expires_at.isoformat(),
            "reason": reason,
        },
    )
    return exemption


@transaction.atomic
def exemption_revoke(*, caller: Caller, exemption: UnmaskExemption) -> None:
    connection = exemption.column.table.connection
    record(
        EventKind.UNMASK_REVOKED,
        caller,
        connection,
        detail={"exemption": exemption.pk, "column": str(exemption.column)},
    )
    exemption.delete()
    catalog_bump(connection)

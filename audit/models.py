"""The audit trail: append-only events.

Rows are only ever inserted, and never rewritten: not even to rename a kind (see
audit/kinds.py: LEGACY). Each event carries snapshots (actor name, connection name) rather
than foreign keys, so the record survives deletion of what it describes. ``prev_hash`` and
``hash`` are reserved for the tamper-evident chain.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from audit.kinds import kind_label


class AppendOnlyError(Exception):
    pass


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("audit events are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events are append-only")


class AuditEvent(models.Model):
    class Channel(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"
        CLI = "cli", "CLI"
        MCP = "mcp", "MCP"
        WORKER = "worker", "Worker"
        SYSTEM = "system", "System"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=64, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.WEB)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    connection_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    connection_name = models.CharField(max_length=100, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    sql = models.TextField(blank=True)
    categories = models.JSONField(default=list, blank=True)
    decision = models.CharField(max_length=32, blank=True)
    risk = models.CharField(max_length=16, blank=True)
    rule = models.CharField(max_length=200, blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind} by {self.actor_name or '-'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events are append-only")

    @property
    def kind_label(self) -> str:
        """What the kind means, in words (older names included: the trail is never rewritten)."""
        return kind_label(self.kind)

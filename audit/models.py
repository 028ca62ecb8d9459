"""The audit trail: append-only events.

Rows are only ever inserted, and never rewritten: not even to rename a kind (see
audit/kinds.py: LEGACY). Each event carries plain ids and snapshots (actor id and name,
connection id and name) rather than foreign keys, so the record survives deletion of what it
describes. On PostgreSQL the database itself refuses UPDATE, DELETE and TRUNCATE of the table
(migration 0002's trigger), except the sealer's one-time write of ``prev_hash`` and ``hash``.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

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

    # Set when the event is built (not on save), so the MAC written with it covers it.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=64, db_index=True)
    # A plain id and the name as it was, never a foreign key: deleting or renaming a user
    # changes nothing in the trail.
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
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
    # HMAC-SHA-256 of the event's content under the audit MAC key, written with the row
    # (audit/chain.py); prev_hash and hash are written once, by the sealer.
    mac = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["kind", "created_at"]),
            # the sealer's work list: events not chained yet
            models.Index(fields=["id"], condition=models.Q(hash=""), name="audit_unsealed"),
        ]

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


class AuditCheckpoint(models.Model):
    """A signed statement of the chain's head: "events up to ``last_event_id`` hash to
    ``head_hash``". Written every N events or M minutes (also when nothing happened, so a
    silent period is provable), and also outside the database (audit/sealer.py)."""

    created_at = models.DateTimeField(default=timezone.now)
    last_event_id = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    sealed_events = models.BigIntegerField()
    previous = models.CharField(max_length=64)  # SHA-256 of the previous checkpoint's record
    signature = models.TextField()  # Ed25519 over audit.chain.checkpoint_message, base64
    public_key = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint {self.pk}: events to {self.last_event_id} -> {self.head_hash[:12]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("audit checkpoints are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit checkpoints are append-only")

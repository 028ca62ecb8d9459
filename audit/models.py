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

from audit.kinds import EventKind, kind_label


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


class ColumnAccess(models.Model):
    """An index of the trail: one row per sensitive column a run reached, and how (masked,
    unmasked through an exemption, used, copied, written, deleted). Filed by the sealer from
    the `detail.sensitive` of each `query.submitted` event it chains, so it holds only what the
    tamper-evident trail says, and `audit reindex` rebuilds it from there. The pages that
    answer "who saw this column" read it; the trail stays the proof."""

    event_id = models.BigIntegerField()
    run_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    channel = models.CharField(max_length=16, blank=True)
    connection_id = models.BigIntegerField(null=True, blank=True)
    connection_name = models.CharField(max_length=100, blank=True)
    table = models.CharField(max_length=255)
    column = models.CharField(max_length=255)
    how = models.CharField(max_length=16)
    exemption = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-event_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "table", "column", "how"], name="audit_column_access_once"
            )
        ]
        indexes = [
            models.Index(fields=["connection_name", "table", "column", "-event_id"]),
            models.Index(fields=["actor_id", "-event_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.how} {self.table}.{self.column} (event {self.event_id})"


def column_accesses(events: Any) -> list[ColumnAccess]:
    """The index rows for `events` (their `detail.sensitive`, on statements that were not
    denied)."""
    rows: list[ColumnAccess] = []
    for event in events:
        if event.kind != EventKind.QUERY_SUBMITTED or event.decision == "deny":
            continue
        reached = event.detail.get("sensitive") if isinstance(event.detail, dict) else None
        if not isinstance(reached, list):
            continue
        for entry in reached:
            if not isinstance(entry, dict):
                continue
            rows.append(
                ColumnAccess(
                    event_id=event.id,
                    run_id=event.run_id,
                    created_at=event.created_at,
                    actor_id=event.actor_id,
                    actor_name=event.actor_name,
                    channel=event.channel,
                    connection_id=event.connection_id,
                    connection_name=event.connection_name,
                    table=str(entry.get("table", "?"))[:255],
                    column=str(entry.get("column", "?"))[:255],
                    how=str(entry.get("how", "?"))[:16],
                    exemption=str(entry.get("exemption", ""))[:32],
                )
            )
    return rows


class IdentitySnapshot(models.Model):
    """Who may do what, as the identity watch last saw it (audit/identity_watch.py): account
    flags and roles, keyed fingerprints of passwords and second factors, never a secret. Its
    `digest` is also in the MAC'd detail of an `identity.snapshot` event, so an edited row is
    refused rather than trusted."""

    taken_at = models.DateTimeField()
    digest = models.CharField(max_length=64, db_index=True)
    state = models.JSONField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"identity snapshot {self.pk} ({self.taken_at:%Y-%m-%d %H:%M:%S})"

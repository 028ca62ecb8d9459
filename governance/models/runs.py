"""One governed execution request and its outcome."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from audit.kinds import EventKind
from governance.engine.policy import needed_capability
from governance.models.connections import Connection


class QueryRun(models.Model):
    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Waiting for approval"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        DENIED = "denied", "Denied"
        CANCELLED = "cancelled", "Cancelled"
        REJECTED = "rejected", "Rejected by an approver"
        EXPIRED = "expired", "Approval expired"

    # The audit event that records a run ending in each status.
    OUTCOME_EVENTS: dict[str, EventKind] = {
        Status.SUCCEEDED: EventKind.QUERY_SUCCEEDED,
        Status.FAILED: EventKind.QUERY_FAILED,
        Status.CANCELLED: EventKind.QUERY_CANCELLED,
        Status.REJECTED: EventKind.QUERY_REJECTED,
        Status.EXPIRED: EventKind.QUERY_EXPIRED,
    }

    class Mode(models.TextChoices):
        INTERACTIVE = "interactive", "Interactive"
        EXPORT = "export", "Export"
        CHECK = "check", "Check only"

    FINISHED = (
        Status.SUCCEEDED,
        Status.FAILED,
        Status.DENIED,
        Status.CANCELLED,
        Status.REJECTED,
        Status.EXPIRED,
    )

    user = models.ForeignKey(  # indexed by (user, -created_at) below
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="query_runs",
        db_index=False,
    )
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="runs")
    channel = models.CharField(max_length=16, default="web")
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.INTERACTIVE)
    sql = models.TextField()
    purpose = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    decision = models.CharField(max_length=20)
    risk = models.CharField(max_length=16)
    decision_detail = models.JSONField(default=dict)  # engine Decision.to_dict()
    statements = models.JSONField(default=list)  # the statements that run, one at a time
    read_only = models.BooleanField(default=True)
    columns = models.JSONField(default=list)  # [{"name": ..., "type": ...}]
    rows = models.JSONField(default=list)  # bounded by the connection's row cap
    row_count = models.BigIntegerField(null=True, blank=True)
    # Who else is behind the run: the agent and the person it acts for, the token, and what the
    # agent said of itself (model, trace id, tool). Empty for a person at the web editor.
    provenance = models.JSONField(default=dict, blank=True)
    truncated = models.BooleanField(default=False)
    masked = models.JSONField(default=list)
    # Which batch statement's rows `rows` are (its masking explains them); None: no rows.
    result_statement = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_kind = models.CharField(max_length=16, blank=True)
    backend_id = models.CharField(max_length=64, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # An approved run must start before this time, or it fails instead of running late.
    run_before = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            # Only the runs still in flight are looked up by status (reaping, the queue), and
            # every run is written twice on the hot path: a small partial index serves both.
            models.Index(
                fields=["status"],
                condition=models.Q(status__in=["pending_approval", "queued", "running"]),
                name="queryrun_in_flight",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} on {self.connection_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def reasons(self) -> list[dict[str, Any]]:
        return list(self.decision_detail.get("reasons", []))

    @property
    def statement_summaries(self) -> list[dict[str, Any]]:
        return list(self.decision_detail.get("statements", []))

    @property
    def missing_capabilities(self) -> list[str]:
        """The capabilities whose lack denied this run (its `capability` reasons), in order:
        what an access request for its connection would ask for."""
        categories = {s.get("index"): s.get("category") for s in self.statement_summaries}
        missing: list[str] = []
        for reason in self.reasons:
            category = categories.get(reason.get("statement"))
            if reason.get("rule") == "capability" and category:
                needed = needed_capability(category)
                if needed not in missing:
                    missing.append(needed)
        return missing

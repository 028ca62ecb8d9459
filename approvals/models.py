"""Approval requests, their reviews, and the policies that say who must approve what."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from governance.models import CatalogColumn, Connection, QueryRun

RISKS = ("low", "medium", "high", "critical")


class ApprovalPolicy(models.Model):
    """How many distinct approvers a risk needs, who may approve, and for how long.

    A request takes the first matching policy by `priority`, connection-specific policies
    before environment-specific ones before global ones. With no match the built-in default
    applies: `critical` needs 2 approvers, anything else 1, from the `approver` group.
    """

    name = models.CharField(max_length=100, unique=True)
    risk = models.CharField(max_length=16, choices=[(r, r) for r in RISKS])
    required_approvals = models.PositiveSmallIntegerField(default=1)
    approver_groups = models.ManyToManyField(Group, related_name="approval_policies")
    # Empty means every connection / every environment.
    connections = models.ManyToManyField(Connection, blank=True, related_name="approval_policies")
    environments = models.JSONField(default=list, blank=True)
    request_ttl = models.DurationField(default=dt.timedelta(hours=24))
    approval_ttl = models.DurationField(default=dt.timedelta(hours=4))
    priority = models.PositiveIntegerField(default=100)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]
        verbose_name_plural = "approval policies"

    def __str__(self) -> str:
        return f"{self.name} ({self.risk}: {self.required_approvals})"


class ApprovalRequest(models.Model):
    class Kind(models.TextChoices):
        STATEMENT = "statement", "Statement"
        ACCESS = "access", "Access"
        UNMASK = "unmask", "Unmasked column"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        WITHDRAWN = "withdrawn", "Withdrawn"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.STATEMENT)
    run = models.OneToOneField(
        QueryRun, null=True, blank=True, on_delete=models.PROTECT, related_name="approval"
    )
    connection = models.ForeignKey(
        Connection, on_delete=models.PROTECT, related_name="approval_requests"
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests"
    )
    # Binds a statement request to the exact text and the exact rewritten SQL that runs:
    # approving it never authorises anything else.
    sql_sha256 = models.CharField(max_length=64, blank=True)
    statements_sha256 = models.CharField(max_length=64, blank=True)
    risk = models.CharField(max_length=16)
    purpose = models.CharField(max_length=500, blank=True)
    # Just-in-time access: capabilities for a time, or one column unmasked for a time.
    capabilities = models.JSONField(default=list, blank=True)
    column = models.ForeignKey(
        CatalogColumn, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    duration = models.DurationField(null=True, blank=True)

    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    policy = models.ForeignKey(
        ApprovalPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    required_approvals = models.PositiveSmallIntegerField(default=1)
    approver_groups = models.JSONField(default=list)  # group names, fixed at request time
    impact = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    approval_ttl = models.DurationField(default=dt.timedelta(hours=4))

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        return f"approval request {self.pk} ({self.kind}, {self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING

    @property
    def is_overdue(self) -> bool:
        """Pending past its expiry: the beat task closes it within a minute; no review counts."""
        return self.is_pending and self.expires_at <= timezone.now()

    @property
    def title(self) -> str:
        if self.kind == self.Kind.ACCESS:
            return f"{', '.join(self.capabilities)} access to {self.connection.name}"
        if self.kind == self.Kind.UNMASK:
            return f"unmasked {self.column} on {self.connection.name}"
        categories = [s["category"] for s in self.run.statement_summaries] if self.run else []
        return f"{', '.join(dict.fromkeys(categories)) or 'statement'} on {self.connection.name}"

    @staticmethod
    def digest(sql: str) -> str:
        return hashlib.sha256(sql.encode("utf-8")).hexdigest()

    @staticmethod
    def statements_digest(statements: list[str]) -> str:
        return hashlib.sha256(json.dumps(statements).encode("utf-8")).hexdigest()

    def approvals(self) -> list[Review]:
        return [r for r in self.reviews.all() if r.verdict == Review.Verdict.APPROVE]


class Review(models.Model):
    """One person's verdict on one request; a person reviews a request at most once."""

    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"

        @classmethod
        def said(cls, verdict: str) -> str:
            """The verdict in a sentence: 'approved' or 'rejected' (never 'rejectd')."""
            return str(cls(verdict).label).lower()

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_reviews"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    comment = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "reviewer"], name="one_review_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.verdict} request {self.request_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "reviewer": self.reviewer.get_username(),
            "verdict": self.verdict,
            "comment": self.comment,
            "at": self.created_at.isoformat(),
        }


class Delivery(models.Model):
    """One notification of one event to one recipient: the delivery log and the retry queue.

    A webhook's URL is not stored: `target` holds it redacted for display, and the sender
    reads the URL from settings at send time (a Slack webhook URL is a credential).
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SLACK = "slack", "Slack"
        WEBHOOK = "webhook", "Webhook"
        SIEM = "siem", "SIEM (audit events)"
        CALLBACK = "callback", "API callback"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    # A notification is about a request; a SIEM delivery carries audit events first..last.
    request = models.ForeignKey(
        ApprovalRequest, on_delete=models.CASCADE, related_name="deliveries", null=True, blank=True
    )
    # An API callback tells the client of one run that it ended.
    run = models.ForeignKey(
        QueryRun, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    first_event_id = models.BigIntegerField(null=True, blank=True)
    last_event_id = models.BigIntegerField(null=True, blank=True)
    event = models.CharField(max_length=16)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    target = models.CharField(max_length=254)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When the next attempt is due; null once sent or given up.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} of request {self.request_id} ({self.status})"


class SiemCursor(models.Model):
    """How far the audit trail has been handed to the SIEM delivery log: one row. Moved in the
    same transaction that records the delivery, so no event is skipped or handed over twice;
    the delivery itself is retried until the collector takes it (at least once)."""

    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"SIEM cursor at event {self.last_event_id}"

"""Approval requests for held statements. The review workflow itself comes later (issue 4)."""

from __future__ import annotations

import hashlib

from django.db import models

from governance.models import QueryRun


class ApprovalRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        WITHDRAWN = "withdrawn", "Withdrawn"

    run = models.OneToOneField(QueryRun, on_delete=models.PROTECT, related_name="approval")
    # Binds the request to the exact statement: approving it never authorises other SQL.
    sql_sha256 = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"approval {self.pk} for run {self.run_id} ({self.status})"

    @staticmethod
    def digest(sql: str) -> str:
        return hashlib.sha256(sql.encode("utf-8")).hexdigest()

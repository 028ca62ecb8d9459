"""An evidence report asked for from the UI: its period, its progress and its file."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class EvidenceReport(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Generating"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    created_at = models.DateTimeField(default=timezone.now)
    # a plain id and the name at the time, like the audit trail: deleting a user keeps this
    requested_by_id = models.BigIntegerField(null=True, blank=True)
    requested_by_name = models.CharField(max_length=150, blank=True)
    start = models.DateField()
    end = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    step = models.CharField(max_length=200, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"evidence {self.start}..{self.end} ({self.status})"

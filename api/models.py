"""What the API keeps: the Idempotency-Key of each submission, so a retried POST returns the
first one's run instead of submitting again."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from governance.models import QueryRun


class IdempotencyKey(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    digest = models.CharField(max_length=64)  # SHA-256 of the request body
    run = models.ForeignKey(QueryRun, null=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="api_idempotency_once_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.key} -> run {self.run_id}"

"""Celery tasks of the approval workflow: thin, they take ids and call services."""

from __future__ import annotations

from celery import shared_task

from approvals.services import grants_expire, requests_expire


@shared_task(name="approvals.expire")
def expire() -> dict[str, int]:
    """Every minute: unanswered requests expire, ended grants and exemptions are audited."""
    return {"requests": requests_expire(), "grants": grants_expire()}

"""Celery tasks of the approval workflow: thin, they take ids and call services."""

from __future__ import annotations

from celery import shared_task

from approvals.impact import impact_compute
from approvals.services import grants_expire, requests_expire


@shared_task(name="approvals.expire")
def expire() -> dict[str, int]:
    """Every minute: unanswered requests expire, ended grants and exemptions are audited."""
    return {"requests": requests_expire(), "grants": grants_expire()}


@shared_task(name="approvals.compute_impact", acks_late=True)
def compute_impact(request_id: int) -> None:
    impact_compute(request_id)


def on_request_event(event: str, request_id: int) -> None:
    """After commit: a new statement request gets its impact preview."""
    if event == "requested":
        compute_impact.delay(request_id)

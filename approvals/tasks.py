"""Celery tasks of the approval workflow: thin, they take ids and call services."""

from __future__ import annotations

from celery import shared_task

from approvals.notifications import deliveries_send_due, delivery_attempt
from approvals.services import grants_expire, requests_expire


@shared_task(name="approvals.expire")
def expire() -> dict[str, int]:
    """Every minute: unanswered requests expire, ended grants and exemptions are audited."""
    return {"requests": requests_expire(), "grants": grants_expire()}


@shared_task(name="approvals.deliver", acks_late=True, max_retries=0)
def deliver(delivery_id: int) -> str | None:
    """The immediate attempt of a notification; retries are the sweep's (`deliver_due`)."""
    return delivery_attempt(delivery_id=delivery_id)


@shared_task(name="approvals.deliver_due")
def deliver_due() -> int:
    """Every minute: attempt the notifications whose next attempt is due."""
    return deliveries_send_due()

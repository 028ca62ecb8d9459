"""Celery tasks of the approval workflow: thin, they take ids and call services."""

from __future__ import annotations

import logging

from celery import shared_task

from approvals.expiry import grants_expire
from approvals.impact import impact_compute
from approvals.notifications import deliveries_send_due, delivery_attempt
from approvals.services import requests_expire
from approvals.siem import siem_forward as forward_to_siem

log = logging.getLogger(__name__)


@shared_task(name="approvals.expire")
def expire() -> dict[str, int]:
    """Every minute: unanswered requests expire, ended grants and exemptions are audited."""
    return {"requests": requests_expire(), "grants": grants_expire()}


@shared_task(name="approvals.compute_impact", acks_late=True)
def compute_impact(request_id: int) -> None:
    impact_compute(request_id)


def on_request_event(event: str, request_id: int) -> None:
    """After commit: a new statement request gets its impact preview."""
    if event != "requested":
        return
    try:
        compute_impact.delay(request_id)
    except Exception as exc:  # broker down: the page shows the preview as unavailable
        log.warning("could not queue the impact preview of request %s: %s", request_id, exc)


@shared_task(name="approvals.deliver", acks_late=True, max_retries=0)
def deliver(delivery_id: int) -> str | None:
    """The immediate attempt of a notification; retries are the sweep's (`deliver_due`)."""
    return delivery_attempt(delivery_id=delivery_id)


@shared_task(name="approvals.deliver_due")
def deliver_due() -> int:
    """Every minute: attempt the notifications whose next attempt is due."""
    return deliveries_send_due()


@shared_task(name="approvals.siem_forward")
def siem_forward() -> int:
    """Every ten seconds: hand newly sealed audit events to the SIEM delivery log."""
    return forward_to_siem()

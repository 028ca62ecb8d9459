"""Celery tasks of the audit trail (run by name: `audit.seal`)."""

from __future__ import annotations

from celery import shared_task

from audit.sealer import seal


@shared_task(name="audit.seal", ignore_result=True)
def seal_trail() -> int:
    """Chain committed events and write a checkpoint when one is due; how many were sealed."""
    return seal().sealed


@shared_task(name="audit.watch_identity", ignore_result=True)
def watch_identity() -> int:
    """Record account, role and second-factor changes no event explains (identity_watch.py)."""
    from audit.identity_watch import watch

    return len(watch().unexplained)

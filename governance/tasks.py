"""Celery tasks: thin entry points that take an id and call a service."""

from __future__ import annotations

from celery import shared_task

from governance.services.runs import run_execute, runs_reap


@shared_task(name="governance.execute_run", acks_late=True, max_retries=0)
def execute_run(run_id: int) -> None:
    run_execute(run_id=run_id)


@shared_task(name="governance.reap_runs")
def reap_runs() -> int:
    return runs_reap()

"""Celery tasks: thin entry points that take an id and call a service."""

from __future__ import annotations

import logging

from celery import shared_task

from governance.models import Connection
from governance.services.catalog import catalog_refresh
from governance.services.runs import run_execute, runs_reap
from governance.targets import TargetError

log = logging.getLogger(__name__)


@shared_task(name="governance.execute_run", acks_late=True, max_retries=0)
def execute_run(run_id: int) -> None:
    run_execute(run_id=run_id)


@shared_task(name="governance.reap_runs")
def reap_runs() -> int:
    return runs_reap()


@shared_task(name="governance.refresh_catalog", acks_late=True)
def refresh_catalog(connection_id: int) -> None:
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return
    try:
        catalog_refresh(connection=connection)
    except TargetError as exc:
        log.warning("catalog refresh of %s failed: %s", connection.name, exc.kind)


@shared_task(name="governance.refresh_catalogs")
def refresh_catalogs() -> None:
    for connection_id in Connection.objects.values_list("pk", flat=True):
        refresh_catalog.delay(connection_id)

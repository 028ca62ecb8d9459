from __future__ import annotations

from celery import shared_task

from evidence.services import report_generate


@shared_task(name="evidence.generate", ignore_result=True)
def generate(report_id: int) -> None:
    report_generate(report_id)

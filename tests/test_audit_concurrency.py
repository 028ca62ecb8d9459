"""Many parallel submissions through a real Celery worker, with the sealer running in that
worker while events are still being written: the chain stays intact and holds every event."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from audit.models import AuditEvent
from audit.sealer import seal
from audit.verify import verify
from governance.models import QueryRun
from governance.services.runs import Caller, run_submit
from tests.test_worker import wait_for, worker  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL app database"),
]
THREADS, EACH = 6, 5


def test_parallel_submissions_keep_the_chain_whole(worker: Any, alice: Any, pg_conn: Any) -> None:  # noqa: F811
    runs: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def submit(thread: int) -> None:
        try:
            for i in range(EACH):
                run = run_submit(
                    caller=Caller(user=alice),
                    connection=pg_conn,
                    sql=f"SELECT id, email FROM customers WHERE id = {thread * EACH + i + 1}",
                )
                with lock:
                    runs.append(run.pk)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(runs) == THREADS * EACH
    for run_id in runs:
        wait_for(QueryRun.objects.get(pk=run_id), "succeeded", "failed")
    result = seal(settle_s=0.3)  # whatever the worker's sealer has not chained yet
    assert not result.problems, result.problems
    report = verify()
    assert report.ok, report.problems
    assert AuditEvent.objects.filter(hash="").count() == 0
    submitted = AuditEvent.objects.filter(kind="query.submitted", run_id__in=runs).count()
    assert submitted == THREADS * EACH
    assert report.sealed == AuditEvent.objects.count()

"""A real `celery worker` process takes queued runs from Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from governance.celery import app as celery_app
from governance.models import QueryRun
from governance.services.runs import Caller, run_cancel, run_submit
from tests.conftest import REQUIRE_SERVICES, subprocess_env

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("WARDEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _start(*queues: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "governance", "worker",
            "--pool", "threads", "--concurrency", "2", "-l", "warning",
            "--without-heartbeat", "--without-gossip", "--without-mingle",
            *(["-Q", ",".join(queues)] if queues else []),
        ],
        cwd=ROOT,
        env=subprocess_env(REDIS_URL=REDIS_URL),
    )  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@contextmanager
def _broker(*queues: str) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process (on `queues`, or all of them), and this process sending to it."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is not reachable: {exc}")
        pytest.skip(f"Redis is not reachable: {exc}")
    process = _start(*queues)
    try:  # the worker is stopped whatever fails here, or it outlives the test run
        saved = {k: celery_app.conf[k] for k in ("task_always_eager", "broker_url")}
        _reconfigure(task_always_eager=False, broker_url=REDIS_URL)
        try:
            yield process
        finally:
            _reconfigure(
                task_always_eager=saved["task_always_eager"], broker_url=saved["broker_url"]
            )
    finally:
        _stop(process)


@pytest.fixture
def worker(transactional_db: Any) -> Iterator[subprocess.Popen[bytes]]:
    with _broker() as process:
        yield process


def _reconfigure(**conf: Any) -> None:
    """Point this process's Celery app at another broker, dropping pooled connections."""
    celery_app.conf.update(**conf)
    celery_app._pool = None  # type: ignore[attr-defined]
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]


def wait_for(run: QueryRun, *statuses: str, timeout: float = 60) -> QueryRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in statuses:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run.pk} stuck in {run.status}")


def test_a_worker_executes_a_queued_run(worker: Any, alice: Any, pg_conn: Any) -> None:
    run = run_submit(
        caller=Caller(user=alice), connection=pg_conn, sql="SELECT count(*) AS n FROM customers"
    )
    assert run.status == "queued"
    run = wait_for(run, "succeeded", "failed")
    assert run.status == "succeeded", run.error
    assert run.rows == [[1000]]


def test_a_running_query_is_really_cancelled_on_the_target(
    worker: Any, alice: Any, pg_conn: Any
) -> None:
    pg_conn.statement_timeout_ms = 60_000
    pg_conn.save()
    run = run_submit(
        caller=Caller(user=alice),
        connection=pg_conn,
        sql="SELECT count(*) FROM orders a, orders b, orders c",
    )
    run = wait_for(run, "running")
    deadline = time.monotonic() + 20
    while not run.backend_id and time.monotonic() < deadline:
        time.sleep(0.05)
        run.refresh_from_db()
    assert run_cancel(caller=Caller(user=alice), run=run)
    run = wait_for(run, "cancelled", "failed", "succeeded", timeout=30)
    assert run.status == "cancelled"
    assert run.duration_ms is not None and run.duration_ms < 30_000


def test_an_approved_write_is_previewed_and_executed_by_the_worker(
    worker: Any, alice: Any, bob: Any, ledger: Any
) -> None:
    from approvals.services import request_review
    from tests.conftest import balances

    run = run_submit(
        caller=Caller(user=alice),
        connection=ledger,
        sql="UPDATE accounts SET balance = balance - 5 WHERE id = 3",
    )
    assert run.status == "pending_approval"
    request = run.approval
    deadline = time.monotonic() + 60
    while not request.impact and time.monotonic() < deadline:  # the worker's dry run
        time.sleep(0.1)
        request.refresh_from_db()
    assert request.impact["rows"] == [1] and balances(ledger) == [100] * 5
    request_review(
        caller=Caller(user=bob), request_id=request.pk, approve=True, reauthenticated=True
    )
    run = wait_for(run, "succeeded", "failed", "expired")
    assert run.status == "succeeded", run.error
    assert run.row_count == 1 and balances(ledger) == [100, 100, 95, 100, 100]


def test_deliveries_wait_in_a_queue_of_their_own(
    transactional_db: Any, alice: Any, pg_conn: Any
) -> None:
    """A slow receiver's backlog never sits in front of statements: a worker on the run queue
    alone runs them while deliveries wait; a worker started without -Q takes both."""
    from approvals.tasks import deliver

    queue = redis.Redis.from_url(REDIS_URL)
    with _broker("celery"):
        for _ in range(3):
            deliver.apply_async((10**9,), retry=False)  # no such delivery: a no-op once taken
        run = run_submit(caller=Caller(user=alice), connection=pg_conn, sql="SELECT 1 AS one")
        assert wait_for(run, "succeeded", "failed").status == "succeeded"
        assert queue.llen("deliveries") == 3 and queue.llen("celery") == 0
    process = _start()
    try:
        deadline = time.monotonic() + 60
        while queue.llen("deliveries") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert queue.llen("deliveries") == 0
    finally:
        _stop(process)

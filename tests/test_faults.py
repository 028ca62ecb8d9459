"""Faults, with real processes: a worker killed mid-statement, the broker stopped and started
again during submissions. Each ends with every run in a final status, told once in the audit
trail, and no statement executed twice.

The broker here is a private `redis-server` on a port of its own (stopping the shared one would
break whatever else runs on this machine); it keeps nothing on disk, as in the README's setup.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from audit.models import AuditEvent
from governance import heartbeat
from governance.celery import app as celery_app
from governance.models import QueryRun
from governance.services.runs import QUEUE_DOWN, Caller, run_submit, runs_reap
from tests.conftest import REQUIRE_SERVICES, grant, make_connection, subprocess_env
from tests.pgserver import free_port, private_postgres
from tests.test_worker import _reconfigure, _stop, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
OUTCOMES = ("query.succeeded", "query.failed", "query.cancelled", "query.expired")


class Broker:
    """A private redis-server that the test can stop and start again on the same port."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if REQUIRE_SERVICES:
                pytest.fail("redis-server is not installed")
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    server = Broker(tmp_path)
    server.start()
    saved = {k: celery_app.conf[k] for k in ("task_always_eager", "broker_url")}
    try:
        yield server
    finally:
        _reconfigure(**saved)
        server.stop()


def _worker(broker: Broker, log: Path, metrics_dir: Path | None = None) -> subprocess.Popen[bytes]:
    extra = {"REDIS_URL": broker.url, "WARDEN_LOG_FORMAT": "json", "WARDEN_LOG_LEVEL": "INFO"}
    if metrics_dir is not None:
        extra["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "governance", "worker",
             "--pool", "threads", "--concurrency", "2",
             "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env=subprocess_env(**extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def _wait_for_heartbeat(broker: Broker, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with override_settings(REDIS_URL=broker.url):
        while time.monotonic() < deadline:
            if heartbeat.heartbeats():
                return
            time.sleep(0.1)
    raise AssertionError("the worker never sent a heartbeat")


def _outcomes(run: QueryRun) -> list[str]:
    return list(
        AuditEvent.objects.filter(run_id=run.pk, kind__in=OUTCOMES).values_list("kind", flat=True)
    )


def test_a_worker_beats_counts_its_runs_for_prometheus_and_logs_json_with_the_run_id(
    broker: Broker, tmp_path: Path, alice: Any, pg_conn: Any
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    log = tmp_path / "worker.log"
    process = _worker(broker, log, metrics_dir)
    try:
        _reconfigure(task_always_eager=False, broker_url=broker.url)
        _wait_for_heartbeat(broker)
        with override_settings(REDIS_URL=broker.url):
            ready = Client().get("/readyz")
        assert ready.status_code == 200, ready.content
        assert ready.json()["checks"]["workers"] == "1 alive"

        run = run_submit(caller=Caller(user=alice), connection=pg_conn, sql="SELECT 1 AS one")
        run = wait_for(run, "succeeded", "failed")
        assert run.status == "succeeded", run.error
    finally:
        _stop(process)
    # The worker's pool counted the run in the host's multiprocess directory.
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    value = registry.get_sample_value(
        "warden_runs_finished_total",
        {"channel": "web", "status": "succeeded", "connection": "demo-postgres"},
    )
    assert value == 1
    # Log lines are JSON (Celery's start-up banner is not a log line), and the line about the
    # run carries its id as a field.
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert {"time", "level", "logger", "message", "run_id"} <= set(lines[0])
    about = [line for line in lines if line["run_id"] == run.pk]
    assert about and f"run {run.pk} succeeded" in about[0]["message"]
    # A worker that stops takes its heartbeat with it.
    with override_settings(REDIS_URL=broker.url):
        assert heartbeat.heartbeats() == {}


def test_kill_9_of_a_worker_mid_statement_leaves_no_run_running(
    broker: Broker, tmp_path: Path, alice: Any, pg_conn: Any
) -> None:
    pg_conn.statement_timeout_ms = 5_000  # the orphaned statement ends on the target too
    pg_conn.save()
    process = _worker(broker, tmp_path / "worker.log")
    try:
        _reconfigure(task_always_eager=False, broker_url=broker.url)
        _wait_for_heartbeat(broker)
        run = run_submit(
            caller=Caller(user=alice),
            connection=pg_conn,
            sql="SELECT count(*) FROM orders a, orders b, orders c",
        )
        run = wait_for(run, "running")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        _stop(process)
    run.refresh_from_db()
    assert run.status == "running"  # nobody told the app: only the reaper can
    later = timezone.now() + dt.timedelta(minutes=6)  # past the statement timeout + margin
    assert runs_reap(now=later) == 1
    run.refresh_from_db()
    assert run.status == "failed" and run.error_kind == "lost"
    assert "worker running this statement stopped" in run.error
    assert _outcomes(run) == ["query.failed"]
    event = AuditEvent.objects.get(run_id=run.pk, kind="query.failed")
    assert event.detail["error_kind"] == "lost"
    assert not QueryRun.objects.filter(status="running").exists()
    assert runs_reap(now=later) == 0  # told once


@pytest.fixture
def tally(tmp_path: Path, groups: dict[str, Any]) -> Any:
    """A development SQLite target whose writes run at once: each executed statement leaves
    one row, so a statement executed twice shows."""
    path = tmp_path / "tally.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE hits (tag TEXT NOT NULL)")
    connection = make_connection(
        name="tally", engine="sqlite", database=str(path), environment="development"
    )
    grant(connection, groups["analyst"], "read", "write")
    return connection, path


def test_redis_stopped_and_started_again_during_submissions_loses_nothing_and_runs_nothing_twice(
    broker: Broker, tmp_path: Path, alice: Any, tally: Any
) -> None:
    connection, path = tally
    caller = Caller(user=alice)
    log = tmp_path / "worker.log"
    process = _worker(broker, log)
    runs: list[QueryRun] = []

    def submit(tag: str) -> QueryRun:
        run = run_submit(
            caller=caller, connection=connection, sql=f"INSERT INTO hits (tag) VALUES ('{tag}')"
        )
        runs.append(run)
        return run

    try:
        _reconfigure(task_always_eager=False, broker_url=broker.url)
        _wait_for_heartbeat(broker)
        for i in range(5):
            assert wait_for(submit(f"before-{i}"), "succeeded", "failed").status == "succeeded"

        broker.stop()
        down = [submit(f"down-{i}") for i in range(3)]
        for run in down:  # a clear answer at once, and nothing ran
            run.refresh_from_db()
            assert run.status == "failed" and run.error == QUEUE_DOWN
            assert run.error_kind == "queue"

        broker.start()  # empty: it kept nothing
        for i in range(5):
            assert wait_for(submit(f"after-{i}"), "succeeded", "failed", timeout=90).status == (
                "succeeded"
            )
    finally:
        _stop(process)

    assert not QueryRun.objects.filter(status__in=["queued", "running"]).exists()
    with sqlite3.connect(path) as db:
        tags = [tag for (tag,) in db.execute("SELECT tag FROM hits")]
    for run in runs:
        run.refresh_from_db()
        tag = run.sql.split("'")[1]
        assert _outcomes(run) == [f"query.{run.status}"], run.pk  # told once
        assert tags.count(tag) == (1 if run.status == "succeeded" else 0), tag


def test_a_queued_run_whose_message_the_broker_lost_is_sent_again_and_runs_once(
    broker: Broker, tmp_path: Path, alice: Any, tally: Any
) -> None:
    """The broker restarted with the message inside (no persistence): the run stays queued
    until the reaper sends it again; a duplicate delivery finds it taken and does nothing."""
    connection, path = tally
    _reconfigure(task_always_eager=False, broker_url=broker.url)
    run = run_submit(
        caller=Caller(user=alice), connection=connection, sql="INSERT INTO hits VALUES ('lost')"
    )
    assert run.status == "queued"
    broker.stop()  # no worker took it: the message dies with the broker
    broker.start()
    with override_settings(REDIS_URL=broker.url):
        assert heartbeat.queue_depth("celery") == 0
        runs_reap(now=timezone.now() + dt.timedelta(minutes=3))
        assert heartbeat.queue_depth("celery") == 1
        runs_reap(now=timezone.now() + dt.timedelta(minutes=3))  # a backlog is left to wait
        assert heartbeat.queue_depth("celery") == 1
        # A copy the old message's holder still delivers: the claim lets one of them run.
        celery_app.send_task("governance.execute_run", args=[run.pk])
        assert heartbeat.queue_depth("celery") == 2
    process = _worker(broker, tmp_path / "worker.log")
    try:
        run = wait_for(run, "succeeded", "failed")
        assert run.status == "succeeded", run.error
        with override_settings(REDIS_URL=broker.url):
            deadline = time.monotonic() + 30
            while heartbeat.queue_depth("celery") and time.monotonic() < deadline:
                time.sleep(0.1)
        time.sleep(1)  # the second delivery, taken and dropped
    finally:
        _stop(process)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM hits WHERE tag = 'lost'").fetchone() == (1,)
    assert _outcomes(run) == ["query.succeeded"]


def _drop_app_connections_but_ours() -> int:
    """What a failover or a restarted pooler does to the workers' app-database sessions."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_the_app_database_dropping_the_workers_connections_loses_nothing(
    broker: Broker, tmp_path: Path, alice: Any, pg_conn: Any
) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the app database is SQLite here: it has no connections to drop")
    pg_conn.statement_timeout_ms = 5_000
    pg_conn.save()
    process = _worker(broker, tmp_path / "worker.log")
    try:
        _reconfigure(task_always_eager=False, broker_url=broker.url)
        _wait_for_heartbeat(broker)
        caller = Caller(user=alice)
        first = run_submit(caller=caller, connection=pg_conn, sql="SELECT 1 AS one")
        assert wait_for(first, "succeeded", "failed").status == "succeeded"
        # Between statements: whatever the worker kept open is gone; the next one reconnects.
        _drop_app_connections_but_ours()
        second = run_submit(caller=caller, connection=pg_conn, sql="SELECT 2 AS two")
        assert wait_for(second, "succeeded", "failed").status == "succeeded", second.error
        # In the middle of a statement: its outcome cannot be written where it ran...
        third = run_submit(
            caller=caller,
            connection=pg_conn,
            sql="SELECT count(*) FROM orders a, orders b, orders c",
        )
        wait_for(third, "running")
        time.sleep(0.5)
        _drop_app_connections_but_ours()
        time.sleep(6)  # past the statement timeout: the worker has given up on it
        # ...and the worker goes on serving.
        fourth = run_submit(caller=caller, connection=pg_conn, sql="SELECT 4 AS four")
        assert wait_for(fourth, "succeeded", "failed").status == "succeeded", fourth.error
    finally:
        _stop(process)
    third.refresh_from_db()
    if third.status == "running":  # nobody could record its end: the reaper does
        assert runs_reap(now=timezone.now() + dt.timedelta(minutes=6)) == 1
        third.refresh_from_db()
    assert third.status == "failed"
    assert len(_outcomes(third)) == 1
    assert not QueryRun.objects.filter(status__in=["queued", "running"]).exists()


@pytest.fixture
def restartable_pg() -> Iterator[tuple[int, Any]]:
    with private_postgres() as server:
        yield server


def test_the_target_restarting_mid_query_fails_that_run_clearly_and_the_next_one_runs(
    broker: Broker, tmp_path: Path, alice: Any, groups: dict[str, Any], restartable_pg: Any
) -> None:
    from governance import demo_data

    port, pg_ctl = restartable_pg
    demo_data.seed(demo_data.parse_dsn(f"postgresql://postgres@127.0.0.1:{port}/shop"))
    connection = make_connection(
        name="restartable", engine="postgresql", database="shop", host="127.0.0.1",
        port=port, username="postgres", statement_timeout_ms=30_000,
    )  # fmt: skip
    grant(connection, groups["analyst"], "read")
    process = _worker(broker, tmp_path / "worker.log")
    caller = Caller(user=alice)
    try:
        _reconfigure(task_always_eager=False, broker_url=broker.url)
        _wait_for_heartbeat(broker)
        for _ in range(2):  # the worker keeps a session to the target in its pool
            warm = run_submit(caller=caller, connection=connection, sql="SELECT 1 AS one")
            assert wait_for(warm, "succeeded", "failed").status == "succeeded", warm.error
        long = run_submit(
            caller=caller,
            connection=connection,
            sql="SELECT count(*) FROM orders a, orders b, orders c",
        )
        wait_for(long, "running")
        time.sleep(0.5)
        pg_ctl("restart", "-m", "fast")
        long = wait_for(long, "succeeded", "failed", "cancelled", timeout=60)
        assert long.status == "failed"
        assert long.error and "Traceback" not in long.error
        assert _outcomes(long) == ["query.failed"]
        # The sessions the pool kept died with the server: the next statements get new ones.
        for _ in range(3):
            after = run_submit(caller=caller, connection=connection, sql="SELECT 2 AS two")
            assert wait_for(after, "succeeded", "failed").status == "succeeded", after.error
    finally:
        _stop(process)
    assert not QueryRun.objects.filter(status__in=["queued", "running"]).exists()

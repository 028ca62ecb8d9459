"""Health probes and the Prometheus endpoint, against the real app database and Redis."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import redis
from django.test import Client, override_settings
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from approvals.models import ApprovalRequest
from governance import heartbeat
from governance.services.runs import Caller, run_submit
from tests.conftest import REQUIRE_SERVICES

REDIS_URL = os.environ.get("WARDEN_TEST_OPS_REDIS_URL", "redis://127.0.0.1:6379/12")
TOKEN = "metrics-token-for-tests-0123456789abcdef"
pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_redis() -> Any:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.flushdb()
    except redis.RedisError as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is not reachable: {exc}")
        pytest.skip(f"Redis is not reachable: {exc}")
    with override_settings(REDIS_URL=REDIS_URL):
        yield client
    client.flushdb()


def _families(body: bytes) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


def _value(families: dict[str, Any], name: str, **labels: str) -> float | None:
    for family in families.values():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def _scrape(client: Client) -> dict[str, Any]:
    with override_settings(WARDEN_METRICS_TOKEN=TOKEN):
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return _families(response.content)


# ---------------------------------------------------------------- probes


def test_healthz_answers_whatever_the_host_header_and_without_a_session(client: Client) -> None:
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert "sessionid" not in response.cookies


def test_readyz_in_the_embedded_mode_needs_only_the_database(client: Client) -> None:
    response = client.get("/readyz", HTTP_HOST="probe.internal")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "not used", "workers": "in-process"},
    }


def test_readyz_is_not_ready_without_a_worker_heartbeat(client: Client, ops_redis: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "workers": "failing"}


def test_readyz_is_ready_with_a_fresh_heartbeat_and_not_with_a_stale_one(
    client: Client, ops_redis: Any
) -> None:
    heartbeat.beat("celery@a", now=time.time() - 120)  # silent two minutes
    assert client.get("/readyz").status_code == 503
    heartbeat.beat("celery@b")
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["workers"] == "1 alive"


def test_readyz_says_which_check_fails_and_nothing_more(client: Client) -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"] == "failing"
    assert "127.0.0.1" not in response.content.decode()
    assert "Connection" not in response.content.decode()


def test_heartbeats_forget_a_worker_gone_a_day(ops_redis: Any) -> None:
    heartbeat.beat("celery@old", now=time.time() - 2 * 86400)
    heartbeat.beat("celery@new")
    assert list(heartbeat.heartbeats()) == ["celery@new"]
    assert ops_redis.hkeys(heartbeat.KEY) == [b"celery@new"]


# ---------------------------------------------------------------- /metrics


def test_metrics_are_off_without_a_token(client: Client) -> None:
    with override_settings(WARDEN_METRICS_TOKEN=""):
        assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize(
    "header", ["", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"]
)
def test_metrics_refuse_a_missing_or_wrong_token(client: Client, header: str) -> None:
    with override_settings(WARDEN_METRICS_TOKEN=TOKEN):
        response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert "warden_" not in response.content.decode()


def test_a_signed_in_admin_without_the_token_gets_no_metrics(client: Client, carol: Any) -> None:
    client.force_login(carol)
    with override_settings(WARDEN_METRICS_TOKEN=TOKEN):
        assert client.get("/metrics").status_code == 401


def test_metrics_count_runs_by_channel_decision_status_and_connection(
    client: Client,
    alice: Any,
    sqlite_conn: Any,
    ledger: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    def counted(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    labels = {"channel": "cli", "connection": "demo"}
    before_allow = counted("warden_runs_submitted_total", decision="allow", **labels)
    held_labels = {"channel": "cli", "connection": "ledger", "decision": "require_approval"}
    before_hold = counted("warden_runs_submitted_total", **held_labels)
    before_ok = counted("warden_runs_finished_total", status="succeeded", **labels)
    caller = Caller(user=alice, channel="cli")
    with django_capture_on_commit_callbacks(execute=True):
        run = run_submit(
            caller=caller, connection=sqlite_conn, sql="SELECT id FROM customers LIMIT 3"
        )
    run.refresh_from_db()
    assert run.status == "succeeded"
    held = run_submit(
        caller=caller, connection=ledger, sql="UPDATE accounts SET balance = 0 WHERE id = 1"
    )
    assert held.status == "pending_approval"

    families = _scrape(client)
    got = _value(families, "warden_runs_submitted_total", decision="allow", **labels)
    assert got == before_allow + 1
    got = _value(families, "warden_runs_submitted_total", **held_labels)
    assert got == before_hold + 1
    got = _value(families, "warden_runs_finished_total", status="succeeded", **labels)
    assert got == before_ok + 1
    assert _value(families, "warden_run_duration_seconds_count", channel="cli") is not None
    assert _value(families, "warden_runs_in_flight", status="pending_approval") == 1
    assert _value(families, "warden_approvals_waiting") == ApprovalRequest.objects.count() == 1
    assert _value(families, "warden_approval_oldest_wait_seconds") >= 0  # type: ignore[operator]
    assert _value(families, "warden_audit_unsealed_events") >= 1  # type: ignore[operator]
    assert _value(families, "warden_scrape_error", source="runs") == 0
    # Without Redis (the embedded mode) there is no broker to report on, and it is no error.
    assert _value(families, "warden_scrape_error", source="broker") == 0
    assert "warden_queue_depth" not in families
    # No user, statement or value is ever a label.
    body = " ".join(str(s.labels) for f in families.values() for s in f.samples)
    assert "alice" not in body and "customers" not in body


def test_metrics_time_http_answers_by_route_name_never_by_path(client: Client, alice: Any) -> None:
    client.force_login(alice)
    client.get("/history/")
    client.get("/no/such/page/12345")
    families = _scrape(client)
    assert _value(
        families, "warden_http_request_duration_seconds_count", route="history", method="GET"
    )
    assert _value(families, "warden_http_request_duration_seconds_count", route="unmatched")
    body = " ".join(str(s.labels) for f in families.values() for s in f.samples)
    assert "12345" not in body


def test_metrics_report_queue_depth_and_worker_heartbeats_from_redis(
    client: Client, ops_redis: Any
) -> None:
    ops_redis.rpush("celery", b"a", b"b")
    ops_redis.rpush("deliveries\x06\x163", b"c")
    heartbeat.beat("celery@w1")
    heartbeat.beat("celery@w2", now=time.time() - 90)
    families = _scrape(client)
    assert _value(families, "warden_queue_depth", queue="celery") == 2
    assert _value(families, "warden_queue_depth", queue="deliveries") == 1
    assert _value(families, "warden_workers_alive") == 1
    age = _value(families, "warden_worker_heartbeat_age_seconds", worker="celery@w2")
    assert age is not None and age >= 90


def test_a_source_that_cannot_be_read_is_an_error_not_a_zero(client: Client) -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        families = _scrape(client)
    assert _value(families, "warden_scrape_error", source="broker") == 1
    assert "warden_workers_alive" not in families
    assert _value(families, "warden_scrape_error", source="runs") == 0


def test_one_redis_client_serves_every_probe(ops_redis: Any) -> None:
    assert heartbeat.client() is heartbeat.client()


def test_json_log_lines_hold_only_their_fields_never_what_a_library_attaches() -> None:
    import json
    import logging

    from governance.logcontext import RunIdFilter, json_formatter, run_context

    formatter = json_formatter(
        fmt="%(levelname)s %(name)s %(message)s %(run_id)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Not Found", (), None
    )
    record.request = "<WSGIRequest: GET '/x?secret=abc'>"
    record.data = {"args": ["token"]}
    with run_context(7):
        RunIdFilter().filter(record)
    line = json.loads(formatter.format(record))
    assert set(line) == {"time", "level", "logger", "message", "run_id"}
    assert line["run_id"] == 7 and "secret" not in json.dumps(line)

"""Prometheus counters and histograms that Warden's processes update as work happens.

Each process counts for itself. Under gunicorn (several web workers) and Celery's prefork pool
(several execution processes), set `PROMETHEUS_MULTIPROC_DIR` to an empty directory of the host
before the processes start: prometheus_client then keeps every process's values in files there
and one scrape adds them up (its multiprocess mode; `ops/gunicorn.py` and the Celery signals
below tell it when a process ends). Without it (the demo, `runserver`), the values live in the
one process.

Labels are bounded on purpose: channel, decision, status and connection name (admins create
connections); never a user, a statement or a value. Gauges that describe shared state (queue
depth, waiting approvals, audit sealing lag, worker heartbeats) are read from the app database
and Redis when scraped (`ops/metrics.py`), so every web process reports the same truth.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

# Seconds: a point read takes milliseconds, a report minutes (the statement timeout caps it).
RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# An approval waits for a person: minutes to days.
APPROVAL_BUCKETS = (10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 7 * 86400)

runs_submitted = Counter(
    "warden_runs_submitted",
    "Statements (batches) submitted, by channel, the engine's decision and connection.",
    ["channel", "decision", "connection"],
)
runs_finished = Counter(
    "warden_runs_finished",
    "Runs that reached a final status (succeeded, failed, cancelled, expired, denied ...).",
    ["channel", "status", "connection"],
)
run_duration = Histogram(
    "warden_run_duration_seconds",
    "Execution time of finished runs on the target, by channel and final status.",
    ["channel", "status"],
    buckets=RUN_BUCKETS,
)
http_request_duration = Histogram(
    "warden_http_request_duration_seconds",
    "Time to answer HTTP requests, by route name, method and status class.",
    ["route", "method", "status"],
    buckets=HTTP_BUCKETS,
)
approval_decision_seconds = Histogram(
    "warden_approval_decision_seconds",
    "Time from an approval request to its decision (approved, rejected, expired ...).",
    ["kind", "outcome"],
    buckets=APPROVAL_BUCKETS,
)
deliveries_finished = Counter(
    "warden_deliveries",
    "Notification, SIEM and callback deliveries that were sent or given up, by channel.",
    ["channel", "outcome"],
)


def run_submitted(run: Any) -> None:
    runs_submitted.labels(run.channel, run.decision, run.connection.name).inc()


def run_ended(run: Any) -> None:
    """Count a run that reached its final status (registered as a finished-run hook)."""
    runs_finished.labels(run.channel, run.status, run.connection.name).inc()
    if run.duration_ms is not None:
        run_duration.labels(run.channel, run.status).observe(run.duration_ms / 1000)

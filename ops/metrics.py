"""The Prometheus exposition: the processes' counters, and gauges read from shared state.

The counters and histograms (governance/metrics.py) are read from this process, or from every
process of the host in multiprocess mode. The gauges below are read when scraped, from the app
database and Redis, so every web process reports the same values: runs in flight, approvals
waiting, failed deliveries, the audit sealer's lag, the broker's queue depth and each worker's
last heartbeat. A source that cannot be read is reported by `warden_scrape_error` and leaves
its gauges out (no made-up zeros).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from approvals.models import ApprovalRequest, Delivery
from audit.models import AuditEvent
from governance import heartbeat
from governance.models import QueryRun

log = logging.getLogger(__name__)

QUEUES = ("celery", "deliveries")
IN_FLIGHT = ("queued", "running", "pending_approval")


def _runs() -> Iterator[Metric]:
    gauge = GaugeMetricFamily(
        "warden_runs_in_flight", "Runs queued, running or waiting for approval.", labels=["status"]
    )
    counts = dict(
        QueryRun.objects.filter(status__in=IN_FLIGHT)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    for status in IN_FLIGHT:
        gauge.add_metric([status], counts.get(status, 0))
    yield gauge


def _approvals() -> Iterator[Metric]:
    pending = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING).aggregate(
        n=Count("id"), oldest=Min("created_at")
    )
    yield GaugeMetricFamily(
        "warden_approvals_waiting", "Approval requests waiting for a decision.", pending["n"]
    )
    oldest = pending["oldest"]
    yield GaugeMetricFamily(
        "warden_approval_oldest_wait_seconds",
        "How long the oldest waiting approval request has waited (0 when none waits).",
        (timezone.now() - oldest).total_seconds() if oldest else 0.0,
    )


def _deliveries() -> Iterator[Metric]:
    gauge = GaugeMetricFamily(
        "warden_deliveries_outstanding",
        "Notification, SIEM and callback deliveries pending a retry or given up, by channel.",
        labels=["channel", "status"],
    )
    rows = (
        Delivery.objects.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.FAILED])
        .values_list("channel", "status")
        .annotate(n=Count("id"))
    )
    for channel, status, n in rows:
        gauge.add_metric([channel, status], n)
    yield gauge


def _audit() -> Iterator[Metric]:
    unsealed = AuditEvent.objects.filter(hash="").aggregate(n=Count("id"), oldest=Min("created_at"))
    yield GaugeMetricFamily(
        "warden_audit_unsealed_events", "Audit events not chained by the sealer yet.", unsealed["n"]
    )
    oldest = unsealed["oldest"]
    yield GaugeMetricFamily(
        "warden_audit_sealing_lag_seconds",
        "Age of the oldest audit event not chained yet (0 when all are sealed).",
        max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0,
    )


def _broker() -> Iterator[Metric]:
    if not settings.REDIS_URL:
        return
    depth = GaugeMetricFamily(
        "warden_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
    )
    for queue in QUEUES:
        depth.add_metric([queue], heartbeat.queue_depth(queue))
    yield depth
    ages = heartbeat.heartbeats()
    age = GaugeMetricFamily(
        "warden_worker_heartbeat_age_seconds",
        "Seconds since each Celery worker's last heartbeat.",
        labels=["worker"],
    )
    for name, seconds in sorted(ages.items()):
        age.add_metric([name], seconds)
    yield age
    yield GaugeMetricFamily(
        "warden_workers_alive",
        "Celery workers whose heartbeat is under a minute old.",
        sum(1 for seconds in ages.values() if seconds < 60),
    )


SOURCES: dict[str, Callable[[], Iterator[Metric]]] = {
    "runs": _runs,
    "approvals": _approvals,
    "deliveries": _deliveries,
    "audit": _audit,
    "broker": _broker,
}


class StateCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily(
            "warden_scrape_error",
            "1 when a source of the gauges could not be read in this scrape.",
            labels=["source"],
        )
        started = time.perf_counter()
        for name, source in SOURCES.items():
            try:
                metrics = list(source())
            except Exception as exc:
                log.warning("metrics: %s could not be read: %s", name, type(exc).__name__)
                errors.add_metric([name], 1)
                continue
            errors.add_metric([name], 0)
            yield from metrics
        yield errors
        yield GaugeMetricFamily(
            "warden_scrape_duration_seconds",
            "Time to read the gauges' sources.",
            time.perf_counter() - started,
        )


class _ProcessCollector(Collector):
    """This process's own registry (counters, histograms, process and GC figures)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def process_registry() -> CollectorRegistry:
    """The counters and histograms: every process of the host in multiprocess mode."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessCollector())
    return registry


def exposition(*, state: bool = True) -> bytes:
    registry = process_registry()
    if state:
        registry.register(StateCollector())
    return generate_latest(registry)

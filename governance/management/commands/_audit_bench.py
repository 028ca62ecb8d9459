"""Audit-trail figures for `manage.py benchmark`: sealing and verification throughput, and the
governed point read with the on-commit seal request on and off (it must add no round trip)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from audit import sealer
from audit.kinds import EventKind
from audit.models import AuditEvent
from audit.services import event_build
from audit.verify import verify

EVENTS = 5000


def sealing_figures() -> dict[str, Any]:
    started = time.perf_counter()
    events = [
        event_build(
            kind=EventKind.QUERY_SUBMITTED,
            actor_name="bench",
            sql=f"SELECT id, city FROM customers WHERE id = {i}",
            detail={"risk": "low", "masked": ["email"], "n": i},
        )
        for i in range(EVENTS)
    ]
    built = time.perf_counter() - started
    AuditEvent.objects.bulk_create(events, batch_size=1000)
    started = time.perf_counter()
    result = sealer.seal(settle_s=0, limit=EVENTS * 2)
    sealed_s = time.perf_counter() - started
    started = time.perf_counter()
    report = verify()
    verify_s = time.perf_counter() - started
    return {
        "events": EVENTS,
        "build_and_mac_us_per_event": round(built / EVENTS * 1e6, 1),
        "sealed": result.sealed,
        "sealing_events_per_s": round(result.sealed / sealed_s),
        "verified_events": report.events,
        "verify_events_per_s": round(report.events / verify_s),
        "intact": report.ok,
    }


def seal_request_figures(governed: Callable[[], None], reads: int) -> dict[str, Any]:
    """The governed read with sealing requested after each commit (as deployed) and without,
    interleaved read by read so that drift on a noisy machine falls on both alike."""
    on: list[float] = []
    off: list[float] = []
    for _ in range(10):
        governed()
    try:
        for i in range(2 * reads):
            sealer.REQUESTS_ENABLED = i % 2 == 0
            start = time.perf_counter()
            governed()
            (on if sealer.REQUESTS_ENABLED else off).append(time.perf_counter() - start)
    finally:
        sealer.REQUESTS_ENABLED = True
    on_p50, off_p50 = statistics.median(on), statistics.median(off)
    return {
        "governed_sealing_on_p50_ms": round(on_p50 * 1000, 3),
        "governed_sealing_off_p50_ms": round(off_p50 * 1000, 3),
        "ratio_on_vs_off": round(on_p50 / off_p50, 2),
    }


def evidence_figures() -> dict[str, Any]:
    """An evidence bundle for today (the events above and the benchmark's runs), built and
    verified as `evidence_report` does."""
    import tempfile
    from pathlib import Path

    from django.utils import timezone

    from evidence.bundle import verify as verify_bundle
    from evidence.services import bundle_bytes

    today = timezone.localdate()
    events = AuditEvent.objects.filter(created_at__date=today).count()
    started = time.perf_counter()
    data = bundle_bytes(today, today, generated_by="benchmark")
    built_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "evidence.zip"
        path.write_bytes(data)
        started = time.perf_counter()
        problems = verify_bundle(path)
        verify_s = time.perf_counter() - started
    return {
        "events_in_period": events,
        "bundle_seconds": round(built_s, 2),
        "bundle_bytes": len(data),
        "verify_bundle_ms": round(verify_s * 1000, 1),
        "verified": not problems,
    }

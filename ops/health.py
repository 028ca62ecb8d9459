"""`/healthz` (the process answers) and `/readyz` (it can do its work), for load balancers
and orchestrators.

A middleware answers both first thing, before host validation, HTTPS redirects, sessions or
sign-in: a probe comes from the orchestrator with whatever Host header it likes, over plain
HTTP, with no cookie. Neither says more than "ok" or which check failed: no versions, hosts or
error text for whoever can reach the port.

Ready means: the app database answers, Redis answers (when configured) and, when statements
run on Celery workers, at least one worker sent a heartbeat within the last minute (a gateway
without workers accepts statements that nobody runs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from governance import heartbeat

log = logging.getLogger(__name__)

WORKER_SILENCE_S = 60.0


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _redis() -> str:
    if not settings.REDIS_URL:
        return "not used"
    heartbeat.client().ping()
    return "ok"


def _workers() -> str:
    if not settings.REDIS_URL:
        return "in-process"  # the embedded mode runs statements in the web process
    alive = [age for age in heartbeat.heartbeats().values() if age < WORKER_SILENCE_S]
    if not alive:
        raise LookupError("no worker heartbeat in the last minute")
    return f"{len(alive)} alive"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "redis": _redis,
    "workers": _workers,
}


def readiness() -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    ready = True
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:
            log.warning("readiness: %s failed: %s", name, type(exc).__name__)
            results[name] = "failing"
            ready = False
    return ready, results


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


class HealthMiddleware:
    """First in MIDDLEWARE: answers the two probe paths and passes everything else on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return _no_store(JsonResponse({"status": "ok"}))
        if request.path == "/readyz":
            ready, checks = readiness()
            response = JsonResponse(
                {"status": "ready" if ready else "not ready", "checks": checks},
                status=200 if ready else 503,
            )
            # The failing check is logged above, once: not again as a server error per probe.
            response._has_been_logged = True  # type: ignore[attr-defined]
            return _no_store(response)
        return self.get_response(request)

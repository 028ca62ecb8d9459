"""Worker heartbeats and queue depth, read from Redis.

Each Celery worker writes the time into a Redis hash every few seconds.

`/readyz` and the metrics read them: a deployment whose workers all died (or never started)
accepts statements that nobody will run, and its readiness says so. A thread in the worker's
main process beats; the hash field is the worker's node name (`celery@host`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown
from django.conf import settings

log = logging.getLogger(__name__)

KEY = "warden:workers"
INTERVAL = 10.0
# Entries older than this are removed when read (a worker gone for good).
FORGET_AFTER = 24 * 3600

_stop = threading.Event()


_clients: dict[str, Any] = {}


def client() -> Any:
    """This process's Redis client for REDIS_URL (its pool reuses connections: a probe
    every few seconds must not open new ones)."""
    import redis

    url = settings.REDIS_URL
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _clients[url]


def beat(name: str, now: float | None = None) -> None:
    client().hset(KEY, name, f"{now if now is not None else time.time():.3f}")


def heartbeats(now: float | None = None) -> dict[str, float]:
    """Seconds since each known worker's last beat (entries gone a day are forgotten)."""
    now = now if now is not None else time.time()
    redis_client = client()
    ages: dict[str, float] = {}
    stale: list[bytes] = []
    for raw_name, raw_at in redis_client.hgetall(KEY).items():
        try:
            age = max(0.0, now - float(raw_at))
        except ValueError:
            stale.append(raw_name)
            continue
        if age > FORGET_AFTER:
            stale.append(raw_name)
        else:
            ages[raw_name.decode(errors="replace")] = age
    if stale:
        redis_client.hdel(KEY, *stale)
    return ages


# kombu's Redis transport keeps a list per queue and priority step; the default step is the
# queue's own name, the others carry a suffix.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def queue_depth(queue: str) -> int:
    """Task messages waiting in a Celery queue (taken or reserved ones are not counted)."""
    redis_client = client()
    return int(sum(redis_client.llen(queue + suffix) for suffix in PRIORITY_SUFFIXES))


def _beating(name: str) -> None:
    while not _stop.wait(INTERVAL):
        try:
            beat(name)
        except Exception as exc:  # Redis away for a moment: the next beat tries again
            log.warning("worker heartbeat failed: %s", type(exc).__name__)


@worker_ready.connect
def _start_beating(sender: Any = None, **_: Any) -> None:
    if not settings.REDIS_URL:
        return
    name = getattr(sender, "hostname", None) or "worker"
    try:
        beat(name)
    except Exception as exc:
        log.warning("worker heartbeat failed: %s", type(exc).__name__)
    threading.Thread(target=_beating, args=(name,), name="warden-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _stop_beating(sender: Any = None, **_: Any) -> None:
    _stop.set()
    if settings.REDIS_URL:
        try:
            client().hdel(KEY, getattr(sender, "hostname", None) or "worker")
        except Exception as exc:
            log.warning("could not remove the worker heartbeat: %s", type(exc).__name__)


@worker_process_shutdown.connect
def _process_gone(pid: int | None = None, **_: Any) -> None:
    """Tell prometheus_client's multiprocess mode that a pool process ended."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and pid:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)

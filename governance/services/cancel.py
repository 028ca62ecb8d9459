"""Cancelling a statement while it runs: a throttled check for polling drivers and a watcher
thread that signals server engines."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django import db

from governance import targets
from governance.models import QueryRun

Status = QueryRun.Status


def cancel_checker(run_id: int, every_s: float = 0.25) -> Callable[[], bool]:
    """A cheap, throttled 'was this run cancelled?' for drivers that poll (SQLite)."""
    last = [0.0, False]

    def should_cancel() -> bool:
        now = time.monotonic()
        if now - float(last[0]) >= every_s:
            last[0] = now
            last[1] = QueryRun.objects.filter(pk=run_id, cancel_requested=True).exists()
        return bool(last[1])

    return should_cancel


@contextmanager
def cancel_watch(run: QueryRun, backend_id: str | None) -> Iterator[None]:
    """While a statement runs on a server engine, honour cancel requests from here too.

    The web process signals the backend when a user cancels, but a signal that lands before
    the statement starts (or between two statements) is lost; this watcher re-signals every
    second until the statement ends.
    """
    if not backend_id:
        yield  # SQLite polls `should_cancel` itself
        return
    stop = threading.Event()
    config = run.connection.target_config()

    def watch() -> None:
        requested = cancel_checker(run.pk, every_s=0.25)
        try:
            while not stop.wait(0.25):
                if run.backend_id != backend_id:  # claimed at submit: say where it runs
                    QueryRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
                        backend_id=backend_id
                    )
                    run.backend_id = backend_id
                if requested():
                    with contextlib.suppress(targets.TargetError):
                        targets.cancel(config, backend_id)
                    stop.wait(1.0)
        finally:
            db.connections.close_all()  # this thread's own database connection

    watcher = threading.Thread(target=watch, name=f"cancel-watch-{run.pk}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=5)

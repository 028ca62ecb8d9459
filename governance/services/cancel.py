"""Cancelling a statement while it runs: a throttled check for polling drivers and a watcher
thread that signals server engines."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django import db

from governance import targets
from governance.models import QueryRun

log = logging.getLogger(__name__)

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


FIRST_LOOK_S = 0.25  # most statements are over by then: they never cost the watcher anything
LOOK_EVERY_S = 0.25
RESIGNAL_AFTER_S = 1.0
IDLE_TICK_S = FIRST_LOOK_S  # no later than a new watch's first look: adding never waits


@dataclass(eq=False)
class _Watch:
    run: QueryRun
    backend_id: str
    due: float  # when the watcher next looks (time.monotonic())
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False


class _Watcher:
    """One thread per process that looks at every statement still running after a while.

    A thread per statement cost more than a point read takes; this one sleeps until the next
    look is due and holds a watch's lock while it looks, so that once `cancel_watch` has
    returned (the session may go back to the pool) no signal can reach its backend any more.
    """

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.watches: set[_Watch] = set()
        self.thread: threading.Thread | None = None
        self.wake_at = 0.0  # when the thread next wakes up by itself (time.monotonic())

    def add(self, watch: _Watch) -> None:
        with self.changed:
            self.watches.add(watch)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.loop, name="cancel-watch", daemon=True)
                self.thread.start()
            elif watch.due < self.wake_at:
                # Waking the thread costs a GIL hand-over, a sizeable part of a point read;
                # it ticks while idle, so only a watch due before its next tick needs it.
                self.changed.notify()

    def remove(self, watch: _Watch) -> None:
        # Wait for a look in progress (bounded, as a signal's connect can hang).
        released = watch.lock.acquire(timeout=5)
        watch.done = True
        if released:
            watch.lock.release()
        with self.changed:
            self.watches.discard(watch)

    def loop(self) -> None:
        idle = False
        while True:
            with self.changed:
                now = time.monotonic()
                if not self.watches:
                    if not idle:
                        db.connections.close_all()  # idle: hold no app-database connection
                        idle = True
                    self.wake_at = now + IDLE_TICK_S
                    self.changed.wait(IDLE_TICK_S)
                    continue
                idle = False
                due = [w for w in self.watches if w.due <= now]
                if not due:
                    self.wake_at = min(w.due for w in self.watches)
                    self.changed.wait(self.wake_at - now)
                    continue
                self.wake_at = now  # looking: a new watch is seen on the next pass
            for watch in due:
                try:
                    _look(watch)
                except Exception:  # the app database went away: look again later
                    log.warning("cancel watch of run %s failed", watch.run.pk, exc_info=True)
                    db.connections.close_all()
                    watch.due = time.monotonic() + LOOK_EVERY_S


def _look(watch: _Watch) -> None:
    with watch.lock:
        if watch.done:
            return
        run, backend_id = watch.run, watch.backend_id
        if run.backend_id != backend_id:  # claimed at submit: say where it runs
            QueryRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(backend_id=backend_id)
            run.backend_id = backend_id
        if QueryRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
            with contextlib.suppress(targets.TargetError):
                targets.cancel(run.connection.target_config(), backend_id)
            watch.due = time.monotonic() + RESIGNAL_AFTER_S
        else:
            watch.due = time.monotonic() + LOOK_EVERY_S


_watcher = _Watcher()


def _after_fork() -> None:
    """A forked worker has no watcher thread (and maybe a lock held by one): start afresh."""
    global _watcher
    _watcher = _Watcher()


os.register_at_fork(after_in_child=_after_fork)


@contextmanager
def cancel_watch(run: QueryRun, backend_id: str | None) -> Iterator[None]:
    """While a statement runs on a server engine, honour cancel requests from here too.

    The web process signals the backend when a user cancels, but a signal that lands before
    the statement starts (or between two statements) is lost; the process's watcher re-signals
    every second until the statement ends.
    """
    if not backend_id:
        yield  # SQLite polls `should_cancel` itself
        return
    watch = _Watch(run, backend_id, due=time.monotonic() + FIRST_LOOK_S)
    watcher = _watcher
    watcher.add(watch)
    try:
        yield
    finally:
        watcher.remove(watch)

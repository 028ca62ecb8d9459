"""A small per-process pool of idle target sessions for reads.

Opening a PostgreSQL connection costs more than a point read, so a worker keeps a few idle
sessions per connection. Only sessions that ran read-only transactions come back: those always
end in ROLLBACK, which also reverts any session setting a statement made. Sessions that wrote
are closed. A change to the connection (host, password, …) changes the key, so stale sessions
are never reused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from governance import targets
from governance.engine import masking
from governance.services.masking import pseudonym_key

POOLED_ENGINES = frozenset({"postgresql"})
MAX_IDLE_PER_KEY = 4
MAX_IDLE_SECONDS = 60.0

_lock = threading.Lock()
_idle: dict[tuple[Any, ...], list[tuple[float, targets.TargetSession]]] = {}


def _key(connection: Any) -> tuple[Any, ...]:
    return (connection.pk, connection.updated_at, connection.password_encrypted)


def _take(key: tuple[Any, ...]) -> targets.TargetSession | None:
    now = time.monotonic()
    with _lock:
        stack = _idle.get(key, [])
        while stack:
            since, session = stack.pop()
            if now - since <= MAX_IDLE_SECONDS and _reusable(session):
                return session
            session.close()
    return None


def _reusable(session: targets.TargetSession) -> bool:
    check = getattr(session, "reusable", None)
    return bool(check and check())


def _give_back(key: tuple[Any, ...], session: targets.TargetSession) -> None:
    with _lock:
        stack = _idle.setdefault(key, [])
        if len(stack) < MAX_IDLE_PER_KEY and _reusable(session):
            stack.append((time.monotonic(), session))
            return
    session.close()


@contextmanager
def session_for(
    connection: Any, *, pooled: bool, should_cancel: targets.CancelCheck | None = None
) -> Iterator[targets.TargetSession]:
    """A session on `connection`: from the pool when `pooled` (reads on server engines)."""
    secret = pseudonym_key(connection)
    if not pooled or connection.engine not in POOLED_ENGINES:
        functions = masking.sqlite_functions(secret) if connection.engine == "sqlite" else None
        with targets.connect(
            connection.target_config(),
            should_cancel=should_cancel,
            sqlite_functions=functions,
            pseudonym_key=secret,
        ) as session:
            yield session
        return
    key = _key(connection)
    session = _take(key) or targets.connect(connection.target_config(), pseudonym_key=secret)
    try:
        yield session
    except BaseException:
        session.close()  # after an error the session's state is not worth trusting
        raise
    _give_back(key, session)


def close_all() -> None:
    with _lock:
        sessions = [s for stack in _idle.values() for _, s in stack]
        _idle.clear()
    for session in sessions:
        session.close()


@contextmanager
def tagged(session: targets.TargetSession, run: Any) -> Iterator[targets.TargetSession]:
    """While `run` runs, its session names it and its submitter (PostgreSQL application_name,
    a leading comment on MySQL), so the database's own logs join to the trail by run id."""
    session.tag = targets.session_tag(run.pk, run.user.get_username())
    try:
        yield session
    finally:
        session.tag = ""  # a pooled session serves others next

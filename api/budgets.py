"""Budgets for API callers: requests per minute, rows and bytes returned per hour, runs at once.

An agent's own limits are set by admins (`manage.py agents budget`); a person's token, and an
agent with a limit left unset, gets the defaults from the environment. Counters live in the
cache (Redis in production) in fixed windows; the run count comes from the database. A call
over a budget is a 429 with `Retry-After`, and the first refusal in each window is an audit
event, so a runaway agent cannot flood the trail with them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from audit.kinds import EventKind
from governance.models import QueryRun
from governance.services.caller import Caller, record


@dataclass(frozen=True)
class Budget:
    requests_per_minute: int
    rows_per_hour: int
    bytes_per_hour: int
    concurrent_runs: int


class BudgetExceeded(Exception):
    def __init__(self, which: str, limit: int, retry_after: int) -> None:
        self.which, self.limit, self.retry_after = which, limit, retry_after
        super().__init__(
            f"Budget exceeded: at most {limit:,} {which}. Try again in {retry_after} s."
        )


def budget_for(bearer: Any) -> Budget:
    agent = bearer.agent

    def pick(name: str, default: int) -> int:
        value = getattr(agent, name, None) if agent is not None else None
        return int(value) if value is not None else default

    return Budget(
        requests_per_minute=pick("requests_per_minute", settings.WARDEN_API_REQUESTS_PER_MINUTE),
        rows_per_hour=pick("rows_per_hour", settings.WARDEN_API_ROWS_PER_HOUR),
        bytes_per_hour=pick("bytes_per_hour", settings.WARDEN_API_BYTES_PER_HOUR),
        concurrent_runs=pick("concurrent_runs", settings.WARDEN_API_CONCURRENT_RUNS),
    )


def _window(seconds: int) -> tuple[int, int]:
    """The current fixed window's number and the seconds left in it."""
    now = time.time()
    return int(now // seconds), max(1, int(seconds - now % seconds))


def _count(key: str, by: int, ttl: int) -> int:
    cache.add(key, 0, ttl)
    try:
        return int(cache.incr(key, by))
    except ValueError:  # expired between add and incr
        cache.set(key, by, ttl)
        return by


def _refuse(bearer: Any, caller: Caller, which: str, limit: int, retry: int, window: int) -> None:
    if cache.add(
        f"warden:api:refused:{bearer.user.pk}:{which.replace(' ', '-')}:{window}", 1, retry + 5
    ):
        record(
            EventKind.AGENT_BUDGET_EXCEEDED,
            caller,
            detail={
                "budget": which,
                "limit": limit,
                "user": bearer.user.get_username(),
                "user_id": bearer.user.pk,
                "token": bearer.token.shown,
            },
        )
    raise BudgetExceeded(which, limit, retry)


def check_request(bearer: Any, caller: Caller, *, submitting: bool, returns_rows: bool) -> None:
    """Count this request and refuse it if a budget is spent (raises BudgetExceeded)."""
    budget = budget_for(bearer)
    user = bearer.user.pk
    minute, left = _window(60)
    used = _count(f"warden:api:req:{user}:{minute}", 1, 70)
    if used > budget.requests_per_minute:
        _refuse(bearer, caller, "requests per minute", budget.requests_per_minute, left, minute)
    hour, left_hour = _window(3600)
    if returns_rows or submitting:
        rows = int(cache.get(f"warden:api:rows:{user}:{hour}", 0))
        if rows >= budget.rows_per_hour:
            _refuse(bearer, caller, "rows per hour", budget.rows_per_hour, left_hour, hour)
        sent = int(cache.get(f"warden:api:bytes:{user}:{hour}", 0))
        if sent >= budget.bytes_per_hour:
            _refuse(bearer, caller, "bytes per hour", budget.bytes_per_hour, left_hour, hour)
    if submitting:
        running = QueryRun.objects.filter(
            user_id=user, status__in=[QueryRun.Status.QUEUED, QueryRun.Status.RUNNING]
        ).count()
        if running >= budget.concurrent_runs:
            _refuse(bearer, caller, "runs at once", budget.concurrent_runs, 1, minute)


def count_returned(bearer: Any, *, rows: int, size: int) -> None:
    """Add what a response returns to this hour's rows and bytes."""
    hour, _ = _window(3600)
    if rows:
        _count(f"warden:api:rows:{bearer.user.pk}:{hour}", rows, 3700)
    _count(f"warden:api:bytes:{bearer.user.pk}:{hour}", size, 3700)

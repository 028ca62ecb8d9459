"""Budgets for API callers: requests per minute, rows and bytes returned per hour, runs at once.

An agent's own limits are set by admins (`manage.py agents budget`); a person's token, and an
agent with a limit left unset, gets the defaults from the environment. Counters live in the
cache (Redis in production) in fixed windows. Runs at once are slots taken atomically before a
submission (a Redis sorted set, one script: submissions racing each other cannot all pass) and
given back when the run ends (a finished-run hook, in whichever process ends it). A call over
a budget is a 429 with `Retry-After`, and the first refusal in each window is an audit event,
so a runaway agent cannot flood the trail with them.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches
from redis.exceptions import RedisError

from audit.kinds import EventKind
from governance.models import QueryRun
from governance.services.caller import Caller, record

log = logging.getLogger("warden.api")


@dataclass(frozen=True)
class Budget:
    requests_per_minute: int
    rows_per_hour: int
    bytes_per_hour: int
    concurrent_runs: int


class BudgetExceeded(Exception):
    def __init__(self, which: str, limit: int, retry_after: int) -> None:
        self.which, self.limit, self.retry_after = which, limit, retry_after
        self.run: int | None = None  # set when the statement ran and only its answer is refused
        super().__init__(
            f"Budget exceeded: at most {limit:,} {which}. Try again in {retry_after} s."
        )

    def __str__(self) -> str:
        said = super().__str__()
        if self.run is not None:
            said += f" The statement ran (run {self.run}): its result waits for you there."
        return said


def _store() -> BaseCache:
    """The budgets' own cache (settings `CACHES["budgets"]`): the same Redis as the rest in
    production; without Redis, a process-local store that nothing else fills, so no flood of
    other keys (failed sign-ins, say) can push a caller's counters out and reset them."""
    return caches["budgets"]


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
    cache = _store()
    cache.add(key, 0, ttl)
    try:
        return int(cache.incr(key, by))
    except ValueError:  # expired between add and incr
        cache.set(key, by, ttl)
        return by


def _refuse(bearer: Any, caller: Caller, which: str, limit: int, retry: int, window: int) -> None:
    if _store().add(
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


class BudgetsUnavailable(Exception):
    """The counters cannot be read (Redis is down): the call is refused, not let through."""

    def __init__(self) -> None:
        self.run: int | None = None  # set when the statement ran and only its answer is refused
        super().__init__("Warden cannot count this caller's budgets right now")

    def __str__(self) -> str:
        said = super().__str__() + " (its cache does not answer), so it "
        if self.run is None:
            return said + "takes no calls; nothing was submitted. Try again shortly."
        return (
            said + f"cannot send this answer. The statement ran (run {self.run}): its result "
            "waits for you there. Ask again shortly."
        )


@contextmanager
def _counters() -> Iterator[None]:
    """Fail closed: a cache that does not answer refuses the call (BudgetsUnavailable)."""
    try:
        yield
    except RedisError as exc:
        log.warning("budget counters unavailable: %s", type(exc).__name__)
        raise BudgetsUnavailable() from None


def check_request(bearer: Any, caller: Caller, *, submitting: bool, returns_rows: bool) -> None:
    """Count this request and refuse it if a budget is spent (raises BudgetExceeded, or
    BudgetsUnavailable when the counters cannot be read)."""
    with _counters():
        _check(bearer, caller, submitting=submitting, returns_rows=returns_rows)


def _check(bearer: Any, caller: Caller, *, submitting: bool, returns_rows: bool) -> None:
    budget = budget_for(bearer)
    user = bearer.user.pk
    minute, left = _window(60)
    used = _count(f"warden:api:req:{user}:{minute}", 1, 70)
    if used > budget.requests_per_minute:
        _refuse(bearer, caller, "requests per minute", budget.requests_per_minute, left, minute)
    hour, left_hour = _window(3600)
    if returns_rows or submitting:
        rows = int(_store().get(_key("rows per hour", user, hour), 0))
        if rows >= budget.rows_per_hour:
            _refuse(bearer, caller, "rows per hour", budget.rows_per_hour, left_hour, hour)
        sent = int(_store().get(_key("bytes per hour", user, hour), 0))
        if sent >= budget.bytes_per_hour:
            _refuse(bearer, caller, "bytes per hour", budget.bytes_per_hour, left_hour, hour)


class Reservation:
    """What one answer takes from its caller's rows and bytes budgets, before it is sent.

    Each take is one atomic step on the hour's counter, so answers made at the same time (a
    dozen finished runs read at once) each see the others' takes and together never pass the
    budget, as checking first and counting after would. The hour is the one the answer began
    in: rows given back go back to the counter they were taken from, even across the hour.
    """

    def __init__(self, bearer: Any, caller: Caller) -> None:
        self.bearer, self.caller = bearer, caller
        self.hour, _ = _window(3600)
        self.rows = 0

    def rows_allowed(self, wanted: int) -> int:
        """How many of a page's `wanted` rows may go out: the page is cut to what is left of
        the rows budget; nothing left is a refusal (BudgetExceeded)."""
        if wanted <= 0:
            return 0
        with _counters():
            limit = budget_for(self.bearer).rows_per_hour
            granted = self._take("rows per hour", limit, wanted)
        self.rows += granted
        return granted

    def send(self, size: int) -> None:
        """Take the answer's `size` in bytes before it is sent; an answer larger than what is
        left is refused whole (BudgetExceeded), and its rows are given back."""
        try:
            with _counters():
                self._take("bytes per hour", budget_for(self.bearer).bytes_per_hour, size)
        except (BudgetExceeded, BudgetsUnavailable):
            self._give_back()
            raise

    def _give_back(self) -> None:
        if self.rows > 0:
            with suppress(RedisError, ValueError):  # gone or expired: nothing to give back
                _store().decr(_key("rows per hour", self.bearer.user.pk, self.hour), self.rows)
            self.rows = 0

    def _take(self, which: str, limit: int, wanted: int) -> int:
        """Add `wanted` to the counter; keep what fits under `limit` (all of it for bytes,
        which are not cut) and give the rest back at once."""
        key = _key(which, self.bearer.user.pk, self.hour)
        total = _count(key, wanted, 3700)
        room = max(0, limit - (total - wanted))
        granted = (
            min(wanted, room) if which.startswith("rows") else (wanted if wanted <= room else 0)
        )
        if granted < wanted:
            with suppress(ValueError):  # expired meanwhile: nothing to give back
                _store().decr(key, wanted - granted)
        if granted == 0:
            _, left = _window(3600)
            _refuse(self.bearer, self.caller, which, limit, left, self.hour)
        return granted


def _key(which: str, user_id: Any, hour: int) -> str:
    return f"warden:api:{which.split()[0]}:{user_id}:{hour}"


# ---------------------------------------------------------------- runs at once

#: A slot outlives its run's longest life (queue wait, statement timeout, the reaper's margin)
#: only if the process that should give it back died; then it lapses on its own.
SLOT_MARGIN_SECONDS = 900

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('EXPIRE', KEYS[1], ARGV[5])  -- only ever lengthened: older slots may need longer
end
return 1
"""
_RENAME = """
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry then return 0 end
redis.call('ZADD', KEYS[1], expiry, ARGV[2])  -- first: the set never empties, keeps its TTL
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""

_local: dict[int | str, dict[str, float]] = {}
_local_lock = threading.Lock()


def _redis() -> Any:
    """The Redis client behind the cache, or None without Redis (the embedded mode)."""
    client = getattr(_store(), "_cache", None)
    get_client = getattr(client, "get_client", None)
    return get_client(write=True) if get_client is not None else None


def _slots_key(owner: int | str) -> str:
    """A caller's runs at once (its account id), or a server-wide set (its name)."""
    return f"warden:api:running:{owner}" if isinstance(owner, int) else f"warden:api:{owner}"


def _take(user_id: int | str, member: str, limit: int, lifetime: float) -> bool:
    now = time.time()
    redis = _redis()
    if redis is not None:
        taken = redis.eval(
            _TAKE, 1, _slots_key(user_id), now, now + lifetime, limit, member, int(lifetime) + 60
        )
        return bool(taken)
    with _local_lock:
        slots = _local.setdefault(user_id, {})
        for held, expiry in list(slots.items()):
            if expiry <= now:
                del slots[held]
        if len(slots) >= limit:
            return False
        slots[member] = now + lifetime
        return True


def _rename(user_id: int | str, old: str, new: str) -> None:
    redis = _redis()
    if redis is not None:
        redis.eval(_RENAME, 1, _slots_key(user_id), old, new)
        return
    with _local_lock:
        slots = _local.get(user_id, {})
        if old in slots:
            slots[new] = slots.pop(old)


def _give_back(user_id: int | str, member: str) -> None:
    redis = _redis()
    if redis is not None:
        redis.zrem(_slots_key(user_id), member)
        return
    with _local_lock:
        _local.get(user_id, {}).pop(member, None)


class RunSlot:
    """A run-at-once slot held for one submission; `bind` hands it to the run it became."""

    def __init__(self, user_id: int, member: str) -> None:
        self.user_id, self.member = user_id, member

    def bind(self, run: QueryRun) -> None:
        """Keep the slot while `run` is queued or running; its end gives it back. Call it
        before looking at the run's status again: a run that ends in between gives back the
        slot under its new name, or the caller sees it ended and gives it back itself."""
        name = f"run:{run.pk}"
        try:
            _rename(self.user_id, self.member, name)
        except RedisError as exc:  # the run exists: keep the slot until it lapses
            log.warning("run %s keeps an unnamed slot: %s", run.pk, type(exc).__name__)
            return
        self.member = name

    def release(self) -> None:
        try:
            _give_back(self.user_id, self.member)
        except RedisError as exc:  # it lapses on its own
            log.warning("a slot was not given back: %s", type(exc).__name__)


@contextmanager
def run_slot(bearer: Any, caller: Caller, lifetime: float) -> Iterator[RunSlot]:
    """Take one of the caller's runs-at-once slots for a submission (BudgetExceeded when none
    is free); given back when the submission fails, else bound to the run (`RunSlot.bind`)."""
    limit = budget_for(bearer).concurrent_runs
    slot = RunSlot(bearer.user.pk, f"submitting:{uuid.uuid4().hex}")
    with _counters():
        taken = _take(slot.user_id, slot.member, limit, lifetime + SLOT_MARGIN_SECONDS)
        if not taken:
            minute, _ = _window(60)
            _refuse(bearer, caller, "runs at once", limit, 1, minute)
    try:
        yield slot
    except BaseException:
        slot.release()
        raise


def run_ended(run: QueryRun) -> None:
    """A finished-run hook: a run submitted with a token gives back its slot."""
    if (run.provenance or {}).get("token"):
        RunSlot(run.user_id, f"run:{run.pk}").release()


# ---------------------------------------------------------------- long polls

LONG_POLLS = "long-polls"


@contextmanager
def long_poll(seconds: float) -> Iterator[float]:
    """How long a call may wait for its result: `seconds` while one of the server's long-poll
    places is free (WARDEN_API_LONG_POLLS across every web process), else 0, and the caller
    gets its 202 with `Retry-After` at once. A waiting call holds a web worker: without a cap,
    a few callers waiting at once would hold them all and the pages would stop answering."""
    if seconds <= 0:
        yield 0.0
        return
    member = uuid.uuid4().hex
    try:
        taken = _take(LONG_POLLS, member, settings.WARDEN_API_LONG_POLLS, seconds + 5)
    except RedisError:
        taken = False  # no place known to be free: answer at once
    try:
        yield seconds if taken else 0.0
    finally:
        if taken:
            with suppress(RedisError):
                _give_back(LONG_POLLS, member)

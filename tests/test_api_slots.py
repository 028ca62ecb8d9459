"""Runs at once are slots taken atomically: submissions racing each other cannot all pass,
with Redis (production, shared by every process) and without (the embedded mode). Rows and
bytes returned are taken from their budgets the same way, before an answer goes out."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from django.db import connection as db
from django.test import override_settings

from api import budgets
from api.budgets import BudgetExceeded, Reservation, run_ended, run_slot
from governance.models import QueryRun
from governance.services.caller import Caller
from tests.conftest import REQUIRE_SERVICES

pytestmark = pytest.mark.django_db(transaction=True)
REDIS_URL = os.environ.get("WARDEN_TEST_SLOTS_REDIS_URL", "redis://127.0.0.1:6379/13")


@dataclass
class _Token:
    shown: str = "wdn_000000000000_…"


@dataclass
class _Bearer:
    """What `run_slot` reads of a caller: its account, token and agent (none: defaults)."""

    user: Any
    token: _Token
    agent: Any = None


@pytest.fixture(autouse=True)
def _no_local_slots() -> Iterator[None]:
    budgets._local.clear()
    yield
    budgets._local.clear()


@pytest.fixture(params=["redis", "local"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "local":
        yield "local"
        return
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is not reachable: {exc}")
        pytest.skip(f"Redis is not reachable: {exc}")
    backend = "django.core.cache.backends.redis.RedisCache"
    shared = {"BACKEND": backend, "LOCATION": REDIS_URL}
    with override_settings(CACHES={"default": shared, "budgets": shared}):
        from django.core.cache import caches

        caches["budgets"].clear()
        yield "redis"
        caches["budgets"].clear()


def _held(user_id: int) -> int:
    redis = budgets._redis()
    if redis is not None:
        return int(redis.zcard(budgets._slots_key(user_id)))
    return len(budgets._local.get(user_id, {}))


def test_racing_submissions_take_at_most_the_limit(backend: str, alice: Any) -> None:
    bearer = _Bearer(user=alice, token=_Token())
    caller = Caller(user=alice, channel="api")
    taken, refused = [], []
    start = threading.Barrier(24)
    release = threading.Event()

    def submit() -> None:
        start.wait()
        try:
            with run_slot(bearer, caller, 60):
                taken.append(1)
                release.wait(10)
        except BudgetExceeded:
            refused.append(1)
        finally:
            db.close()  # the refusal's audit event opened one in this thread

    threads = [threading.Thread(target=submit) for _ in range(24)]
    limit = override_settings(WARDEN_API_CONCURRENT_RUNS=3)  # once: settings are process-wide
    limit.enable()
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(taken) + len(refused) < 24 and time.monotonic() < deadline:
        if len(taken) == 3 and len(refused) == 21:
            break
        time.sleep(0.01)
    assert (len(taken), len(refused)) == (3, 21)
    assert _held(alice.pk) == 3
    release.set()
    for thread in threads:
        thread.join()
    limit.disable()
    # Each left without binding its slot to a run (only a failure gives it back): clean up.
    budgets._local.clear()
    if backend == "redis":
        budgets._redis().delete(budgets._slots_key(alice.pk))


def test_a_slot_follows_its_run_and_comes_back_when_it_ends(backend: str, alice: Any) -> None:
    bearer = _Bearer(user=alice, token=_Token())
    caller = Caller(user=alice, channel="api")
    run = QueryRun(pk=987654, user=alice, provenance={"token": "wdn_000000000000_…"})
    with override_settings(WARDEN_API_CONCURRENT_RUNS=1):
        with run_slot(bearer, caller, 60) as slot:
            slot.bind(run)
        assert _held(alice.pk) == 1
        with pytest.raises(BudgetExceeded, match="runs at once"), run_slot(bearer, caller, 60):
            pass
        run_ended(QueryRun(pk=987654, user=alice, provenance={}))  # not a token's run
        assert _held(alice.pk) == 1
        run_ended(run)  # the finished-run hook, in whichever process ends the run
        assert _held(alice.pk) == 0
        with run_slot(bearer, caller, 60):
            assert _held(alice.pk) == 1


def test_a_failed_submission_gives_its_slot_back(backend: str, alice: Any) -> None:
    bearer = _Bearer(user=alice, token=_Token())
    caller = Caller(user=alice, channel="api")
    with override_settings(WARDEN_API_CONCURRENT_RUNS=1):
        with pytest.raises(RuntimeError), run_slot(bearer, caller, 60):
            raise RuntimeError("the submission failed")
        assert _held(alice.pk) == 0


def test_a_slot_whose_process_died_lapses(backend: str, alice: Any, monkeypatch: Any) -> None:
    bearer = _Bearer(user=alice, token=_Token())
    caller = Caller(user=alice, channel="api")
    monkeypatch.setattr(budgets, "SLOT_MARGIN_SECONDS", 0)
    with override_settings(WARDEN_API_CONCURRENT_RUNS=1):
        with run_slot(bearer, caller, 0.2) as slot:
            slot.bind(QueryRun(pk=987655, user=alice))  # its end is never heard of
        time.sleep(0.3)
        with run_slot(bearer, caller, 60):
            assert _held(alice.pk) == 1


def test_long_polls_are_capped_across_the_server(backend: str) -> None:
    """A call waits for its result only while one of the server's long-poll places is free;
    past them it is answered at once (its 202 says when to ask again)."""
    with override_settings(WARDEN_API_LONG_POLLS=2):
        with budgets.long_poll(30) as first, budgets.long_poll(30) as second:
            assert first == second == 30
            with budgets.long_poll(30) as third:
                assert third == 0
        with budgets.long_poll(30) as again:
            assert again == 30  # given back when the waits ended
        with budgets.long_poll(0) as none:
            assert none == 0


def test_a_short_slot_never_shortens_the_life_of_longer_ones(backend: str, alice: Any) -> None:
    bearer = _Bearer(user=alice, token=_Token())
    caller = Caller(user=alice, channel="api")
    with override_settings(WARDEN_API_CONCURRENT_RUNS=4):
        with run_slot(bearer, caller, 3600) as long:
            long.bind(QueryRun(pk=987656, user=alice))
        with run_slot(bearer, caller, 30) as short:
            short.bind(QueryRun(pk=987657, user=alice))
        redis = budgets._redis()
        if redis is not None:  # the set's own expiry follows its longest slot
            assert redis.ttl(budgets._slots_key(alice.pk)) > 3600
            expiry = redis.zscore(budgets._slots_key(alice.pk), "run:987656")
        else:  # each slot keeps its own
            expiry = budgets._local[alice.pk]["run:987656"]
        assert expiry > time.time() + 3600
        assert _held(alice.pk) == 2


def _race(count: int, attempt: Any) -> list[Any]:
    """`attempt()` from `count` threads released at once: what each got (None: refused)."""
    results: list[Any] = []
    start = threading.Barrier(count)

    def go() -> None:
        start.wait()
        try:
            results.append(attempt())
        except BudgetExceeded:
            results.append(None)
        finally:
            db.close()  # the refusal's audit event opened one in this thread

    threads = [threading.Thread(target=go) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return results


def test_answers_racing_each_other_send_at_most_the_rows_budget(backend: str, alice: Any) -> None:
    """Twelve pages of 1,000 rows answered at once under a 10-row budget: 10 rows go out in
    all (checking first and counting after let every one of them through)."""
    bearer = _Bearer(user=alice, token=_Token())
    caller = Caller(user=alice, channel="api")
    limit = override_settings(WARDEN_API_ROWS_PER_HOUR=10)  # once: settings are process-wide
    limit.enable()
    try:
        granted = _race(12, lambda: Reservation(bearer, caller).rows_allowed(1000))
        assert len(granted) == 12
        assert sum(g or 0 for g in granted) == 10
        with pytest.raises(BudgetExceeded):
            Reservation(bearer, caller).rows_allowed(1)
    finally:
        limit.disable()


def test_answers_racing_each_other_send_at_most_the_bytes_budget(backend: str, alice: Any) -> None:
    """An answer whose bytes do not fit is refused whole and gives its rows back."""
    bearer = _Bearer(user=alice, token=_Token())
    caller = Caller(user=alice, channel="api")
    limit = override_settings(WARDEN_API_BYTES_PER_HOUR=10_000, WARDEN_API_ROWS_PER_HOUR=100)
    limit.enable()
    try:

        def answer() -> int:  # a page of 5 rows whose JSON is 3,000 bytes
            reservation = Reservation(bearer, caller)
            reservation.rows_allowed(5)
            reservation.send(3_000)
            return 3_000

        sent = _race(12, answer)
        assert sum(s or 0 for s in sent) == 9_000  # three fit, nine were refused
        # The three sent keep their 15 rows; the nine refused gave theirs back.
        assert Reservation(bearer, caller).rows_allowed(1_000) == 100 - 15
    finally:
        limit.disable()


def test_rows_given_back_go_back_to_the_hour_they_were_taken_from(backend: str, alice: Any) -> None:
    """An answer begun just before the hour and refused just after: its rows go back to the
    old hour's counter, never into the new one (which would then go below zero and let a
    caller have more than its budget in the new hour)."""
    from api.budgets import _key, _store

    bearer = _Bearer(user=alice, token=_Token())
    caller = Caller(user=alice, channel="api")
    limit = override_settings(WARDEN_API_BYTES_PER_HOUR=100, WARDEN_API_ROWS_PER_HOUR=500)
    limit.enable()
    try:
        late = Reservation(bearer, caller)
        late.hour -= 1  # it began in the hour before this one
        assert late.rows_allowed(300) == 300
        with pytest.raises(BudgetExceeded):
            late.send(10_000)
        assert int(_store().get(_key("rows per hour", alice.pk, late.hour), 0)) == 0
        assert _store().get(_key("rows per hour", alice.pk, late.hour + 1)) is None
        assert Reservation(bearer, caller).rows_allowed(1_000) == 500
    finally:
        limit.disable()

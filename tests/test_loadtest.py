"""`manage.py loadtest` end to end, short: gunicorn, two Celery workers and Locust, then the
count of runs and audit events against what Locust sent. `make load` runs the full five
minutes at 32 users."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.conftest import PG, REQUIRE_SERVICES, subprocess_env

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("WARDEN_TEST_LOAD_REDIS_URL", "redis://127.0.0.1:6379/10")
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_short_load_test_finds_every_submission_recorded(groups: Any, tmp_path: Path) -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is not reachable: {exc}")
        pytest.skip(f"Redis is not reachable: {exc}")
    target = f"warden_l_{uuid.uuid4().hex[:10]}"
    static = tmp_path / "static"
    env = subprocess_env(REDIS_URL=REDIS_URL, DJANGO_STATIC_ROOT=str(static))
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT, env=env, check=True, timeout=120,
    )  # fmt: skip
    try:
        result = subprocess.run(
            [sys.executable, "manage.py", "loadtest", "--users", "4", "--duration", "8",
             "--spawn-rate", "4", "--web-workers", "2",
             "--target", f"postgresql://postgres@127.0.0.1:5432/{target}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    report = json.loads(result.stdout)
    assert report["ok"] and report["errors"] == 0
    assert report["submissions"] > 0
    assert report["recorded"]["runs"] == report["submissions"]
    assert set(report["recorded"]["by_channel"]) == {"web", "api"}
    assert report["requests"]["web submit"]["p95_ms"] is not None

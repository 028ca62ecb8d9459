"""`manage.py loadtest`: Locust against a real deployment on this machine, then a count.

Starts gunicorn and Celery workers on loopback (the app database of DATABASE_URL, Redis of
REDIS_URL), seeds a PostgreSQL target, signs in analysts and makes agents with tokens, and runs
Locust headless, bounded in time: half the users submit from the web editor, half through the
API. Then it waits for every run to end and checks that each submission Locust saw succeed has
its run, and each run its `query.submitted` event and one outcome event. Prints JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from governance import demo_data
from governance.management.commands._api_bench import free_port
from governance.models import AccessGrant, Agent, Connection, QueryRun
from governance.services.agents import agent_budget_set, agent_create, token_create
from governance.services.caller import Caller

ROOT = Path(__file__).resolve().parents[3]
LOCUSTFILE = ROOT / "ops" / "loadtest" / "locustfile.py"
OUTCOMES = ("query.succeeded", "query.failed", "query.cancelled", "query.expired")


class Command(BaseCommand):
    help = "Load-test the web editor and the API with Locust, then check every run was recorded."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--users", type=int, default=32)
        parser.add_argument("--duration", type=int, default=300, help="Seconds.")
        parser.add_argument("--spawn-rate", type=float, default=8.0)
        parser.add_argument("--web-workers", type=int, default=4)
        parser.add_argument("--celery-workers", type=int, default=2)
        parser.add_argument(
            "--target",
            default="postgresql://postgres@127.0.0.1:5432/warden_load",
            help="PostgreSQL target to seed and query.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError("loadtest needs REDIS_URL: statements run on Celery workers.")
        if not 2 <= options["users"] <= 1000 or not 1 <= options["duration"] <= 3600:
            raise CommandError("--users must be 2..1000 and --duration 1..3600 seconds")
        connection, credentials = self._setup(options)
        started = timezone.now()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "credentials.json"
            path.write_text(json.dumps(credentials))
            report = self._run(options, path, Path(tmp))
        report["recorded"] = self._recorded(connection, started)
        report["ok"] = (
            report["errors"] == 0
            and report["recorded"]["runs"] == report["submissions"]
            and report["recorded"]["without_both_events"] == 0
            and report["recorded"]["unfinished"] == 0
        )
        self.stdout.write(json.dumps(report, indent=2))
        if not report["ok"]:
            raise CommandError("the load test found errors or unrecorded submissions")

    # ------------------------------------------------------------------ set-up

    def _setup(self, options: dict[str, Any]) -> tuple[Connection, dict[str, Any]]:
        dsn = demo_data.parse_dsn(options["target"])
        demo_data.seed(dsn, customers=1000)
        admin, _ = get_user_model().objects.get_or_create(
            username="warden-load-admin", defaults={"is_superuser": True}
        )
        connection, _ = Connection.objects.get_or_create(
            name="load",
            defaults={
                "engine": "postgresql",
                "host": dsn.host,
                "port": dsn.port,
                "database": dsn.database,
                "username": dsn.user,
                "environment": "production",
            },
        )
        analysts = Group.objects.get(name="analyst")
        AccessGrant.objects.get_or_create(
            connection=connection, group=analysts, defaults={"capabilities": ["read"]}
        )
        half = max(1, options["users"] // 2)
        sessions = []
        for i in range(half):
            person, _ = get_user_model().objects.get_or_create(username=f"load-analyst-{i}")
            person.groups.add(analysts)
            client = Client()
            client.force_login(person)
            sessions.append(client.cookies["sessionid"].value)
        tokens = [self._agent_token(admin, f"load-agent-{i}") for i in range(half)]
        return connection, {"connection": connection.name, "sessions": sessions, "tokens": tokens}

    def _agent_token(self, admin: Any, name: str) -> str:
        caller = Caller(user=admin)
        if Agent.objects.filter(user__username=name).exists():
            agent = Agent.objects.get(user__username=name)
            _, token = token_create(caller=caller, user=agent.user, name="load test")
        else:
            _, token = agent_create(caller=caller, name=name, owner=admin, groups=["analyst"])
        agent_budget_set(
            caller=caller,
            name=name,
            requests_per_minute=10**6,
            rows_per_hour=10**9,
            bytes_per_hour=10**12,
            concurrent_runs=10**4,
        )
        return token

    # ------------------------------------------------------------------ the run

    def _run(self, options: dict[str, Any], credentials: Path, tmp: Path) -> dict[str, Any]:
        port = free_port()
        env = {**os.environ, "WARDEN_LOAD_CREDENTIALS": str(credentials)}
        web = [sys.executable, "-m", "gunicorn", "governance.wsgi", "-w",
               str(options["web_workers"]), "-b", f"127.0.0.1:{port}",
               "--log-level", "warning"]  # fmt: skip
        processes = [subprocess.Popen(web, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)]
        quiet = {**env, "WARDEN_LOG_LEVEL": "WARNING"}
        for i in range(options["celery_workers"]):
            worker = [sys.executable, "-m", "celery", "-A", "governance", "--quiet", "worker", "-n",
                      f"load{i}@%h", "--concurrency", "4", "--without-gossip",
                      "--without-mingle"]  # fmt: skip
            processes.append(
                subprocess.Popen(worker, cwd=ROOT, env=quiet, stdout=subprocess.DEVNULL)
            )
        try:
            self._wait_until_up(port)
            locust = subprocess.run(
                [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
                 "--host", f"http://127.0.0.1:{port}", "-u", str(options["users"]),
                 "-r", str(options["spawn_rate"]), "-t", f"{options['duration']}s",
                 "--stop-timeout", "30", "--only-summary", "--json", "--loglevel", "WARNING"],
                cwd=ROOT, env=env, capture_output=True, text=True,
                timeout=options["duration"] + 180,
            )  # fmt: skip
            stats = json.loads(locust.stdout or "[]")
            self._drain()
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        return self._summary(stats, options, locust.stderr)

    def _wait_until_up(self, port: int) -> None:
        import http.client

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise CommandError("gunicorn and the workers did not become ready within a minute")

    def _drain(self, timeout: float = 120) -> None:
        """Wait until no run of the load test is queued or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not QueryRun.objects.filter(
                connection__name="load", status__in=["queued", "running"]
            ).exists():
                return
            time.sleep(0.5)

    @staticmethod
    def _summary(stats: list[dict[str, Any]], options: dict[str, Any], err: str) -> dict[str, Any]:
        by_name: dict[str, Any] = {}
        for entry in stats:
            times = entry.get("response_times", {})
            count = entry.get("num_requests", 0)
            by_name[entry["name"]] = {
                "requests": count,
                "failures": entry.get("num_failures", 0),
                "p50_ms": _percentile(times, count, 0.50),
                "p95_ms": _percentile(times, count, 0.95),
                "per_second": round(
                    count
                    / max(entry.get("last_request_timestamp", 0) - entry.get("start_time", 0), 1),
                    1,
                ),
            }
        submits = [by_name.get(n, {}) for n in ("web submit", "api submit")]
        return {
            "users": options["users"],
            "duration_s": options["duration"],
            "web_workers": options["web_workers"],
            "celery_workers": options["celery_workers"],
            "requests": by_name,
            "submissions": sum(s.get("requests", 0) - s.get("failures", 0) for s in submits),
            "errors": sum(v["failures"] for v in by_name.values()),
            **({"locust_stderr": err[-2000:]} if not stats else {}),
        }

    @staticmethod
    def _recorded(connection: Connection, since: Any) -> dict[str, Any]:
        runs = QueryRun.objects.filter(connection=connection, created_at__gte=since)
        ids = list(runs.values_list("pk", flat=True))
        events = (
            AuditEvent.objects.filter(run_id__in=ids)
            .values("run_id")
            .annotate(
                submitted=Count("id", filter=Q(kind="query.submitted")),
                outcomes=Count("id", filter=Q(kind__in=OUTCOMES)),
            )
        )
        complete = sum(1 for e in events if e["submitted"] == 1 and e["outcomes"] == 1)
        return {
            "runs": len(ids),
            "by_channel": dict(runs.values_list("channel").annotate(n=Count("id"))),
            "by_status": dict(runs.values_list("status").annotate(n=Count("id"))),
            "without_both_events": len(ids) - complete,
            "unfinished": runs.filter(status__in=["queued", "running"]).count(),
        }


def _span(entry: dict[str, Any]) -> float:
    return float(entry.get("last_request_timestamp", 0) - entry.get("start_time", 0))


def _percentile(times: dict[str, int], count: int, q: float) -> float | None:
    """Locust's histogram of response times (ms, rounded) → the q-th percentile."""
    if not count:
        return None
    wanted = count * q
    seen = 0
    for ms, n in sorted(((float(k), v) for k, v in times.items())):
        seen += n
        if seen >= wanted:
            return ms
    return None

"""What an API client sees (issue 11): a governed point read through `POST /api/v1/queries`
under gunicorn with a token, at concurrency 1 and 16, against the framework floor on the same
server (api/bench_floor.py: the same token check and one query on the same target)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from governance import demo_data
from governance.models import AccessGrant, Agent, Connection
from governance.services.agents import agent_budget_set, agent_create, token_create
from governance.services.caller import Caller

ROOT = Path(__file__).resolve().parents[3]
SQL = "SELECT id, city, country FROM customers WHERE id = 42"
WORKERS = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _token(connection: Connection, user: Any) -> str:
    """The benchmark agent's token (the agent is made once and kept: its runs stay)."""
    name = "warden-bench-agent"
    agent = Agent.objects.select_related("user").filter(user__username=name).first()
    account = get_user_model().objects.filter(username=name).first()
    if agent is None and account is not None:  # left by an interrupted run: make it the agent
        agent = Agent.objects.create(user=account, owner=user)
        account.groups.add(Group.objects.get(name="analyst"))
    if agent is None:
        agent, token = agent_create(
            caller=Caller(user=user), name=name, owner=user, groups=["analyst"]
        )
    else:
        _, token = token_create(caller=Caller(user=user), user=agent.user, name="benchmark")
    AccessGrant.objects.get_or_create(
        connection=connection, user=agent.user, defaults={"capabilities": ["read"]}
    )
    agent_budget_set(
        caller=Caller(user=user),
        name=name,
        requests_per_minute=10**9,
        rows_per_hour=10**12,
        bytes_per_hour=10**15,
        concurrent_runs=10**6,
    )
    return token


def _request(port: int, method: str, path: str, token: str, body: bytes | None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return int(response.status)
    finally:
        conn.close()


def _measure(call: Any, *, concurrency: int, total: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    per_thread = total // concurrency

    def worker() -> None:
        nonlocal errors
        for _ in range(per_thread):
            started = time.perf_counter()
            status = call()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    errors += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 2),
        "per_second": round(len(latencies) / wall, 1),
    }


def api_figures(
    dsn: demo_data.DSN, connection: Connection, user: Any, *, requests: int = 400
) -> dict[str, Any]:
    token = _token(connection, user)
    port = free_port()
    env = dict(os.environ)
    env.pop("REDIS_URL", None)  # embedded: the statement runs in the web worker, as measured
    env["WARDEN_BENCH_FLOOR_DSN"] = (
        f"host={dsn.host} port={dsn.port} dbname={dsn.database} user={dsn.user}"
        + (f" password={dsn.password}" if dsn.password else "")
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "governance.wsgi", "-w", str(WORKERS),
         "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _request(port, "GET", "/api/v1/connections", token, None) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("gunicorn did not start for the API benchmark")
            time.sleep(0.2)
        body = json.dumps({"connection": connection.name, "sql": SQL}).encode()

        def governed() -> int:
            return _request(port, "POST", "/api/v1/queries", token, body)

        def floor() -> int:
            return _request(port, "GET", "/api/v1/_bench_floor", token, None)

        def design_floor() -> int:
            return _request(port, "GET", "/api/v1/_bench_design_floor", token, None)

        for _ in range(3 * WORKERS):  # every worker warm: its connections and caches
            governed()
            floor()
            design_floor()
        figures: dict[str, Any] = {}
        for concurrency in (1, 16):
            count = requests // 2 if concurrency == 1 else requests
            api = _measure(governed, concurrency=concurrency, total=count)
            base = _measure(floor, concurrency=concurrency, total=count)
            design = _measure(design_floor, concurrency=concurrency, total=count)
            figures[f"concurrency_{concurrency}"] = {
                "api": api,
                "floor": base,
                "design_floor": design,
                "p50_ratio": round(api["p50_ms"] / base["p50_ms"], 2),
                "throughput_ratio": round(api["per_second"] / base["per_second"], 2),
                # What the audit design alone costs over the floor, and how far the API is
                # from that design floor (the part Warden's own code could still remove).
                "design_floor_p50_ratio": round(design["p50_ms"] / base["p50_ms"], 2),
                "design_floor_throughput_ratio": round(
                    design["per_second"] / base["per_second"], 2
                ),
                "api_vs_design_floor_p50": round(api["p50_ms"] / design["p50_ms"], 2),
            }
        figures["goals"] = {
            "concurrency_1_p50_ratio_at_most": 2.0,
            "concurrency_16_throughput_ratio_at_least": 0.5,
            "errors": 0,
        }
        figures["workers"] = WORKERS
        return figures
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()

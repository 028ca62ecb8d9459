"""The benchmark's floors (`make bench`), routed only when WARDEN_BENCH_FLOOR_DSN is set (the
benchmark's own server):

- `floor`: the framework floor of issue 11: a trivial view on the same server that checks the
  same token and runs one query on the same target over a connection kept per process;
- `design_floor`: the same token check, then the round trips and the one disk wait this design
  needs for a governed read (the caller's access, the intent committed without waiting for the
  disk, the read in one pipeline, the outcome committed durably), as bare psycopg calls: what
  is left once Warden's own Python is taken away.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from django.http import HttpRequest, JsonResponse

from governance.services.agents import TokenRefused, token_bearer

_connections: dict[str, Any] = {}

SQL = "SELECT id, city, country FROM customers WHERE id = 42"


def _conn(name: str) -> Any:
    conn = _connections.get(name)
    if conn is None or conn.closed:
        conn = _connections[name] = psycopg.connect(
            settings.WARDEN_BENCH_FLOOR_DSN, autocommit=True
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS warden_bench_commit"
            " (id bigserial PRIMARY KEY, at timestamptz)"
        )
    return conn


def _refused(request: HttpRequest) -> JsonResponse | None:
    try:
        token_bearer(request.headers.get("Authorization", "").removeprefix("Bearer ").strip())
    except TokenRefused:
        return JsonResponse({"detail": "no"}, status=401)
    return None


def floor(request: HttpRequest) -> JsonResponse:
    if refused := _refused(request):
        return refused
    rows = _conn("target").execute(SQL).fetchall()
    return JsonResponse({"rows": [list(r) for r in rows]})


def design_floor(request: HttpRequest) -> JsonResponse:
    if refused := _refused(request):
        return refused
    app, target = _conn("app"), _conn("target")
    app.execute("SELECT count(*) FROM warden_bench_commit WHERE id = 0").fetchall()
    app.execute(
        "BEGIN; SET LOCAL synchronous_commit = off;"
        " INSERT INTO warden_bench_commit (at) VALUES (now()); COMMIT"
    )
    cur = target.cursor()
    with target.pipeline():
        target.execute("BEGIN READ ONLY")
        target.execute("SET LOCAL statement_timeout = 30000")
        target.execute(f"DECLARE floor NO SCROLL CURSOR FOR {SQL}")
        cur.execute("FETCH FORWARD 1001 FROM floor")
        target.execute("ROLLBACK")
    rows = cur.fetchall()
    app.execute("INSERT INTO warden_bench_commit (at) VALUES (now())")
    return JsonResponse({"rows": [list(r) for r in rows]})

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

from governance.benchfloor import COMMIT_TABLE, design_floor_read
from governance.services.agents import TokenRefused, token_bearer

_connections: dict[str, Any] = {}

SQL = "SELECT id, city, country FROM customers WHERE id = 42"


def _conn(name: str) -> Any:
    conn = _connections.get(name)
    if conn is None or conn.closed:
        conn = _connections[name] = psycopg.connect(
            settings.WARDEN_BENCH_FLOOR_DSN, autocommit=True
        )
        conn.execute(COMMIT_TABLE)
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
    rows = design_floor_read(_conn("app"), _conn("target"), SQL)
    return JsonResponse({"rows": [list(r) for r in rows]})

"""The benchmark's framework floor (`make bench`): a trivial view on the same server that
checks the same token and runs one query on the same target over a connection kept per
process. Routed only when WARDEN_BENCH_FLOOR_DSN is set (the benchmark's own server)."""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from django.http import HttpRequest, JsonResponse

from governance.services.agents import TokenRefused, token_bearer

_connection: dict[str, Any] = {}

SQL = "SELECT id, city, country FROM customers WHERE id = 42"


def floor(request: HttpRequest) -> JsonResponse:
    try:
        token_bearer(request.headers.get("Authorization", "").removeprefix("Bearer ").strip())
    except TokenRefused:
        return JsonResponse({"detail": "no"}, status=401)
    conn = _connection.get("conn")
    if conn is None or conn.closed:
        conn = _connection["conn"] = psycopg.connect(
            settings.WARDEN_BENCH_FLOOR_DSN, autocommit=True
        )
    rows = conn.execute(SQL).fetchall()
    return JsonResponse({"rows": [list(r) for r in rows]})

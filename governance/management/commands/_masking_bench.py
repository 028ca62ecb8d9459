"""Masking figures for `manage.py benchmark` (issue: masking inside the database)."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from governance import demo_data
from governance.engine import masking
from governance.models import Connection
from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh
from governance.services.exports import run_export_csv
from governance.services.masking import mask_plan, pseudonym_key
from governance.services.runs import run_submit
from governance.targets.base import hmac_pads

ROOT = Path(__file__).resolve().parents[3]
ROWS = 1_000_000
QUERY = "SELECT id, full_name, email, phone, ssn, date_of_birth, score FROM bench_people"
TYPICAL = [
    "SELECT email FROM customers WHERE id = 1",
    "SELECT * FROM customers LIMIT 10",
    "SELECT c.full_name, count(o.id) FROM customers c JOIN orders o ON o.customer_id = c.id "
    "GROUP BY c.full_name",
    "WITH t AS (SELECT ssn, email FROM customers) SELECT upper(email), ssn FROM t",
    "SELECT email FROM customers UNION SELECT work_email FROM employees",
    "SELECT count(DISTINCT ssn) FROM customers",
]


def _create_table(pg: dict[str, Any]) -> None:
    with psycopg.connect(**pg, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname = 'bench_people'"
        ).fetchone()
        if exists and exists[0]:
            count = conn.execute("SELECT count(*) FROM bench_people").fetchone()
            if count and count[0] == ROWS:
                return
            conn.execute("DROP TABLE bench_people")
        conn.execute(
            f"""CREATE TABLE bench_people AS SELECT g AS id,
              'Person ' || g AS full_name,
              'user' || g || '@example.com' AS email,
              '+1 (555) ' || lpad((g % 1000)::text, 3, '0') || '-'
                || lpad((g % 10000)::text, 4, '0') AS phone,
              lpad((100 + g % 660)::text, 3, '0') || '-' || lpad((10 + g % 89)::text, 2, '0')
                || '-' || lpad((1000 + g % 8999)::text, 4, '0') AS ssn,
              date '1950-01-01' + (g % 20000) AS date_of_birth,
              g % 1000 AS score
            FROM generate_series(1, {ROWS}) g"""
        )
        conn.execute("ANALYZE bench_people")


def _read_all(
    pg: dict[str, Any], sql: str, params: tuple[bytes, bytes] | None = None
) -> tuple[int, float]:
    with psycopg.connect(**pg) as conn:
        started = time.perf_counter()
        with psycopg.RawServerCursor(conn, "bench") as cur:
            cur.itersize = 20_000
            cur.execute(sql, params)  # the pseudonym key's pads as $1/$2, as the driver binds
            n = sum(1 for _ in cur)
        return n, time.perf_counter() - started


def masking_figures(*, dsn: demo_data.DSN, connection: Connection, user: Any) -> dict[str, Any]:
    pg = {"host": dsn.host, "port": dsn.port, "dbname": dsn.database, "user": dsn.user,
          "password": dsn.password}  # fmt: skip
    _create_table(pg)
    catalog_refresh(connection=connection)
    connection.refresh_from_db()
    connection.export_row_limit = ROWS
    connection.save()
    plan = mask_plan(
        user=user, connection=connection, statements=[{"sql": QUERY, "category": "read"}]
    )
    masked_sql = plan.statements([QUERY])[0]
    masked_columns = [c.name for r in plan.results if r for c in r.columns if c.masked]
    _read_all(pg, "SELECT 1")  # warm the server
    raw_rows, raw_t = _read_all(pg, QUERY)
    keyed = any(r.keyed for r in plan.results if r)
    pads = hmac_pads(pseudonym_key(connection)) if keyed else None
    masked_rows, masked_t = _read_all(pg, masked_sql, pads)
    figures: dict[str, Any] = {
        "rows": raw_rows,
        "masked_columns": masked_columns,
        "unmasked_rows_per_s": round(raw_rows / raw_t),
        "masked_rows_per_s": round(masked_rows / masked_t),
        "masked_vs_unmasked": round(raw_t / masked_t, 3),
        "goal_masked_vs_unmasked": 0.8,
    }
    figures.update(_export(dsn, connection, user))
    figures.update(_rewrite_times())
    return figures


def _export(dsn: demo_data.DSN, connection: Connection, user: Any) -> dict[str, Any]:
    caller = Caller(user=user, channel="cli")
    run = run_submit(caller=caller, connection=connection, sql=QUERY, mode="export")
    started = time.perf_counter()
    size = sum(len(chunk) for chunk in run_export_csv(run=run))
    governed_t = time.perf_counter() - started
    env = {**os.environ, "PGPASSWORD": dsn.password}
    started = time.perf_counter()
    subprocess.run(
        ["psql", "-h", dsn.host, "-p", str(dsn.port or 5432), "-U", dsn.user, "-d", dsn.database,
         "-qc", f"\\copy ({QUERY}) TO '/dev/null' WITH (FORMAT csv, HEADER)"],
        check=True, env=env,
    )  # fmt: skip
    psql_t = time.perf_counter() - started
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [sys.executable, "manage.py", "govern", "--as", user.username, "--connection",
         connection.name, "--format", "csv", QUERY],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "export_bytes": size,
        "governed_export_s": round(governed_t, 3),
        "psql_copy_s": round(psql_t, 3),
        "export_speed_vs_psql_copy": round(psql_t / governed_t, 3),
        "goal_export_speed_vs_psql_copy": 0.7,
        "export_1m_rows_peak_rss_mb": round(max(before, peak_kb) / 1024, 1),
        "goal_export_peak_rss_mb": 200,
    }


def _rewrite_times() -> dict[str, Any]:
    schema = (
        ("customers", (("id", "int"), ("full_name", "text"), ("email", "text"), ("ssn", "text"))),
        ("orders", (("id", "int"), ("customer_id", "int"), ("total_cents", "int"))),
        ("employees", (("id", "int"), ("work_email", "text"))),
    )
    rules = frozenset(
        masking.ColumnRule(t, c, k, masking.Strategy(s), f"{k}: {s}")
        for t, c, k, s in (
            ("customers", "email", "email", "partial"),
            ("customers", "ssn", "national_id", "redact"),
            ("customers", "full_name", "person_name", "pseudonym"),
            ("employees", "work_email", "email", "pseudonym"),
        )
    )
    policy = masking.MaskingPolicy(schema=schema, rules=rules)
    cold, warm = [], []
    for _ in range(20):
        for sql in TYPICAL:
            masking.clear_mask_cache()
            started = time.perf_counter()
            masking.mask_select(sql, "postgres", policy)
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            masking.mask_select(sql, "postgres", policy)
            warm.append(time.perf_counter() - started)
    return {
        "rewrite_cold_p50_ms": round(statistics.median(cold) * 1000, 3),
        "rewrite_warm_p50_us": round(statistics.median(warm) * 1e6, 2),
    }

"""`manage.py benchmark`: speed figures as JSON, each against a direct path measured in this run.

Machines are noisy, so ratios matter more than absolute times.
"""

from __future__ import annotations

import io
import json
import statistics
import time
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

import psycopg
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from governance import demo_data, engine, targets
from governance.benchfloor import COMMIT_TABLE, design_floor_read
from governance.celery import app as celery_app
from governance.management.commands._api_bench import api_figures
from governance.management.commands._audit_bench import (
    evidence_figures,
    seal_request_figures,
    sealing_figures,
)
from governance.management.commands._masking_bench import masking_figures
from governance.models import AccessGrant, Connection, QueryRun
from governance.services.runs import Caller, run_submit

STATEMENTS = [
    "SELECT * FROM customers WHERE id = 42",
    "SELECT id, email FROM customers ORDER BY created_at DESC LIMIT 50",
    "SELECT count(*) FROM orders WHERE status = 'paid'",
    "SELECT c.city, sum(o.total_cents) FROM customers c JOIN orders o ON o.customer_id = c.id "
    "GROUP BY c.city ORDER BY 2 DESC LIMIT 10",
    "SELECT status, count(*), avg(total_cents) FROM orders GROUP BY status",
    "WITH recent AS (SELECT * FROM orders WHERE ordered_at > now() - interval '7 days') "
    "SELECT count(*) FROM recent",
    "SELECT * FROM support_tickets WHERE subject ILIKE '%refund%' LIMIT 20",
    "SELECT date_trunc('month', ordered_at) AS m, count(*) FROM orders GROUP BY 1 ORDER BY 1",
    "SELECT e.full_name, m.full_name AS manager FROM employees e "
    "LEFT JOIN employees m ON m.id = e.manager_id",
    "SELECT id FROM customers WHERE id IN "
    "(SELECT customer_id FROM orders WHERE total_cents > 10000)",
    "SELECT coalesce(city, 'unknown'), count(*) FROM customers GROUP BY 1",
    "SELECT upper(country), length(full_name) FROM customers LIMIT 5",
    "SELECT * FROM public_reports ORDER BY published_at DESC",
    "SELECT o.id, o.total_cents, rank() OVER (PARTITION BY o.customer_id ORDER BY o.total_cents) "
    "FROM orders o LIMIT 100",
    "UPDATE orders SET status = 'shipped' WHERE id = 7",
    "UPDATE orders SET status = 'shipped'",
    "DELETE FROM support_tickets WHERE created_at < '2020-01-01'",
    "DELETE FROM support_tickets",
    "INSERT INTO orders (customer_id, ordered_at, total_cents, status) "
    "VALUES (1, now(), 100, 'paid')",
    "INSERT INTO public_reports (title, payload) SELECT 'x', ssn FROM customers",
    "INSERT INTO orders VALUES (1, 1, now(), 1, 'paid') ON CONFLICT (id) DO NOTHING",
    "DROP TABLE orders",
    "TRUNCATE support_tickets",
    "ALTER TABLE customers ADD COLUMN note text",
    "CREATE INDEX ON orders (status)",
    "GRANT SELECT ON customers TO analyst",
    "REVOKE ALL ON customers FROM public",
    "SET ROLE postgres",
    "SET statement_timeout = 0",
    "SELECT set_config('search_path', 'x', false)",
    "DO $$ BEGIN PERFORM 1; END $$",
    "CALL refresh_stats()",
    "COPY customers TO '/tmp/customers.csv'",
    "COPY (SELECT 1) TO PROGRAM 'sh'",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_terminate_backend(123)",
    "VACUUM FULL orders",
    "LOCK TABLE orders IN EXCLUSIVE MODE",
    "BEGIN",
    "COMMIT",
    "EXPLAIN SELECT * FROM orders",
    "EXPLAIN ANALYZE DELETE FROM orders",
    "SELECT nextval('orders_id_seq')",
    "SELECT 1; SELECT 2; SELECT 3",
    "SELECT * FROM customers WHERE email = 'a@b.c' -- comment",
    "/* hello */ SELECT id FROM customers WHERE ssn = '123-45-6789'",
    "SELECT $$ ; DROP TABLE x $$",
    "WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d",
    "SELECT * INTO backup_orders FROM orders",
    "MERGE INTO orders o USING orders s ON o.id = s.id WHEN MATCHED THEN UPDATE SET status = 'x'",
    "SELECT id, total_cents FROM orders FOR UPDATE",
    "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql",
    "SELECT unknown_function(id) FROM customers",
]


def _psycopg(dsn: demo_data.DSN) -> psycopg.Connection[tuple[Any, ...]]:
    """A plain autocommit psycopg connection to the benchmark's target database."""
    return psycopg.connect(
        host=dsn.host,
        port=dsn.port,
        dbname=dsn.database,
        user=dsn.user,
        password=dsn.password,
        autocommit=True,
    )


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_us": round(statistics.median(samples) * 1e6, 2),
        "p95_us": round(samples[int(len(samples) * 0.95) - 1] * 1e6, 2),
    }


def _time(fn: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


class Command(BaseCommand):
    help = "Print Warden's speed figures as JSON (engine decisions, governed vs direct reads)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--postgres",
            default="postgresql://postgres@127.0.0.1:5432/warden_bench",
            help="A PostgreSQL DSN to seed and read from ('' to skip).",
        )
        parser.add_argument("--reads", type=int, default=300)
        parser.add_argument(
            "--skip-api", action="store_true", help="Skip the API figures (they start gunicorn)."
        )
        parser.add_argument(
            "--skip-masking",
            action="store_true",
            help="Skip the masking figures (they seed a million rows and take minutes).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        figures: dict[str, Any] = {"engine": self._engine()}
        if options["postgres"]:
            if not celery_app.conf.task_always_eager:
                raise CommandError(
                    "The point read is measured in-process: unset REDIS_URL (embedded mode)."
                )
            dsn, connection, user = self._setup(options["postgres"])
            figures["point_read"] = self._point_read(dsn, connection, user, options["reads"])
            if not options["skip_api"]:
                figures["api"] = api_figures(dsn, connection, user)
            figures["audit"] = sealing_figures()

            def governed() -> None:
                run_submit(
                    caller=Caller(user=user, channel="cli"),
                    connection=connection,
                    sql="SELECT id, city, country FROM customers WHERE id = 42",
                )

            figures["audit"].update(seal_request_figures(governed, options["reads"]))
            figures["evidence"] = evidence_figures()
            if not options["skip_masking"]:
                figures["masking"] = masking_figures(dsn=dsn, connection=connection, user=user)
        self.stdout.write(json.dumps(figures, indent=2))

    def _engine(self) -> dict[str, Any]:
        context = engine.Context(
            environment="production",
            connection_id=1,
            groups=frozenset({"analyst"}),
            capabilities=frozenset({"read", "export"}),
        )
        rules = engine.DEFAULT_RULES
        simple = [s for s in STATEMENTS if s.startswith("SELECT") and ";" not in s][:10]

        def cold(sql: str) -> Callable[[], Any]:
            def run() -> None:
                engine.clear_caches()
                engine.decide(sql, dialect="postgres", context=context, rules=rules)

            return run

        cold_all = [t for sql in STATEMENTS for t in _time(cold(sql), 5)]
        cold_simple = [t for sql in simple for t in _time(cold(sql), 20)]
        for sql in STATEMENTS:
            engine.decide(sql, dialect="postgres", context=context, rules=rules)
        warm = [
            t
            for sql in STATEMENTS
            for t in _time(
                lambda sql=sql: engine.decide(  # type: ignore[misc]
                    sql, dialect="postgres", context=context, rules=rules
                ),
                200,
            )
        ]
        return {
            "statements": len(STATEMENTS),
            "cold_all": _percentiles(cold_all),
            "cold_simple_select": _percentiles(cold_simple),
            "warm_cached": _percentiles(warm),
            "goals": {"cold_simple_p50_us": 1000, "warm_p50_us": 50},
        }

    def _setup(self, dsn_url: str) -> tuple[demo_data.DSN, Connection, Any]:
        dsn = demo_data.parse_dsn(dsn_url)
        if dsn.engine != "postgresql":
            raise CommandError("--postgres must be a postgresql:// DSN")
        demo_data.seed(dsn)
        with transaction.atomic():
            user, _ = get_user_model().objects.get_or_create(username="warden-bench")
            group, _ = Group.objects.get_or_create(name="analyst")
            user.groups.add(group)
            connection, _ = Connection.objects.update_or_create(
                name="warden-bench",
                defaults={
                    "engine": "postgresql",
                    "host": dsn.host,
                    "port": dsn.port,
                    "database": dsn.database,
                    "username": dsn.user,
                    "environment": "production",
                },
            )
            connection.set_password(dsn.password)
            connection.save()
            AccessGrant.objects.update_or_create(
                connection=connection, user=user, defaults={"capabilities": ["read", "export"]}
            )
        return dsn, connection, user

    def _point_read(
        self, dsn: demo_data.DSN, connection: Connection, user: Any, reads: int
    ) -> dict[str, Any]:
        config = connection.target_config()
        sql = "SELECT id, city, country FROM customers WHERE id = 42"
        caller = Caller(user=user, channel="cli")

        def governed() -> None:  # as `govern` runs it in the embedded mode: in-process
            run = run_submit(caller=caller, connection=connection, sql=sql)
            if run.status != QueryRun.Status.SUCCEEDED:
                raise CommandError(f"the governed read did not succeed: {run.error}")

        session = targets.connect(config)
        raw = _psycopg(dsn)

        def direct_psycopg() -> None:  # a warm psycopg connection, no transaction, no audit
            raw.execute(sql).fetchall()

        def direct_session() -> None:  # Warden's driver: read-only tx, timeout, row cap
            session.execute([sql], read_only=True, max_rows=1000)

        # The floor under any durable audit: one single-row INSERT committed to disk, on the
        # same PostgreSQL cluster (so the same WAL and disk) as the app database.
        raw.execute(COMMIT_TABLE)

        def durable_commit() -> None:
            raw.execute("INSERT INTO warden_bench_commit (at) VALUES (now())")

        # The floor under this design, without Warden's Python (governance/benchfloor.py), on
        # a second connection and `raw`.
        app = _psycopg(dsn)

        def audit_floor() -> None:
            design_floor_read(app, raw, sql)

        def govern_command() -> None:  # `manage.py govern` in-process: user, connection, run
            call_command(
                "govern", sql, "--as", user.get_username(), "--connection", connection.name,
                "--format", "json", stdout=io.StringIO(),
            )  # fmt: skip

        def direct_connect() -> None:  # what a client without Warden does per query
            with _psycopg(dsn) as fresh:
                fresh.execute(sql).fetchall()

        paths = {
            "governed": governed,
            "govern_command": govern_command,
            "direct_psycopg": direct_psycopg,
            "direct_driver_session": direct_session,
            "direct_psycopg_connect": direct_connect,
            "durable_commit": durable_commit,
            "audit_floor": audit_floor,
        }
        for fn in paths.values():
            _time(fn, 20)  # warm up caches, pools and connections
        p50 = {name: statistics.median(_time(fn, reads)) for name, fn in paths.items()}
        raw.execute("TRUNCATE warden_bench_commit")
        session.close()
        raw.close()
        app.close()
        governed_t = p50.pop("governed")
        command_t = p50.pop("govern_command")
        commit_t = p50.pop("durable_commit")
        floor_t = p50.pop("audit_floor")
        return {
            "reads": reads,
            "governed_p50_ms": round(governed_t * 1000, 3),
            **{f"{name}_p50_ms": round(t * 1000, 3) for name, t in p50.items()},
            **{f"ratio_vs_{name}": round(governed_t / t, 2) for name, t in p50.items()},
            "goal_ratio": 10,
            # The same read through `manage.py govern` in-process (issue 11): what the channel
            # adds to the internal path (finding the user and connection, argument parsing).
            "govern_command_p50_ms": round(command_t * 1000, 3),
            "govern_command_vs_governed": round(command_t / governed_t, 2),
            # What auditing alone costs: one durable commit, as a multiple of the direct read.
            "durable_commit_p50_ms": round(commit_t * 1000, 3),
            "durable_commit_vs_direct_psycopg": round(commit_t / p50["direct_psycopg"], 2),
            # The best this design can do, as a multiple of the direct read, and how far
            # Warden is from it.
            "audit_floor_p50_ms": round(floor_t * 1000, 3),
            "audit_floor_vs_direct_psycopg": round(floor_t / p50["direct_psycopg"], 2),
            "governed_vs_audit_floor": round(governed_t / floor_t, 2),
        }

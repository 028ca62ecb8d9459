"""Throwaway demo databases (PostgreSQL, MariaDB, SQLite) for the masking bypass tests.

Each fixture yields a ``Target``: a way to run SQL and the ``MaskingPolicy`` built by
introspecting that database. Without a service the tests skip, unless REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import sqlglot
from sqlglot import exp

from governance import demo_data
from governance.engine.masking import MaskingPolicy, sqlite_functions
from governance.targets.base import hmac_pads

from .policy import KEY, policy_from

CUSTOMERS = 200
PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def _missing(name: str, exc: Exception) -> None:
    message = f"{name} is not reachable: {exc}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Target:
    dialect: str
    run: Callable[[str], list[tuple[Any, ...]]]
    policy: MaskingPolicy
    # Runs a write and rolls it back, returning what the write returned (RETURNING).
    write: Callable[[str], list[tuple[Any, ...]]] | None = None


@pytest.fixture(scope="session")
def pg_masking() -> Iterator[Target]:
    name = f"warden_mask_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=3, **PG)
    except psycopg.Error as exc:
        _missing("PostgreSQL", exc)
    try:
        demo_data.seed(
            demo_data.parse_dsn(f"postgresql://postgres@127.0.0.1:5432/{name}"),
            customers=CUSTOMERS,
        )
        conn = psycopg.connect(dbname=name, autocommit=True, **PG)
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ).fetchall()

        def run(sql: str) -> list[tuple[Any, ...]]:
            with conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")
                return list(psycopg.RawCursor(conn).execute(sql, _pads(sql)).fetchall())

        def write(sql: str) -> list[tuple[Any, ...]]:
            with conn.transaction(force_rollback=True):
                return list(psycopg.RawCursor(conn).execute(sql, _pads(sql)).fetchall())

        yield Target("postgres", run, policy_from(_group(rows)), write)
        conn.close()
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def mysql_masking() -> Iterator[Target]:
    name = f"warden_mask_{uuid.uuid4().hex[:10]}"
    try:
        admin = pymysql.connect(connect_timeout=3, autocommit=True, **MY)
    except pymysql.Error as exc:
        _missing("MariaDB", exc)
    try:
        demo_data.seed(
            demo_data.parse_dsn(f"mysql://root@127.0.0.1:3306/{name}"), customers=CUSTOMERS
        )
        conn = pymysql.connect(database=name, autocommit=True, charset="utf8mb4", **MY)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name, column_name, column_type FROM information_schema.columns "
                "WHERE table_schema = %s ORDER BY table_name, ordinal_position",
                (name,),
            )
            rows = list(cur.fetchall())

        def run(sql: str) -> list[tuple[Any, ...]]:
            with conn.cursor() as cur:
                cur.execute("SET @warden_pk_i = %s, @warden_pk_o = %s", hmac_pads(KEY))
                cur.execute(sql)
                return list(cur.fetchall())

        def write(sql: str) -> list[tuple[Any, ...]]:
            conn.begin()
            try:
                with conn.cursor() as cur:
                    cur.execute("SET @warden_pk_i = %s, @warden_pk_o = %s", hmac_pads(KEY))
                    cur.execute(sql)
                    return list(cur.fetchall())
            finally:
                conn.rollback()

        yield Target("mysql", run, policy_from(_group(rows)), write)
        conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture(scope="session")
def sqlite_masking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    path: Path = tmp_path_factory.mktemp("masking") / "demo.sqlite3"
    demo_data.seed(demo_data.parse_dsn(f"sqlite:///{path}"), customers=CUSTOMERS)
    conn = sqlite3.connect(path)
    for fname, (nargs, func) in sqlite_functions(KEY).items():
        conn.create_function(fname, nargs, func, deterministic=True)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    rows = [
        (table, info[1], info[2])
        for table in tables
        for info in conn.execute(f'PRAGMA table_info("{table}")')
    ]

    def run(sql: str) -> list[tuple[Any, ...]]:
        return list(conn.execute(sql).fetchall())

    def write(sql: str) -> list[tuple[Any, ...]]:
        try:
            return list(conn.execute(sql).fetchall())
        finally:
            conn.rollback()

    yield Target("sqlite", run, policy_from(_group(rows)), write)
    conn.close()
    path.unlink(missing_ok=True)


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def target(request: pytest.FixtureRequest) -> Target:
    fixture = {"postgres": "pg_masking", "mysql": "mysql_masking", "sqlite": "sqlite_masking"}
    return request.getfixturevalue(fixture[request.param])  # type: ignore[no-any-return]


def _pads(sql: str) -> tuple[bytes, bytes] | None:
    """The key's HMAC pads as $1/$2 when the masked statement needs them (as the driver does)."""
    tree = sqlglot.parse_one(sql, read="postgres")
    return hmac_pads(KEY) if any(isinstance(n, exp.Parameter) for n in tree.walk()) else None


def _group(rows: list[tuple[Any, ...]]) -> dict[str, list[tuple[str, str]]]:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for table, column, ctype in rows:
        grouped.setdefault(str(table).lower(), []).append((str(column).lower(), str(ctype).lower()))
    return grouped

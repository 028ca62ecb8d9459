"""Throwaway databases on the real local PostgreSQL and MariaDB, plus a temp SQLite file.

If a service is unreachable the tests using it are skipped, unless REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from psycopg import sql

from governance.targets import TargetConfig

PG_HOST, PG_PORT = "127.0.0.1", 5432
MY_HOST, MY_PORT = "127.0.0.1", 3306
BIG_ROWS = 20_000


def _unavailable(service: str, exc: BaseException) -> None:
    message = f"{service} is not reachable: {exc}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Engine:
    """One target under test, with what the shared tests need to know about it."""

    name: str
    config: TargetConfig
    scalar: Callable[[str], Any]  # runs a query on an independent admin connection
    types: dict[str, str]  # column of table t -> expected type name
    heavy_query: str  # a read that runs for many seconds
    extra: dict[str, Any] = field(default_factory=dict)


def _pg_admin(dbname: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user="postgres",
        dbname=dbname,
        autocommit=True,
        connect_timeout=3,
        passfile=os.devnull,
    )


PG_SCHEMA = f"""
CREATE TABLE t (id integer PRIMARY KEY, name text NOT NULL, amount numeric(10, 2),
                created timestamptz, note varchar(20));
INSERT INTO t VALUES (1, 'alice', 10.50, '2024-01-02 03:04:05+00', 'first'),
                     (2, 'bob', NULL, NULL, NULL),
                     (3, 'carol', 7.25, '2024-03-04 05:06:07+00', 'third');
CREATE TABLE big (n integer NOT NULL);
INSERT INTO big SELECT generate_series(1, {BIG_ROWS});
CREATE VIEW v AS SELECT id, name FROM t;
"""


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    name = f"warden_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = _pg_admin()
    except psycopg.Error as exc:
        _unavailable("PostgreSQL", exc)
        raise
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with _pg_admin(name) as conn:
            conn.execute(PG_SCHEMA)

        def scalar(query: str) -> Any:
            with _pg_admin(name) as conn:
                row = conn.execute(query).fetchone()
                return row[0] if row else None

        config = TargetConfig(
            "postgresql",
            host=PG_HOST,
            port=PG_PORT,
            database=name,
            user="postgres",
            password="unused-with-trust-auth",
            connect_timeout_s=5,
        )
        yield Engine(
            "postgresql",
            config,
            scalar,
            types={
                "id": "integer",
                "name": "text",
                "amount": "numeric",
                "created": "timestamp with time zone",
                "note": "varchar",
            },
            heavy_query="SELECT pg_sleep(10)",
        )
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.close()


def _my_admin(database: str | None = None) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=MY_HOST,
        port=MY_PORT,
        user="root",
        password="",
        database=database,
        autocommit=True,
        connect_timeout=3,
        charset="utf8mb4",
    )


MY_SCHEMA = [
    "CREATE TABLE t (id int PRIMARY KEY, name varchar(50) NOT NULL, amount decimal(10, 2),"
    " created datetime, note text)",
    "INSERT INTO t VALUES (1, 'alice', 10.50, '2024-01-02 03:04:05', 'first'),"
    " (2, 'bob', NULL, NULL, NULL), (3, 'carol', 7.25, '2024-03-04 05:06:07', 'third')",
    "CREATE TABLE big (n int NOT NULL)",
    "INSERT INTO big WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s"
    f" WHERE n < {BIG_ROWS}) SELECT n FROM s",
    "CREATE VIEW v AS SELECT id, name FROM t",
]
# A read that takes far longer than any test timeout (SLEEP() returns 1 when interrupted by
# max_statement_time instead of failing, so a real workload is needed).
MY_HEAVY = (
    "SELECT COUNT(*) FROM information_schema.COLUMNS a, information_schema.COLUMNS b,"
    " information_schema.COLUMNS c"
)


@pytest.fixture(scope="session")
def mysql_engine() -> Iterator[Engine]:
    name = f"warden_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = _my_admin()
    except pymysql.err.MySQLError as exc:
        _unavailable("MariaDB/MySQL", exc)
        raise
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        with _my_admin(name) as conn, conn.cursor() as cur:
            cur.execute("SET SESSION max_recursive_iterations = 100000")
            for statement in MY_SCHEMA:
                cur.execute(statement)

        def scalar(query: str) -> Any:
            with _my_admin(name) as conn, conn.cursor() as cur:
                cur.execute(query)
                row = cur.fetchone()
                return row[0] if row else None

        config = TargetConfig(
            "mysql",
            host=MY_HOST,
            port=MY_PORT,
            database=name,
            user="root",
            password="",
            connect_timeout_s=5,
        )
        yield Engine(
            "mysql",
            config,
            scalar,
            types={
                "id": "int",
                "name": "varchar",
                "amount": "decimal",
                "created": "datetime",
                "note": "text",
            },
            heavy_query=MY_HEAVY,
        )
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path = Path(tmp_path_factory.mktemp("sqlite")) / "target.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        f"""
        CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, amount REAL,
                        created TEXT, note TEXT);
        INSERT INTO t VALUES (1, 'alice', 10.5, '2024-01-02 03:04:05', 'first'),
                             (2, 'bob', NULL, NULL, NULL),
                             (3, 'carol', 7.25, '2024-03-04 05:06:07', 'third');
        CREATE TABLE big (n INTEGER NOT NULL);
        WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {BIG_ROWS})
        INSERT INTO big SELECT n FROM s;
        CREATE VIEW v AS SELECT id, name FROM t;
        """
    )
    conn.commit()
    conn.close()

    def scalar(query: str) -> Any:
        with sqlite3.connect(path) as c:
            row = c.execute(query).fetchone()
        return row[0] if row else None

    config = TargetConfig("sqlite", database=str(path))
    return Engine(
        "sqlite",
        config,
        scalar,
        # SQLite reports storage classes of the values (declared types only in introspect).
        types={
            "id": "integer",
            "name": "text",
            "amount": "real",
            "created": "text",
            "note": "text",
        },
        heavy_query=(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
        ),
    )


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def engine(request: pytest.FixtureRequest) -> Engine:
    fixture = {"postgresql": "pg_engine", "mysql": "mysql_engine", "sqlite": "sqlite_engine"}
    value: Engine = request.getfixturevalue(fixture[request.param])
    return value


@pytest.fixture
def table_name() -> str:
    return f"w_{uuid.uuid4().hex[:10]}"

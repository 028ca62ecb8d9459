"""Tests for governance.demo_data: DSN parsing, the generated data set, and seeding
SQLite, PostgreSQL and MariaDB with identical rows.

Server tests use throwaway databases (unique names, dropped afterwards).  If a server is
unreachable the tests skip, unless REQUIRE_SERVICES=1, in which case they fail.
Override the servers with WARDEN_DEMO_PG_URL / WARDEN_DEMO_MYSQL_URL (the database part
of those URLs is ignored).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from psycopg import sql

from governance.demo_data import (
    COLUMNS,
    DSN,
    ORDER_STATUSES,
    PUBLIC_TABLES,
    TABLES,
    generate,
    luhn_valid,
    parse_dsn,
    seed,
)

CUSTOMERS = 1000
SEED_BUDGET_SECONDS = 20.0  # generous; a seed takes well under a second locally

PG_URL = os.environ.get("WARDEN_DEMO_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("WARDEN_DEMO_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql")

Dump = dict[str, list[tuple[Any, ...]]]


# --------------------------------------------------------------------------- helpers


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} unreachable: {exc}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (REQUIRE_SERVICES=1)")
    pytest.skip(message)


def _unique_name() -> str:
    return f"warden_demo_test_{uuid.uuid4().hex[:12]}"


def _pg_connect(dsn: DSN, database: str, **extra: Any) -> psycopg.Connection[Any]:
    kwargs: dict[str, Any] = {"dbname": database, "connect_timeout": 5, **extra}
    if dsn.host:
        kwargs["host"] = dsn.host
    if dsn.port is not None:
        kwargs["port"] = dsn.port
    if dsn.user:
        kwargs["user"] = dsn.user
    if dsn.password:
        kwargs["password"] = dsn.password
    return psycopg.connect(**kwargs)


def _mysql_connect(dsn: DSN, database: str | None = None) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=dsn.host or "localhost",
        port=dsn.port or 3306,
        user=dsn.user or None,
        password=dsn.password,
        database=database,
        charset="utf8mb4",
        connect_timeout=5,
    )


def _norm(table: str, column: str, value: Any) -> Any:
    if column == "payload":
        return json.loads(value) if isinstance(value, str) else value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _normalise(rows: dict[str, list[tuple[Any, ...]]]) -> Dump:
    return {
        table: [
            tuple(_norm(table, c, v) for c, v in zip(COLUMNS[table], row, strict=True))
            for row in rows[table]
        ]
        for table in TABLES
    }


def _select_all(table: str) -> str:
    return f"SELECT {', '.join(COLUMNS[table])} FROM {table} ORDER BY id"


def dump_sqlite(dsn: DSN) -> Dump:
    conn = sqlite3.connect(dsn.database)
    try:
        return _normalise({t: conn.execute(_select_all(t)).fetchall() for t in TABLES})
    finally:
        conn.close()


def dump_postgresql(dsn: DSN) -> Dump:
    with _pg_connect(dsn, dsn.database) as conn:
        return _normalise({t: conn.execute(_select_all(t)).fetchall() for t in TABLES})


def dump_mysql(dsn: DSN) -> Dump:
    conn = _mysql_connect(dsn, dsn.database)
    try:
        rows: dict[str, list[tuple[Any, ...]]] = {}
        with conn.cursor() as cur:
            for t in TABLES:
                cur.execute(_select_all(t))
                rows[t] = list(cur.fetchall())
        return _normalise(rows)
    finally:
        conn.close()


@dataclasses.dataclass
class Seeded:
    dsn: DSN
    counts: dict[str, int]
    seconds: float
    dump: Dump


def _seed_and_dump(dsn: DSN, dumper: Any) -> Seeded:
    started = time.perf_counter()
    counts = seed(dsn, customers=CUSTOMERS, seed=42)
    elapsed = time.perf_counter() - started
    return Seeded(dsn=dsn, counts=counts, seconds=elapsed, dump=dumper(dsn))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def expected() -> Dump:
    return _normalise(generate(customers=CUSTOMERS, seed=42).rows)


@pytest.fixture(scope="module")
def sqlite_seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    path = tmp_path_factory.mktemp("demo") / "warden_demo.db"
    assert not path.exists()
    return _seed_and_dump(parse_dsn(f"sqlite://{path}"), dump_sqlite)


@pytest.fixture(scope="module")
def pg_seeded() -> Iterator[Seeded]:
    server = parse_dsn(PG_URL)
    try:
        _pg_connect(server, server.database).close()
    except psycopg.Error as exc:
        _unavailable("PostgreSQL", exc)
    dsn = dataclasses.replace(server, database=_unique_name())
    try:
        yield _seed_and_dump(dsn, dump_postgresql)
    finally:
        with _pg_connect(server, server.database, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(dsn.database)
                )
            )


@pytest.fixture(scope="module")
def mysql_seeded() -> Iterator[Seeded]:
    server = parse_dsn(MYSQL_URL)
    try:
        _mysql_connect(server).close()
    except pymysql.err.Error as exc:
        _unavailable("MariaDB/MySQL", exc)
    dsn = dataclasses.replace(server, database=_unique_name())
    try:
        yield _seed_and_dump(dsn, dump_mysql)
    finally:
        conn = _mysql_connect(server)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{dsn.database}`")
        finally:
            conn.close()


# --------------------------------------------------------------------------- parse_dsn


@pytest.mark.parametrize(
    ("url", "expected_dsn"),
    [
        (
            "postgresql://alice:s3cret@db.internal:5433/shop",
            DSN("postgresql", "db.internal", 5433, "shop", "alice", "s3cret"),
        ),
        (
            "postgres://bob@127.0.0.1/shop",
            DSN("postgresql", "127.0.0.1", None, "shop", "bob", ""),
        ),
        (
            "mysql://root:pw@127.0.0.1:3306/warden_demo",
            DSN("mysql", "127.0.0.1", 3306, "warden_demo", "root", "pw"),
        ),
        (
            "mariadb://root@localhost/warden_demo",
            DSN("mysql", "localhost", None, "warden_demo", "root", ""),
        ),
        (
            "postgresql://u%40corp:p%3Aw%2Fd%40@host/db%20name",
            DSN("postgresql", "host", None, "db name", "u@corp", "p:w/d@"),
        ),
        ("sqlite:///tmp/demo.db", DSN("sqlite", "", None, "/tmp/demo.db", "", "")),
        ("sqlite:////tmp/demo.db", DSN("sqlite", "", None, "/tmp/demo.db", "", "")),
        ("SQLite:///tmp/my%20demo.db", DSN("sqlite", "", None, "/tmp/my demo.db", "", "")),
    ],
)
def test_parse_dsn_valid(url: str, expected_dsn: DSN) -> None:
    assert parse_dsn(url) == expected_dsn


def test_dsn_repr_hides_password() -> None:
    dsn = parse_dsn("postgresql://alice:hunter2-very-secret@db/shop")
    assert dsn.password == "hunter2-very-secret"
    assert "hunter2" not in repr(dsn)
    assert "hunter2" not in dsn.redacted()
    assert dsn.redacted() == "postgresql://alice:***@db/shop"
    with pytest.raises(dataclasses.FrozenInstanceError):
        dsn.host = "elsewhere"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("localhost:5432/db", "scheme://"),
        ("oracle://u:p@host/db", "unknown database scheme 'oracle'"),
        ("http://example.com/db", "unknown database scheme 'http'"),
        ("postgresql://u:p@host:5432", "missing the database name"),
        ("postgresql://u:p@host:5432/", "missing the database name"),
        ("mysql://root@host", "missing the database name"),
        ("postgresql://u:p@host:notaport/db", "invalid port 'notaport'"),
        ("postgresql://u:p@host:99999/db", "invalid port '99999'"),
        ("mysql://u:p@host:0/db", "invalid port 0"),
        ("mysql://u:p@host/db/extra", "must not contain '/'"),
        ("postgresql://u:p@host/db?sslmode=disable", "query parameters"),
        ("sqlite://", "missing the database file path"),
        ("sqlite:///", "missing the database file path"),
        ("sqlite://somehost/tmp/x.db", "must have no host"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_parse_dsn_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_dsn(url)


# --------------------------------------------------------------------------- generated data


def test_generate_is_deterministic() -> None:
    assert generate(customers=40, seed=7) == generate(customers=40, seed=7)
    assert generate(customers=40, seed=7) != generate(customers=40, seed=8)


@pytest.mark.parametrize("bad", [0, -5, True, 2.5])
def test_generate_rejects_bad_customer_count(bad: Any) -> None:
    with pytest.raises(ValueError, match="customers"):
        generate(customers=bad)


def test_generated_data_shape(expected: Dump) -> None:
    data = expected
    customers = data["customers"]
    assert len(customers) == CUSTOMERS
    assert [c[0] for c in customers] == list(range(1, CUSTOMERS + 1))

    emails = [c[2] for c in customers]
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z0-9._]+@example\.(com|org|net)", e) for e in emails)
    assert all(re.fullmatch(r"\d{3}-\d{2}-\d{4}", c[4]) for c in customers)
    phone_re = re.compile(r"(\+1-)?\(?\d{3}\)?[-. ]\d{3}[-.]\d{4}")
    assert all(phone_re.fullmatch(c[3]) for c in customers)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", c[5]) for c in customers)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", c[9]) for c in customers)

    cards = data["payment_cards"]
    assert 1.1 * CUSTOMERS <= len(cards) <= 1.3 * CUSTOMERS
    for _, customer_id, number, expiry, brand in cards:
        assert 1 <= customer_id <= CUSTOMERS
        assert re.fullmatch(r"\d{16}", number), number
        assert luhn_valid(number), number
        assert re.fullmatch(r"(0[1-9]|1[0-2])/\d{2}", expiry), expiry
        assert brand in {"Visa", "Mastercard", "Discover", "JCB"}

    orders = data["orders"]
    assert 4 * CUSTOMERS <= len(orders) <= 6 * CUSTOMERS
    assert {o[4] for o in orders} == set(ORDER_STATUSES)
    assert all(isinstance(o[3], int) and o[3] > 0 for o in orders)

    tickets = data["support_tickets"]
    assert len(tickets) == CUSTOMERS // 2
    email_re = re.compile(r"[\w.]+@example\.(com|org|net)")
    phone_in_text = re.compile(r"(\+1-)?\(?\b\d{3}\)?[-. ]\d{3}[-.]\d{4}\b")
    kinds = {(bool(email_re.search(t[3])), bool(phone_in_text.search(t[3]))) for t in tickets}
    assert kinds == {(True, False), (False, True), (True, True), (False, False)}

    employees = data["employees"]
    assert len(employees) == 50
    assert sum(1 for e in employees if e[4] is None) == 1
    assert all(e[4] is None or e[4] < e[0] for e in employees)
    assert len({e[2] for e in employees}) == 50

    creds = data["api_credentials"]
    assert len(creds) == 20
    styles = {
        "stripe": r"sk_live_[A-Za-z0-9]{24}",
        "github": r"ghp_[A-Za-z0-9]{36}",
        "aws": r"AKIA[A-Z0-9]{16}",
        "slack": r"xoxb-\d+-\d+-[A-Za-z0-9]{24}",
    }
    for name, pattern in styles.items():
        assert any(re.fullmatch(pattern, c[2]) for c in creds), name
    assert len({c[2] for c in creds}) == 20

    reports = data["public_reports"]
    assert PUBLIC_TABLES == ("public_reports",)
    assert len(reports) == 10
    for _, title, payload, _ in reports:
        assert isinstance(payload, dict) and payload["report"] == "monthly_orders"
        text = title + json.dumps(payload)
        assert "@" not in text
        assert not re.search(r"\d{3}-\d{2}-\d{4}", text)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4242424242424242", True),
        ("4242424242424241", False),
        ("79927398713", True),
        ("4242 4242 4242 4242", False),
        ("", False),
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


# --------------------------------------------------------------------------- seeding


def _check_seeded(seeded: Seeded, expected: Dump) -> None:
    assert seeded.counts == {t: len(expected[t]) for t in TABLES}
    assert list(seeded.counts) == list(TABLES)
    assert seeded.counts["customers"] == CUSTOMERS
    assert seeded.seconds < SEED_BUDGET_SECONDS
    for table in TABLES:
        assert seeded.dump[table] == expected[table], table
    assert all(luhn_valid(card[2]) for card in seeded.dump["payment_cards"])


def test_seed_sqlite(sqlite_seeded: Seeded, expected: Dump) -> None:
    assert Path(sqlite_seeded.dsn.database).is_file()
    _check_seeded(sqlite_seeded, expected)
    conn = sqlite3.connect(sqlite_seeded.dsn.database)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO payment_cards (customer_id, card_number, expiry, brand) "
                "VALUES (999999, '4242424242424242', '01/30', 'Visa')"
            )
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE orders SET status = 'lost' WHERE id = 1")
    finally:
        conn.close()


def test_seed_postgresql(pg_seeded: Seeded, expected: Dump) -> None:
    _check_seeded(pg_seeded, expected)
    with _pg_connect(pg_seeded.dsn, pg_seeded.dsn.database) as conn:
        # The identity continues after the explicit ids.
        new_id = conn.execute(
            "INSERT INTO customers (full_name, email, phone, ssn, date_of_birth, "
            "street_address, city, country, created_at) VALUES ('New Person', "
            "'new.person@example.com', '555-010-0000', '000-00-0000', '2000-01-01', "
            "'1 Main St', 'Springfield', 'United States', '2025-06-30 12:00:00') RETURNING id"
        ).fetchone()
        assert new_id == (CUSTOMERS + 1,)
        conn.rollback()
        kinds = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, data_type FROM "
                "information_schema.columns WHERE table_schema = 'public' AND column_name "
                "IN ('date_of_birth', 'created_at', 'payload', 'total_cents')"
            ).fetchall()
        )
        assert kinds["customers.date_of_birth"] == "date"
        assert kinds["customers.created_at"] == "timestamp without time zone"
        assert kinds["public_reports.payload"] == "jsonb"
        assert kinds["orders.total_cents"] == "bigint"


def test_seed_mysql(mysql_seeded: Seeded, expected: Dump) -> None:
    _check_seeded(mysql_seeded, expected)
    conn = _mysql_connect(mysql_seeded.dsn, mysql_seeded.dsn.database)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.referential_constraints "
                "WHERE constraint_schema = %s",
                (mysql_seeded.dsn.database,),
            )
            assert cur.fetchone() == (4,)
    finally:
        conn.close()


def test_same_data_on_every_engine(
    sqlite_seeded: Seeded, pg_seeded: Seeded, mysql_seeded: Seeded
) -> None:
    engines = (sqlite_seeded, pg_seeded, mysql_seeded)
    assert sqlite_seeded.counts == pg_seeded.counts == mysql_seeded.counts
    sample = {
        (s.dump["customers"][16][0], s.dump["customers"][16][2], s.dump["customers"][16][4])
        for s in engines
    }
    assert len(sample) == 1
    (customer_id, _email, _ssn) = sample.pop()
    assert customer_id == 17
    for table in TABLES:
        assert sqlite_seeded.dump[table] == pg_seeded.dump[table] == mysql_seeded.dump[table]


@pytest.mark.parametrize("fixture", ["sqlite_seeded", "pg_seeded", "mysql_seeded"])
def test_reseed_is_idempotent(fixture: str, request: pytest.FixtureRequest) -> None:
    first: Seeded = request.getfixturevalue(fixture)
    dumpers = {"sqlite": dump_sqlite, "postgresql": dump_postgresql, "mysql": dump_mysql}
    again = _seed_and_dump(first.dsn, dumpers[first.dsn.engine])
    assert again.counts == first.counts
    assert again.dump == first.dump


def test_reseed_sqlite_with_different_size(tmp_path: Path) -> None:
    dsn = parse_dsn(f"sqlite://{tmp_path / 'resize.db'}")
    assert seed(dsn, customers=30, seed=1)["customers"] == 30
    counts = seed(dsn, customers=12, seed=1)
    assert counts["customers"] == 12
    assert dump_sqlite(dsn) == _normalise(generate(customers=12, seed=1).rows)


def test_seed_sqlite_missing_directory(tmp_path: Path) -> None:
    dsn = parse_dsn(f"sqlite://{tmp_path / 'nope' / 'demo.db'}")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        seed(dsn, customers=5)


def test_seed_rejects_unknown_engine() -> None:
    with pytest.raises(ValueError, match="unsupported engine"):
        seed(DSN("oracle", "h", None, "db", "u", "p"), customers=5)

"""SQLite-specific driver behaviour: read-only URI, authorizer, progress handler."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path

import pytest

from governance.engine.functions import SQLITE_SCHEMA_PRAGMAS
from governance.targets import TargetConfig, TargetError, connect
from governance.targets.sqlite import _READ_PRAGMAS_WITH_ARG

from .conftest import Engine


def _refused(engine: Engine, statement: str, *, read_only: bool) -> TargetError:
    with pytest.raises(TargetError) as info, connect(engine.config) as session:
        session.execute([statement], read_only=read_only, max_rows=10)
    return info.value


@pytest.mark.parametrize("read_only", [True, False])
def test_attach_refused(sqlite_engine: Engine, tmp_path: Path, read_only: bool) -> None:
    other = tmp_path / "other.db"
    error = _refused(sqlite_engine, f"ATTACH DATABASE '{other}' AS other", read_only=read_only)
    assert error.kind == "readonly" and "ATTACH" in error.message
    assert not other.exists()


@pytest.mark.parametrize(
    "pragma", ["PRAGMA user_version = 7", "PRAGMA journal_mode = WAL", "PRAGMA writable_schema=1"]
)
@pytest.mark.parametrize("read_only", [True, False])
def test_pragma_writes_refused(sqlite_engine: Engine, pragma: str, read_only: bool) -> None:
    error = _refused(sqlite_engine, pragma, read_only=read_only)
    assert error.kind == "readonly"
    assert sqlite_engine.scalar("PRAGMA user_version") == 0


def test_read_pragmas_allowed(sqlite_engine: Engine) -> None:
    with connect(sqlite_engine.config) as session:
        assert session.execute(["PRAGMA user_version"], read_only=True, max_rows=1).rows == [(0,)]
        info = session.execute(["PRAGMA table_info(t)"], read_only=True, max_rows=10)
        assert info.row_count == 5


@pytest.mark.parametrize("read_only", [True, False])
def test_load_extension_refused(sqlite_engine: Engine, read_only: bool) -> None:
    error = _refused(sqlite_engine, "SELECT load_extension('/tmp/evil.so')", read_only=read_only)
    assert error.kind in {"readonly", "execution"}


def test_read_only_connection_refuses_even_temp_writes(sqlite_engine: Engine) -> None:
    for statement in ("CREATE TEMP TABLE x (a)", "UPDATE t SET name = 'x'", "DROP VIEW v"):
        assert _refused(sqlite_engine, statement, read_only=True).kind == "readonly"
    assert sqlite_engine.scalar("SELECT name FROM t WHERE id = 1") == "alice"


def test_table_valued_functions_read(sqlite_engine: Engine) -> None:
    with connect(sqlite_engine.config) as session:
        rows = session.execute(
            ["SELECT value FROM json_each('[1, 2, 3]')"], read_only=True, max_rows=10
        ).rows
        assert rows == [(1,), (2,), (3,)]
        info = session.execute(
            ["SELECT name FROM pragma_table_info('t') ORDER BY cid"], read_only=True, max_rows=10
        )
        assert info.row_count == 5
    # the exemption covers SQLite's registration of the function, never a real schema write
    error = _refused(sqlite_engine, "UPDATE sqlite_master SET sql = 'x'", read_only=True)
    assert error.kind in {"readonly", "execution"} and "sqlite_master" in error.message
    assert sqlite_engine.scalar("SELECT count(*) FROM sqlite_master WHERE sql = 'x'") == 0


# The schema pragmas that take a table or index name as their argument.
_WITH_ARGUMENT = {"table_info", "table_xinfo", "table_list", "index_list", "index_info",
                  "index_xinfo", "foreign_key_list"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SQLITE_SCHEMA_PRAGMAS))
def test_every_schema_pragma_the_engine_reads_runs_read_only(
    sqlite_engine: Engine, name: str
) -> None:
    """The engine classifies these as reads; the driver's authorizer must agree."""
    calls = [f"SELECT * FROM pragma_{name}", f"PRAGMA {name}"]
    if name in _WITH_ARGUMENT:
        calls += [f"SELECT * FROM pragma_{name}('t')", f"PRAGMA {name}(t)"]
    with connect(sqlite_engine.config) as session:
        for statement in calls:
            session.execute([statement], read_only=True, max_rows=1000)


def test_the_driver_reads_no_pragma_with_an_argument_that_the_engine_refuses() -> None:
    assert _READ_PRAGMAS_WITH_ARG == _WITH_ARGUMENT
    assert _WITH_ARGUMENT <= SQLITE_SCHEMA_PRAGMAS


def test_begin_and_savepoint_refused(sqlite_engine: Engine) -> None:
    for statement in ("BEGIN", "SAVEPOINT s", "COMMIT"):
        error = _refused(sqlite_engine, statement, read_only=False)
        assert error.message == "transaction control is not allowed"


def test_should_cancel_aborts(sqlite_engine: Engine) -> None:
    deadline = time.monotonic() + 0.2
    polls: list[float] = []

    def should_cancel() -> bool:
        polls.append(time.monotonic())
        return time.monotonic() > deadline

    started = time.monotonic()
    session = connect(sqlite_engine.config, should_cancel=should_cancel)
    with pytest.raises(TargetError) as info, session:
        session.execute([sqlite_engine.heavy_query], read_only=True, max_rows=1)
    assert info.value.kind == "cancelled"
    assert time.monotonic() - started < 3
    assert len(polls) < 200  # polled every ~50 ms, not on every progress tick


def test_timeout(sqlite_engine: Engine) -> None:
    config = dataclasses.replace(sqlite_engine.config, statement_timeout_ms=150)
    with pytest.raises(TargetError) as info, connect(config) as session:
        session.execute([sqlite_engine.heavy_query], read_only=True, max_rows=1)
    assert info.value.kind == "timeout"


def test_missing_file_is_connect_error_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(TargetError) as info:
        connect(TargetConfig("sqlite", database=str(path)))
    assert info.value.kind == "connect"
    assert not path.exists()


def test_not_a_database_is_connect_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a sqlite database file" * 100)
    with pytest.raises(TargetError) as info:
        connect(TargetConfig("sqlite", database=str(path)))
    assert info.value.kind == "connect"


def test_odd_file_names(tmp_path: Path) -> None:
    path = tmp_path / "we?ird#name%20.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE x (a)")
        conn.execute("INSERT INTO x VALUES (1)")
    with connect(TargetConfig("sqlite", database=str(path))) as session:
        assert session.execute(["SELECT a FROM x"], read_only=True, max_rows=1).rows == [(1,)]


def test_introspect_reports_declared_types(sqlite_engine: Engine) -> None:
    with connect(sqlite_engine.config) as session:
        tables = {t.name: t for t in session.introspect()}
    assert [(c.name, c.type) for c in tables["t"].columns] == [
        ("id", "integer"),
        ("name", "text"),
        ("amount", "real"),
        ("created", "text"),
        ("note", "text"),
    ]
    assert tables["t"].schema == "main"

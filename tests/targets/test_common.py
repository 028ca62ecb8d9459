"""Behaviour every target driver shares, run against PostgreSQL, MariaDB and SQLite."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from governance.targets import (
    Column,
    Result,
    TargetConfig,
    TargetError,
    TargetSession,
    cancel,
    connect,
    test_connection,
)

from .conftest import BIG_ROWS, Engine


def _run(
    engine: Engine, statements: list[str], *, read_only: bool = True, max_rows: int = 100
) -> Result:
    with connect(engine.config) as session:
        return session.execute(statements, read_only=read_only, max_rows=max_rows)


def _count(engine: Engine, table: str = "t") -> int:
    return int(engine.scalar(f"SELECT COUNT(*) FROM {table}"))


def test_session_satisfies_protocol(engine: Engine) -> None:
    with connect(engine.config) as session:
        assert isinstance(session, TargetSession)
        if engine.name == "sqlite":
            assert session.backend_id is None
        else:
            assert session.backend_id and session.backend_id.isdigit()


def test_read_returns_typed_columns_rows_and_nulls(engine: Engine) -> None:
    result = _run(engine, ["SELECT id, name, amount, created, note FROM t ORDER BY id"])
    assert [c.name for c in result.columns] == ["id", "name", "amount", "created", "note"]
    assert {c.name: c.type for c in result.columns} == engine.types
    assert result.row_count == 3 and not result.truncated and result.statement_count == 1
    assert result.rows[0][:2] == (1, "alice")
    assert result.rows[1][2:] == (None, None, None)
    assert all(isinstance(row, tuple) for row in result.rows)


def test_empty_result_still_has_columns(engine: Engine) -> None:
    result = _run(engine, ["SELECT id, name FROM t WHERE id < 0"])
    assert [c.name for c in result.columns] == ["id", "name"]
    assert result.rows == [] and result.row_count == 0 and not result.truncated


def test_max_rows_truncates(engine: Engine) -> None:
    result = _run(engine, ["SELECT n FROM big ORDER BY n"], max_rows=10)
    assert result.rows == [(n,) for n in range(1, 11)]
    assert result.truncated and result.row_count == 10
    exact = _run(engine, ["SELECT n FROM big"], max_rows=BIG_ROWS)
    assert not exact.truncated and exact.row_count == BIG_ROWS


def test_session_reusable_after_truncation_and_errors(engine: Engine) -> None:
    with connect(engine.config) as session:
        first = session.execute(
            ["SELECT n FROM big", "SELECT n FROM big"], read_only=True, max_rows=5
        )
        assert first.truncated and len(first.rows) == 5 and first.statement_count == 2
        with pytest.raises(TargetError) as info:
            session.execute(["SELECT * FROM no_such_table"], read_only=True, max_rows=5)
        assert info.value.kind == "execution" and str(info.value) == info.value.message
        again = session.execute(["SELECT COUNT(*) FROM t"], read_only=True, max_rows=5)
        assert again.rows == [(3,)]


def test_result_is_last_row_returning_statement(engine: Engine) -> None:
    result = _run(engine, ["SELECT 1 AS a", "SELECT name AS b FROM t WHERE id = 2"])
    assert [c.name for c in result.columns] == ["b"] and result.rows == [("bob",)]
    assert result.statement_count == 2


def test_read_only_write_is_refused_by_the_database(engine: Engine) -> None:
    with pytest.raises(TargetError) as info:
        _run(engine, ["DELETE FROM t"])
    assert info.value.kind == "readonly"
    assert _count(engine) == 3


def test_read_only_ddl_is_refused(engine: Engine, table_name: str) -> None:
    with pytest.raises(TargetError) as info:
        _run(engine, [f"CREATE TABLE {table_name} (a int)"])
    assert info.value.kind == "readonly"
    with pytest.raises(TargetError):
        _run(engine, [f"SELECT * FROM {table_name}"])


@pytest.mark.parametrize("control", ["COMMIT", "ROLLBACK"])
def test_transaction_control_cannot_escape_read_only(engine: Engine, control: str) -> None:
    with pytest.raises(TargetError) as info:
        _run(engine, ["SELECT 1", control, "DELETE FROM t"])
    assert info.value.kind == "readonly"
    assert _count(engine) == 3


def test_multi_statement_string_is_refused(engine: Engine) -> None:
    with pytest.raises(TargetError) as info:
        _run(engine, ["SELECT 1; SELECT 2"])
    assert info.value.kind == "execution"
    # even in write mode, the second command never runs
    with pytest.raises(TargetError):
        _run(engine, ["SELECT 1; DELETE FROM t"], read_only=False)
    assert _count(engine) == 3


def test_percent_signs_are_not_placeholders(engine: Engine) -> None:
    result = _run(engine, ["SELECT name FROM t WHERE name LIKE '%li%' AND '%s' = '%s'"])
    assert result.rows == [("alice",)]


def test_write_commits_and_reports_rowcount(engine: Engine, table_name: str) -> None:
    result = _run(
        engine,
        [
            f"CREATE TABLE {table_name} (a int, b varchar(10))",
            f"INSERT INTO {table_name} VALUES (1, 'x'), (2, 'y'), (3, 'z')",
            f"UPDATE {table_name} SET b = 'w' WHERE a >= 2",
        ],
        read_only=False,
    )
    assert result.columns == [] and result.rows == [] and result.row_count == 2
    assert _count(engine, table_name) == 3


def test_write_error_rolls_back_everything(engine: Engine, table_name: str) -> None:
    _run(engine, [f"CREATE TABLE {table_name} (a int PRIMARY KEY)"], read_only=False)
    with pytest.raises(TargetError) as info:
        _run(
            engine,
            [
                f"INSERT INTO {table_name} VALUES (1)",
                f"INSERT INTO {table_name} VALUES (1)",
            ],
            read_only=False,
        )
    assert info.value.kind == "execution"
    assert _count(engine, table_name) == 0


def test_statement_timeout(engine: Engine) -> None:
    config = dataclasses.replace(engine.config, statement_timeout_ms=200)
    started = time.monotonic()
    with pytest.raises(TargetError) as info, connect(config) as session:
        session.execute([engine.heavy_query], read_only=True, max_rows=10)
    assert info.value.kind == "timeout"
    assert time.monotonic() - started < 5


def test_cancel_from_another_thread(engine: Engine) -> None:
    if engine.name == "sqlite":
        assert cancel(engine.config, "1") is False
        return
    outcome: list[BaseException | Result] = []
    with connect(engine.config) as session:
        backend_id = session.backend_id
        assert backend_id is not None

        def work() -> None:
            try:
                outcome.append(session.execute([engine.heavy_query], read_only=True, max_rows=10))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=work)
        thread.start()
        time.sleep(0.7)
        assert cancel(engine.config, backend_id) is True
        thread.join(10)
        assert not thread.is_alive()
        assert isinstance(outcome[0], TargetError) and outcome[0].kind == "cancelled"
        assert session.execute(["SELECT 1"], read_only=True, max_rows=1).rows == [(1,)]


def test_introspect(engine: Engine) -> None:
    with connect(engine.config) as session:
        tables = {info.name: info for info in session.introspect()}
    assert {"t", "big", "v"} <= set(tables)
    assert tables["t"].kind == "table" and tables["v"].kind == "view"
    assert [c.name for c in tables["t"].columns] == ["id", "name", "amount", "created", "note"]
    assert tables["v"].columns[1].name == "name"
    assert all(c.type == c.type.lower() and c.type for c in tables["t"].columns)
    if engine.name != "sqlite":
        assert {c.name: c.type for c in tables["t"].columns} == engine.types


def test_stream_yields_all_rows_in_batches(engine: Engine) -> None:
    with connect(engine.config) as session:
        columns, batches = session.stream(
            "SELECT n FROM big ORDER BY n", read_only=True, batch_size=5000
        )
        assert [c.name for c in columns] == ["n"]
        sizes = []
        total = 0
        expected = 1
        for batch in batches:
            sizes.append(len(batch))
            for (n,) in batch:
                assert n == expected
                expected += 1
            total += len(batch)
        assert total == BIG_ROWS and max(sizes) <= 5000 and len(sizes) >= 4
        assert session.execute(["SELECT 1"], read_only=True, max_rows=1).rows == [(1,)]


def test_stream_abandoned_midway_leaves_session_usable(engine: Engine) -> None:
    with connect(engine.config) as session:
        _, batches = session.stream("SELECT n FROM big", read_only=True, batch_size=100)
        assert len(next(batches)) == 100
        batches.close()  # type: ignore[attr-defined]
        assert session.execute(["SELECT COUNT(*) FROM t"], read_only=True, max_rows=1).rows == [
            (3,)
        ]


def test_stream_read_only_refuses_writes(engine: Engine) -> None:
    with pytest.raises(TargetError), connect(engine.config) as session:
        _, batches = session.stream("DELETE FROM t", read_only=True)
        list(batches)
    assert _count(engine) == 3


def test_test_connection_returns_version(engine: Engine) -> None:
    version = test_connection(engine.config)
    expected = {"postgresql": "PostgreSQL", "mysql": "MariaDB", "sqlite": "SQLite"}
    assert expected[engine.name].lower() in version.lower()


def test_password_never_in_repr() -> None:
    config = TargetConfig("postgresql", host="h", user="u", password="s3cret-value")
    assert "s3cret-value" not in repr(config)
    assert Column("a", "integer") == Column("a", "integer")


def test_unknown_engine() -> None:
    with pytest.raises(TargetError) as info:
        connect(TargetConfig("oracle"))
    assert info.value.kind == "connect"


def test_a_batch_returns_its_last_statement_with_columns_and_says_which(engine: Engine) -> None:
    """The same rule on every engine: rows of the last statement that returned rows with at
    least one column (even none of them), else the last statement's row count."""
    assert _run(engine, ["SELECT id, name FROM t"]).statement == 0
    later = _run(engine, ["SELECT id, name FROM t", "SELECT 1 AS one FROM t WHERE id < 0"])
    assert (later.statement, later.rows, [c.name for c in later.columns]) == (1, [], ["one"])
    middle = _run(engine, ["SELECT 1 AS one", "SELECT id, name FROM t ORDER BY id"])
    assert middle.statement == 1 and len(middle.rows) == 3
    if engine.name == "postgresql":  # a query without columns returns no rows to show
        zero = _run(engine, ["SELECT id FROM t", "SELECT FROM t"])
        assert zero.statement == 0 and len(zero.rows) == 3
        alone = _run(engine, ["SELECT FROM t"])
        assert (alone.statement, alone.rows, alone.row_count) == (None, [], 3)
    table = f"w_{engine.name}_rule"
    writes = _run(
        engine,
        [f"CREATE TABLE {table} (id int)", f"INSERT INTO {table} VALUES (1), (2)",
         f"DROP TABLE {table}"],
        read_only=False,
    )  # fmt: skip
    assert (writes.statement, writes.rows) == (None, [])

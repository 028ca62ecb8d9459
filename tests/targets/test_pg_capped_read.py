"""PostgreSQL's one-round-trip read: a single query, read-only, through a cursor.

`current_query()` shows the text the server ran, so each test can tell whether the capped
path (a FETCH from the `warden_capped` cursor) or the classic one answered.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from governance.targets import TargetError, TargetSession, connect
from governance.targets.postgres import PostgresSession

from .conftest import BIG_ROWS, Engine

WHO = "SELECT current_query() AS q"


def _ready(session: TargetSession) -> bool:
    """Ended in ROLLBACK: idle, open, ready for the next read."""
    assert isinstance(session, PostgresSession)
    return session.reusable()


def _read(
    engine: Engine, statement: str, max_rows: int = 10
) -> tuple[list[str], list[tuple[Any, ...]]]:
    with connect(engine.config) as session:
        result = session.execute([statement], read_only=True, max_rows=max_rows)
        assert _ready(session)
    return [f"{c.name}:{c.type}" for c in result.columns], result.rows


def test_a_query_is_read_capped_in_one_statement(pg_engine: Engine) -> None:
    columns, rows = _read(pg_engine, WHO)
    assert columns == ["q:text"]
    assert rows[0][0] == "FETCH FORWARD 11 FROM warden_capped"


@pytest.mark.parametrize(
    "statement",
    [
        f"{WHO} -- a trailing comment",
        f"{WHO} /* block */",
        f"  (({WHO}))  ",
        f"WITH x AS (SELECT 1) {WHO}",
        f"{WHO};",
        f"{WHO} ;\n",
        f"{WHO}; -- done",
    ],
)
def test_spellings_that_take_the_capped_path(pg_engine: Engine, statement: str) -> None:
    rows = _read(pg_engine, statement)[1]
    assert "warden_capped" in rows[0][0]


def test_truncation_order_and_duplicate_names(pg_engine: Engine) -> None:
    statement = "SELECT n, n AS n, -n AS m FROM big ORDER BY n DESC"
    with connect(pg_engine.config) as session:
        result = session.execute([statement], read_only=True, max_rows=3)
    assert [c.name for c in result.columns] == ["n", "n", "m"]
    assert result.rows == [(n, n, -n) for n in (BIG_ROWS, BIG_ROWS - 1, BIG_ROWS - 2)]
    assert result.truncated and result.row_count == 3


def test_exactly_the_cap_is_not_truncated(pg_engine: Engine) -> None:
    with connect(pg_engine.config) as session:
        exact = session.execute(["SELECT * FROM t ORDER BY id"], read_only=True, max_rows=3)
        none = session.execute(["SELECT * FROM t WHERE false"], read_only=True, max_rows=3)
        zero = session.execute(["SELECT * FROM t"], read_only=True, max_rows=0)
    assert len(exact.rows) == 3 and not exact.truncated
    assert [c.name for c in none.columns] == ["id", "name", "amount", "created", "note"]
    assert none.rows == [] and not none.truncated
    assert zero.rows == [] and zero.truncated


@pytest.mark.parametrize("statement", ["VALUES (1, 'a'), (2, 'b')", "TABLE t"])
def test_values_and_table(pg_engine: Engine, statement: str) -> None:
    with connect(pg_engine.config) as session:
        result = session.execute([statement], read_only=True, max_rows=1)
    assert len(result.rows) == 1 and result.truncated


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 1; DELETE FROM t",
        "SELECT 1) AS warden_capped; DELETE FROM t; SELECT (1",
        "SELECT 1 FROM t) AS x; DELETE FROM t --",
        # Text that only a wrapper would complete into a different, valid query.
        "TABLE t) AS x CROSS JOIN (SELECT * FROM big",
        "SELECT * FROM t) AS x, LATERAL (SELECT 1",
    ],
)
def test_a_statement_is_run_as_written_or_not_at_all(pg_engine: Engine, statement: str) -> None:
    with pytest.raises(TargetError), connect(pg_engine.config) as session:
        session.execute([statement], read_only=True, max_rows=5)
    assert pg_engine.scalar("SELECT count(*) FROM t") == 3


def test_an_error_raised_while_running_does_not_run_the_query_again(pg_engine: Engine) -> None:
    # 42601 (syntax_error) also comes from running a query, not only from parsing it.
    with connect(pg_engine.config) as session:
        with pytest.raises(TargetError) as info:
            session.execute(
                ["SELECT pg_advisory_lock(4242), to_tsquery('simple', name || ' x') FROM t"],
                read_only=True,
                max_rows=5,
            )
        assert "tsquery" in info.value.message
        unlocked = [
            session.execute(["SELECT pg_advisory_unlock(4242)"], read_only=True, max_rows=1).rows
            for _ in range(2)
        ]
    assert unlocked == [[(True,)], [(False,)]]  # taken once: the query ran once


def test_a_data_modifying_with_is_refused(pg_engine: Engine) -> None:
    with pytest.raises(TargetError), connect(pg_engine.config) as session:
        session.execute(
            ["WITH d AS (DELETE FROM t RETURNING id) SELECT * FROM d"], read_only=True, max_rows=5
        )
    assert pg_engine.scalar("SELECT count(*) FROM t") == 3


def test_the_capped_read_is_read_only_and_timed(pg_engine: Engine) -> None:
    with connect(pg_engine.config) as session:
        with pytest.raises(TargetError) as info:
            session.execute(["SELECT * FROM t FOR UPDATE"], read_only=True, max_rows=5)
        assert info.value.kind == "readonly"
        assert _ready(session)
        timeout = session.execute(
            ["SELECT setting FROM pg_settings WHERE name = 'statement_timeout'"],
            read_only=True,
            max_rows=1,
        )
        assert timeout.rows == [(str(pg_engine.config.statement_timeout_ms),)]


def test_a_statement_that_times_out_on_the_capped_path(pg_engine: Engine) -> None:
    with connect(dataclasses.replace(pg_engine.config, statement_timeout_ms=200)) as session:
        with pytest.raises(TargetError) as info:
            session.execute([pg_engine.heavy_query], read_only=True, max_rows=5)
        assert info.value.kind == "timeout"
        assert _ready(session)
        assert session.execute(["SELECT 1"], read_only=True, max_rows=1).rows == [(1,)]


def test_a_failing_read_logs_nothing_and_reports_its_own_error(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with connect(pg_engine.config) as session:
        for statement in ("SELECT 1 / 0", "SELECT * FROM no_such_table"):
            with pytest.raises(TargetError) as info:
                session.execute([statement], read_only=True, max_rows=5)
            assert "pipeline" not in info.value.message
            assert _ready(session)
    assert not [r for r in caplog.records if r.name.startswith("psycopg")]

"""PostgreSQL's one-round-trip read: a single query, read-only, wrapped with a LIMIT.

`current_query()` shows the text the server ran, so each test can tell whether the capped
path or the classic one (parse, describe, stream) answered.
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
    assert "AS warden_capped LIMIT 11" in rows[0][0]


@pytest.mark.parametrize(
    "statement",
    [
        f"{WHO} -- a trailing comment must not eat the wrapper's parenthesis",
        f"{WHO} /* block */",
        f"  (({WHO}))  ",
        f"WITH x AS (SELECT 1) {WHO}",
        f"{WHO};",
        f"{WHO} ;\n",
    ],
)
def test_spellings_that_still_take_the_capped_path(pg_engine: Engine, statement: str) -> None:
    rows = _read(pg_engine, statement)[1]
    assert "warden_capped" in rows[0][0]


def test_a_semicolon_before_a_comment_falls_back_to_the_classic_path(pg_engine: Engine) -> None:
    rows = _read(pg_engine, f"{WHO}; -- done")[1]
    assert "warden_capped" not in rows[0][0]


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
    ],
)
def test_a_second_command_is_refused_either_way(pg_engine: Engine, statement: str) -> None:
    with pytest.raises(TargetError), connect(pg_engine.config) as session:
        session.execute([statement], read_only=True, max_rows=5)
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

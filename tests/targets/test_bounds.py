"""What a run may fetch is bounded: every value, and all the rows of an interactive result.

Measured in a child process where it matters (peak memory), against the real engines.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from governance.targets import TargetError, connect, postgres
from governance.targets.base import CELL_LIMIT, RUN_LIMIT
from governance.targets.pg_guard import guarded, query_end

from .conftest import Engine

ROOT = Path(__file__).resolve().parents[2]
CELL, RUN = 64 * 1024, 256 * 1024
# A value of n bytes, and n bytes in each of many rows, in each engine's words.
VALUE = {
    "postgresql": "SELECT repeat('x', {n}) AS v",
    "mysql": "SELECT REPEAT('x', {n}) AS v",
    "sqlite": "SELECT hex(zeroblob({n} / 2)) AS v",
}
ROWS = {
    "postgresql": "SELECT n, repeat('x', {n}) AS v FROM big ORDER BY n LIMIT {rows}",
    "mysql": "SELECT n, REPEAT('x', {n}) AS v FROM big ORDER BY n LIMIT {rows}",
    "sqlite": "SELECT n, hex(zeroblob({n} / 2)) AS v FROM big ORDER BY n LIMIT {rows}",
}


def _bounded(engine: Engine) -> Engine:
    config = dataclasses.replace(engine.config, max_cell_bytes=CELL, max_run_bytes=RUN)
    return dataclasses.replace(engine, config=config)


def _read(engine: Engine, statements: list[str], max_rows: int = 1000) -> TargetError | int:
    with connect(engine.config) as session:
        try:
            return len(session.execute(statements, read_only=True, max_rows=max_rows).rows)
        except TargetError as exc:
            return exc


def test_a_value_over_its_bound_is_refused_with_a_clear_message(engine: Engine) -> None:
    bounded = _bounded(engine)
    assert _read(bounded, [VALUE[engine.name].format(n=CELL - 100)]) == 1
    for statements in ([VALUE[engine.name].format(n=CELL * 3)],
                       ["SELECT 1", VALUE[engine.name].format(n=CELL * 3)]):  # fmt: skip
        error = _read(bounded, statements)
        assert isinstance(error, TargetError) and error.kind == "too_large", error
        assert error.code == CELL_LIMIT and not error.server_text
        assert "64 KiB" in error.message and error.statement == len(statements) - 1
        if engine.name == "mysql":  # counted as it arrives: the column is known
            assert error.column == "v" and 'column "v"' in error.message
    if engine.name == "postgresql":  # a SHOW cannot be wrapped: counted as it arrives
        long = "y" * (CELL * 2)
        error = _read(bounded, [f"SET LOCAL warden.note = '{long}'", "SHOW warden.note"])
        assert isinstance(error, TargetError) and error.kind == "too_large"
        assert (error.statement, error.column) == (1, "warden.note")


def test_rows_over_the_run_budget_are_refused(engine: Engine) -> None:
    bounded = _bounded(engine)
    assert _read(bounded, [ROWS[engine.name].format(n=1000, rows=100)]) == 100
    error = _read(bounded, [ROWS[engine.name].format(n=1000, rows=400)])
    assert isinstance(error, TargetError) and error.kind == "too_large"
    assert error.code == RUN_LIMIT and "256 KiB" in error.message
    # the row cap comes first: what is not fetched does not count
    assert _read(bounded, [ROWS[engine.name].format(n=1000, rows=400)], max_rows=100) == 100


def test_an_export_bounds_values_but_not_the_whole_result(engine: Engine) -> None:
    bounded = _bounded(engine)
    with connect(bounded.config) as session:
        _, batches = session.stream(
            ROWS[engine.name].format(n=1000, rows=1000), read_only=True, batch_size=100
        )
        assert sum(len(batch) for batch in batches) == 1000  # 1 MB, four budgets
    with connect(bounded.config) as session, pytest.raises(TargetError) as info:
        _, batches = session.stream(VALUE[engine.name].format(n=CELL * 3), read_only=True)
        list(batches)
    assert info.value.kind == "too_large" and info.value.code == CELL_LIMIT


def test_a_postgres_copy_export_bounds_values_on_the_server(pg_engine: Engine) -> None:
    bounded = _bounded(pg_engine)
    with postgres.connect(bounded.config) as session:
        chunks, counter = session.copy_csv(ROWS["postgresql"].format(n=1000, rows=1000), limit=5000)
        assert len(list(chunks)) == 1001 and counter.rows == 1000
    with postgres.connect(bounded.config) as session, pytest.raises(TargetError) as info:
        chunks, _ = session.copy_csv(VALUE["postgresql"].format(n=CELL * 3), limit=10)
        list(chunks)
    assert info.value.kind == "too_large" and info.value.code == CELL_LIMIT


@pytest.mark.parametrize("engine_name", ["postgresql", "sqlite"])
def test_a_writes_returned_sample_is_cut_short_not_the_write(
    request: pytest.FixtureRequest, engine_name: str
) -> None:
    fixture = {"postgresql": "pg_engine", "sqlite": "sqlite_engine"}[engine_name]
    bounded = _bounded(request.getfixturevalue(fixture))
    big = {"postgresql": "repeat('x', {n})", "sqlite": "hex(zeroblob({n} / 2))"}
    returning = big[engine_name].format(n=CELL * 2)
    with connect(bounded.config) as session:
        result = session.execute(
            [f"UPDATE t SET note = note WHERE id <= 2 RETURNING id, {returning} AS v"],
            read_only=False,
            max_rows=10,
        )
    assert result.rows == [] and result.truncated and result.row_count == 2


def test_the_session_is_usable_after_a_refusal(engine: Engine) -> None:
    bounded = _bounded(engine)
    with connect(bounded.config) as session:
        with pytest.raises(TargetError):
            session.execute([VALUE[engine.name].format(n=CELL * 3)], read_only=True, max_rows=5)
        if engine.name == "mysql":
            return  # the connection is dropped rather than drained; sessions are not reused
        assert session.execute(["SELECT 1"], read_only=True, max_rows=1).rows == [(1,)]


# -- the PostgreSQL wrapper ------------------------------------------------------------------

ATTACKS = [
    "SELECT 1; DELETE FROM t",
    "SELECT 1) AS warden_u OFFSET 0) AS w; DELETE FROM t; SELECT (1",
    # text that only a wrapper would complete into a different, valid query
    "TABLE t) AS x CROSS JOIN (SELECT * FROM big",
    "SELECT * FROM t) AS warden_u OFFSET 0) AS w, LATERAL (SELECT 1",
    "SELECT 1 FROM t\n) AS warden_u OFFSET 0) AS w WHERE false UNION ALL SELECT * FROM (SELECT n",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_wrapper_never_runs_text_that_is_not_a_query_alone(
    pg_engine: Engine, attack: str
) -> None:
    # Wrapped, this one is a valid query that takes a lock; alone it is not even SQL.
    lock = "SELECT 1) AS a, (SELECT pg_advisory_lock(4243)) AS b, (SELECT 2"
    with postgres.connect(pg_engine.config) as session:
        for run in (
            lambda: session.execute([lock], read_only=True, max_rows=5),
            lambda: session.execute(["SELECT 1", lock], read_only=True, max_rows=5),
            lambda: list(session.stream(lock, read_only=True)[1]),
            lambda: list(session.copy_csv(lock, limit=5)[0]),
        ):
            with pytest.raises(TargetError):
                run()
        unlocked = session.execute(["SELECT pg_advisory_unlock(4243)"], read_only=True, max_rows=1)
        assert unlocked.rows == [(False,)]  # never taken: the wrapper never ran
        for run in (
            lambda: session.execute([attack], read_only=True, max_rows=5),
            lambda: session.execute(["SELECT 1", attack], read_only=True, max_rows=5),
            lambda: list(session.stream(attack, read_only=True)[1]),
            lambda: list(session.copy_csv(attack, limit=5)[0]),
        ):
            with pytest.raises(TargetError):
                run()
    assert pg_engine.scalar("SELECT count(*) FROM t") == 3


def test_the_wrappers_tail_cannot_close_a_string_or_comment() -> None:
    text, offset = guarded("SELECT 1", cell_limit=CELL, run_limit=RUN, rows=10, exact_cells=True)
    tail = text[offset + len("SELECT 1") :]
    assert not any(closer in tail for closer in ("'", '"', "$", "*/"))
    assert tail.startswith("\n")


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("SELECT 1;", "SELECT 1"),
        ("SELECT 1 ; -- done;\n /* and; */ ;", "SELECT 1"),
        ("SELECT ';' AS \";\" FROM t;", "SELECT ';' AS \";\" FROM t"),
        ("SELECT $x$ ; $x$, $$;$$;", "SELECT $x$ ; $x$, $$;$$"),
        ("SELECT E'\\';' ;", "SELECT E'\\';'"),
        ("SELECT 1 /* a /* ; */ ; */ ;", "SELECT 1"),
        ("SELECT a$b FROM t;", "SELECT a$b FROM t"),
        ("SELECT 1 -- no semicolon", "SELECT 1 -- no semicolon"),
    ],
)
def test_query_end_cuts_only_what_follows_the_query(text: str, query: str) -> None:
    assert text[: query_end(text)] == query


def test_when_the_lexer_is_wrong_the_server_refuses_the_wrapper(pg_engine: Engine) -> None:
    # With standard_conforming_strings off, the server reads 'a\'; -- ' as one string; a
    # lexer reading it as on cuts at the semicolon, inside that string. The wrapper's tail
    # cannot close it, so the server refuses the whole text: nothing else runs.
    statement = "SELECT 'a\\'; -- ' AS x FROM t"
    wrapped, _ = guarded(statement, cell_limit=CELL, run_limit=RUN, standard_strings=True)
    assert "'a\\'\n)" in wrapped  # cut inside the server's string
    import psycopg

    from .conftest import _pg_admin

    with _pg_admin(pg_engine.config.database) as conn:
        conn.execute("SET standard_conforming_strings = off")
        assert conn.execute(statement).fetchall() == [("a'; -- ",)] * 3  # fine alone
        with pytest.raises(psycopg.errors.SyntaxError):
            conn.execute(wrapped)


def test_reading_a_gigabyte_value_keeps_the_worker_small(pg_engine: Engine) -> None:
    """Peak memory of a worker asked for a 300 MB value: refused by the server, never sent."""
    config = dataclasses.asdict(pg_engine.config)
    script = textwrap.dedent(
        f"""
        import json
        from governance.targets import TargetConfig, TargetError, connect
        config = TargetConfig(**{config!r})
        try:
            with connect(config) as session:
                session.execute(["SELECT repeat('x', 300000000) AS v"], read_only=True, max_rows=5)
            outcome = "read"
        except TargetError as exc:
            outcome = exc.kind
        peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
        print(json.dumps({{"outcome": outcome, "peak_kib": peak}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["outcome"] == "too_large"
    assert measured["peak_kib"] < 200 * 1024, measured  # the value alone is 300 MB


# Found by the independent review: each value was bounded, but a row of many was not (a
# hundred 16 MB MariaDB columns, 1,500 one-megabyte SQLite blobs: 3 GB in the worker).
WIDE = {
    "mysql": "SELECT " + ", ".join(f"REPEAT('x', 16000000) AS c{i}" for i in range(100)),
    "sqlite": "SELECT " + ", ".join(f"zeroblob(1000000) AS c{i}" for i in range(1500)),
}


@pytest.mark.parametrize("engine_name", ["mysql", "sqlite"])
def test_a_row_of_many_large_values_keeps_the_worker_small(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    fixture = {"mysql": "mysql_engine", "sqlite": "sqlite_engine"}[engine_name]
    engine: Engine = request.getfixturevalue(fixture)
    config = dataclasses.asdict(engine.config)
    script = textwrap.dedent(
        f"""
        import json
        from governance.targets import TargetConfig, TargetError, connect
        config = TargetConfig(**{config!r})
        try:
            with connect(config) as session:
                session.execute([{WIDE[engine_name]!r}], read_only=True, max_rows=5)
            outcome = "read"
        except TargetError as exc:
            outcome = exc.kind
        peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
        print(json.dumps({{"outcome": outcome, "peak_kib": peak}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["outcome"] == "too_large"
    assert measured["peak_kib"] < 400 * 1024, measured  # the row alone is 1.5 GB

"""Every driver's errors carry their code, the failing statement and, where the server gives
one, the position in the text the caller passed (not in what the driver wrapped around it)."""

from __future__ import annotations

import pytest

from governance.targets import TargetError, connect, postgres
from governance.targets.errors import coded_sentence

from .conftest import Engine

UNKNOWN_COLUMN = {"postgresql": "42703", "mysql": "1054", "sqlite": "SQLITE_ERROR"}
DUPLICATE_KEY = {
    "postgresql": "23505",
    "mysql": "1062",
    "sqlite": "SQLITE_CONSTRAINT_PRIMARYKEY",
}


def _error(engine: Engine, statements: list[str], *, read_only: bool = True) -> TargetError:
    with pytest.raises(TargetError) as info, connect(engine.config) as session:
        session.execute(statements, read_only=read_only, max_rows=10)
    return info.value


def test_a_failing_statement_is_named_by_code_and_index(engine: Engine) -> None:
    alone = _error(engine, ["SELECT id,\n  nosuch FROM t"])
    assert (alone.code, alone.statement, alone.server_text) == (
        UNKNOWN_COLUMN[engine.name],
        0,
        True,
    )
    batch = _error(engine, ["SELECT 1", "SELECT id FROM t", "SELECT nosuch FROM t"])
    assert (batch.code, batch.statement) == (UNKNOWN_COLUMN[engine.name], 2)
    write = _error(engine, ["INSERT INTO t (id, name) VALUES (1, 'again')"], read_only=False)
    assert (write.code, write.statement, write.kind) == (DUPLICATE_KEY[engine.name], 0, "execution")


def test_postgres_positions_are_in_the_callers_text_on_every_path(pg_engine: Engine) -> None:
    text = "SELECT id,\n  nosuch FROM t -- a comment;"
    capped = _error(pg_engine, [text])  # the one-round-trip read behind two DECLAREs
    assert capped.position == text.index("nosuch") + 1
    sentence = coded_sentence(capped, [text], engine="postgresql")
    assert "at line 2, column 3, near “nosuch”" in sentence
    batch = _error(pg_engine, ["SELECT 1", text])
    assert (batch.statement, batch.position) == (1, text.index("nosuch") + 1)
    cast = _error(pg_engine, ["SELECT 1 + 'abc'::int"])  # checked while parsing, a value
    assert (cast.code, cast.position) == ("22P02", 12)
    end = _error(pg_engine, ["SELECT 1 +"])
    assert (end.code, end.position) == ("42601", 11)
    with postgres.connect(pg_engine.config) as session:
        with pytest.raises(TargetError) as streamed:
            session.stream(text, read_only=True)
        assert streamed.value.position == text.index("nosuch") + 1
        with pytest.raises(TargetError) as copied:
            chunks, _ = session.copy_csv(text, limit=5)
            list(chunks)
        assert copied.value.position == text.index("nosuch") + 1


def test_a_runtime_error_of_the_capped_read_has_no_position_in_the_wrapper(
    pg_engine: Engine,
) -> None:
    error = _error(pg_engine, ["SELECT CAST('x' || name AS int) FROM t"])
    assert (error.code, error.statement, error.position) == ("22P02", 0, None)


def test_mariadb_syntax_errors_point_into_the_statement(mysql_engine: Engine) -> None:
    end = _error(mysql_engine, ["SELECT 1 +"])
    assert (end.code, end.position) == ("1064", 11)
    text = "SELECT id\nFROM t WHERE id = = 1"
    inside = _error(mysql_engine, ["SELECT 1", text])
    assert (inside.code, inside.statement) == ("1064", 1)
    assert inside.position == text.index("= 1") + 1
    sentence = coded_sentence(inside, ["SELECT 1", text], engine="mysql")
    assert sentence.startswith("Statement 2: Syntax error (MariaDB/MySQL error 1064), at line 2")


def test_previews_name_the_statement_where_they_stopped(engine: Engine) -> None:
    with connect(engine.config) as session:
        preview = session.preview(
            ["UPDATE t SET name = name WHERE id = 1", "UPDATE t SET nosuch = 1"],
            dml=[True, True],
            tables=["t"],
            timeout_ms=5000,
        )
    assert preview.error is not None
    assert (preview.error.code, preview.error.statement) == (UNKNOWN_COLUMN[engine.name], 1)
    if engine.name == "postgresql":
        assert preview.error.position == len("UPDATE t SET ") + 1

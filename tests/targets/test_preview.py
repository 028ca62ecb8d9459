"""Impact preview of held writes, against real PostgreSQL, MariaDB and SQLite targets."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

import pytest

from governance.targets import Preview, TargetSession, connect
from governance.targets.mysql import explain_estimate
from governance.targets.preview import DRY_RUN_NOTE

from .conftest import BIG_ROWS, Engine

# Runs for many seconds on every engine: an uncorrelated 20 000 x 20 000 cross join.
SLOW_WRITE = (
    "UPDATE t SET name = 'slow' WHERE (SELECT COUNT(*) FROM big a, big b WHERE a.n + b.n < 0) = 0"
)


def _preview(
    session: TargetSession,
    statements: Sequence[str],
    *,
    dml: Sequence[bool] | None = None,
    tables: Sequence[str] = ("t",),
    timeout_ms: int = 5000,
) -> Preview:
    flags = [True] * len(statements) if dml is None else dml
    return session.preview(statements, dml=flags, tables=tables, timeout_ms=timeout_ms)


def _assert_unchanged(engine: Engine) -> None:
    """Checked on a separate connection: the seeded rows are all still there."""
    assert engine.scalar("SELECT COUNT(*) FROM t") == 3
    assert engine.scalar("SELECT name FROM t WHERE id = 1") == "alice"
    assert engine.scalar("SELECT COUNT(*) FROM big") == BIG_ROWS


def _assert_no_open_transaction(engine: Engine, session: TargetSession) -> None:
    if engine.name == "postgresql":
        state = engine.scalar(
            f"SELECT state FROM pg_stat_activity WHERE pid = {int(session.backend_id or 0)}"
        )
        assert state == "idle"
    elif engine.name == "mysql":
        open_transactions = engine.scalar(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX"
            f" WHERE trx_mysql_thread_id = {int(session.backend_id or 0)}"
        )
        assert open_transactions == 0
    else:  # nobody holds a write lock: another connection takes one at once
        other = sqlite3.connect(engine.config.database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()


def _assert_reusable(session: TargetSession) -> None:
    result = session.execute(["SELECT COUNT(*) FROM t"], read_only=True, max_rows=1)
    assert result.rows == [(3,)]


def test_dry_run_counts_each_statement_and_changes_nothing(engine: Engine) -> None:
    statements = [
        "UPDATE t SET name = 'x' WHERE id < 3",
        "DELETE FROM t WHERE id = 3",
        "INSERT INTO t (id, name) VALUES (4, 'dave'), (5, 'erin')",
        "DELETE FROM t",  # sees the statements before it: 3 - 1 + 2 rows
    ]
    with connect(engine.config) as session:
        preview = _preview(session, statements)
        assert preview == Preview("dry_run", (2, 1, 2, 4), False, DRY_RUN_NOTE)
        _assert_no_open_transaction(engine, session)
        _assert_reusable(session)
    _assert_unchanged(engine)


def test_rows_returned_by_returning_are_counted(engine: Engine) -> None:
    with connect(engine.config) as session:
        preview = _preview(session, ["DELETE FROM t WHERE id < 3 RETURNING id, name"])
        assert (preview.method, preview.rows, preview.error) == ("dry_run", (2,), None)
        _assert_reusable(session)
    _assert_unchanged(engine)


@pytest.mark.parametrize("fixture", ["pg_engine", "sqlite_engine"])  # MariaDB: no WITH … UPDATE
def test_a_write_after_a_cte_is_counted(request: pytest.FixtureRequest, fixture: str) -> None:
    engine: Engine = request.getfixturevalue(fixture)
    statement = "WITH old AS (SELECT id FROM t WHERE id > 1) UPDATE t SET name = 'x'" + (
        " WHERE id IN (SELECT id FROM old)"
    )
    with connect(engine.config) as session:
        assert _preview(session, [statement]).rows == (2,)
    _assert_unchanged(engine)


def test_timeout_returns_an_error_and_rolls_back(engine: Engine) -> None:
    with connect(engine.config) as session:
        started = time.monotonic()
        preview = _preview(session, ["DELETE FROM t WHERE id = 1", SLOW_WRITE], timeout_ms=300)
        assert time.monotonic() - started < 5
        assert preview.method == "dry_run"
        assert preview.rows == (1, None)
        assert preview.error_kind == "timeout"
        assert preview.error is not None and preview.error.statement == 1
        assert "stopped at statement 2" in preview.note
        _assert_no_open_transaction(engine, session)
        _assert_reusable(session)
        if engine.name == "postgresql":  # the session's own timeout is back
            session.execute(["SELECT pg_sleep(0.5)"], read_only=True, max_rows=1)
        elif engine.name == "mysql":  # SLEEP() returns 1 when max_statement_time cuts it short
            result = session.execute(["SELECT SLEEP(0.5)"], read_only=True, max_rows=1)
            assert result.rows == [(0,)]
    _assert_unchanged(engine)


def test_failing_statement_gives_a_clear_error_and_rolls_back(engine: Engine) -> None:
    with connect(engine.config) as session:
        preview = _preview(session, ["DELETE FROM t WHERE id = 1", "UPDATE t SET nope = 1"])
        assert preview.rows == (1, None)
        assert preview.error_kind == "execution"
        assert preview.error is not None
        assert preview.error.statement == 1 and "nope" in preview.error.message
        assert (
            preview.error.code
            == {"postgresql": "42703", "mysql": "1054", "sqlite": "SQLITE_ERROR"}[engine.name]
        )
        assert "nope" not in preview.note  # the server's words stay in the error
        _assert_no_open_transaction(engine, session)
        _assert_reusable(session)
    _assert_unchanged(engine)


@pytest.mark.parametrize("flag", [False, True])  # True: the caller got it wrong; still refused
def test_schema_changes_are_not_tried(engine: Engine, table_name: str, flag: bool) -> None:
    with connect(engine.config) as session:
        for statement in (f"CREATE TABLE {table_name} (a int)", "DROP TABLE big"):
            preview = _preview(session, [statement], dml=[flag])
            assert preview.method == "none" and preview.rows == (None,)
            assert not preview.estimated and preview.error is None
            assert preview.note.startswith("Not previewed.")
        _assert_reusable(session)
    with pytest.raises(Exception, match=table_name):
        engine.scalar(f"SELECT COUNT(*) FROM {table_name}")
    _assert_unchanged(engine)


def test_batch_is_previewed_up_to_its_first_schema_change(engine: Engine, table_name: str) -> None:
    create = f"CREATE TABLE {table_name} (a int)"
    statements = ["DELETE FROM t WHERE id = 1", create, "DELETE FROM t"]
    with connect(engine.config) as session:
        preview = _preview(session, statements, dml=[True, False, True])
        assert (preview.method, preview.rows, preview.error) == ("dry_run", (1, None, None), None)
        assert "Statement 2 is not a plain write" in preview.note
    with pytest.raises(Exception, match=table_name):
        engine.scalar(f"SELECT COUNT(*) FROM {table_name}")
    _assert_unchanged(engine)


@pytest.mark.parametrize("control", ["COMMIT", "/* x */ commit", "END", "BEGIN", "SAVEPOINT s"])
def test_transaction_control_is_never_run(engine: Engine, control: str) -> None:
    with connect(engine.config) as session:
        preview = _preview(session, ["DELETE FROM t", control, "DELETE FROM big"])
        assert preview.rows == (3, None, None) and preview.error is None
        _assert_no_open_transaction(engine, session)
    _assert_unchanged(engine)


def test_several_commands_in_one_string_are_refused(engine: Engine) -> None:
    with connect(engine.config) as session:
        preview = _preview(session, ["DELETE FROM t; COMMIT"])
        assert preview.rows == (None,) and preview.error_kind == "execution"
        _assert_reusable(session)
    _assert_unchanged(engine)


def test_arguments_are_checked(engine: Engine) -> None:
    with connect(engine.config) as session:
        with pytest.raises(ValueError, match="one flag per statement"):
            session.preview(["DELETE FROM t"], dml=[], timeout_ms=1000)
        with pytest.raises(ValueError, match="timeout_ms"):
            session.preview(["DELETE FROM t"], dml=[True], timeout_ms=0)
        with pytest.raises(ValueError, match="empty statement"):
            session.preview([" "], dml=[True], timeout_ms=1000)


# -- PostgreSQL -------------------------------------------------------------------------------


def test_pg_merge_and_data_modifying_cte(pg_engine: Engine) -> None:
    statements = [
        "MERGE INTO t USING (SELECT 1 AS id) s ON t.id = s.id"
        " WHEN MATCHED THEN UPDATE SET name = 'merged'",
        # the outer SELECT returns one row; how many the inner DELETE removed is not told
        "WITH gone AS (DELETE FROM t WHERE id > 1 RETURNING id) SELECT count(*) FROM gone",
        "SELECT count(*) FROM t",  # a read flagged as a write changes nothing
    ]
    with connect(pg_engine.config) as session:
        assert _preview(session, statements).rows == (1, None, None)
    _assert_unchanged(pg_engine)


def _estimated(preview: Preview) -> bool:
    """The planner's guess for t, which has never been analysed: a count, not the truth."""
    (rows,) = preview.rows
    return preview.estimated and isinstance(rows, int) and rows >= 1


def test_pg_dry_run_needs_tables_nothing_can_escape(pg_engine: Engine, table_name: str) -> None:
    """A trigger or a rule can act outside the rolled-back transaction (dblink, a foreign
    server, NOTIFY); a write reaching one is estimated by EXPLAIN, never run."""
    from .conftest import _pg_admin

    log, child = f"{table_name}_log", f"{table_name}_child"
    with connect(pg_engine.config) as session:
        plain = _preview(session, ["DELETE FROM t WHERE id > 1"], tables=["public.t"])
        assert (plain.method, plain.rows) == ("dry_run", (2,))
        unknown = _preview(session, ["DELETE FROM t"], tables=[])
        assert unknown.method == "explain" and "not known" in unknown.note
        view = _preview(session, ["DELETE FROM t"], tables=["t", "v"])
        assert view.method == "explain" and "v is a view" in view.note
        for missing in (["t", "no_such_table"], ["a.b.c.d"]):
            gone = _preview(session, ["DELETE FROM t"], tables=missing)
            assert gone.method == "explain" and "not found" in gone.note
            assert gone.error is None and _estimated(gone)
    ddl = [
        f"CREATE TABLE {log} (id int)",
        f"CREATE FUNCTION {log}_f() RETURNS trigger LANGUAGE plpgsql AS"
        f" $$BEGIN INSERT INTO {log} VALUES (OLD.id); PERFORM pg_notify('{log}', 'x');"
        " RETURN OLD; END$$",
    ]
    cases = [
        (  # a trigger on the written table
            [f"CREATE TRIGGER {log}_t AFTER DELETE ON t FOR EACH ROW EXECUTE FUNCTION {log}_f()"],
            "t has triggers",
            [f"DROP TRIGGER {log}_t ON t"],
        ),
        (  # a rule on the written table
            [f"CREATE RULE {log}_r AS ON DELETE TO t DO ALSO NOTIFY {log}"],
            "t has rules",
            [f"DROP RULE {log}_r ON t"],
        ),
        (  # a trigger on a table a cascading foreign key changes
            [
                f"CREATE TABLE {child} (t_id int REFERENCES t (id) ON DELETE CASCADE)",
                f"CREATE TRIGGER {log}_c AFTER DELETE ON {child}"
                f" FOR EACH ROW EXECUTE FUNCTION {log}_f()",
            ],
            f"{child} has triggers",
            [f"DROP TABLE {child}"],
        ),
    ]
    with _pg_admin(pg_engine.config.database) as admin:
        for statement in ddl:
            admin.execute(statement)
        try:
            for setup, why, teardown in cases:
                for statement in setup:
                    admin.execute(statement)
                try:
                    with connect(pg_engine.config) as session:
                        preview = _preview(session, ["DELETE FROM t"])
                        assert preview.method == "explain" and why in preview.note, preview.note
                        assert preview.error is None and _estimated(preview)
                        _assert_no_open_transaction(pg_engine, session)
                finally:
                    for statement in teardown:
                        admin.execute(statement)
            assert pg_engine.scalar(f"SELECT count(*) FROM {log}") == 0  # nothing ever fired
        finally:
            admin.execute(f"DROP FUNCTION {log}_f() CASCADE")
            admin.execute(f"DROP TABLE {log}")
    _assert_unchanged(pg_engine)


# -- MariaDB ----------------------------------------------------------------------------------


@pytest.fixture
def myisam_table(mysql_engine: Engine, table_name: str) -> str:
    """A MyISAM copy of t (which is InnoDB), dropped afterwards."""
    from .conftest import _my_admin

    with _my_admin(mysql_engine.config.database) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table_name} (id int PRIMARY KEY, name text) ENGINE=MyISAM")
        cur.execute(f"INSERT INTO {table_name} SELECT id, name FROM t")
    return table_name


def test_mariadb_myisam_gets_the_planners_estimate(mysql_engine: Engine, myisam_table: str) -> None:
    database = mysql_engine.config.database
    statements = [f"DELETE FROM {myisam_table} WHERE id > 1", "UPDATE t SET name = 'x'"]
    with connect(mysql_engine.config) as session:
        preview = _preview(session, statements, tables=[f"{database}.{myisam_table}", "t"])
        assert preview.method == "explain" and preview.estimated and preview.error is None
        assert all(isinstance(rows, int) and 1 <= rows <= 3 for rows in preview.rows)
        assert "MyISAM engine, which cannot roll back" in preview.note
        assert "planner's estimates" in preview.note
        _assert_no_open_transaction(mysql_engine, session)
        _assert_reusable(session)
    assert mysql_engine.scalar(f"SELECT COUNT(*) FROM {myisam_table}") == 3
    _assert_unchanged(mysql_engine)


def test_mariadb_dry_run_needs_known_innodb_tables(mysql_engine: Engine, table_name: str) -> None:
    from .conftest import _my_admin

    database = mysql_engine.config.database
    with connect(mysql_engine.config) as session:
        qualified = _preview(session, ["DELETE FROM t"], tables=[f"`{database}`.`t`"])
        assert (qualified.method, qualified.rows) == ("dry_run", (3,))
        unknown = _preview(session, ["DELETE FROM t"], tables=[])
        assert unknown.method == "explain" and "not known" in unknown.note
        view = _preview(session, ["DELETE FROM t"], tables=["t", "v"])
        assert view.method == "explain" and "v is a view" in view.note
        missing = _preview(session, ["DELETE FROM t"], tables=["t", "no_such_table"])
        assert missing.method == "explain" and "not found" in missing.note
    with _my_admin(database) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table_name} (n int) ENGINE=MyISAM")
        cur.execute(
            f"CREATE TRIGGER {table_name}_trg AFTER DELETE ON t"
            f" FOR EACH ROW INSERT INTO {table_name} VALUES (OLD.id)"
        )
    try:
        with connect(mysql_engine.config) as session:
            triggered = _preview(session, ["DELETE FROM t"])
            assert triggered.method == "explain" and "t has triggers" in triggered.note
    finally:
        with _my_admin(database) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TRIGGER {table_name}_trg")
    assert mysql_engine.scalar(f"SELECT COUNT(*) FROM {table_name}") == 0
    _assert_unchanged(mysql_engine)


def test_mariadb_executable_comments_are_not_previewed(mysql_engine: Engine) -> None:
    with connect(mysql_engine.config) as session:
        preview = _preview(session, ["DELETE FROM t /*!99999 WHERE 1 */"])
        assert preview.method == "none"
    _assert_unchanged(mysql_engine)


def test_explain_estimate_multiplies_joins_and_applies_filtered() -> None:
    columns = ["id", "select_type", "table", "rows", "filtered"]
    plan = [
        (1, "SIMPLE", "a", 10, 50.0),
        (1, "SIMPLE", "b", 3, 100.0),
        (2, "SUBQUERY", "c", 99, None),  # not the outer query block
    ]
    assert explain_estimate(columns, plan) == 15
    assert explain_estimate(["id", "rows"], [(1, None)]) is None
    assert explain_estimate(["id", "rows"], []) is None

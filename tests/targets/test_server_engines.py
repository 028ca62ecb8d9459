"""PostgreSQL- and MariaDB-specific driver behaviour."""

from __future__ import annotations

import dataclasses

import pymysql
import pytest

from governance.targets import TargetConfig, TargetError, connect
from governance.targets import pg_support as pg_driver

from .conftest import Engine

# -- PostgreSQL -------------------------------------------------------------------------------


def test_pg_environment_does_not_leak(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = {
        "PGHOST": "10.255.255.1",
        "PGHOSTADDR": "10.255.255.1",
        "PGPORT": "1",
        "PGDATABASE": "postgres",
        "PGUSER": "nobody",
        "PGPASSWORD": "leaked-password",
        "PGPASSFILE": "/nonexistent/pgpass",
        "PGOPTIONS": "-c search_path=leaked -c statement_timeout=1",
        "PGAPPNAME": "leaked",
        "PGSSLMODE": "require",
        "PGTARGETSESSIONATTRS": "read-only",
        "PGCLIENTENCODING": "LATIN1",
        "PGCONNECT_TIMEOUT": "1",
        "PGREQUIREAUTH": "password",
        "PGCHANNELBINDING": "require",
        "PGGSSENCMODE": "require",
    }
    for key, value in hostile.items():
        monkeypatch.setenv(key, value)
    with connect(pg_engine.config) as session:
        result = session.execute(
            [
                "SELECT current_database(), current_user, current_setting('search_path'),"
                " current_setting('application_name'), current_setting('client_encoding')"
            ],
            read_only=True,
            max_rows=1,
        )
        assert result.rows == [
            (pg_engine.config.database, "postgres", '"$user", public', "warden", "UTF8")
        ]
        assert session.execute(["SELECT pg_sleep(0.05)"], read_only=True, max_rows=1).rows


def test_pg_params_name_every_environment_option(pg_engine: Engine) -> None:
    params = pg_driver.connection_params(pg_engine.config)
    assert params["passfile"].startswith("/dev/null")
    assert params["sslmode"] == "prefer" and params["options"] == ""
    assert "service" not in params  # see gaps: PGSERVICE cannot be neutralised by keyword


def test_pg_set_transaction_read_write_is_refused(pg_engine: Engine) -> None:
    for escape in ("SET TRANSACTION READ WRITE", "SET transaction_read_only = off"):
        with pytest.raises(TargetError), connect(pg_engine.config) as session:
            session.execute([escape, "DELETE FROM t"], read_only=True, max_rows=1)
    assert pg_engine.scalar("SELECT count(*) FROM t") == 3


def test_pg_commit_in_write_batch_is_refused(pg_engine: Engine, table_name: str) -> None:
    with pytest.raises(TargetError) as info, connect(pg_engine.config) as session:
        session.execute(
            [
                f"CREATE TABLE {table_name} (a int)",
                "COMMIT",
                f"INSERT INTO {table_name} VALUES (1)",
            ],
            read_only=False,
            max_rows=1,
        )
    assert info.value.message == "transaction control is not allowed"
    # the INSERT never ran
    assert pg_engine.scalar(f"SELECT count(*) FROM {table_name}") == 0


def test_pg_insert_returning_is_kept_when_truncated(pg_engine: Engine, table_name: str) -> None:
    with connect(pg_engine.config) as session:
        session.execute([f"CREATE TABLE {table_name} (a int)"], read_only=False, max_rows=1)
        result = session.execute(
            [f"INSERT INTO {table_name} SELECT generate_series(1, 50) RETURNING a"],
            read_only=False,
            max_rows=5,
        )
    assert result.truncated and len(result.rows) == 5
    assert pg_engine.scalar(f"SELECT count(*) FROM {table_name}") == 50


def test_pg_backend_id_is_the_backend_pid(pg_engine: Engine) -> None:
    with connect(pg_engine.config) as session:
        pid = session.execute(["SELECT pg_backend_pid()"], read_only=True, max_rows=1).rows
        assert pid == [(int(session.backend_id or 0),)]


def test_pg_unknown_role_is_auth(pg_engine: Engine) -> None:
    config = dataclasses.replace(pg_engine.config, user="warden_no_such_role", password="x")
    with pytest.raises(TargetError) as info:
        connect(config)
    assert info.value.kind == "auth"


def test_pg_unreachable_is_connect(pg_engine: Engine) -> None:
    config = dataclasses.replace(pg_engine.config, port=1)
    with pytest.raises(TargetError) as info:
        connect(config)
    assert info.value.kind == "connect"


def test_pg_missing_host_is_connect() -> None:
    with pytest.raises(TargetError) as info:
        connect(TargetConfig("postgresql", user="postgres"))
    assert info.value.kind == "connect"


def test_pg_cancel_unknown_backend(pg_engine: Engine) -> None:
    from governance.targets import cancel

    assert cancel(pg_engine.config, "999999") is False
    assert cancel(pg_engine.config, "not-a-pid") is False


# -- MariaDB / MySQL --------------------------------------------------------------------------


def test_mysql_session_flip_then_ddl_is_refused(mysql_engine: Engine, table_name: str) -> None:
    with pytest.raises(TargetError) as info, connect(mysql_engine.config) as session:
        session.execute(
            ["SET SESSION TRANSACTION READ WRITE", f"CREATE TABLE {table_name} (a int)"],
            read_only=True,
            max_rows=1,
        )
    assert info.value.kind == "readonly"
    exists = mysql_engine.scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
        f" AND TABLE_NAME = '{table_name}'"
    )
    assert exists == 0


def test_mysql_autocommit_escape_is_refused(mysql_engine: Engine) -> None:
    with pytest.raises(TargetError) as info, connect(mysql_engine.config) as session:
        session.execute(["SET autocommit = 1", "DELETE FROM t"], read_only=True, max_rows=1)
    assert info.value.kind == "readonly"
    assert mysql_engine.scalar("SELECT COUNT(*) FROM t") == 3


def test_mysql_no_multi_statements_flag(mysql_engine: Engine) -> None:
    from pymysql.constants import CLIENT

    with connect(mysql_engine.config) as session:
        conn = session._conn  # type: ignore[attr-defined]
        assert not conn.client_flag & CLIENT.MULTI_STATEMENTS
        assert not conn.client_flag & CLIENT.LOCAL_FILES


def test_mysql_local_infile_refused(mysql_engine: Engine, table_name: str) -> None:
    with connect(mysql_engine.config) as session:
        session.execute([f"CREATE TABLE {table_name} (a text)"], read_only=False, max_rows=1)
        with pytest.raises(TargetError):
            session.execute(
                [f"LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE {table_name}"],
                read_only=False,
                max_rows=1,
            )
    assert mysql_engine.scalar(f"SELECT COUNT(*) FROM {table_name}") == 0


def test_mysql_backend_id_is_connection_id(mysql_engine: Engine) -> None:
    with connect(mysql_engine.config) as session:
        rows = session.execute(["SELECT CONNECTION_ID()"], read_only=True, max_rows=1).rows
        assert rows == [(int(session.backend_id or 0),)]


def test_mysql_wrong_password_is_auth(mysql_engine: Engine) -> None:
    config = dataclasses.replace(mysql_engine.config, password="definitely-wrong")
    with pytest.raises(TargetError) as info:
        connect(config)
    assert info.value.kind == "auth"
    assert "definitely-wrong" not in info.value.message


def test_mysql_unreachable_is_connect(mysql_engine: Engine) -> None:
    config = dataclasses.replace(mysql_engine.config, port=1)
    with pytest.raises(TargetError) as info:
        connect(config)
    assert info.value.kind == "connect"


def test_mysql_binary_and_text_types(mysql_engine: Engine) -> None:
    with connect(mysql_engine.config) as session:
        result = session.execute(
            ["SELECT CAST('a' AS BINARY(3)) AS b, 'x' AS s, 1.5 AS d, NOW() AS ts, NULL AS n"],
            read_only=True,
            max_rows=1,
        )
    assert [c.type for c in result.columns] == [
        "varbinary",  # the server reports CAST(... AS BINARY(n)) as VAR_STRING + binary charset
        "varchar",
        "decimal",
        "datetime",
        "null",
    ]


def test_pg_copy_refused_and_session_survives(pg_engine: Engine) -> None:
    with connect(pg_engine.config) as session:
        for statement in ("COPY t TO STDOUT", "/* x */ (copy t FROM STDIN)"):
            with pytest.raises(TargetError) as info:
                session.execute([statement], read_only=False, max_rows=1)
            assert "COPY" in info.value.message
        assert session.execute(["SELECT 1"], read_only=True, max_rows=1).rows == [(1,)]


def test_first_keyword() -> None:
    from governance.targets.base import first_keyword

    assert first_keyword("  -- c\n /* a /* nested */ b */ ((Select 1))") == "select"
    assert first_keyword("") == ""


def test_pg_cancel_while_blocked_on_a_lock(pg_engine: Engine) -> None:
    """The parse step waits on the lock without holding the GIL; cancel still works."""
    import threading
    import time

    import psycopg

    from governance.targets import cancel

    locker = psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname=pg_engine.config.database
    )
    locker.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    outcome: list[BaseException | object] = []
    try:
        with connect(pg_engine.config) as session:

            def work() -> None:
                try:
                    outcome.append(session.execute(["SELECT * FROM t"], read_only=True, max_rows=1))
                except BaseException as exc:
                    outcome.append(exc)

            thread = threading.Thread(target=work)
            thread.start()
            time.sleep(0.5)
            assert cancel(pg_engine.config, session.backend_id or "") is True
            thread.join(10)
            assert isinstance(outcome[0], TargetError) and outcome[0].kind == "cancelled"
    finally:
        locker.rollback()
        locker.close()


@pytest.mark.parametrize(
    ("modes", "left"),
    [
        ("ANSI", "REAL_AS_FLOAT,PIPES_AS_CONCAT,IGNORE_SPACE"),
        ("ANSI_QUOTES,NO_BACKSLASH_ESCAPES", ""),
        ("STRICT_TRANS_TABLES,ANSI_QUOTES,NO_ENGINE_SUBSTITUTION", "STRICT_TRANS_TABLES"),
        ("NO_BACKSLASH_ESCAPES", ""),
        ("", ""),
        # MariaDB's combination modes imply ANSI_QUOTES and put it back when set again
        ("ORACLE", "PIPES_AS_CONCAT"),
        ("POSTGRESQL", "PIPES_AS_CONCAT"),
        ("MSSQL", "PIPES_AS_CONCAT"),
        ("DB2", "PIPES_AS_CONCAT"),
        ("MAXDB", "PIPES_AS_CONCAT"),
    ],
)
def test_mysql_modes_that_change_how_sql_reads_are_turned_off(
    mysql_engine: Engine, modes: str, left: str
) -> None:
    from governance.targets.mysql import PARSING_MODES_OFF, _open

    conn = _open(mysql_engine.config)  # as every session starts
    assert conn.init_command == PARSING_MODES_OFF
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@SESSION.sql_mode")
            (default,) = cur.fetchone() or ("",)
            for mode in ("ANSI_QUOTES", "NO_BACKSLASH_ESCAPES"):
                assert mode not in default.split(",")
            try:
                cur.execute("SET SESSION sql_mode = %s", (modes,))
            except pymysql.err.OperationalError:
                pytest.skip(f"this server has no sql_mode {modes}")  # MySQL 8 has no ORACLE
            cur.execute(PARSING_MODES_OFF)
            cur.execute("SELECT @@SESSION.sql_mode")
            (after,) = cur.fetchone() or ("",)
            for mode in ("ANSI_QUOTES", "NO_BACKSLASH_ESCAPES", "ANSI", "ORACLE", "POSTGRESQL"):
                assert mode not in after.split(",")
            assert set(left.split(",")) - {""} <= set(after.split(","))
            # and the text reads as Warden reads it: "x" is a string, \' an escaped quote
            cur.execute("""SELECT "x", 'a\\'b'""")
            assert cur.fetchone() == ("x", "a'b")
    finally:
        conn.close()

"""Catalogue objects holding credentials: found in every spelling, on every engine."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.engine import credential_uses

PG, MY, LITE = "postgres", "mysql", "sqlite"
PG_MAPPINGS = "SELECT * FROM user_mapping_options"

NAMED = [
    # PostgreSQL: password hashes, qualified or not, quoted, any case, anywhere in a statement
    (PG, "SELECT rolname, rolpassword FROM pg_authid", "pg_authid"),
    (PG, 'SELECT * FROM "pg_catalog"."pg_authid"', "pg_catalog.pg_authid"),
    (PG, "SELECT * FROM PG_CATALOG.PG_SHADOW", "pg_catalog.pg_shadow"),
    (PG, "select * from pg_catalog . /* x */ pg_shadow", "pg_catalog.pg_shadow"),
    (PG, 'SELECT * FROM "PG_AUTHID"', "pg_authid"),
    (PG, "SELECT * FROM shop.pg_catalog.pg_authid", "shop.pg_catalog.pg_authid"),
    (PG, "SELECT a.rolpassword FROM pg_authid AS a", "pg_authid"),
    (PG, "WITH r AS (SELECT * FROM pg_shadow) SELECT usename FROM r", "pg_shadow"),
    (PG, "SELECT 1 FROM orders o JOIN pg_shadow s ON s.usesysid = o.id", "pg_shadow"),
    (PG, "SELECT usename FROM pg_user UNION SELECT usename FROM pg_shadow", "pg_shadow"),
    (PG, "SELECT (SELECT passwd FROM pg_shadow LIMIT 1) AS p", "pg_shadow"),
    (PG, "SELECT 1 WHERE EXISTS (SELECT 1 FROM pg_authid WHERE rolpassword > 'S')", "pg_authid"),
    (PG, "TABLE pg_authid", "pg_authid"),
    (PG, "SELECT * FROM ONLY pg_authid", "pg_authid"),
    (PG, "COPY (SELECT * FROM pg_shadow) TO STDOUT", "pg_shadow"),
    (PG, "PREPARE p AS SELECT * FROM pg_authid", "pg_authid"),
    (PG, "DECLARE c CURSOR FOR SELECT * FROM pg_authid", "pg_authid"),
    (PG, "CREATE VIEW v AS SELECT * FROM pg_authid", "pg_authid"),
    (PG, "CREATE TABLE copy AS SELECT * FROM pg_shadow", "pg_shadow"),
    (PG, "EXPLAIN SELECT * FROM pg_authid", "pg_authid"),
    (PG, "DO $$ BEGIN PERFORM * FROM pg_authid; END $$", "pg_authid"),
    (PG, "DO $body$ BEGIN PERFORM * FROM pg_authid; END $body$", "pg_authid"),
    (PG, "SELECT 1; SELECT * FROM pg_authid", "pg_authid"),
    # other credentials and authentication configuration
    (PG, "SELECT umoptions FROM pg_user_mapping", "pg_user_mapping"),
    (PG, "SELECT srvname, umoptions FROM pg_user_mappings", "pg_user_mappings"),
    (PG, "SELECT * FROM information_schema.user_mapping_options", None),
    (PG, "SELECT * FROM INFORMATION_SCHEMA._PG_USER_MAPPINGS", None),
    (PG, "SET search_path = information_schema; SELECT * FROM user_mapping_options", None),
    (PG, "SELECT set_config('search_path', 'information_schema', true); " + PG_MAPPINGS, None),
    (PG, "SELECT subconninfo FROM pg_subscription", "pg_subscription"),
    (PG, "SELECT srvoptions FROM pg_foreign_server", "pg_foreign_server"),
    (PG, "SELECT * FROM information_schema.foreign_server_options", None),
    (PG, "SELECT conninfo FROM pg_stat_wal_receiver", "pg_stat_wal_receiver"),
    (PG, "SELECT * FROM pg_stat_get_wal_receiver()", "pg_stat_get_wal_receiver"),
    (PG, "SELECT * FROM pg_hba_file_rules", "pg_hba_file_rules"),
    (PG, "SELECT * FROM pg_catalog.pg_hba_file_rules()", "pg_catalog.pg_hba_file_rules"),
    (PG, "SELECT * FROM pg_ident_file_mappings", "pg_ident_file_mappings"),
    (PG, "SELECT * FROM pg_file_settings", "pg_file_settings"),
    (PG, "SELECT * FROM pg_show_all_file_settings()", "pg_show_all_file_settings"),
    (PG, "SELECT name, setting FROM pg_settings", "pg_settings"),
    (PG, "SELECT setconfig FROM pg_db_role_setting", "pg_db_role_setting"),
    # settings: SHOW and functions
    (PG, "SHOW ALL", "SHOW ALL"),
    (PG, "show all", "SHOW ALL"),
    (PG, "SHOW primary_conninfo", None),
    (PG, "SHOW app.jwt_secret", None),
    (PG, 'SHOW "app.jwt_secret"', None),
    (PG, "SELECT current_setting('primary_conninfo')", None),
    (PG, "SELECT current_setting('app.jwt_secret', true)", None),
    (PG, "SELECT pg_catalog.current_setting(name) FROM (VALUES ('x')) v(name)", None),
    # other sessions' SQL (it can carry ALTER ROLE ... PASSWORD '...')
    (PG, "SELECT query FROM pg_stat_activity", "pg_stat_activity"),
    (PG, "SELECT * FROM pg_stat_get_activity(NULL)", "pg_stat_get_activity"),
    (PG, "SELECT pg_stat_get_backend_activity(1)", "pg_stat_get_backend_activity"),
    (PG, "SELECT query FROM pg_stat_statements", "pg_stat_statements"),
    # functions that read a table or run SQL named in a string
    (PG, "SELECT table_to_xml('pg_authid', true, false, '')", "table_to_xml"),
    (PG, "SELECT table_to_xml(1260::oid::regclass, true, false, '')", "table_to_xml"),
    (PG, "SELECT schema_to_xml('pg_catalog', true, false, '')", "schema_to_xml"),
    (PG, "SELECT query_to_xml('select 1', true, false, '')", "query_to_xml"),
    (PG, "SELECT * FROM dblink('dbname=x', 'select 1') AS t(a int)", "dblink"),
    (PG, "SELECT my_func('SELECT rolpassword FROM pg_authid')", "pg_authid"),
    (PG, "SELECT my_func(E'SELECT rolpassword FROM pg\\x5fauthid')", "pg_authid"),
    (PG, "SELECT my_func(U&'SELECT rolpassword FROM pg\\005fauthid')", "pg_authid"),
    (PG, "SELECT my_func(U&'SELECT rolpassword FROM pg\\+00005fauthid')", "pg_authid"),
    # MySQL / MariaDB
    (MY, "SELECT user, authentication_string FROM mysql.user", "mysql.user"),
    (MY, "SELECT * FROM `mysql`.`user`", "mysql.user"),
    (MY, "SELECT * FROM MYSQL.USER", "mysql.user"),
    (MY, "SELECT * FROM mysql . /* x */ global_priv", "mysql.global_priv"),
    (MY, "SELECT * FROM (SELECT * FROM mysql.global_priv) t", "mysql.global_priv"),
    (MY, "SELECT 1 UNION SELECT Password FROM mysql.servers", "mysql.servers"),
    (MY, "SELECT * FROM orders o JOIN mysql.db d ON d.User = o.status", "mysql.db"),
    (MY, "WITH u AS (SELECT * FROM mysql.tables_priv) SELECT * FROM u", "mysql.tables_priv"),
    (MY, "SELECT * FROM mysql.columns_priv", "mysql.columns_priv"),
    (MY, "SELECT * FROM mysql.procs_priv", "mysql.procs_priv"),
    (MY, "SELECT * FROM mysql.proxies_priv", "mysql.proxies_priv"),
    (MY, "SELECT * FROM mysql.roles_mapping", "mysql.roles_mapping"),
    (MY, "SELECT * FROM mysql.password_history", "mysql.password_history"),
    (MY, "SELECT User_password FROM mysql.slave_master_info", "mysql.slave_master_info"),
    (MY, "TABLE mysql.user", "mysql.user"),
    (MY, "HANDLER mysql.user OPEN", "mysql.user"),
    (MY, "PREPARE s FROM 'SELECT * FROM mysql.user'", "mysql.user"),
    # 'SELECT * FROM mysql.user' as a hex literal, which MySQL prepares as SQL text
    (MY, "PREPARE s FROM 0x53454c454354202a2046524f4d206d7973716c2e75736572", "mysql.user"),
    (MY, "PREPARE s FROM X'53454C454354202A2046524F4D206D7973716C2E75736572'", "mysql.user"),
    (MY, "PREPARE s FROM _latin1'SELECT * FROM mysql.user'", "mysql.user"),
    (MY, "CREATE VIEW v AS SELECT * FROM mysql.user", "mysql.user"),
    (MY, "INSERT INTO t SELECT authentication_string FROM mysql.user", "mysql.user"),
    (MY, "USE mysql; SELECT * FROM user", "mysql.user"),
    (MY, "USE `mysql`; SELECT * FROM global_priv", "mysql.global_priv"),
    (MY, "SELECT * FROM information_schema.USER_PRIVILEGES", None),
    (MY, "SELECT * FROM INFORMATION_SCHEMA.table_privileges", None),
    (MY, "SELECT * FROM information_schema.processlist", None),
    (MY, "SELECT * FROM performance_schema.replication_connection_configuration", None),
    (MY, "SELECT * FROM performance_schema.threads", None),
    (MY, "SELECT * FROM sys.processlist", None),
    (MY, "USE performance_schema", None),
    (MY, "SELECT argument FROM mysql.general_log", "mysql.general_log"),
    (MY, "SHOW GRANTS", "SHOW GRANTS"),
    (MY, "SHOW GRANTS FOR 'root'@'localhost'", "SHOW GRANTS"),
    (MY, "show /* x */ grants for current_user", "SHOW GRANTS"),
    (MY, "SHOW CREATE USER root", "SHOW CREATE USER"),
    (MY, "SHOW PROCESSLIST", "SHOW PROCESSLIST"),
    (MY, "SHOW FULL PROCESSLIST", "SHOW FULL PROCESSLIST"),
    (MY, "SHOW ENGINE INNODB STATUS", "SHOW ENGINE"),
    (MY, "SHOW SLAVE STATUS", "SHOW SLAVE"),
    (MY, "SHOW REPLICA STATUS", "SHOW REPLICA"),
    (MY, "SHOW ALL SLAVES STATUS", "SHOW ALL SLAVES"),
    (MY, "SHOW SLAVE HOSTS", "SHOW SLAVE"),
    # SQLite's user-authentication extension
    (LITE, "SELECT * FROM sqlite_user", "sqlite_user"),
    (LITE, "SELECT uname, pw FROM main.SQLITE_USER", "main.sqlite_user"),
    (LITE, 'SELECT * FROM (SELECT * FROM "sqlite_user")', "sqlite_user"),
]


@pytest.mark.parametrize(("dialect", "sql", "name"), NAMED)
def test_it_finds_credentials_in_every_spelling(dialect: str, sql: str, name: str | None) -> None:
    found = credential_uses(sql, dialect)
    assert len(found) == 1, found
    if name is not None:
        assert found[0].name == name
    message = found[0].message
    assert message.endswith(".") and "administrators" in message


NOT_NAMED = [
    (PG, "SELECT rolname, rolpassword FROM pg_roles"),  # always '********'
    (PG, "SELECT usename, passwd FROM pg_user"),  # always '********'
    (PG, "SELECT relname FROM pg_class WHERE relname LIKE 'pg_%'"),
    (PG, "SELECT * FROM user_mapping_options"),  # not on the search path
    (PG, "SELECT current_setting('work_mem')"),
    (PG, "SHOW work_mem"),
    (PG, "SHOW search_path"),
    (PG, "SELECT * FROM information_schema.tables"),
    (MY, "SELECT user, host FROM accounts"),
    (MY, "SELECT u.user FROM mydb.user u"),
    (MY, "SELECT * FROM db"),
    (MY, "SHOW TABLES"),
    (MY, "SHOW PRIVILEGES"),
    (MY, "SELECT table_name FROM information_schema.tables"),
    (LITE, "SELECT name FROM sqlite_master"),
    (LITE, "SELECT name FROM pragma_table_info('orders')"),
]


@pytest.mark.parametrize(("dialect", "sql"), NOT_NAMED)
def test_ordinary_statements_are_not_credentials(dialect: str, sql: str) -> None:
    assert credential_uses(sql, dialect) == ()


def test_bare_names_resolve_in_the_connections_database() -> None:
    assert credential_uses("SELECT * FROM user", MY) == ()
    (found,) = credential_uses("SELECT * FROM user", MY, default_schema="mysql")
    assert found.name == "mysql.user"
    (found,) = credential_uses("SELECT 1", MY, default_schema="performance_schema")
    assert found.name == "performance_schema"


def test_each_statement_of_a_batch_is_reported_once() -> None:
    found = credential_uses(
        "SELECT 1; SELECT * FROM pg_authid JOIN pg_shadow ON true; SHOW ALL", PG
    )
    assert [(f.statement, f.name) for f in found] == [(1, "pg_authid"), (2, "SHOW ALL")]


@pytest.mark.parametrize("sql", ["SELECT 'unterminated", "", "   ", "SELECT $$ x"])
def test_text_that_does_not_tokenize_is_left_to_the_analyzer(sql: str) -> None:
    assert credential_uses(sql, PG) == ()


def test_large_batches_are_checked_too() -> None:
    (found,) = credential_uses("SELECT * FROM pg_authid -- " + "x" * 200_000, PG)
    assert found.name == "pg_authid"


CREDENTIAL_SOUP = [
    "SELECT", "FROM", "pg_authid", "mysql", ".", "user", "USE", "SHOW", "GRANTS", "ALL",
    "current_setting", "(", ")", "'", "'pg_authid'", "$$", "0x6D7973716C", "U&'\\005f'", ";",
    "information_schema", "user_mapping_options", "performance_schema", "`", '"', "\\",
    "sqlite_user", "PREPARE", "x", ",", "/*", "*/", "--", "\n",
]  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sql=st.one_of(st.text(max_size=200), st.lists(st.sampled_from(CREDENTIAL_SOUP)).map(" ".join)),
    dialect=st.sampled_from([PG, MY, LITE]),
)
def test_it_never_raises_and_never_fails_internally(sql: str, dialect: str) -> None:
    for found in credential_uses(sql, dialect, default_schema="mysql"):
        assert found.holds != "could not be checked for credentials", sql

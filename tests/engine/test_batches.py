"""Splitting batches with the dialect's tokenizer, and refusing what cannot be read safely."""

from __future__ import annotations

import pytest

from governance.engine import Category, Risk, analyze
from governance.engine.analyzer import MAX_SQL_CHARS


def test_postgres_backslash_does_not_escape_so_the_delete_is_a_second_statement() -> None:
    analysis = analyze(r"SELECT 'a\'; DELETE FROM t", "postgres")
    assert [s.category for s in analysis.statements] == [Category.READ, Category.WRITE]
    assert analysis.statements[1].sql == "DELETE FROM t"


def test_mysql_backslash_escapes_so_the_string_never_ends() -> None:
    analysis = analyze(r"SELECT 'a\'; DELETE FROM t", "mysql")
    assert analysis.error is not None
    assert analysis.statements == ()


def test_mysql_backslash_escape_inside_a_closed_string_is_one_read() -> None:
    analysis = analyze(r"SELECT 'a\'; DELETE FROM t'", "mysql")
    assert [s.category for s in analysis.statements] == [Category.READ]


def test_dollar_quoted_semicolons_stay_inside_one_statement() -> None:
    analysis = analyze("SELECT $$; DROP TABLE x$$", "postgres")
    assert len(analysis.statements) == 1
    assert analysis.category == Category.READ


def test_each_statement_keeps_its_exact_source_text() -> None:
    sql = "select 1 ;  /* c */ Update  t set a = 1 where id = 2 -- done\n;"
    analysis = analyze(sql, "postgres")
    assert [s.sql for s in analysis.statements] == ["select 1", "Update  t set a = 1 where id = 2"]
    assert [s.index for s in analysis.statements] == [0, 1]


def test_batch_risk_and_category_are_the_worst_statement() -> None:
    analysis = analyze("SELECT 1; DROP TABLE t; SELECT 2", "postgres")
    assert analysis.risk == Risk.CRITICAL
    assert analysis.category == Category.DDL


def test_mysql_hash_comment_does_not_hide_the_next_statement() -> None:
    analysis = analyze("SELECT 1 # comment ; still comment\n; DELETE FROM t", "mysql")
    assert [s.category for s in analysis.statements] == [Category.READ, Category.WRITE]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 #>'\n, ssn FROM customers -- '",
        "SELECT 1 #>>'\n, sleep(10) -- '",
        "SELECT a #> b FROM t",
    ],
)
def test_mysql_hash_is_always_a_comment_never_a_json_operator(sql: str) -> None:
    # MariaDB ignores the rest of the line after `#` and runs the next line: sqlglot read
    # `#>` as an operator, so `SELECT 1 #>'<newline>, ssn FROM customers -- '` was a
    # harmless read of a string while the server returned every raw SSN.
    analysis = analyze(sql, "mysql")
    assert analysis.statements == ()
    assert analysis.error and "comment" in analysis.error


def test_hash_arrow_is_a_json_operator_in_postgres() -> None:
    assert analyze("SELECT '{\"a\": [1]}'::jsonb #> '{a,0}'", "postgres").category == Category.READ


def test_mysql_double_dash_needs_a_space_to_be_a_comment() -> None:
    analysis = analyze("SELECT 1--1; DELETE FROM t", "mysql")
    assert [s.category for s in analysis.statements] == [Category.READ, Category.WRITE]


@pytest.mark.parametrize(
    "sql",
    [
        "/*! DROP TABLE x */",
        "/*! DROP TABLE x */ SELECT 1",
        "SELECT 1 /*!50000 , (SELECT 1 FROM mysql.user) */",
        "SELECT 1 /*M! , 2 */",
        "SELECT 1; /*! DROP TABLE x */",
        "CALL p() /*! ; DROP TABLE x */",
    ],
)
def test_mysql_executable_comments_are_refused(sql: str) -> None:
    analysis = analyze(sql, "mysql")
    if analysis.error is None:
        assert any("executable_comment" in s.flags for s in analysis.statements)
        assert analysis.category == Category.UNKNOWN
    else:
        assert "executable comment" in analysis.error


def test_executable_comment_syntax_is_only_a_comment_in_postgres() -> None:
    assert analyze("/*! DROP TABLE x */ SELECT 1", "postgres").category == Category.READ


@pytest.mark.parametrize("sql", ["", "   \n\t", "-- nothing", "/* nothing */", ";;", " ; -- x"])
def test_empty_input_is_an_error(sql: str) -> None:
    analysis = analyze(sql, "postgres")
    assert analysis.error == "Empty statement: nothing to run."


def test_nul_byte_is_refused() -> None:
    assert "NUL" in (analyze("SELECT 1\x00; DROP TABLE t", "postgres").error or "")


def test_parse_error_carries_the_parsers_message() -> None:
    analysis = analyze("SELEC * FROM t", "postgres")
    assert analysis.statements == ()
    assert analysis.error and "line 1" in analysis.error


def test_unterminated_comment_is_refused() -> None:
    assert analyze("SELECT 1 /* DELETE FROM t", "postgres").error is not None


def test_ten_thousand_nested_parentheses_fail_closed() -> None:
    sql = "SELECT " + "(" * 10_000 + "1" + ")" * 10_000
    assert analyze(sql, "postgres").error == "Statement too complex to analyze safely."


def test_moderate_nesting_still_parses() -> None:
    sql = "SELECT " + "(" * 20 + "1" + ")" * 20
    assert analyze(sql, "postgres").category == Category.READ


def test_one_megabyte_is_refused_quickly_with_a_clear_error() -> None:
    sql = "SELECT a, b, c FROM t WHERE x = 1;\n" * 30_000
    assert len(sql) > MAX_SQL_CHARS
    assert "too large" in (analyze(sql, "postgres").error or "")


def test_large_single_statement_below_the_cap_is_analyzed() -> None:
    sql = "SELECT * FROM t WHERE id IN (" + ",".join(str(i) for i in range(20_000)) + ")"
    assert analyze(sql, "postgres").category == Category.READ


def test_too_many_statements_are_refused() -> None:
    assert "Too many statements" in (analyze("SELECT 1;" * 1001, "postgres").error or "")


def test_unsupported_dialect_is_an_error() -> None:
    assert analyze("SELECT 1", "oracle").error is not None

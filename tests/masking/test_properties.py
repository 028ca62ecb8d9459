"""Robustness (hypothesis), caching, timings and the small helpers."""

from __future__ import annotations

import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from governance.engine.masking import (
    Strategy,
    mask_expression,
    mask_select,
    pseudonym,
    sqlite_functions,
)

from .policy import KEY, static_policy

POLICY = static_policy()
WORDS = [
    "SELECT",
    "FROM",
    "WHERE",
    "customers",
    "c",
    "ssn",
    "email",
    "*",
    ",",
    "(",
    ")",
    "UNION",
    "WITH",
    "AS",
    "x",
    "JOIN",
    "ON",
    "=",
    "'a'",
    "1",
    "upper",
    "count",
    "row_to_json",
    "c.*",
    "LATERAL",
    "ORDER BY",
    "GROUP BY",
    ";",
    "::text",
    "||",
    "NULL",
    "CASE",
    "WHEN",
    "END",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join),
    st.sampled_from(["postgres", "mysql", "sqlite"]),
)
def test_never_raises_on_token_soup(sql: str, dialect: str) -> None:
    result = mask_select(sql, dialect, POLICY)
    assert result.held is None or result.sql == ""
    if result.held is None and result.touches_sensitive:
        assert result.sql  # something to run, masked


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.sampled_from(["postgres", "mysql", "sqlite", "oracle"]))
def test_never_raises_on_any_text(sql: str, dialect: str) -> None:
    mask_select(sql, dialect, POLICY)


def test_unknown_dialect_is_held() -> None:
    assert mask_select("SELECT ssn FROM customers", "oracle", POLICY).held


TYPICAL = [
    "SELECT * FROM customers",
    "SELECT c.id, c.email, o.total_cents FROM customers c JOIN orders o ON o.customer_id = c.id "
    "WHERE o.status = 'paid' ORDER BY o.total_cents DESC LIMIT 10",
    "WITH t AS (SELECT customer_id, sum(total_cents) AS s FROM orders GROUP BY customer_id) "
    "SELECT c.full_name, t.s FROM customers c JOIN t ON t.customer_id = c.id",
    "SELECT email FROM customers UNION SELECT work_email FROM employees",
    "SELECT count(DISTINCT ssn), max(date_of_birth) FROM customers",
    "SELECT id, status FROM orders WHERE total_cents > 1000",
]


def test_results_are_cached() -> None:
    # Rewrite timings are reported by `manage.py benchmark`, never asserted in tests.
    for sql in TYPICAL:
        assert mask_select(sql, "postgres", POLICY) is mask_select(sql, "postgres", POLICY)


def test_no_key_is_ever_part_of_a_masked_statement() -> None:
    for dialect, marker in (("postgres", "$1"), ("mysql", "@warden_pk_i"), ("sqlite", "")):
        result = mask_select("SELECT full_name FROM customers", dialect, POLICY)
        assert result.keyed and marker in result.sql
        assert KEY.decode() not in result.sql and "test-key" not in result.sql
    assert not mask_select("SELECT email FROM customers", "postgres", POLICY).keyed


def test_the_pseudonym_is_a_real_hmac_sha256() -> None:
    import hashlib
    import hmac

    expected = hmac.new(KEY, b"Ada Lovelace", hashlib.sha256).hexdigest()[:16]
    assert pseudonym("Ada Lovelace", KEY) == "anon_" + expected


def test_mask_expression_dialects() -> None:
    value = exp.column("x")
    pg = mask_expression(value, "phone", Strategy.PARTIAL, "postgres").sql("postgres")
    assert "RIGHT(CAST(x AS TEXT), 4)" in pg
    my = mask_expression(value, "phone", Strategy.PARTIAL, "mysql").sql("mysql")
    assert "RIGHT(CAST(x AS CHAR), 4)" in my
    lite = mask_expression(value, "phone", Strategy.PSEUDONYM, "sqlite").sql("sqlite")
    assert lite == "WARDEN_PSEUDONYM(x)"
    nulled = mask_expression(value, "email", Strategy.NULL, "mysql").sql("mysql")
    assert nulled == "CASE WHEN FALSE THEN CAST(x AS CHAR) END"  # x resolved, never evaluated


def test_sqlite_functions_register_and_agree() -> None:
    conn = sqlite3.connect(":memory:")
    for name, (nargs, func) in sqlite_functions(KEY).items():
        conn.create_function(name, nargs, func, deterministic=True)
    row = conn.execute(
        "SELECT warden_pseudonym('a@b.c'), warden_bucket(54321), "
        "warden_bucket(7), warden_bucket(NULL)"
    ).fetchone()
    assert row == (pseudonym("a@b.c", KEY), "50000-59999", "0-9", None)
    conn.close()

"""EXPLAIN on connections with masked columns: allowed where it evaluates no values."""

from __future__ import annotations

import pytest

from governance.engine.masking import mask_select

from .conftest import Target
from .policy import static_policy

POLICY = static_policy()
PG, MY, LITE = "postgres", "mysql", "sqlite"

PLANS = [
    (PG, "EXPLAIN SELECT * FROM customers"),
    (PG, "explain select email, ssn from customers where id = 1"),
    (PG, "EXPLAIN (FORMAT JSON) SELECT email FROM customers"),
    (PG, "EXPLAIN (FORMAT yaml, COSTS false) SELECT c.email FROM customers c"),
    (PG, "EXPLAIN (COSTS off, SUMMARY) SELECT upper(ssn) FROM customers"),
    (PG, "EXPLAIN (ANALYZE false, VERBOSE off) SELECT email FROM customers"),
    (PG, "EXPLAIN SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id"),
    (PG, "EXPLAIN WITH s AS (SELECT email FROM customers) SELECT * FROM s"),
    (PG, "EXPLAIN SELECT email FROM customers UNION SELECT work_email FROM employees"),
    (PG, "EXPLAIN DELETE FROM orders WHERE id = 1"),  # a table without rules
    (MY, "EXPLAIN SELECT * FROM customers WHERE id = 1"),
    (MY, "DESCRIBE SELECT email FROM customers ORDER BY id"),
    (MY, "EXPLAIN FORMAT=TRADITIONAL SELECT email, ssn FROM customers"),
    (
        MY,
        "EXPLAIN SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE c.city = 'x'",
    ),
    (MY, "EXPLAIN SELECT email FROM customers UNION SELECT work_email FROM employees"),
    (MY, "EXPLAIN SELECT id AS i, email FROM customers ORDER BY i, 1"),
    (MY, "EXPLAIN SELECT city, count(*) AS n FROM customers GROUP BY city HAVING n > 1"),
    (LITE, "EXPLAIN QUERY PLAN SELECT * FROM customers"),
    (LITE, "EXPLAIN SELECT email FROM customers WHERE id = 1"),
]


@pytest.mark.parametrize(("dialect", "sql"), PLANS)
def test_explain_of_a_masked_read_runs_as_written(dialect: str, sql: str) -> None:
    result = mask_select(sql, dialect, POLICY)
    assert result.held is None, result.held
    assert result.sql == sql  # a plan holds no values: nothing to rewrite
    assert not [p for p in result.probes if p.holds]
    assert not any(c.masked for c in result.columns)


@pytest.mark.parametrize(
    ("dialect", "prefix", "inner"),
    [
        (PG, "EXPLAIN", "SELECT id FROM customers WHERE ssn = '282-32-3658'"),
        (PG, "EXPLAIN (FORMAT JSON)", "SELECT id FROM customers ORDER BY ssn"),
        (
            PG,
            "EXPLAIN",
            "SELECT c.id FROM customers c JOIN payment_cards p ON p.card_number = c.ssn",
        ),
        (LITE, "EXPLAIN QUERY PLAN", "SELECT id FROM customers WHERE ssn LIKE '2%'"),
        (LITE, "EXPLAIN", "SELECT id FROM customers GROUP BY ssn"),
    ],
)
def test_the_probes_of_the_explained_statement_are_the_explains(
    dialect: str, prefix: str, inner: str
) -> None:
    explained = mask_select(f"{prefix} {inner}", dialect, POLICY)
    assert explained.held is None
    assert explained.probes and explained.probes == mask_select(inner, dialect, POLICY).probes


REFUSED = [
    # options that run the statement or print more than the plan
    (PG, "EXPLAIN ANALYZE SELECT email FROM customers", "ANALYZE"),
    (PG, "EXPLAIN ANALYSE SELECT email FROM customers", "ANALYSE"),
    (PG, "EXPLAIN VERBOSE SELECT email FROM customers", "VERBOSE"),
    (PG, "EXPLAIN (ANALYZE) SELECT email FROM customers", "ANALYZE"),
    (PG, "EXPLAIN (analyze true) SELECT email FROM customers", "ANALYZE"),
    (PG, "EXPLAIN (FORMAT JSON, ANALYZE) SELECT email FROM customers", "ANALYZE"),
    (PG, "EXPLAIN (ANALYZE 'false') SELECT email FROM customers", "ANALYZE"),
    (PG, "EXPLAIN (VERBOSE) SELECT email FROM customers", "VERBOSE"),
    (PG, "EXPLAIN (SETTINGS) SELECT email FROM customers", "SETTINGS"),
    (PG, "EXPLAIN (BUFFERS) SELECT email FROM customers", "BUFFERS"),
    (PG, "EXPLAIN (WAL, TIMING) SELECT email FROM customers", "WAL"),
    (PG, "EXPLAIN (SERIALIZE) SELECT email FROM customers", "SERIALIZE"),
    (MY, "EXPLAIN ANALYZE SELECT email FROM customers", "ANALYZE"),
    (MY, "EXPLAIN EXTENDED SELECT email FROM customers", "EXTENDED"),
    (MY, "EXPLAIN PARTITIONS SELECT email FROM customers", "PARTITIONS"),
    (MY, "EXPLAIN FORMAT=JSON SELECT email FROM customers", "FORMAT"),
    (MY, "EXPLAIN FORMAT = TREE SELECT email FROM customers", "FORMAT"),
    (MY, "DESC FORMAT=JSON SELECT email FROM customers", "FORMAT"),
    (MY, "ANALYZE SELECT email FROM customers", "ANALYZE"),
    (MY, "ANALYZE FORMAT=JSON SELECT email FROM customers", "ANALYZE"),
    (MY, "EXPLAIN FOR CONNECTION 12", ""),
    # MariaDB/MySQL read const rows and evaluate constant subqueries while planning: a
    # sensitive column anywhere but the outer select list can surface in the plan
    (
        MY,
        "EXPLAIN SELECT 1 FROM customers c JOIN orders o ON o.status = c.email WHERE c.id = 1",
        "email",
    ),
    (MY, "EXPLAIN SELECT id FROM customers WHERE id = 1 AND ssn = '282-32-3658'", "ssn"),
    (MY, "EXPLAIN SELECT (SELECT ssn FROM customers WHERE id = 1) AS s", "ssn"),
    (
        MY,
        "EXPLAIN SELECT * FROM orders WHERE status = (SELECT email FROM customers WHERE id = 1)",
        "email",
    ),
    (MY, "EXPLAIN SELECT email FROM customers ORDER BY email", "email"),
    # an alias or a position names the sensitive column too ("Impossible HAVING noticed after
    # reading const tables" answers whether customer 1's email is 'x')
    (MY, "EXPLAIN SELECT email AS e FROM customers WHERE id = 1 HAVING e = 'x'", "e"),
    (MY, "EXPLAIN SELECT lower(email) AS e FROM customers ORDER BY e", "e"),
    (MY, "EXPLAIN SELECT id, email FROM customers ORDER BY 2", "position 2"),
    (MY, "EXPLAIN SELECT email, count(*) FROM customers GROUP BY 1", "position 1"),
    (MY, "EXPLAIN SELECT count(*) FROM customers GROUP BY phone HAVING count(*) > 1", "phone"),
    (MY, "EXPLAIN SELECT * FROM (SELECT * FROM customers WHERE id = 1) t", "customers"),
    (MY, "EXPLAIN SELECT 1 FROM customers JOIN employees USING (full_name)", "full_name"),
    (MY, "EXPLAIN SELECT 1 FROM customers NATURAL JOIN employees", "NATURAL"),
    # the explained statement is refused: EXPLAIN is too
    (PG, "EXPLAIN SELECT c FROM customers c", "whole row"),
    (PG, "EXPLAIN SELECT * FROM pg_stats", "pg_stats"),
    (PG, "EXPLAIN UPDATE customers SET ssn = 'x' WHERE id = 1", "protected"),
    (PG, "EXPLAIN EXECUTE prepared_query", "EXECUTE"),
    (PG, "EXPLAIN EXPLAIN SELECT 1", "EXPLAIN"),
    (PG, "EXPLAIN", "statement"),
    (PG, "EXPLAIN (FORMAT JSON", ""),
    (MY, "EXPLAIN SELECT * FROM mysql.column_stats", "column_stats"),
    (LITE, "EXPLAIN QUERY PLAN SELECT * FROM sqlite_stat4", "sqlite_stat4"),
]


@pytest.mark.parametrize(("dialect", "sql", "named"), REFUSED)
def test_explain_that_runs_prints_values_or_explains_a_refused_statement_is_held(
    dialect: str, sql: str, named: str
) -> None:
    result = mask_select(sql, dialect, POLICY)
    assert result.held, result
    assert result.sql == ""
    assert named in result.held and result.held.endswith(".")


def test_explain_of_a_table_is_still_describe() -> None:
    """MySQL's EXPLAIN t is DESCRIBE t, and ANALYZE TABLE t no statement: nothing explained."""
    assert mask_select("EXPLAIN orders", MY, POLICY).held is None
    assert "EXPLAIN" not in (mask_select("ANALYZE TABLE orders", MY, POLICY).held or "")


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN SELECT * FROM customers WHERE id = 1",
        "EXPLAIN SELECT email, ssn FROM customers ORDER BY id",
        "EXPLAIN SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id",
    ],
)
def test_allowed_explains_print_no_raw_value(target: Target, sql: str) -> None:
    dialect_sql = sql.replace("EXPLAIN", "EXPLAIN QUERY PLAN") if target.dialect == LITE else sql
    result = mask_select(dialect_sql, target.dialect, target.policy)
    assert result.held is None, result.held
    plan = target.run(result.sql)
    assert plan
    printed = repr(plan)
    raw = {
        str(v)
        for row in target.run("SELECT email, ssn, phone, full_name FROM customers WHERE id = 1")
        for v in row
    }
    assert not any(value in printed for value in raw)

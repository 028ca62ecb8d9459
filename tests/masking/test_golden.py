"""Golden lineage corpus: for each statement, every output column's sources and mask."""

from __future__ import annotations

import pytest
import sqlglot

from governance.engine.masking import MaskResult, mask_select

from .policy import static_policy

POLICY = static_policy()
ALL = ("postgres", "mysql", "sqlite")
C = "customers"

# expected: tuple of (output name, strategy or None, sources)
Expected = tuple[tuple[str, str | None, tuple[tuple[str, str], ...]], ...]


def col(name: str, strategy: str | None, *sources: str) -> tuple[str, str | None, tuple]:
    return (name, strategy, tuple(sorted(tuple(s.split(".")) for s in sources)))


CUSTOMERS_STAR: Expected = (
    col("id", None, "customers.id"),
    col("full_name", "pseudonym", "customers.full_name"),
    col("email", "partial", "customers.email"),
    col("phone", "partial", "customers.phone"),
    col("ssn", "redact", "customers.ssn"),
    col("date_of_birth", "generalize", "customers.date_of_birth"),
    col("street_address", "redact", "customers.street_address"),
    col("city", None, "customers.city"),
    col("country", None, "customers.country"),
    col("created_at", None, "customers.created_at"),
)

CORPUS: list[tuple[tuple[str, ...], str, Expected]] = [
    (ALL, "SELECT email FROM customers", (col("email", "partial", "customers.email"),)),
    (ALL, "SELECT upper(email) AS e FROM customers", (col("e", "redact", "customers.email"),)),
    (
        ALL,
        "SELECT c.email AS mail, c.id FROM customers c",
        (col("mail", "partial", "customers.email"), col("id", None, "customers.id")),
    ),
    (ALL, "SELECT count(DISTINCT ssn) AS n FROM customers", (col("n", None, "customers.ssn"),)),
    (ALL, "SELECT count(ssn) + 1 AS n FROM customers", (col("n", None, "customers.ssn"),)),
    (
        ALL,
        "SELECT max(ssn) AS m, min(email) AS e FROM customers",
        (col("m", "redact", "customers.ssn"), col("e", "redact", "customers.email")),
    ),
    (ALL, "SELECT * FROM customers", CUSTOMERS_STAR),
    (ALL, "SELECT c.* FROM customers c JOIN orders o ON o.customer_id = c.id", CUSTOMERS_STAR),
    (
        ALL,
        "WITH x AS (SELECT email AS m FROM customers) SELECT m FROM x",
        (col("m", "partial", "customers.email"),),
    ),
    (
        ALL,
        "WITH x AS (SELECT lower(email) AS m FROM customers) SELECT m FROM x",
        (col("m", "redact", "customers.email"),),
    ),
    (
        ALL,
        "SELECT s.e FROM (SELECT email AS e FROM customers) AS s",
        (col("e", "partial", "customers.email"),),
    ),
    (
        ALL,
        "SELECT s.e FROM (SELECT * FROM (SELECT ssn AS e FROM customers) a) AS s",
        (col("e", "redact", "customers.ssn"),),
    ),
    (
        ALL,
        "SELECT o.id, (SELECT c.email FROM customers c WHERE c.id = o.customer_id) AS e "
        "FROM orders o",
        (col("id", None, "orders.id"), col("e", "partial", "customers.email")),
    ),
    (
        ALL,
        "SELECT email AS v FROM customers UNION SELECT ssn FROM customers",
        (col("v", "redact", "customers.email", "customers.ssn"),),
    ),
    (
        ALL,
        "SELECT city AS v FROM customers UNION ALL SELECT ssn FROM customers",
        (col("v", "redact", "customers.city", "customers.ssn"),),
    ),
    (
        ALL,
        "SELECT phone FROM customers UNION SELECT phone FROM customers",
        (col("phone", "partial", "customers.phone"),),
    ),
    (
        ALL,
        "SELECT CASE WHEN id > 5 THEN email ELSE 'x' END AS v FROM customers",
        (col("v", "redact", "customers.email", "customers.id"),),
    ),
    (
        ALL,
        "SELECT COALESCE(email, phone) AS v FROM customers",
        (col("v", "redact", "customers.email", "customers.phone"),),
    ),
    (
        ("postgres", "sqlite"),
        "SELECT email || '' AS v FROM customers",
        (col("v", "redact", "customers.email"),),
    ),
    (
        ("mysql",),
        "SELECT CONCAT(email, '') AS v FROM customers",
        (col("v", "redact", "customers.email"),),
    ),
    (
        ("mysql",),
        "SELECT CAST(ssn AS CHAR) AS v FROM customers",
        (col("v", "redact", "customers.ssn"),),
    ),
    (("postgres",), "SELECT ssn::text AS v FROM customers", (col("v", "redact", "customers.ssn"),)),
    (
        ("postgres",),
        "SELECT json_agg(email) AS v FROM customers",
        (col("v", "redact", "customers.email"),),
    ),
    (
        ("postgres",),
        "SELECT json_build_object('e', email) AS v FROM customers",
        (col("v", "redact", "customers.email"),),
    ),
    (
        ("postgres",),
        "SELECT array_agg(ssn) AS v FROM customers",
        (col("v", "redact", "customers.ssn"),),
    ),
    (
        ("postgres",),
        "SELECT string_agg(phone, ',') AS v FROM customers",
        (col("v", "redact", "customers.phone"),),
    ),
    (
        ("mysql",),
        "SELECT group_concat(phone) AS v FROM customers",
        (col("v", "redact", "customers.phone"),),
    ),
    (
        ("mysql",),
        "SELECT json_object('e', email) AS v FROM customers",
        (col("v", "redact", "customers.email"),),
    ),
    (
        ("mysql",),
        "SELECT json_arrayagg(email) AS v FROM customers",
        (col("v", "redact", "customers.email"),),
    ),
    (
        ("sqlite",),
        "SELECT group_concat(phone) AS v FROM customers",
        (col("v", "redact", "customers.phone"),),
    ),
    (
        ("sqlite",),
        "SELECT json_group_array(email) AS v FROM customers",
        (col("v", "redact", "customers.email"),),
    ),
    (
        ALL,
        "SELECT id, lag(email) OVER (ORDER BY id) AS v FROM customers",
        (col("id", None, "customers.id"), col("v", "redact", "customers.email", "customers.id")),
    ),
    (
        ALL,
        "SELECT row_number() OVER (PARTITION BY ssn ORDER BY id) AS v FROM customers",
        (col("v", "redact", "customers.id", "customers.ssn"),),
    ),
    (
        ("postgres",),
        "SELECT l.s FROM customers c, LATERAL (SELECT c.ssn AS s) l",
        (col("s", "redact", "customers.ssn"),),
    ),
    (
        ("postgres",),
        "SELECT u.v FROM customers c CROSS JOIN LATERAL unnest(ARRAY[c.phone]) AS u(v)",
        (col("v", "redact", "customers.phone"),),
    ),
    (
        ALL,
        "WITH RECURSIVE r(n, s) AS (SELECT 1, email FROM customers UNION ALL "
        "SELECT n + 1, s FROM r WHERE n < 2) SELECT n, s FROM r",
        (col("n", None), col("s", "partial", "customers.email")),
    ),
    (
        ALL,
        "WITH RECURSIVE r(n, s) AS (SELECT 1, email FROM customers UNION ALL "
        "SELECT n + 1, upper(s) FROM r WHERE n < 2) SELECT n, s FROM r",
        (col("n", None), col("s", "redact", "customers.email")),
    ),
    (
        ALL,
        "SELECT full_name, work_email, salary_cents FROM employees",
        (
            col("full_name", None, "employees.full_name"),
            col("work_email", "pseudonym", "employees.work_email"),
            col("salary_cents", "generalize", "employees.salary_cents"),
        ),
    ),
    (
        ALL,
        "SELECT e.full_name FROM employees e WHERE e.work_email IN (SELECT email FROM customers)",
        (col("full_name", None, "employees.full_name"),),
    ),
    (ALL, "SELECT title FROM public_reports", (col("title", None, "public_reports.title"),)),
]


@pytest.mark.parametrize(
    ("dialect", "sql", "expected"),
    [(d, sql, exp) for dialects, sql, exp in CORPUS for d in dialects],
)
def test_golden(dialect: str, sql: str, expected: Expected) -> None:
    result = mask_select(sql, dialect, POLICY)
    assert result.held is None, result.held
    assert not result.conservative
    got = tuple((c.name, c.strategy, c.sources) for c in result.columns)
    assert got == expected
    masked = any(c.masked for c in result.columns)
    if masked:
        assert result.sql != sql and result.touches_sensitive
    elif result.touches_sensitive:  # runs as Warden read it: sqlglot's text of the statement
        assert result.sql == sqlglot.parse_one(result.sql, read=dialect).sql(dialect=dialect)


def test_unknown_table_is_conservative() -> None:
    result = mask_select("SELECT a, count(*) FROM mystery", "postgres", POLICY)
    assert result.conservative and result.held is None
    assert [c.masked for c in result.columns] == [True, False]
    assert "'****'" in result.sql


@pytest.mark.parametrize("dialect", ALL)
def test_unknown_star_is_held(dialect: str) -> None:
    result = mask_select("SELECT * FROM mystery", dialect, POLICY)
    assert result.held and result.conservative and result.sql == ""


def test_reasons_and_rules() -> None:
    result = mask_select(
        "SELECT email, upper(ssn) AS s, count(ssn) AS n FROM customers", "postgres", POLICY
    )
    email, s, n = result.columns
    assert email.reason == "direct reference to customers.email" and email.rule == "email: partial"
    assert s.reason == "derived from customers.ssn (function upper())"
    assert n.reason == "count() reveals no values" and not n.masked


def test_probes() -> None:
    result = mask_select(
        "SELECT c.id FROM customers c JOIN payment_cards p ON p.card_number = c.ssn "
        "WHERE c.email LIKE 'a%' ORDER BY p.card_number",
        "postgres",
        POLICY,
    )
    held = {(p.table, p.column, p.kind, p.where) for p in result.probes if p.holds}
    assert held == {
        ("customers", "ssn", "filter", "a join condition"),
        ("payment_cards", "card_number", "filter", "a join condition"),
        ("payment_cards", "card_number", "order", "ORDER BY"),
    }
    lookups = {(p.table, p.column, p.kind) for p in result.probes if not p.holds}
    assert lookups == {("customers", "email", "filter")}  # a lookup by e-mail is allowed
    assert result.touches_sensitive and result.sql.startswith('SELECT "c"."id"')


def test_nothing_sensitive_returns_input() -> None:
    sql = "SELECT id, status FROM orders WHERE total_cents > 100"
    result = mask_select(sql, "mysql", POLICY)
    assert result.sql == sql and not result.touches_sensitive and not result.probes


def test_union_order_limit_move_to_wrapper() -> None:
    result = mask_select(
        "SELECT email AS v FROM customers UNION SELECT city FROM customers ORDER BY v LIMIT 3",
        "postgres",
        POLICY,
    )
    assert result.sql.endswith('AS "warden_q" ORDER BY "warden_q"."v" LIMIT 3')


def _names(result: MaskResult) -> list[str]:
    return [c.name for c in result.columns]


def test_unaliased_names_are_natural() -> None:
    assert _names(
        mask_select("SELECT upper(email), count(*) FROM customers", "postgres", POLICY)
    ) == [
        "upper",
        "count",
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT public.customers.ssn FROM customers",
        "SELECT public.customers.ssn FROM public.customers",
        "SELECT customers.ssn FROM public.customers",
    ],
)
def test_a_schema_qualified_column_runs_under_the_alias_warden_gives(sql: str) -> None:
    """Once the rewrite aliases ``customers``, PostgreSQL no longer matches
    ``public.customers.ssn`` to it: the column must name the alias alone."""
    result = mask_select(sql, "postgres", POLICY)
    assert result.held is None and "public" not in result.sql.split("FROM")[0], result.sql
    assert [c.strategy for c in result.columns] == ["redact"]

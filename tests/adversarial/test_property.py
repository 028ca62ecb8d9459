"""Property: SQL composed around sensitive columns never gets a raw value out, on real PostgreSQL.

Hypothesis builds statements from a grammar of the constructs attackers use (disguising
functions, casts that fail on the value, aggregation, derived tables, row generators, filters,
set operations, DISTINCT, LIMIT…) and submits each through `run_submit`, as the editor does.
Whatever happens (masked rows, a hold, a denial, a failure), nothing Warden returns or records,
error text included, may contain a raw value, also disguised.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh
from governance.services.runs import run_submit

from .leaks import Secrets, run_document

pytestmark = pytest.mark.django_db(transaction=True)

SENSITIVE = ["c.ssn", "c.email", "c.full_name", "c.phone", "c.street_address", "c.email"]
PLAIN = ["c.id", "c.city", "c.country"]

WRAPPERS = [
    "{}",
    "upper({})",
    "reverse({})",
    "translate({}, '0123456789', 'abcdefghij')",
    "substr({}, 1, 7)",
    "'\"' || {}",
    "replace(replace({}, '@', ' at '), '.', ' dot ')",
    "encode(CAST({} AS bytea), 'base64')",
    "encode(CAST({} AS bytea), 'hex')",
    "md5({})",
    "coalesce({}, 'x')",
    "CAST(CAST({} AS int) AS text)",
    "CAST('\"' || {} AS int)::text",
    "({} || '')",
    "CASE WHEN {} LIKE 'a%' THEN 'a' ELSE 'b' END",
    "(SELECT c2.ssn FROM customers c2 WHERE c2.id = c.id AND {} IS NOT NULL)",
]
AGGREGATES = [
    "{}",
    "max({})",
    "string_agg({}, ',')",
    "count({})",
    "count(DISTINCT {})",
    "CAST(json_agg({}) AS text)",
    "CAST(array_agg({}) AS text)",
]
FROMS = [
    "customers c",
    "customers c CROSS JOIN generate_series(1, length({v})) g",
    "customers c JOIN orders o ON o.customer_id = c.id",
    "(SELECT * FROM customers) c",
    "customers c CROSS JOIN LATERAL (SELECT {v} AS w) l",
]
WHERES = [
    "",
    " WHERE c.id <= {n}",
    " WHERE {v} LIKE '1%'",
    " WHERE CAST({v} AS int) = 1",
    " WHERE length({v}) > {n}",
    " WHERE c.id IN (SELECT id FROM customers WHERE {v} IS NOT NULL)",
]


@st.composite
def values(draw: Any) -> str:
    column = draw(st.sampled_from(SENSITIVE + PLAIN[:1]))
    inner = draw(st.sampled_from(WRAPPERS)).format(column)
    if draw(st.booleans()):
        inner = draw(st.sampled_from(WRAPPERS)).format(inner)
    return inner


@st.composite
def statements(draw: Any) -> str:
    aggregate = draw(st.booleans())
    width = draw(st.integers(1, 3))
    projections = []
    for index in range(width):
        value = draw(values())
        shape = draw(st.sampled_from(AGGREGATES[1:] if aggregate else AGGREGATES[:1]))
        projections.append(f"{shape.format(value)} AS v{index}")
    if draw(st.booleans()) and not aggregate:
        projections.append(draw(st.sampled_from(PLAIN)))
    distinct = "DISTINCT " if draw(st.booleans()) and not aggregate else ""
    source = draw(st.sampled_from(FROMS)).format(v=draw(values()))
    where = draw(st.sampled_from(WHERES)).format(v=draw(values()), n=draw(st.integers(1, 40)))
    query = f"SELECT {distinct}{', '.join(projections)} FROM {source}{where}"
    if not aggregate and draw(st.booleans()):
        query += f" ORDER BY {draw(st.sampled_from(['1', draw(values())]))}"
    query += f" LIMIT {draw(st.integers(1, 30))}"
    shape = draw(st.sampled_from(["plain", "derived", "union", "scalar-in-generator"]))
    if shape == "derived":
        query = f"SELECT * FROM ({query}) t"
    elif shape == "union":
        nulls = ", ".join("NULL" for _ in projections)
        query = f"{query} UNION {draw(st.sampled_from(['', 'ALL ']))}SELECT {nulls}"
    elif shape == "scalar-in-generator":
        inner = draw(values())
        query = (
            "SELECT 1 AS x FROM generate_series(1, CAST('\"' || (SELECT "
            f"string_agg({inner}, ',') FROM customers c WHERE c.id <= 20) AS int)) g"
        )
    return query


@pytest.fixture
def governed_pg(pg_conn: Any, pg_target: str) -> tuple[Any, Secrets]:
    catalog_refresh(connection=pg_conn)
    pg_conn.refresh_from_db()
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=pg_target) as conn:
        rows = conn.execute(
            "SELECT ssn, email, full_name, phone, street_address FROM customers"
        ).fetchall()
    return pg_conn, Secrets(value for row in rows for value in row)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(sql=statements())
def test_no_statement_gets_a_raw_value_out(
    governed_pg: tuple[Any, Secrets], alice: Any, sql: str
) -> None:
    connection, secrets = governed_pg
    run = run_submit(caller=Caller(user=alice), connection=connection, sql=sql)
    run.refresh_from_db()
    secrets.assert_absent(f"{sql!r} ({run.status})", run_document(run))

"""What a write returns (RETURNING) is masked like a read: run on real databases, rolled back."""

from __future__ import annotations

import pytest

from governance.engine.masking import mask_write

from .conftest import Target
from .test_bypass import _cells, _raw_values

CASES = {
    "postgres": [
        "UPDATE customers SET city = city WHERE id <= 3 RETURNING email, ssn, full_name",
        "UPDATE customers SET city = city WHERE id <= 3 RETURNING *",
        "UPDATE customers AS c SET city = c.city FROM orders AS o "
        "WHERE o.customer_id = c.id AND o.id < 5 RETURNING c.ssn, upper(c.email) AS e, o.id",
        "DELETE FROM api_credentials WHERE id <= 2 RETURNING api_key, service",
        "INSERT INTO api_credentials (service, api_key, created_at) "
        "SELECT service, api_key || '-copy', created_at FROM api_credentials WHERE id <= 2 "
        "RETURNING api_key",
    ],
    "mysql": [
        "DELETE FROM api_credentials WHERE id <= 2 RETURNING api_key, service",
        "DELETE FROM payment_cards WHERE id <= 2 RETURNING *",
    ],
    "sqlite": [
        "UPDATE customers SET city = city WHERE id <= 3 RETURNING email, ssn, full_name",
        "UPDATE customers SET city = city WHERE id <= 3 RETURNING *",
        "DELETE FROM api_credentials WHERE id <= 2 RETURNING lower(api_key) AS k, service",
    ],
}
FIXTURES = {"postgres": "pg_masking", "mysql": "mysql_masking", "sqlite": "sqlite_masking"}


@pytest.mark.parametrize(("dialect", "sql"), [(d, s) for d, cases in CASES.items() for s in cases])
def test_no_raw_value_comes_back_from_a_write(
    dialect: str, sql: str, request: pytest.FixtureRequest
) -> None:
    target: Target = request.getfixturevalue(FIXTURES[dialect])
    assert target.write is not None
    raw = _raw_values(target)
    result = mask_write(sql, dialect, target.policy)
    assert result is not None and result.held is None, result
    assert any(c.masked for c in result.columns)
    unmasked = target.write(sql)
    assert any(value in cell for cell in _cells(unmasked) for value in raw)  # not vacuous
    rows = target.write(result.sql)
    assert rows
    for cell in _cells(rows):
        for value in raw:
            assert value not in cell, f"raw value {value!r} leaked in {cell!r}"


def test_writes_that_return_nothing_sensitive_are_unchanged(pg_masking: Target) -> None:
    assert (
        mask_write("UPDATE customers SET city = 'x' WHERE id = 1", "postgres", pg_masking.policy)
        is None
    )
    sql = "UPDATE orders SET status = 'paid' WHERE id = 1 RETURNING id, status"
    result = mask_write(sql, "postgres", pg_masking.policy)
    assert result is not None and result.sql == sql and not any(c.masked for c in result.columns)


def test_values_returned_inside_a_writable_cte_are_held(pg_masking: Target) -> None:
    sql = "WITH gone AS (DELETE FROM customers WHERE id = 1 RETURNING ssn) SELECT * FROM gone"
    result = mask_write(sql, "postgres", pg_masking.policy)
    assert result is not None and result.held and "data-modifying WITH" in result.held

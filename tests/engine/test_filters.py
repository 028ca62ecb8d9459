"""UPDATE / DELETE without a WHERE that really filters are unfiltered writes."""

from __future__ import annotations

import pytest

from governance.engine import Risk, analyze

UNFILTERED = [
    "DELETE FROM t",
    "DELETE FROM t WHERE 1=1",
    "DELETE FROM t WHERE true",
    "DELETE FROM t WHERE TRUE AND 2 > 1",
    "UPDATE t SET a = 1 WHERE a = a",
    "DELETE FROM t WHERE x > 0 OR 1=1",
    "DELETE FROM t WHERE (id = 5) OR (TRUE)",
    "DELETE FROM t WHERE NOT false",
    "DELETE FROM t WHERE 'a' = 'a'",
    "UPDATE t SET a = 1 WHERE 1 IN (1, 2)",
    "UPDATE t SET a = 1 WHERE t.x = t.x",
    "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
]
FILTERED = [
    "DELETE FROM t WHERE id = 5",
    "UPDATE t SET a = 1 WHERE id = 5 AND 1 = 1",
    "DELETE FROM t WHERE id IN (SELECT id FROM u)",
    "DELETE FROM t USING u WHERE t.id = u.id",
    "UPDATE t SET a = 1 WHERE a <> b",
    "DELETE FROM t WHERE 1 = 0",
]


@pytest.mark.parametrize("sql", UNFILTERED)
def test_it_flags_unfiltered_writes(sql: str) -> None:
    statement = analyze(sql, "postgres").statements[0]
    assert "unfiltered_write" in statement.flags
    assert statement.risk == Risk.CRITICAL


@pytest.mark.parametrize("sql", FILTERED)
def test_it_trusts_real_filters(sql: str) -> None:
    statement = analyze(sql, "postgres").statements[0]
    assert "unfiltered_write" not in statement.flags
    assert statement.risk == Risk.MEDIUM


def test_mysql_where_one_is_unfiltered() -> None:
    assert "unfiltered_write" in analyze("DELETE FROM t WHERE 1", "mysql").statements[0].flags

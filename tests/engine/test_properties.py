"""Whatever arrives, analyze and decide answer; they never raise."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.engine import DEFAULT_RULES, Action, Category, Context, analyze, decide

CONTEXT = Context(
    environment="production",
    connection_id=1,
    groups=frozenset({"analyst"}),
    capabilities=frozenset({"read", "write"}),
)
TOKENS = [
    "SELECT", "select", "FROM", "WHERE", "DELETE", "UPDATE", "SET", "INSERT", "INTO", "VALUES",
    "DROP", "TABLE", "GRANT", "COPY", "TO", "PROGRAM", "EXPLAIN", "ANALYZE", "WITH", "AS", "DO",
    "CALL", "(", ")", ";", ",", "*", "=", "1", "'a'", "'a\\'", "$$", "$x$", "/*", "*/", "/*!",
    "--", "#", "\n", "t", '"T"', "`t`", "pg_read_file", "nextval", "OR", "1=1", "RETURNING",
    "::", "->>", "@x", "?", "$1", "\\", "\x00", "E'\\''", "BEGIN", "END", "LOAD", "DATA",
]  # fmt: skip
DIALECTS = st.sampled_from(["postgres", "mysql", "sqlite"])
soup = st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join)
anything = st.text(max_size=200)


def _check(sql: str, dialect: str) -> None:
    analysis = analyze(sql, dialect)
    assert (analysis.error is None) != (analysis.statements == ())
    decision = decide(sql, dialect=dialect, context=CONTEXT, rules=DEFAULT_RULES)
    assert decision.action in tuple(Action)
    assert decision.reasons
    if analysis.error is not None:
        assert decision.action == Action.DENY
    for statement in analysis.statements:
        if statement.category == Category.UNKNOWN:
            assert decision.action == Action.DENY


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=anything, dialect=DIALECTS)
def test_random_text_never_crashes(sql: str, dialect: str) -> None:
    _check(sql, dialect)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=soup, dialect=DIALECTS)
def test_sql_token_soup_never_crashes(sql: str, dialect: str) -> None:
    _check(sql, dialect)


@settings(max_examples=200, deadline=None)
@given(sql=soup)
def test_a_read_never_contains_a_delete_statement(sql: str) -> None:
    analysis = analyze(sql, "postgres")
    for statement in analysis.statements:
        if statement.category == Category.READ and statement.sql.upper().startswith("DELETE"):
            raise AssertionError(statement)

"""Coded error sentences: built from the code and the position, never the server's text."""

from __future__ import annotations

import doctest
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance import env
from governance.targets import base, errors, mysql, pg_guard
from governance.targets.base import ERROR_KINDS, TargetError
from governance.targets.errors import (
    MYSQL_SENTENCES,
    PG_SENTENCES,
    SQLITE_SENTENCES,
    coded_sentence,
)

SENTINEL = "Zq9Sentinel"  # in every message below, never in a statement
ENGINES = ("postgresql", "mysql", "sqlite")
KNOWN_CODES = {"postgresql": PG_SENTENCES, "mysql": MYSQL_SENTENCES, "sqlite": SQLITE_SENTENCES}


@pytest.mark.parametrize("module", [errors, pg_guard, base, mysql, env])
def test_the_examples_in_the_docstrings_hold(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0


codes = st.one_of(
    st.none(),
    st.sampled_from(sorted({c for table in KNOWN_CODES.values() for c in table})),
    st.text(min_size=1, max_size=12),
    st.just(SENTINEL),
    st.just(f"2{SENTINEL[:4]}"),
)
statement_text = st.text(
    alphabet=string.ascii_letters + string.digits + " \n\t'\"`()*,.;:=<>|-_$@", max_size=120
).filter(lambda text: SENTINEL.lower() not in text.lower())


@settings(max_examples=400, deadline=None)
@given(
    engine=st.sampled_from(ENGINES),
    kind=st.sampled_from(sorted(ERROR_KINDS)),
    code=codes,
    noise=st.text(max_size=80),
    statements=st.lists(statement_text, min_size=1, max_size=4),
    index=st.one_of(st.none(), st.integers(min_value=-2, max_value=5)),
    position=st.one_of(st.none(), st.integers(min_value=-5, max_value=200)),
)
def test_no_byte_of_the_servers_message_reaches_the_sentence(
    engine: str,
    kind: str,
    code: str | None,
    noise: str,
    statements: list[str],
    index: int | None,
    position: int | None,
) -> None:
    message = f"{noise} {SENTINEL} \"{SENTINEL}-123-45-6789\" near '{SENTINEL}' {noise}"
    error = TargetError(kind, message, code=code, statement=index, position=position)
    del error.message  # any use of the message would now raise
    sentence = coded_sentence(error, statements, engine=engine)
    assert SENTINEL.lower() not in sentence.lower()
    assert sentence.endswith(".") and "\n" not in sentence
    if code is not None and SENTINEL in code:
        assert code not in sentence  # not a valid code: not named either


@pytest.mark.parametrize(
    ("engine", "codes"),
    [
        # the common errors of each engine have a sentence of their own
        ("postgresql", ["22P02", "22003", "22008", "22007", "22012", "42703", "42P01", "42883",
                        "42601", "23505", "23503", "23502", "23514", "42501", "25006", "57014",
                        "54000", "22001", "21000"]),
        ("mysql", ["1292", "1366", "1264", "1690", "1365", "1054", "1146", "1305", "1064", "1062",
                   "1451", "1452", "1048", "3819", "4025", "1142", "1792", "1969", "3024", "1317",
                   "1406", "4038", "1416"]),
        ("sqlite", ["SQLITE_ERROR", "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_NOTNULL",
                    "SQLITE_CONSTRAINT_FOREIGNKEY", "SQLITE_CONSTRAINT_CHECK", "SQLITE_READONLY",
                    "SQLITE_TOOBIG", "SQLITE_INTERRUPT", "SQLITE_AUTH"]),
    ],
)  # fmt: skip
def test_common_codes_have_their_own_sentence(engine: str, codes: list[str]) -> None:
    for code in codes:
        sentence = coded_sentence(TargetError("execution", "x", code=code), ["x"], engine=engine)
        assert "reported error" not in sentence and code in sentence, (code, sentence)


def test_unknown_codes_fall_back_to_their_class_or_are_named() -> None:
    def sentence(engine: str, code: str) -> str:
        return coded_sentence(TargetError("execution", "x", code=code), ["x"], engine=engine)

    assert sentence("postgresql", "22ZZZ").startswith("A value is invalid for the operation")
    assert sentence("postgresql", "QQ123") == "The target database reported error SQLSTATE QQ123."
    assert (
        sentence("mysql", "9999") == "The target database reported error MariaDB/MySQL error 9999."
    )
    assert sentence("sqlite", "SQLITE_CONSTRAINT_PINNED").startswith("The statement would break")


def test_the_position_becomes_line_column_and_one_token_of_our_own_text() -> None:
    statement = "SELECT id,\n       nosuch_column_with_a_very_long_name_indeed_yes FROM t"
    error = TargetError("execution", "x", code="42703", statement=1, position=19)
    sentence = coded_sentence(error, ["SELECT 1", statement], engine="postgresql")
    assert sentence == (
        "Statement 2: A column does not exist (SQLSTATE 42703), at line 2, column 8, near"
        " “nosuch_column_with_a_very_long_name_ind…”."
    )
    literal = TargetError("execution", "x", code="22P02", statement=0, position=13)
    assert "near “'x'' y'”" in coded_sentence(
        literal, ["SELECT 1 || 'x'' y' FROM t"], engine="postgresql"
    )
    end = TargetError("execution", "x", code="42601", statement=0, position=11)
    assert coded_sentence(end, ["SELECT 1 +"], engine="postgresql").endswith(
        "at line 1, column 11, at the end of the statement."
    )
    beyond = TargetError("execution", "x", code="42601", statement=0, position=99)
    assert (
        coded_sentence(beyond, ["SELECT 1 +"], engine="postgresql")
        == "Syntax error (SQLSTATE 42601)."
    )


def test_a_token_that_is_the_pseudonym_key_is_never_quoted() -> None:
    key = "0f3c2a9d8e7b6a5f4e3d2c1b0a998877"
    statement = f"SELECT md5('{key}' || x) FROM t"
    error = TargetError("execution", "x", code="22P02", statement=0, position=12)
    sentence = coded_sentence(error, [statement], engine="postgresql", hidden=[key])
    assert key not in sentence and sentence.endswith("at line 1, column 12.")


def test_mariadb_server_errors_past_3999_are_not_connection_errors() -> None:
    # MariaDB numbers its own errors from 4000 (4025: a CHECK constraint failed); only
    # 2000-2999 are the client's (lost connection...). Review: a failed CHECK read "Could not
    # connect to the target database".
    import pymysql

    from governance.targets.mysql import map_error

    failed = map_error(pymysql.err.OperationalError(4025, "CONSTRAINT `c` failed for `t`"))
    assert (failed.kind, failed.code) == ("execution", "4025")
    lost = map_error(pymysql.err.OperationalError(2013, "Lost connection to server"))
    assert lost.kind == "connect"

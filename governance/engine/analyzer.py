"""``analyze``: split a batch with sqlglot's tokenizer, parse each statement, classify it."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.parser import Parser
from sqlglot.tokens import Token, TokenType

from .classify import classify_root, classify_tree
from .explain import describe
from .keywords import classify_words
from .lexing import (
    MAX_NESTING,
    Chunk,
    LexError,
    dialect_object,
    is_executable_comment,
    nesting_depth,
    payload_comments,
    split,
    tokenize,
)
from .types import Analysis, Category, Risk, Statement
from .verdict import Verdict, unknown

DIALECTS = frozenset({"postgres", "mysql", "sqlite"})
MAX_SQL_CHARS = 512 * 1024
MAX_STATEMENTS = 1000
# Larger inputs are analysed but not kept in the cache (a cache of megabyte keys is a leak).
CACHE_MAX_CHARS = 100_000
_MAX_WRAPPING = 4  # EXPLAIN ANALYZE EXPLAIN ... is refused beyond this depth

EMPTY = "Empty statement: nothing to run."
TOO_COMPLEX = "Statement too complex to analyze safely."
#: Table references one statement may make. The target plans each one (a view such as
#: information_schema.columns expands to many): three hundred copies of a catalogue view took
#: PostgreSQL past a gigabyte before its timeout could act, so more are refused up front.
MAX_TABLE_REFERENCES = 50
EXECUTABLE_COMMENT = (
    "Contains a MySQL executable comment (/*! ... */), which the server runs as hidden SQL; "
    "Warden refuses it."
)


class _TooComplex(Exception):
    pass


_ENGINE_DIALECTS = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
}


def dialect_for_engine(engine: str) -> str:
    """The sqlglot dialect for a connection's engine name ("postgresql" -> "postgres")."""
    try:
        return _ENGINE_DIALECTS[engine.lower()]
    except KeyError:
        raise ValueError(f"Unsupported database engine: {engine!r}") from None


@functools.cache
def _parser_class(dialect: str) -> type[Parser]:
    base: type[Parser] = dialect_object(dialect).parser_class

    def _quiet(self: Parser) -> None:
        """sqlglot logs a warning for every Command fallback; we classify those ourselves."""

    return type(f"Quiet{base.__name__}", (base,), {"_warn_unsupported": _quiet})


def _parse(tokens: list[Token], sql: str, dialect: str) -> list[exp.Expr | None]:
    parser = _parser_class(dialect)(dialect=dialect_object(dialect))
    return parser.parse(tokens, sql)


def _parse_error_message(error: ParseError) -> str:
    """A syntax error in words ("Syntax error near 'FROM' (line 1, column 15): …")."""
    if error.errors:
        first: dict[str, Any] = error.errors[0]
        near = " ".join(str(first.get("highlight") or "").split())[:40]
        where = f"line {first.get('line')}, column {first.get('col')}"
        head = f"Syntax error near '{near}' ({where})" if near else f"Syntax error ({where})"
        return f"{head}: {_in_words(str(first.get('description') or ''))}"
    return f"Syntax error: {_in_words(str(error).splitlines()[0][:200])}"


_MISSING_AFTER = {
    "and": "a condition is missing after AND",
    "or": "a condition is missing after OR",
    "where": "WHERE needs a condition",
    "having": "HAVING needs a condition",
    "limit": "LIMIT needs a number",
    "offset": "OFFSET needs a number",
    "not": "NOT needs a condition",
    "in": "IN needs a list or a subquery",
    "between": "BETWEEN needs two bounds",
    "like": "LIKE needs a pattern",
    "alias": "an alias is missing after AS",
    "cast": "CAST needs a type",
}


def _in_words(description: str) -> str:
    """sqlglot's description without class names or token reprs."""
    if description.startswith("Required keyword:") and "<class '" in description:
        node = description.rsplit(".", 1)[-1].rstrip("'>").lower()
        return _MISSING_AFTER.get(node, "an expression or clause is incomplete")
    if description.startswith("Expected table name"):
        if "SENTINEL" in description:
            return "a table name is missing at the end of the statement"
        return "a table name is missing"
    if description.startswith("Invalid expression / Unexpected token"):
        return "unexpected text here; check for a misspelt keyword or a missing comma"
    if description.startswith("Expecting )"):
        return "a closing parenthesis is missing"
    if "<" in description and ">" in description:  # some other internal repr
        return "the statement is incomplete or malformed here"
    return description.rstrip(".") or "the statement is malformed here"


def _into_file(tokens: tuple[Token, ...]) -> bool:
    """MySQL SELECT ... INTO OUTFILE/DUMPFILE, which sqlglot cannot parse."""
    return any(
        a.token_type == TokenType.INTO and b.text.upper() in {"OUTFILE", "DUMPFILE"}
        for a, b in itertools.pairwise(tokens)
    )


RESERVED = "reserved"  # a flag: the statement uses what Warden keeps for itself; never runs


def reserved_use(tokens: tuple[Token, ...], dialect: str) -> str | None:
    """A sentence when the statement uses a bind parameter or a variable Warden reserves.

    Warden binds its own values to masked statements (the pseudonym key: ``$1``/``$2`` on
    PostgreSQL, ``@warden_…`` session variables on MySQL); a statement that names them could
    read the key or replace it with one its author knows. No guardrail can allow that.
    """
    for index, token in enumerate(tokens):
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        kind = token.token_type
        names = (TokenType.VAR, TokenType.IDENTIFIER)
        if dialect == "postgres" and kind in names and len(token.text.encode()) > 63:
            return (
                f"Uses a name longer than 63 bytes ({token.text[:20]}…): PostgreSQL cuts names "
                "there, so two names Warden tells apart could be one to the server."
            )
        if (
            dialect == "postgres"
            and kind == TokenType.VAR
            and token.text.upper() == "U"
            and after is not None
            and after.token_type == TokenType.AMP
            and after.start == token.end + 1
            and index + 2 < len(tokens)
            and tokens[index + 2].token_type == TokenType.IDENTIFIER
            and tokens[index + 2].start == after.end + 1
        ):
            return (
                'Uses a Unicode-escaped name (U&"…"), which Warden reads differently from '
                "PostgreSQL; write the name plainly."
            )
        if dialect == "postgres" and kind == TokenType.PARAMETER:
            return (
                "Uses a bind parameter ($1…), but Warden binds no parameters of yours; write "
                "the value into the statement."
            )
        if dialect == "mysql" and kind == TokenType.PLACEHOLDER:
            return "Uses a placeholder (?), but Warden binds no parameters of yours."
        if dialect == "sqlite" and (
            kind in (TokenType.PLACEHOLDER, TokenType.PARAMETER)
            or (kind == TokenType.VAR and token.text.startswith("$"))
            or (
                kind == TokenType.COLON
                and after is not None
                and after.start == token.end + 1
                and after.token_type in (TokenType.VAR, TokenType.NUMBER)
            )
        ):
            return (
                "Uses a bind parameter (?, :name, @name, $name), but Warden binds no "
                "parameters of yours; write the value into the statement."
            )
        if (
            dialect == "mysql"
            and kind == TokenType.PARAMETER
            and after is not None
            and after.text.strip("`'\"").lower().startswith("warden")
        ):
            return "Session variables named @warden… are reserved for Warden's own use."
    return None


def _classify_chunk(
    tokens: tuple[Token, ...], sql: str, source: str, dialect: str, depth: int
) -> Verdict | str:
    """The verdict for one statement, or the parser's message when it cannot be read."""
    reserved = reserved_use(tokens, dialect)
    if reserved is not None:
        return unknown("RESERVED", reserved, RESERVED).worsen(Category.UNKNOWN, Risk.CRITICAL)

    def inner(text: str) -> Verdict:
        return _classify_text(text, dialect, depth + 1)

    try:
        trees = _parse(list(tokens), sql, dialect)
    except ParseError as error:
        if _into_file(tokens):
            return Verdict(
                Category.FILE, Risk.CRITICAL, "SELECT INTO OUTFILE", frozenset({"unparsed"})
            )
        verdict = classify_words(tokens, source, dialect, inner)
        if verdict.category != Category.UNKNOWN:
            return verdict.with_flags("unparsed")
        return _parse_error_message(error)
    if len(trees) != 1 or trees[0] is None:
        return unknown("COMMAND")
    tree = trees[0]
    references = sum(1 for _ in tree.find_all(exp.Table))
    if references > MAX_TABLE_REFERENCES:
        return unknown(
            tree.key.upper(),
            f"Names {references} tables or views in one statement; the limit is "
            f"{MAX_TABLE_REFERENCES}, so that one statement cannot exhaust the database's "
            "memory. Split it.",
        ).worsen(Category.UNKNOWN, Risk.HIGH)
    if isinstance(tree, exp.Command) or classify_root(tree, dialect) is None:
        return classify_words(tokens, source, dialect, inner)
    verdict = classify_tree(tree, dialect)
    for name, why in _shadowing_calls(tree, tokens, sql, dialect):
        verdict = verdict.worsen(
            Category.UNKNOWN,
            Risk.HIGH,
            "unknown_function",
            note=f"Calls {name}(), which may not be the built-in function: {why}",
        )
    return verdict


# MySQL reads these names as built-ins only when "(" follows at once; `count (1)` calls a
# stored function named count, if someone created one (the IGNORE_SPACE list).
_MYSQL_SPACE_SENSITIVE_NAMES = """
adddate bit_and bit_or bit_xor cast count curdate curtime date_add date_sub extract
group_concat max mid min now position session_user std stddev stddev_pop stddev_samp
subdate substr substring sum sysdate system_user trim variance var_pop var_samp
"""
_MYSQL_SPACE_SENSITIVE = frozenset(_MYSQL_SPACE_SENSITIVE_NAMES.split())


def _shadowing_calls(
    tree: exp.Expr, tokens: tuple[Token, ...], sql: str, dialect: str
) -> list[tuple[str, str]]:
    """Calls that look like a safe built-in to sqlglot but reach another function on the server.

    PostgreSQL keeps the case of a quoted name: `"COUNT"(x)` calls a function named COUNT,
    not count. MySQL calls a stored function for `count (x)`, with a space.
    """
    calls: list[tuple[str, str]] = []
    if dialect == "postgres":
        quoted = {
            token.start
            for token in tokens
            if token.token_type == TokenType.IDENTIFIER and token.text != token.text.lower()
        }
        for func in tree.find_all(exp.Func):
            start, end = func.meta.get("start"), func.meta.get("end")
            if start in quoted and end is not None:
                calls.append((sql[start : end + 1], "a quoted name keeps its case in PostgreSQL."))
    elif dialect == "mysql":
        # From the tokens, not the tree: sqlglot's own parsers for TRIM, SUBSTR, POSITION,
        # GROUP_CONCAT, CAST, EXTRACT leave no position on the call. A name that is a table,
        # column or alias (`INSERT INTO count (a)`) is an identifier in the tree: not a call.
        names = {
            node.meta.get("start")
            for node in tree.find_all(exp.Identifier)
            if not isinstance(node.parent, exp.Func)  # `now`() is Anonymous(`now`)
        }
        for token, after in itertools.pairwise(tokens):
            if (
                after.token_type != TokenType.L_PAREN
                or token.text.lower() not in _MYSQL_SPACE_SENSITIVE
                or token.token_type == TokenType.STRING
                or token.start in names
            ):
                continue
            name = sql[token.start : token.end + 1]
            if token.token_type == TokenType.IDENTIFIER:  # `count`(x)
                calls.append((name, "MySQL calls a stored function for a quoted name."))
            elif after.start != token.end + 1:
                calls.append((name, "MySQL calls a stored function when a space follows."))
    return calls


def _classify_text(text: str, dialect: str, depth: int) -> Verdict:
    """Classify the statement wrapped by EXPLAIN, ANALYZE or REPLACE."""
    if depth > _MAX_WRAPPING:
        return unknown("COMMAND", TOO_COMPLEX)
    tokens, _ = tokenize(text, dialect)
    chunks = split(tokens)
    if len(chunks) != 1:
        return unknown("COMMAND")
    chunk = chunks[0]
    result = _classify_chunk(chunk.tokens, text, chunk.source(text), dialect, depth)
    if isinstance(result, str):
        return unknown("COMMAND", f"The wrapped statement does not parse: {result}")
    return result


def _executable_comments(chunk: Chunk, dialect: str) -> int:
    comments = [c for token in chunk.tokens for c in token.comments]
    comments += payload_comments([chunk], dialect)
    return sum(1 for c in comments if is_executable_comment(c))


def _statement(index: int, source: str, verdict: Verdict) -> Statement:
    return Statement(
        index=index,
        sql=source.strip(),
        category=verdict.category,
        risk=verdict.risk,
        kind=verdict.kind,
        tables=verdict.tables,
        written_tables=verdict.written_tables,
        functions=verdict.functions,
        flags=verdict.flags,
        explanation=describe(verdict),
        copied_columns=verdict.copied_columns,
    )


def _analyze_batch(sql: str, dialect: str) -> Analysis:
    tokens, comments = tokenize(sql, dialect)
    if nesting_depth(tokens) > MAX_NESTING:
        raise _TooComplex
    chunks = split(tokens)
    if len(chunks) > MAX_STATEMENTS:
        return Analysis(
            dialect,
            (),
            f"Too many statements in one batch ({len(chunks):,}; the limit is {MAX_STATEMENTS:,}).",
        )
    mysql = dialect == "mysql"
    hidden = sum(
        1 for c in comments + payload_comments(chunks, dialect) if is_executable_comment(c)
    )
    hidden = hidden if mysql else 0
    if not chunks:
        return Analysis(dialect, (), EXECUTABLE_COMMENT if hidden else EMPTY)
    statements: list[Statement] = []
    found = 0
    for index, chunk in enumerate(chunks):
        source = chunk.source(sql)
        verdict = _classify_chunk(chunk.tokens, sql, source, dialect, depth=0)
        if isinstance(verdict, str):
            return Analysis(dialect, (), verdict, syntax_error=True)
        in_chunk = _executable_comments(chunk, dialect) if mysql else 0
        if in_chunk:
            found += in_chunk
            verdict = unknown(verdict.kind, EXECUTABLE_COMMENT, "executable_comment")
            verdict = verdict.worsen(Category.UNKNOWN, Risk.CRITICAL)
        statements.append(_statement(index, source, verdict))
    if hidden > found:  # an executable comment between statements
        return Analysis(dialect, (), EXECUTABLE_COMMENT)
    return Analysis(dialect, tuple(statements), None)


def _analyze(sql: str, dialect: str) -> Analysis:
    if dialect not in DIALECTS:
        return Analysis(dialect, (), f"Unsupported SQL dialect: {dialect!r}.")
    if "\x00" in sql:
        return Analysis(dialect, (), "The SQL contains a NUL byte; Warden refuses it.")
    if len(sql) > MAX_SQL_CHARS:
        return Analysis(
            dialect,
            (),
            f"The SQL is too large to analyze ({len(sql):,} characters; "
            f"the limit is {MAX_SQL_CHARS:,}).",
        )
    if not sql.strip():
        return Analysis(dialect, (), EMPTY)
    try:
        return _analyze_batch(sql, dialect)
    except (_TooComplex, RecursionError):
        return Analysis(dialect, (), TOO_COMPLEX)
    except (TokenError, LexError) as error:
        text = str(error)[:200]
        return Analysis(
            dialect, (), f"Syntax error: could not read the SQL ({text})", syntax_error=True
        )
    except ParseError as error:
        return Analysis(dialect, (), _parse_error_message(error), syntax_error=True)
    except Exception as error:  # fail closed: sqlglot bugs must not let anything through
        return Analysis(dialect, (), f"{TOO_COMPLEX[:-1]} ({type(error).__name__}).")


_analyze_cached: Callable[[str, str], Analysis] = functools.lru_cache(maxsize=2048)(_analyze)


def analyze(sql: str, dialect: str) -> Analysis:
    """Classify every statement of ``sql`` (one of "postgres", "mysql", "sqlite").

    Never raises: input that cannot be read safely comes back with ``error`` set.
    """
    if len(sql) <= CACHE_MAX_CHARS:
        return _analyze_cached(sql, dialect)
    return _analyze(sql, dialect)


def clear_analyze_cache() -> None:
    _analyze_cached.cache_clear()  # type: ignore[attr-defined]

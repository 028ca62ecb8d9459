"""Tokens in, statements out: splitting a batch with sqlglot's tokenizer, never with text.

The tokenizer follows the dialect's quoting rules (``'a\\'`` ends a string in PostgreSQL, not in
MySQL; ``$$ ... $$`` is one token in PostgreSQL), so splitting on SEMICOLON tokens splits where
the database would.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import Token, TokenType

# Deeper nesting than this is refused before parsing: sqlglot's parser uses ~20 Python frames
# per level, and the default recursion limit (1000) must also fit the caller's stack.
MAX_NESTING = 32

# Appended so that trailing comments attach to a token instead of being dropped, and so an
# unterminated comment or string swallows it (which we then refuse).
_SENTINEL = "\n;"


class LexError(Exception):
    """The text cannot be split into statements safely."""


@dataclass(frozen=True)
class Chunk:
    """The tokens of one statement and where it sits in the source."""

    tokens: tuple[Token, ...]
    start: int
    end: int

    def source(self, sql: str) -> str:
        return sql[self.start : self.end]


def dialect_object(dialect: str) -> Dialect:
    return Dialect.get_or_raise(dialect)


def tokenize(sql: str, dialect: str) -> tuple[list[Token], list[str]]:
    """Tokens of ``sql`` and every comment the tokenizer saw (raises LexError/TokenError)."""
    tokens = dialect_object(dialect).tokenize(sql + _SENTINEL)
    if not tokens or tokens[-1].token_type != TokenType.SEMICOLON or tokens[-1].start < len(sql):
        raise LexError("Unterminated comment, string or quoted identifier.")
    if dialect == "mysql":
        for token in tokens:
            if sql[token.start : token.start + 1] == "#":
                # sqlglot reads `#>` and `#>>` as JSON operators; MySQL starts a comment at
                # `#`, so the rest of the line would run as SQL the classifier never saw.
                raise LexError(
                    f"'{token.text}' starts a comment in MySQL, which would hide SQL from "
                    "Warden; write it differently."
                )
    _refuse_foreign_spaces(sql, tokens)
    _refuse_adjacent_strings(tokens)
    if dialect == "sqlite":
        _refuse_quoted_qualifiers(tokens)
    comments = [c for token in tokens for c in token.comments]
    return tokens[:-1], comments


def _refuse_foreign_spaces(sql: str, tokens: list[Token]) -> None:
    """Outside strings and quoted names, only ASCII whitespace.

    Python, and so sqlglot, counts U+00A0, U+3000, U+2028 … as whitespace; the servers do not
    (PostgreSQL, MariaDB and SQLite read them as letters of a name), and MariaDB starts a
    ``--`` comment only before an ASCII space or control character: ``1 --<U+00A0> UNION
    SELECT ssn …`` was a comment to Warden and a query to the server. sqlglot also matches
    ``ORDER<U+00A0>BY`` as one keyword, which the server reads as a name. Strings and quoted
    names may hold any character: only those spans are skipped.
    """
    _refuse_nested_comments(sql, tokens)
    quoted: list[tuple[int, int]] = [
        (token.start, token.end)
        for token in tokens
        if token.token_type in _QUOTED and token.end >= token.start
    ]
    spans = iter(quoted)
    span = next(spans, None)
    for offset, char in enumerate(sql):
        while span is not None and offset > span[1]:
            span = next(spans, None)
        if span is not None and span[0] <= offset <= span[1]:
            continue
        # other non-ASCII characters are letters of a name to the servers and to sqlglot
        # alike, or text inside a comment; spaces are where they part
        if ord(char) > 127 and char.isspace():
            raise LexError(
                f"Contains U+{ord(char):04X} outside a string or quoted name (at character "
                f"{offset + 1}), which the database does not read as a space as Warden "
                "would; use plain spaces."
            )


def _refuse_adjacent_strings(tokens: list[Token]) -> None:
    """Two string literals side by side are refused. The servers join them, each its own way
    (PostgreSQL only across a line break, and the second part then takes the first's escaping
    rules: after ``E'x'`` a newline and ``'\\'`` is a string still open), while sqlglot reads
    them as two strings; so text Warden saw as a literal ran as SQL (``SELECT 'q' BETWEEN E'x'
    ⏎ '\\' AS a, ' AND $$z$$, ssn FROM customers --'`` read SSNs with no table in sight)."""
    for before, after in pairwise(tokens):
        if before.token_type in _STRINGS and after.token_type in _STRINGS:
            raise LexError(
                f"Contains two string literals side by side (at line {after.line}), which "
                "the database joins in ways Warden does not follow; write one string, or "
                "join them with || or CONCAT()."
            )


def _refuse_quoted_qualifiers(tokens: list[Token]) -> None:
    """SQLite reads a single-quoted word where only a name fits as that name: ``'c'.ssn`` is
    column ssn of table c to SQLite and a string to sqlglot, so nothing was masked (twelfth
    review). A string beside a dot is refused; write the name bare or in double quotes."""
    for before, after in pairwise(tokens):
        if (before.token_type in _STRINGS and after.token_type == TokenType.DOT) or (
            before.token_type == TokenType.DOT and after.token_type in _STRINGS
        ):
            raise LexError(
                f"A single-quoted name next to a dot (at line {after.line}) is a table or column "
                "name to SQLite and text to Warden; write the name bare or in double quotes."
            )


def _refuse_nested_comments(sql: str, tokens: list[Token]) -> None:
    """A block comment that holds ``/*`` is refused: PostgreSQL nests them, MariaDB and SQLite
    do not, and sqlglot counts them its own way (``/*/* */`` is one whole comment to it, an
    open one to PostgreSQL), so the comment could end elsewhere for the server and hide SQL
    (``SELECT 1 /*/* */ , '*/ , ssn FROM customers --'`` read SSNs). Comments lie between
    tokens; only those gaps are searched."""
    position = 0
    gaps: list[str] = []
    for token in tokens:
        if token.start > position:
            gaps.append(sql[position : token.start])
        position = max(position, token.end + 1)
    if position < len(sql):
        gaps.append(sql[position:])
    for gap in gaps:
        start = gap.find("/*")
        while start != -1:
            end = gap.find("*/", start + 2)
            inner = gap.find("/*", start + 2)
            if inner != -1 and (end == -1 or inner < end):
                raise LexError(
                    "Contains a comment inside a comment (/* … /* … */), which the database "
                    "and Warden could end in different places; remove the inner /*."
                )
            start = gap.find("/*", end + 2) if end != -1 else -1


_STRINGS = frozenset(
    {
        TokenType.STRING,
        TokenType.NATIONAL_STRING,
        TokenType.RAW_STRING,
        TokenType.BIT_STRING,
        TokenType.HEX_STRING,
        TokenType.BYTE_STRING,
        TokenType.HEREDOC_STRING,
        TokenType.UNICODE_STRING,
    }
)
_QUOTED = _STRINGS | {TokenType.IDENTIFIER}


def split(tokens: list[Token]) -> list[Chunk]:
    """Split on top-level SEMICOLON tokens; empty statements (``;;``) are dropped."""
    chunks: list[Chunk] = []
    current: list[Token] = []
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if current:
                chunks.append(_chunk(current))
            current = []
        else:
            current.append(token)
    if current:
        chunks.append(_chunk(current))
    return chunks


def _chunk(tokens: list[Token]) -> Chunk:
    return Chunk(tokens=tuple(tokens), start=tokens[0].start, end=tokens[-1].end + 1)


def nesting_depth(tokens: list[Token]) -> int:
    depth = deepest = 0
    for token in tokens:
        if token.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE):
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE):
            depth -= 1
    return deepest


def is_command_payload(tokens: tuple[Token, ...], dialect: str) -> bool:
    """True when the tokenizer swallowed the rest of the statement as one raw string.

    sqlglot does this after keywords such as EXPLAIN, CALL, DO, VACUUM, PREPARE, REPLACE.
    """
    commands = dialect_object(dialect).tokenizer_class.COMMANDS
    return (
        len(tokens) == 2
        and tokens[0].token_type in commands
        and tokens[1].token_type == TokenType.STRING
    )


def payload_comments(chunks: list[Chunk], dialect: str) -> list[str]:
    """Comments hidden inside command payloads (the tokenizer discards them)."""
    found: list[str] = []
    for chunk in chunks:
        if is_command_payload(chunk.tokens, dialect):
            tokens, comments = tokenize(chunk.tokens[1].text, dialect)
            found.extend(comments)
            found.extend(payload_comments(split(tokens), dialect))
    return found


def is_executable_comment(comment: str) -> bool:
    """MySQL runs ``/*! ... */`` and MariaDB ``/*M! ... */`` comments as SQL.

    >>> is_executable_comment("!50001 DROP TABLE x ")
    True
    >>> is_executable_comment(" plain ")
    False
    """
    return comment.startswith("!") or comment[:2].upper() == "M!"


def words(tokens: tuple[Token, ...] | list[Token], dialect: str, limit: int = 8) -> list[str]:
    """The first upper-cased words of a statement, looking inside a command payload."""
    result: list[str] = []
    for i, token in enumerate(tokens):
        if len(result) >= limit:
            break
        if i == 1 and is_command_payload(tuple(tokens), dialect):
            inner, _ = tokenize(token.text, dialect)
            result.extend(words(inner, dialect, limit - len(result)))
            break
        if token.token_type in (TokenType.STRING, TokenType.NUMBER):
            result.append("<" + token.token_type.name + ">")
        else:
            result.extend(token.text.upper().split())
    return result[:limit]

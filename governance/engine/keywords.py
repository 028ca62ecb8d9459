"""Classification by leading keywords, for statements sqlglot keeps as raw ``Command`` text.

sqlglot parses CALL, DO, VACUUM, EXPLAIN, PREPARE, CREATE ROLE ... into ``exp.Command`` (and
CHECKPOINT or LISTEN into a bare column). The words come from sqlglot's tokenizer, so comments,
quoting and case are already dealt with. Anything not listed here is unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlglot.tokens import Token, TokenType

from .classify import explain_plain
from .lexing import is_command_payload, tokenize, words
from .types import Category, Risk
from .verdict import Verdict, unknown

# Classifies the SQL text of a statement wrapped by EXPLAIN / ANALYZE / REPLACE.
Inner = Callable[[str], Verdict]

_CODE_WORDS = frozenset({"CALL", "DO", "PREPARE", "EXECUTE", "EXEC", "DEALLOCATE"})
_TRANSACTION_WORDS = frozenset(
    {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "ABORT", "XA"}
)
_SESSION_WORDS = frozenset({"USE", "LISTEN", "UNLISTEN", "NOTIFY", "DISCARD"})
_ADMIN_HIGH = frozenset(
    {"REINDEX", "CLUSTER", "CHECKPOINT", "OPTIMIZE", "REPAIR", "CHECK", "FLUSH", "LOCK", "UNLOCK",
     "CHECKSUM", "CACHE"}
)  # fmt: skip
_ADMIN_CRITICAL = frozenset(
    {"KILL", "SHUTDOWN", "RESTART", "INSTALL", "UNINSTALL", "PURGE", "CHANGE", "BINLOG",
     "IMPORT", "STOP"}
)  # fmt: skip
_WRAPPABLE = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES",
                        "TABLE", "MERGE", "("})  # fmt: skip

# Object keywords after CREATE / ALTER / DROP, and what changing them means.
_OBJECTS: dict[str, Category] = {
    **dict.fromkeys(["ROLE", "USER", "GROUP", "POLICY", "DEFAULT"], Category.PRIVILEGE),
    **dict.fromkeys(
        ["EXTENSION", "SYSTEM", "SERVER", "SUBSCRIPTION", "PUBLICATION", "TABLESPACE",
         "LANGUAGE", "FOREIGN", "PLUGIN", "LOGFILE", "INSTANCE"],
        Category.ADMIN,
    ),
    **dict.fromkeys(
        ["FUNCTION", "PROCEDURE", "TRIGGER", "RULE", "EVENT", "AGGREGATE", "OPERATOR", "CAST",
         "TRANSFORM", "ACCESS"],
        Category.CODE,
    ),
    **dict.fromkeys(
        ["TABLE", "VIEW", "INDEX", "SCHEMA", "SEQUENCE", "DATABASE", "TYPE", "DOMAIN",
         "COLLATION", "STATISTICS", "CONVERSION", "TEXT", "MATERIALIZED"],
        Category.DDL,
    ),
}  # fmt: skip


def _object_verdict(verb: str, rest: list[str]) -> Verdict:
    """CREATE/ALTER/DROP <object>: the first object keyword within a few words decides."""
    for word in rest[:6]:
        category = _OBJECTS.get(word)
        if category is None:
            continue
        kind = f"{verb} {word}"
        if category == Category.DDL:
            if verb == "DROP":
                return Verdict(Category.DDL, Risk.CRITICAL, kind, frozenset({"drop"}))
            return Verdict(Category.DDL, Risk.HIGH, kind)
        if category == Category.CODE and verb == "DROP":
            return Verdict(Category.DDL, Risk.CRITICAL, kind, frozenset({"drop"}))
        return Verdict(category, Risk.CRITICAL, kind)
    return unknown(verb)


def _set_verdict(rest: list[str]) -> Verdict:
    head = rest[:3]
    if head[:1] in (["SESSION"], ["LOCAL"]) and len(head) > 1:
        head = head[1:]
    if head[:1] in (["ROLE"], ["AUTHORIZATION"], ["PASSWORD"]) or head[:2] == ["DEFAULT", "ROLE"]:
        return Verdict(Category.PRIVILEGE, Risk.CRITICAL, "SET " + " ".join(head[:1]))
    if head[:1] in (["GLOBAL"], ["PERSIST"], ["PERSIST_ONLY"]):
        return Verdict(Category.ADMIN, Risk.CRITICAL, "SET GLOBAL")
    if head[:1] == ["TRANSACTION"] or head[:2] == ["SESSION", "CHARACTERISTICS"]:
        if "WRITE" in rest:
            return Verdict(Category.SESSION, Risk.HIGH, "SET TRANSACTION")
        return Verdict(Category.TRANSACTION, Risk.MEDIUM, "SET TRANSACTION")
    return Verdict(Category.SESSION, Risk.HIGH, "SET")


def _matching_paren(tokens: list[Token], start: int) -> int:
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i].token_type == TokenType.L_PAREN:
            depth += 1
        elif tokens[i].token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return i
    return len(tokens)


def _options_analyze(options: list[Token]) -> bool:
    """EXPLAIN (ANALYZE [bool], ...): ANALYZE is on unless explicitly switched off."""
    groups: list[list[str]] = [[]]
    for token in options:
        if token.token_type == TokenType.COMMA:
            groups.append([])
        else:
            groups[-1].append(token.text.upper())
    return any(
        g and g[0] in {"ANALYZE", "ANALYSE"} and g[1:2] not in (["FALSE"], ["OFF"], ["0"])
        for g in groups
    )


def explain_verdict(rest: str, dialect: str, inner: Inner) -> Verdict:
    """EXPLAIN [ANALYZE] [VERBOSE] x / EXPLAIN (options) x: classify x, then wrap it."""
    tokens, _ = tokenize(rest, dialect)
    i, analyze = 0, False
    if tokens and tokens[0].token_type == TokenType.L_PAREN:
        end = _matching_paren(tokens, 0)
        analyze = _options_analyze(tokens[1:end])
        i = end + 1
    while i < len(tokens) and tokens[i].text.upper() in {"ANALYZE", "ANALYSE", "VERBOSE"}:
        analyze = analyze or tokens[i].text.upper() != "VERBOSE"
        i += 1
    if dialect == "sqlite" and [t.text.upper() for t in tokens[i : i + 2]] == ["QUERY", "PLAN"]:
        i += 2
    if i >= len(tokens):
        return unknown("EXPLAIN")
    verdict = inner(rest[tokens[i].start :])
    if analyze:
        return replace(verdict, kind="EXPLAIN ANALYZE " + verdict.kind).with_flags(
            "explain_analyze"
        )
    return explain_plain(verdict)


def _wrapped_verdict(first: str, rest_words: list[str], rest: str, dialect: str,
                     inner: Inner) -> Verdict | None:  # fmt: skip
    if first in {"EXPLAIN", "DESCRIBE", "DESC"}:
        return explain_verdict(rest, dialect, inner)
    if first in {"ANALYZE", "ANALYSE"} and rest_words[:2] == ["FORMAT", "="]:
        # MariaDB's ANALYZE FORMAT=JSON <statement>: the same, printed as JSON.
        tokens, _ = tokenize(rest, dialect)
        if len(tokens) > 3 and tokens[3].text.upper() in _WRAPPABLE:
            rest, rest_words = rest[tokens[3].start :], rest_words[3:]
    if first in {"ANALYZE", "ANALYSE"} and rest_words[:1] and rest_words[0] in _WRAPPABLE:
        # MariaDB's ANALYZE <statement> runs the statement and reports on it.
        verdict = inner(rest)
        return replace(verdict, kind="ANALYZE " + verdict.kind).with_flags("explain_analyze")
    if first == "REPLACE":
        # REPLACE INTO t ... is an INSERT that first deletes conflicting rows.
        verdict = inner("INSERT " + rest)
        if verdict.kind != "INSERT":
            return unknown("REPLACE")
        return replace(verdict, kind="REPLACE").with_flags("replace")
    return None


def _plain_verdict(first: str, rest: list[str]) -> Verdict:
    if first in _CODE_WORDS:
        return Verdict(Category.CODE, Risk.CRITICAL, first)
    if first == "START":
        if rest[:1] == ["TRANSACTION"]:
            return Verdict(Category.TRANSACTION, Risk.MEDIUM, "START TRANSACTION")
        return Verdict(Category.ADMIN, Risk.CRITICAL, "START " + " ".join(rest[:1]))
    if first in _TRANSACTION_WORDS:
        return Verdict(Category.TRANSACTION, Risk.MEDIUM, first)
    if first == "SET":
        return _set_verdict(rest)
    if first == "RESET":
        if rest[:1] and rest[0] in {"MASTER", "REPLICA", "SLAVE", "BINARY", "PERSIST", "QUERY"}:
            return Verdict(Category.ADMIN, Risk.CRITICAL, "RESET " + rest[0])
        return Verdict(Category.SESSION, Risk.HIGH, "RESET")
    if first in _SESSION_WORDS or first == "PRAGMA":
        return Verdict(Category.SESSION, Risk.HIGH, first)
    if first == "SHOW":
        return Verdict(Category.READ, Risk.LOW, "SHOW")
    if first == "VACUUM":
        if "FULL" in rest:
            return Verdict(Category.ADMIN, Risk.CRITICAL, "VACUUM FULL", frozenset({"vacuum_full"}))
        return Verdict(Category.ADMIN, Risk.HIGH, "VACUUM")
    if first in {"ANALYZE", "ANALYSE"}:
        return Verdict(Category.ADMIN, Risk.HIGH, "ANALYZE")
    if first == "LOAD":
        if rest[:1] and rest[0] in {"DATA", "XML"}:
            return Verdict(
                Category.FILE, Risk.CRITICAL, "LOAD " + rest[0], frozenset({"load_data"})
            )
        return Verdict(Category.ADMIN, Risk.CRITICAL, "LOAD", frozenset({"load_library"}))
    if first in _ADMIN_HIGH:
        return Verdict(Category.ADMIN, Risk.HIGH, first)
    if first in _ADMIN_CRITICAL:
        return Verdict(Category.ADMIN, Risk.CRITICAL, first)
    if first in {"GRANT", "REVOKE"} or (first == "SECURITY" and rest[:1] == ["LABEL"]):
        return Verdict(Category.PRIVILEGE, Risk.CRITICAL, first)
    if first in {"CREATE", "ALTER", "DROP"}:
        return _object_verdict(first, rest)
    if first == "TRUNCATE":
        return Verdict(Category.DDL, Risk.CRITICAL, "TRUNCATE", frozenset({"truncate"}))
    if first == "COMMENT":
        return Verdict(Category.DDL, Risk.HIGH, "COMMENT")
    if first == "RENAME":
        if rest[:1] == ["USER"]:
            return Verdict(Category.PRIVILEGE, Risk.CRITICAL, "RENAME USER")
        return Verdict(Category.DDL, Risk.HIGH, "RENAME")
    if first == "REFRESH":
        return Verdict(Category.WRITE, Risk.MEDIUM, "REFRESH MATERIALIZED VIEW")
    if first in {"ATTACH", "DETACH"}:
        return Verdict(Category.FILE, Risk.CRITICAL, first + " DATABASE")
    if first == "COPY":
        return Verdict(Category.FILE, Risk.CRITICAL, "COPY")
    return unknown(first or "COMMAND")


def classify_words(tokens: tuple[Token, ...], source: str, dialect: str, inner: Inner) -> Verdict:
    """Classify one statement (its tokens and exact source text) by its leading keywords."""
    first_token = tokens[0]
    first_words = first_token.text.upper().split() or [""]
    first = first_words[0]
    # The rest of the statement after its first token, exactly as written.
    if len(tokens) == 1:
        rest = ""
    elif is_command_payload(tokens, dialect):
        rest = tokens[1].text
    else:
        rest = source[tokens[1].start - first_token.start :]
    rest_words = first_words[1:] + (words(tokenize(rest, dialect)[0], dialect) if rest else [])
    wrapped = _wrapped_verdict(first, rest_words, rest, dialect, inner)
    if wrapped is not None:
        return wrapped
    return _plain_verdict(first, rest_words)

"""Catalogue objects that hold credentials, and the statements that name them.

Password hashes, connection strings, authentication files, privilege tables and other sessions'
SQL (which can carry ``PASSWORD '…'``) are for administrators only. A statement that names one
of them anywhere (FROM, a subquery, a CTE, a UNION branch, a PREPARE or CREATE VIEW body, a
``SHOW``, a function, a string handed to a function) is reported here; the service layer refuses
it to everyone else, whatever the guardrails say.

Names are found in sqlglot's tokens, not in the parsed tree, so statements sqlglot keeps as raw
text (HANDLER, PREPARE, DECLARE …) are covered, and string literals are tokenized in turn (a
query or a table name handed to a function as text). Matching is case-insensitive and ignores
quoting; it errs towards refusing.

>>> [u.name for u in credential_uses("SELECT rolpassword FROM pg_catalog.pg_authid", "postgres")]
['pg_catalog.pg_authid']
>>> credential_uses("SELECT user FROM accounts", "mysql")
()
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from .analyzer import CACHE_MAX_CHARS
from .lexing import LexError, is_command_payload, split, tokenize

_PASSWORDS = "holds account password hashes"
_CONNECTIONS = "holds connection strings or passwords for other servers"
_AUTH = "holds the server's authentication configuration"
_SETTINGS = "can hold secrets from the server's configuration"
_PRIVILEGES = "lists the privileges of every account"
_OTHERS_SQL = "shows other sessions' SQL, which can carry passwords"
_PERFORMANCE = "shows other sessions' SQL (which can carry passwords) and replication settings"
_CURRENT_SETTING = (
    "reads a setting that can hold a secret (a custom setting such as app.jwt_secret, a "
    "connection string, or a name computed at run time)"
)
_HIDDEN = "reads tables or runs SQL given as text, which Warden cannot check for credentials"

_HIDDEN_FUNCTIONS = """
query_to_xml query_to_xmlschema query_to_xml_and_xmlschema table_to_xml table_to_xmlschema
table_to_xml_and_xmlschema cursor_to_xml cursor_to_xmlschema schema_to_xml schema_to_xmlschema
schema_to_xml_and_xmlschema database_to_xml database_to_xmlschema database_to_xml_and_xmlschema
dblink dblink_exec dblink_open dblink_fetch dblink_send_query dblink_get_result dblink_connect
dblink_connect_u
"""

# PostgreSQL: pg_catalog is searched before any other schema, so these names mean the catalogue
# object whether qualified or not (a user table of the same name is refused as well).
_POSTGRES_ANYWHERE: dict[str, str] = {
    "pg_authid": _PASSWORDS,
    "pg_shadow": _PASSWORDS,
    "pg_user_mapping": _CONNECTIONS,
    "pg_user_mappings": _CONNECTIONS,
    "pg_subscription": _CONNECTIONS,
    "pg_foreign_server": _CONNECTIONS,
    "pg_stat_wal_receiver": _CONNECTIONS,
    "pg_stat_get_wal_receiver": _CONNECTIONS,
    "pg_hba_file_rules": _AUTH,
    "pg_ident_file_mappings": _AUTH,
    "pg_file_settings": _SETTINGS,
    "pg_show_all_file_settings": _SETTINGS,
    "pg_settings": _SETTINGS,
    "pg_show_all_settings": _SETTINGS,
    "pg_db_role_setting": _SETTINGS,
    # settings that hold a connection string or a command line (with its passwords)
    "primary_conninfo": _CONNECTIONS,
    "ssl_passphrase_command": _SETTINGS,
    "archive_command": _SETTINGS,
    "restore_command": _SETTINGS,
    "archive_cleanup_command": _SETTINGS,
    "recovery_end_command": _SETTINGS,
    "pg_stat_activity": _OTHERS_SQL,
    "pg_stat_get_activity": _OTHERS_SQL,
    "pg_stat_get_backend_activity": _OTHERS_SQL,
    "pg_stat_statements": _OTHERS_SQL,
    # functions that dump tables or run SQL named in a string
    **dict.fromkeys(_HIDDEN_FUNCTIONS.split(), _HIDDEN),
}

_MYSQL_SCHEMA = {
    **dict.fromkeys(
        ["user", "global_priv", "password_history", "host"],
        _PASSWORDS,
    ),
    **dict.fromkeys(
        ["servers", "slave_master_info", "slave_relay_log_info", "slave_worker_info",
         "replication_asynchronous_connection_failover",
         "replication_asynchronous_connection_failover_managed"],
        _CONNECTIONS,
    ),
    **dict.fromkeys(
        ["db", "tables_priv", "columns_priv", "procs_priv", "proxies_priv", "roles_mapping",
         "role_edges", "default_roles", "global_grants"],
        _PRIVILEGES,
    ),
    "general_log": _OTHERS_SQL,
    "slow_log": _OTHERS_SQL,
}  # fmt: skip
_MYSQL_INFORMATION_SCHEMA = {
    **dict.fromkeys(
        ["user_privileges", "schema_privileges", "table_privileges", "column_privileges",
         "applicable_roles", "enabled_roles", "administrable_role_authorizations",
         "role_table_grants", "role_column_grants", "role_routine_grants", "user_attributes",
         "users"],
        _PRIVILEGES,
    ),
    "processlist": _OTHERS_SQL,
    "innodb_trx": _OTHERS_SQL,
}  # fmt: skip

# Objects of one schema: named as schema.name, or bare where the schema is the default one.
_SCOPED: dict[str, dict[str, dict[str, str]]] = {
    "postgres": {
        "information_schema": dict.fromkeys(
            [
                "user_mapping_options",
                "_pg_user_mappings",
                "user_mappings",
                "foreign_server_options",
                "_pg_foreign_servers",
            ],
            _CONNECTIONS,
        ),
    },
    "mysql": {"mysql": _MYSQL_SCHEMA, "information_schema": _MYSQL_INFORMATION_SCHEMA},
    "sqlite": {},
}
_ANYWHERE: dict[str, dict[str, str]] = {
    "postgres": _POSTGRES_ANYWHERE,
    "mysql": {},
    # the user-authentication extension keeps user names and password hashes here
    "sqlite": {"sqlite_user": _PASSWORDS},
}
# Whole schemas: every object in them.
_SCHEMAS: dict[str, dict[str, str]] = {
    "postgres": {},
    "mysql": {
        "performance_schema": _PERFORMANCE,
        "sys": _OTHERS_SQL,
    },
    "sqlite": {},
}
# SHOW statements, by their first words.
_SHOWS: dict[str, dict[tuple[str, ...], str]] = {
    "postgres": {("ALL",): _SETTINGS},
    "mysql": {
        ("GRANTS",): "prints account privileges and password hashes",
        ("CREATE", "USER"): "prints account password hashes",
        ("PROCESSLIST",): _OTHERS_SQL,
        ("FULL", "PROCESSLIST"): _OTHERS_SQL,
        ("ENGINE",): _OTHERS_SQL,
        ("BINLOG",): _OTHERS_SQL,
        ("RELAYLOG",): _OTHERS_SQL,
        ("EXPLAIN",): _OTHERS_SQL,
        ("ANALYZE",): _OTHERS_SQL,
        ("SLAVE",): "prints replication connection settings",
        ("REPLICA",): "prints replication connection settings",
        ("REPLICAS",): "prints replication connection settings",
        ("ALL", "SLAVES"): "prints replication connection settings",
        ("ALL", "REPLICAS"): "prints replication connection settings",
    },
    "sqlite": {},
}
_STRINGS = frozenset(
    {
        TokenType.STRING,
        TokenType.HEREDOC_STRING,
        TokenType.RAW_STRING,
        TokenType.NATIONAL_STRING,
        TokenType.BYTE_STRING,  # PostgreSQL E'...', escapes already decoded
        TokenType.UNICODE_STRING,
        TokenType.HEX_STRING,  # MySQL X'...' and 0x..., which PREPARE takes as SQL text
    }
)
_NOT_NAMES = _STRINGS | {TokenType.NUMBER, TokenType.BIT_STRING}
_MAX_DEPTH = 3  # strings inside strings inside strings


@dataclass(frozen=True)
class CredentialUse:
    """One statement's use of a credentials object: ``name`` as written, what it ``holds``."""

    statement: int
    name: str
    holds: str

    @property
    def message(self) -> str:
        return (
            f"{self.name} {self.holds}; only administrators may read it, so Warden does not "
            "run this statement for you."
        )


def _is_name(token: Token) -> bool:
    if token.token_type in (TokenType.VAR, TokenType.IDENTIFIER):
        return True
    text = token.text
    return (
        token.token_type not in _NOT_NAMES
        and bool(text)
        and all(c.isalnum() or c in "_$" for c in text)
    )


def _words(text: str) -> list[tuple[str, bool]]:
    """A string that does not tokenize: its identifier-like words, each with whether a dot
    follows it (so ``a.b`` still reads as a qualified name)."""
    out: list[tuple[str, bool]] = []
    word = ""
    for char in [*text, " "]:
        if char.isalnum() or char in "_$":
            word += char
            continue
        if word:
            out.append((word.lower(), char == "."))
        word = ""
    return out


def _string_text(token: Token) -> str:
    """A string token's text as the server reads it (hex decoded, Unicode escapes applied)."""
    text = token.text
    if token.token_type == TokenType.HEX_STRING:
        try:
            return bytes.fromhex(text).decode("utf-8", "replace")
        except ValueError:
            return text
    if token.token_type == TokenType.UNICODE_STRING:
        return _unicode_escapes(text)
    return text


def _unicode_escapes(text: str) -> str:
    """PostgreSQL's U&'...' escapes: ``\\005f`` and ``\\+00005f`` are ``_``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        plus = text[i + 1 : i + 2] == "+"
        digits = text[i + 2 : i + 8] if plus else text[i + 1 : i + 5]
        if text[i] == "\\" and len(digits) == (6 if plus else 4) and _is_hex(digits):
            code = int(digits, 16)
            out.append(chr(code) if code <= 0x10FFFF else "?")
            i += len(digits) + (2 if plus else 1)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


@dataclass
class _Scan:
    """Every dotted name (as lower-case parts) in a statement, strings included."""

    names: list[tuple[str, ...]]
    calls: list[tuple[tuple[str, ...], Token | None]]  # a name followed by "(": its first arg

    @classmethod
    def of(cls, tokens: tuple[Token, ...] | list[Token], dialect: str) -> _Scan:
        scan = cls([], [])
        scan.add(list(tokens), dialect, 0)
        return scan

    def add(self, tokens: list[Token], dialect: str, depth: int) -> None:
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token.token_type in _STRINGS:
                self.add_text(_string_text(token), dialect, depth + 1)
                i += 1
                continue
            if not _is_name(token):
                i += 1
                continue
            parts = [token.text.lower()]
            j = i + 1
            while (
                j + 1 < len(tokens)
                and tokens[j].token_type == TokenType.DOT
                and _is_name(tokens[j + 1])
            ):
                parts.append(tokens[j + 1].text.lower())
                j += 2
            self.names.append(tuple(parts))
            if j < len(tokens) and tokens[j].token_type == TokenType.L_PAREN:
                self.calls.append((tuple(parts), tokens[j + 1] if j + 1 < len(tokens) else None))
            i = j

    def add_text(self, text: str, dialect: str, depth: int) -> None:
        if depth > _MAX_DEPTH or not text.strip():
            return
        try:
            tokens, _ = tokenize(text, dialect)
        except Exception:
            words = _words(text)
            parts: list[str] = []
            for word, dotted in words:
                parts.append(word)
                if not dotted:
                    self.names.append(tuple(parts))
                    parts = []
            if parts:
                self.names.append(tuple(parts))
            return
        self.add(tokens, dialect, depth)


def _show_words(tokens: tuple[Token, ...], dialect: str) -> list[str] | None:
    """The upper-cased words after SHOW, or None when the statement is not a SHOW."""
    if not tokens or tokens[0].text.upper() != "SHOW":
        return None
    rest: list[Token] = list(tokens[1:])
    if is_command_payload(tokens, dialect):
        try:
            rest, _ = tokenize(tokens[1].text, dialect)
        except Exception:
            return ["?"]
    return [t.text.upper() for t in rest]


def _setting_name_is_secret(name: str) -> bool:
    """Custom settings (``app.jwt_secret``) are where applications keep their secrets."""
    name = name.strip().strip('"').lower()
    return "." in name or name in _POSTGRES_ANYWHERE


def _statement_uses(
    index: int, tokens: tuple[Token, ...], scan: _Scan, dialect: str, scope: frozenset[str]
) -> Iterator[CredentialUse]:
    words = _show_words(tokens, dialect)
    if words is not None:
        for prefix, holds in _SHOWS[dialect].items():
            if tuple(words[: len(prefix)]) == prefix:
                yield CredentialUse(index, "SHOW " + " ".join(prefix), holds)
                return
        if dialect == "postgres" and words and _setting_name_is_secret("".join(words)):
            yield CredentialUse(index, "SHOW " + "".join(words).lower(), _SETTINGS)
            return
    anywhere, scoped, schemas = _ANYWHERE[dialect], _SCOPED[dialect], _SCHEMAS[dialect]
    for parts in scan.names:
        for position, part in enumerate(parts):
            before = parts[position - 1] if position else ""
            if part in anywhere:
                yield CredentialUse(index, ".".join(parts[: position + 1]), anywhere[part])
                return
            if part in schemas and position + 1 < len(parts):
                yield CredentialUse(index, f"{part}.{parts[position + 1]}", schemas[part])
                return
            for schema, names in scoped.items():
                if part in names and (before == schema or (not before and schema in scope)):
                    yield CredentialUse(index, f"{schema}.{part}", names[part])
                    return
    if dialect == "postgres":
        for parts, first in scan.calls:
            if parts[-1] != "current_setting":
                continue
            literal = first is not None and first.token_type in _STRINGS
            if not literal or _setting_name_is_secret(first.text if first else ""):
                yield CredentialUse(index, "current_setting()", _CURRENT_SETTING)
                return


def _scope(
    chunks: list[tuple[Token, ...]], scans: list[_Scan], dialect: str, default_schema: str
) -> frozenset[str]:
    """Schemas whose objects a bare name can reach in this batch.

    MySQL: the connection's database and any ``USE`` in the batch. PostgreSQL: any schema the
    batch names at all (``SET search_path``, ``set_config('search_path', …)``), strings included.
    """
    scope = {default_schema.lower()} if default_schema else set()
    if dialect == "mysql":
        for tokens in chunks:
            if len(tokens) >= 2 and tokens[0].text.upper() == "USE":
                scope.add(tokens[1].text.lower())
    elif dialect == "postgres":
        for scan in scans:
            for parts in scan.names:
                scope.update(parts)
    return frozenset(scope)


def _whole_schema(
    index: int, tokens: tuple[Token, ...], dialect: str, default_schema: str
) -> CredentialUse | None:
    """MySQL: ``USE performance_schema``, or a connection whose database is one of those."""
    schemas = _SCHEMAS[dialect]
    if len(tokens) >= 2 and tokens[0].text.upper() == "USE":
        schema = tokens[1].text.lower()
        if schema in schemas:
            return CredentialUse(index, f"USE {schema}", schemas[schema])
    if default_schema.lower() in schemas:
        return CredentialUse(index, default_schema, schemas[default_schema.lower()])
    return None


def credential_uses(
    sql: str, dialect: str, *, default_schema: str = ""
) -> tuple[CredentialUse, ...]:
    """Statements of ``sql`` that read credentials, at most one finding per statement.

    ``default_schema`` is where bare names resolve (a MySQL connection's database). Never
    raises: text that cannot be tokenized is left to the analyzer, which refuses it.
    """
    if len(sql) > CACHE_MAX_CHARS:  # a cache of megabyte keys is a leak
        return _credential_uses(sql, dialect, default_schema)
    return _cached(sql, dialect, default_schema)


def clear_credentials_cache() -> None:
    _cached.cache_clear()


def _credential_uses(sql: str, dialect: str, default_schema: str) -> tuple[CredentialUse, ...]:
    if dialect not in _ANYWHERE:
        return ()
    try:
        tokens, _ = tokenize(sql, dialect)
    except (LexError, TokenError):
        return ()
    try:
        chunks = [chunk.tokens for chunk in split(tokens)]
        scans = [_Scan.of(chunk, dialect) for chunk in chunks]
        scope = _scope(chunks, scans, dialect, default_schema)
        found: list[CredentialUse] = []
        for index, chunk in enumerate(chunks):
            whole = _whole_schema(index, chunk, dialect, default_schema)
            if whole is not None:
                found.append(whole)
            else:
                found.extend(_statement_uses(index, chunk, scans[index], dialect, scope))
        return tuple(found)
    except Exception:  # fail closed: a bug here must not let credentials through
        return (CredentialUse(0, "This statement", "could not be checked for credentials"),)


_cached = functools.lru_cache(maxsize=2048)(_credential_uses)

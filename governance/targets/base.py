"""Shared types of the target-database drivers (pure Python, no Django)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

ERROR_KINDS = frozenset(
    {"connect", "auth", "timeout", "cancelled", "readonly", "execution", "too_large"}
)
MAX_MESSAGE_CHARS = 2000
TRANSACTION_CONTROL_MESSAGE = "transaction control is not allowed"
MIB = 1024 * 1024
DEFAULT_MAX_CELL_BYTES = 1 * MIB
DEFAULT_MAX_RUN_BYTES = 64 * MIB


@dataclass(frozen=True)
class TargetConfig:
    engine: str  # "postgresql" | "mysql" | "sqlite"
    host: str = ""
    port: int | None = None
    database: str = ""  # for sqlite: a filesystem path
    user: str = ""
    password: str = field(default="", repr=False)
    statement_timeout_ms: int = 30_000
    connect_timeout_s: int = 10
    # TLS (see ``tls``): a libpq sslmode name, and a CA certificate (bundle) as PEM text.
    tls_mode: str = "prefer"
    tls_ca_pem: str = field(default="", repr=False)
    # What a run may fetch: every value (cell) and, for interactive results, all rows together.
    max_cell_bytes: int = DEFAULT_MAX_CELL_BYTES
    max_run_bytes: int = DEFAULT_MAX_RUN_BYTES


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # lower-case type name as the database reports it


@dataclass
class Result:
    """What a batch returns: the rows of its last statement that returned rows with at least
    one column (a query, a SHOW, a write's RETURNING), or, when none did, the row count of its
    last statement. ``statement`` is the index of the statement whose rows these are (None
    when no statement returned rows), so that callers mask and scan exactly what is shown.
    """

    columns: list[Column]
    rows: list[tuple[Any, ...]]
    row_count: int
    truncated: bool
    statement_count: int
    statement: int | None = None


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: tuple[Column, ...]
    kind: str  # "table" | "view"


@dataclass(frozen=True)
class Preview:
    """How many rows a held write would change, told to its approver before the decision.

    ``method`` is "dry_run" (the statements ran in a transaction that was rolled back),
    "explain" (the planner's estimates; nothing ran) or "none" (nothing was tried). ``rows`` has
    one entry per statement: the rows it changed or is estimated to change, None when unknown
    (not previewed, or the preview stopped before it). ``error`` / ``error_kind`` (a TargetError
    kind: "timeout", "execution"...) say why a preview that was tried did not finish.
    """

    method: str  # "dry_run" | "explain" | "none"
    rows: tuple[int | None, ...]
    estimated: bool
    note: str
    error: TargetError | None = None  # its ``statement`` is the index where the preview stopped

    @property
    def error_kind(self) -> str | None:
        return None if self.error is None else self.error.kind


class TargetError(Exception):
    """A failure talking to a target database; ``str(e) == e.message``.

    ``code`` is the engine's own code of the error: a PostgreSQL SQLSTATE ("22P02"), a
    MySQL/MariaDB error number ("1292") or an SQLite (extended) result code name
    ("SQLITE_CONSTRAINT_UNIQUE"); None when Warden raised it. ``statement`` is the index of the
    batch statement that failed (None: not one of them, e.g. connecting or committing) and
    ``position`` the 1-based character offset in that statement's text, as the caller passed
    it, where the server says the error is. ``column`` names the result column of a
    "too_large" error.

    ``server_text`` says whether ``message`` holds text from the server, which can quote the
    values a statement touched; errors Warden words itself say False. Callers that must not
    show data build the words from the code instead (see ``errors.coded_sentence``).
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        code: str | None = None,
        statement: int | None = None,
        position: int | None = None,
        column: str | None = None,
        server_text: bool = True,
    ) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown TargetError kind {kind!r}")
        self.kind = kind
        self.message = trim_message(message)
        self.code = code
        self.statement = statement
        self.position = position
        self.column = column
        self.server_text = server_text
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"TargetError(kind={self.kind!r}, message={self.message!r}, code={self.code!r}, "
            f"statement={self.statement!r}, position={self.position!r})"
        )

    def at(self, statement: int | None) -> TargetError:
        """The same error, marked as raised by batch statement ``statement`` (unless known)."""
        if self.statement is None:
            self.statement = statement
        return self


def own_error(kind: str, message: str, **fields: Any) -> TargetError:
    """An error Warden words itself (no text from the server in it)."""
    return TargetError(kind, message, server_text=False, **fields)


SECRET_SHOWN_AS = "••••••"  # noqa: S105  # what stands in for one, not one


# A sentence about a password, not one.
SECRET_REPEATED = "The target refused the connection; its answer repeated the password."  # noqa: S105


def without_secret(message: str, secret: str) -> str:
    """`message`, unless it quotes `secret` (a password): a driver's error can repeat what it
    was given, and connection errors are shown and audited. Not blotted out in place: where
    the password stood in a longer text would tell something of it."""
    return SECRET_REPEATED if secret and secret in message else message


def trim_message(message: str) -> str:
    text = " ".join(str(message).replace("\x00", "\\x00").split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text or "unknown error"


Keyed = Collection[int]  # indexes of the statements that need the pseudonym key bound


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer key pads (RFC 2104) for a key of at most 64 bytes.

    Masked statements compute ``sha256(opad || sha256(ipad || value))`` in the database; the
    pads travel to the target as parameters (never in the statement text) and are as secret as
    the key itself.
    """
    if not 16 <= len(key) <= 64:
        raise ValueError("the pseudonym key must be 16 to 64 bytes")
    block = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


@runtime_checkable
class TargetSession(Protocol):
    backend_id: str | None

    tag: str

    def execute(
        self, statements: Sequence[str], *, read_only: bool, max_rows: int, keyed: Keyed = ()
    ) -> Result: ...

    def stream(
        self, statement: str, *, read_only: bool, batch_size: int = 5000, keyed: bool = False
    ) -> tuple[list[Column], Iterator[list[tuple[Any, ...]]]]: ...

    def preview(
        self,
        statements: Sequence[str],
        *,
        dml: Sequence[bool],
        tables: Sequence[str] = (),
        timeout_ms: int,
        keyed: Keyed = (),
    ) -> Preview: ...

    def introspect(self) -> list[TableInfo]: ...

    def server_version(self) -> str: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


CancelCheck = Callable[[], bool]


class SessionBase:
    """Context-manager plumbing shared by the concrete sessions."""

    backend_id: str | None = None
    pseudonym_key: bytes | None = None  # set by connect(); bound to keyed statements only
    # Who runs what, for the database's own logs (pgaudit, MySQL's general log): set before
    # each run, see `session_tag`. PostgreSQL carries it as the transaction's application_name,
    # MySQL and MariaDB as a comment before each statement.
    tag: str = ""

    def key_pads(self) -> tuple[bytes, bytes]:
        if self.pseudonym_key is None:
            raise TargetError("execution", "this statement needs the pseudonym key")
        return hmac_pads(self.pseudonym_key)

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_TAG_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@+-")
TAG_MAX = 63  # PostgreSQL keeps at most 63 bytes of application_name


def session_tag(run_id: int, identity: str) -> str:
    """``warden run=<id> user=<name>``, in characters no SQL or log format treats specially
    (anything else in the name becomes ``_``): it goes into a literal and a comment."""
    name = "".join(c if c in _TAG_SAFE else "_" for c in identity)
    return f"warden run={int(run_id)} user={name}"[:TAG_MAX]


def tag_is_safe(tag: str) -> bool:
    return len(tag) <= TAG_MAX and all(c in _TAG_SAFE or c in " =" for c in tag)


def check_statements(statements: Sequence[str], max_rows: int) -> list[str]:
    if isinstance(statements, str):
        raise TypeError("statements must be a sequence of strings, not one string")
    items = list(statements)
    if not items:
        raise own_error("execution", "no statement to run")
    if max_rows < 0:
        raise ValueError("max_rows must be >= 0")
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise own_error("execution", "empty statement", statement=index)
    return items


def first_keyword(statement: str) -> str:
    """The statement's first word, lower-case, after comments, blanks and parentheses."""
    i, n = 0, len(statement)
    while i < n:
        if statement[i].isspace() or statement[i] == "(":
            i += 1
        elif statement.startswith("--", i):
            end = statement.find("\n", i)
            i = n if end < 0 else end + 1
        elif statement.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if statement.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif statement.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        else:
            break
    start = i
    while i < n and (statement[i].isalnum() or statement[i] == "_"):
        i += 1
    return statement[start:i].lower()


# -- byte bounds ----------------------------------------------------------------------------
CELL_LIMIT = "max_cell_bytes"  # the code of a too_large error: which bound was passed
RUN_LIMIT = "max_run_bytes"
_SMALL = (int, float, bool)  # numbers, counted as 8 bytes; dates, UUIDs and the like as 16
_FIXED_SIZES: dict[type, int] = {
    int: 8,
    float: 8,
    bool: 8,
    type(None): 0,
    dt.date: 16,
    dt.datetime: 16,
    dt.time: 16,
    dt.timedelta: 16,
    decimal.Decimal: 16,
    uuid.UUID: 16,
}


def size_text(size: int) -> str:
    """``1048576`` → ``1 MiB``: limits as people write them.

    >>> size_text(64 * 1024 * 1024), size_text(1536), size_text(1000)
    ('64 MiB', '1.5 KiB', '1,000 bytes')
    """
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size:,} bytes"


def value_bytes(value: Any, limit: int) -> int:
    """The bytes of one fetched value (text as UTF-8), counted up to just past ``limit``.

    Arrays and JSON values count their parts; numbers count 8 bytes and other scalars
    (dates, UUIDs...) 16.
    """
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, memoryview):
        return value.nbytes
    if isinstance(value, _SMALL):
        return 8
    if isinstance(value, list | tuple | dict):
        items: Any = value.items() if isinstance(value, dict) else value
        total = 2
        for item in items:
            total += 1 + value_bytes(item, limit - total)
            if total > limit:
                break
        return total
    return 16


def too_large(
    limit_name: str, limit: int, column: str | None = None, *, one_row: bool = False
) -> TargetError:
    """The error of a value, a row (``one_row``) or a result past its bound (Warden's words)."""
    if one_row:
        message = f"A row is larger than {size_text(limit)}, the most one row may be."
    elif limit_name == CELL_LIMIT:
        where = f'in column "{column}"' if column is not None else "in the result"
        message = f"A value {where} is larger than {size_text(limit)}, the most one value may be."
    else:
        message = (
            f"The result is larger than {size_text(limit)}, the most one run may fetch; "
            "select fewer rows or columns."
        )
    return own_error("too_large", message, code=limit_name, column=column)


class Meter:
    """Counts the bytes of rows as they arrive and stops a value or a result that is too large.

    ``run_limit`` None: no bound on the whole result (exports are bounded by their row limit).
    """

    def __init__(self, columns: Sequence[str], *, cell_limit: int, run_limit: int | None) -> None:
        self.columns = list(columns)
        self.cell_limit = cell_limit
        self.run_limit = run_limit
        self.total = 0

    def add(self, row: Sequence[Any]) -> None:
        cell_limit, total, fixed = self.cell_limit, self.total, _FIXED_SIZES
        for value in row:
            kind = type(value)
            if kind is str:  # the common cases inline: a few hundred thousand cells a second
                size = len(value) if value.isascii() else value_bytes(value, cell_limit)
            elif kind in fixed:
                total += fixed[kind]
                continue
            else:
                size = value_bytes(value, cell_limit)
            if size > cell_limit:
                self._too_large_cell(row)
            total += size
        self.total = total
        if self.run_limit is not None and total > self.run_limit:
            raise too_large(RUN_LIMIT, self.run_limit)

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self.add(row)

    def _too_large_cell(self, row: Sequence[Any]) -> None:
        for index, value in enumerate(row):
            if value_bytes(value, self.cell_limit) > self.cell_limit:
                name = self.columns[index] if index < len(self.columns) else None
                raise too_large(CELL_LIMIT, self.cell_limit, name)

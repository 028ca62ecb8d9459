"""Shared types of the target-database drivers (pure Python, no Django)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

ERROR_KINDS = frozenset({"connect", "auth", "timeout", "cancelled", "readonly", "execution"})
MAX_MESSAGE_CHARS = 2000
TRANSACTION_CONTROL_MESSAGE = "transaction control is not allowed"


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


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # lower-case type name as the database reports it


@dataclass
class Result:
    columns: list[Column]
    rows: list[tuple[Any, ...]]
    row_count: int
    truncated: bool
    statement_count: int


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
    error: str | None = None
    error_kind: str | None = None


class TargetError(Exception):
    """A failure talking to a target database; ``str(e) == e.message``."""

    def __init__(self, kind: str, message: str) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown TargetError kind {kind!r}")
        self.kind = kind
        self.message = trim_message(message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"TargetError(kind={self.kind!r}, message={self.message!r})"


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


def check_statements(statements: Sequence[str], max_rows: int) -> list[str]:
    if isinstance(statements, str):
        raise TypeError("statements must be a sequence of strings, not one string")
    items = list(statements)
    if not items:
        raise TargetError("execution", "no statement to run")
    if max_rows < 0:
        raise ValueError("max_rows must be >= 0")
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise TargetError("execution", "empty statement")
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

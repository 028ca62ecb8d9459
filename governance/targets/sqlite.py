"""SQLite driver (standard library sqlite3).

Reads use a connection opened with ``file:…?mode=ro`` plus an authorizer refusing every write
action; both read and write connections refuse ATTACH/DETACH, pragmas with an argument,
``load_extension`` and transaction control from user statements. A progress handler enforces the
statement timeout and polls ``should_cancel``.

Byte bounds: the engine's own length limit (SQLITE_LIMIT_LENGTH) is set to the bound of one
value on the read connection, so no larger string or blob is ever built; on the write
connection, where it also bounds what a statement may write, to the bound of a whole run. A
``Meter`` counts the rows as they are fetched, one at a time.

Errors carry the (extended) result code name, e.g. SQLITE_CONSTRAINT_UNIQUE, and the index of
the batch statement that failed; SQLite reports no position.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from .base import (
    CELL_LIMIT,
    RUN_LIMIT,
    TRANSACTION_CONTROL_MESSAGE,
    CancelCheck,
    Column,
    Keyed,
    Meter,
    Preview,
    Result,
    SessionBase,
    TableInfo,
    TargetConfig,
    TargetError,
    check_statements,
    own_error,
    too_large,
)
from .preview import Budget, not_previewed, plan, try_statements

HEAP_FLOOR = 256 * 1024 * 1024  # SQLite's own heap, process-wide, at the least
PROGRESS_STEPS = 1000  # VM instructions between progress-handler calls
CANCEL_POLL_S = 0.05

_WRITE_ACTIONS = frozenset(
    getattr(sqlite3, name)
    for name in (
        "SQLITE_INSERT",
        "SQLITE_UPDATE",
        "SQLITE_DELETE",
        "SQLITE_ALTER_TABLE",
        "SQLITE_ANALYZE",
        "SQLITE_REINDEX",
        "SQLITE_CREATE_INDEX",
        "SQLITE_CREATE_TABLE",
        "SQLITE_CREATE_TEMP_INDEX",
        "SQLITE_CREATE_TEMP_TABLE",
        "SQLITE_CREATE_TEMP_TRIGGER",
        "SQLITE_CREATE_TEMP_VIEW",
        "SQLITE_CREATE_TRIGGER",
        "SQLITE_CREATE_VIEW",
        "SQLITE_CREATE_VTABLE",
        "SQLITE_DROP_INDEX",
        "SQLITE_DROP_TABLE",
        "SQLITE_DROP_TEMP_INDEX",
        "SQLITE_DROP_TEMP_TABLE",
        "SQLITE_DROP_TEMP_TRIGGER",
        "SQLITE_DROP_TEMP_VIEW",
        "SQLITE_DROP_TRIGGER",
        "SQLITE_DROP_VIEW",
        "SQLITE_DROP_VTABLE",
    )
    if hasattr(sqlite3, name)
)
# What a preview may do beyond reading: change rows of existing tables, nothing else.
_ROW_ACTIONS = frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})
_SCHEMA_ACTIONS = _WRITE_ACTIONS - _ROW_ACTIONS
_TX_ACTIONS = frozenset({sqlite3.SQLITE_TRANSACTION, getattr(sqlite3, "SQLITE_SAVEPOINT", 32)})
_FILE_ACTIONS = frozenset({sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH})
# name -> (number of arguments, implementation): functions registered on every connection.
Functions = Mapping[str, tuple[int, Callable[..., str | int | float | None]]]
_FUNCTION_ACTION = getattr(sqlite3, "SQLITE_FUNCTION", 31)
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"})
# Pragmas that take a table/index name as argument and only read (the engine's schema pragmas
# that take one; tests/targets/test_sqlite.py checks the two lists agree).
_READ_PRAGMAS_WITH_ARG = frozenset(
    {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
     "foreign_key_list"}
)  # fmt: skip
_WRITE_PRAGMAS = frozenset({"optimize", "wal_checkpoint", "incremental_vacuum", "shrink_memory"})


def _value_type(value: Any) -> str:
    if isinstance(value, bool | int):
        return "integer"
    if isinstance(value, float):
        return "real"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bytes | bytearray | memoryview):
        return "blob"
    return "null"


def _columns(cur: sqlite3.Cursor, rows: Sequence[tuple[Any, ...]]) -> list[Column]:
    """SQLite has no result column types: report the storage class of the first non-NULL value."""
    columns = []
    for index, item in enumerate(cur.description or ()):
        kind = next((_value_type(r[index]) for r in rows if r[index] is not None), "null")
        columns.append(Column(str(item[0]), kind))
    return columns


def _vtab_registration(action: int, table: str | None) -> bool:
    """SQLite authorises an UPDATE of sqlite_master when a table-valued function (json_each,
    pragma_table_info...) is first used; nothing is written. The read-only connection is
    opened with mode=ro and writable_schema is refused, so no real write can pass here."""
    return action == sqlite3.SQLITE_UPDATE and (table or "").lower() in (
        "sqlite_master",
        "sqlite_schema",
    )


class SQLiteSession(SessionBase):
    def __init__(
        self,
        config: TargetConfig,
        should_cancel: CancelCheck | None = None,
        functions: Functions | None = None,
    ) -> None:
        if not config.database:
            raise own_error("connect", "no database file configured for the SQLite connection")
        self._config = config
        self._should_cancel = should_cancel
        self._functions = dict(functions or {})
        self.backend_id: str | None = None
        self._deadline: float | None = None
        self._next_poll = 0.0
        self._interrupt: str | None = None
        self._denied: str | None = None
        self._internal = False
        self._previewing = False
        self._rw: sqlite3.Connection | None = None
        self._ro = self._open(read_only=True)
        try:
            self._ro.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except sqlite3.Error as exc:
            self._ro.close()
            raise TargetError("connect", str(exc), code=_code(exc)) from None

    # -- connections ------------------------------------------------------------------------
    def _open(self, read_only: bool) -> sqlite3.Connection:
        uri = f"file:{quote(self._config.database)}?mode={'ro' if read_only else 'rw'}"
        try:
            # cached_statements=0: a statement prepared for our own BEGIN/COMMIT (authorised
            # as internal) must never be reused for the same text sent by a user.
            conn = sqlite3.connect(
                uri,
                uri=True,
                isolation_level=None,
                timeout=max(1, self._config.connect_timeout_s),
                cached_statements=0,
            )
        except sqlite3.Error as exc:
            message = f"{exc}: {self._config.database}"
            raise TargetError("connect", message, code=_code(exc)) from None
        if hasattr(conn, "enable_load_extension"):
            conn.enable_load_extension(False)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, self._length_limit(read_only))
        # Values are bounded one by one, but a row of 1,500 of them is not: SQLite's heap is
        # limited (for the whole process), so one statement cannot take the worker past a few
        # hundred megabytes; the allocation that fails becomes MemoryError in the fetch (see
        # _out_of_memory).
        conn.execute(f"PRAGMA hard_heap_limit = {self._heap_limit()}")
        conn.set_authorizer(self._authorizer_for(read_only))
        conn.set_progress_handler(self._progress, PROGRESS_STEPS)
        for name, (n_args, function) in self._functions.items():
            # Masking expressions call these (SQLite has no hash functions of its own).
            conn.create_function(name, n_args, function, deterministic=True)
        return conn

    def _heap_limit(self) -> int:
        return max(HEAP_FLOOR, 4 * int(self._config.max_run_bytes))

    def _out_of_memory(self) -> TargetError:
        return too_large(RUN_LIMIT, self._heap_limit(), one_row=True)

    def _length_limit(self, read_only: bool) -> int:
        """The largest string or blob the connection builds (at least SQLite's own 1,000)."""
        config = self._config
        limit = (
            config.max_cell_bytes if read_only else max(config.max_cell_bytes, config.max_run_bytes)
        )
        return max(1000, min(int(limit), 2**31 - 1))

    def _connection(self, read_only: bool) -> sqlite3.Connection:
        if read_only:
            return self._ro
        if self._rw is None:
            self._rw = self._open(read_only=False)
        return self._rw

    def _authorizer_for(self, read_only: bool) -> Any:
        def authorizer(
            action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None
        ) -> int:
            reason = self._refusal(read_only, action, arg1, arg2)
            if reason is None:
                return sqlite3.SQLITE_OK
            self._denied = reason
            return sqlite3.SQLITE_DENY

        return authorizer

    def _refusal(
        self, read_only: bool, action: int, arg1: str | None, arg2: str | None
    ) -> str | None:
        if action in _FILE_ACTIONS:
            return "ATTACH and DETACH are not allowed"
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if arg2 is not None and name not in _READ_PRAGMAS_WITH_ARG:
                return f"PRAGMA {name} with an argument is not allowed"
            if read_only and name in _WRITE_PRAGMAS:
                return f"PRAGMA {name} is not allowed in a read-only transaction"
            return None
        if action == _FUNCTION_ACTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
            return f"function {arg2} is not allowed"
        if action in _TX_ACTIONS and not self._internal:
            return TRANSACTION_CONTROL_MESSAGE
        if read_only and action in _WRITE_ACTIONS and not _vtab_registration(action, arg1):
            return "attempt to write in a read-only transaction"
        if self._previewing and action in _SCHEMA_ACTIONS:
            return "a preview only changes rows of existing tables"
        return None

    def _progress(self) -> int:
        now = time.monotonic()
        if self._deadline is not None and now > self._deadline:
            self._interrupt = "timeout"
            return 1
        if self._should_cancel is not None and now >= self._next_poll:
            self._next_poll = now + CANCEL_POLL_S
            try:
                cancelled = bool(self._should_cancel())
            except Exception:
                cancelled = True
            if cancelled:
                self._interrupt = "cancelled"
                return 1
        return 0

    # -- plumbing ---------------------------------------------------------------------------
    def _arm(self) -> None:
        self._deadline = time.monotonic() + max(0, self._config.statement_timeout_ms) / 1000
        if self._config.statement_timeout_ms <= 0:
            self._deadline = None
        self._interrupt = None
        self._denied = None

    def _control(self, conn: sqlite3.Connection, sql: str) -> None:
        self._internal = True
        try:
            conn.execute(sql)
        finally:
            self._internal = False

    def _abandon(self, conn: sqlite3.Connection, cur: sqlite3.Cursor | None) -> None:
        """Close the statement that failed, then roll back. A statement left open (its cursor
        kept alive by the error's traceback until garbage collection) keeps the read lock of
        its transaction, and every write to the file waits on it."""
        if cur is not None:
            with contextlib.suppress(sqlite3.Error):
                cur.close()
        self._rollback(conn)

    def _rollback(self, conn: sqlite3.Connection) -> None:
        # MemoryError too: at the heap limit a ROLLBACK can fail to allocate (close() then
        # still closes the connection, which releases its locks).
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error, MemoryError):
                self._control(conn, "ROLLBACK")

    def _map_error(
        self, exc: sqlite3.Error, statement: int | None = None, read_only: bool = True
    ) -> TargetError:
        message, code = str(exc), _code(exc)
        if self._interrupt == "timeout":
            return own_error("timeout", "statement timeout exceeded", statement=statement)
        if self._interrupt == "cancelled":
            return own_error("cancelled", "statement cancelled", statement=statement)
        if self._denied is not None and code == "SQLITE_AUTH":
            return own_error("readonly", self._denied, code=code, statement=statement)
        if code == "SQLITE_TOOBIG":
            error = too_large(CELL_LIMIT, self._length_limit(read_only))
            return error.at(statement)
        kind = (
            "readonly" if code is not None and code.startswith("SQLITE_READONLY") else "execution"
        )
        return TargetError(kind, message, code=code, statement=statement)

    # -- public API -------------------------------------------------------------------------
    def execute(
        self, statements: Sequence[str], *, read_only: bool, max_rows: int, keyed: Keyed = ()
    ) -> Result:
        """``keyed`` is accepted for the common interface: on SQLite the key lives in the
        registered ``warden_pseudonym`` function, never in a statement."""
        items = check_statements(statements, max_rows)
        conn = self._connection(read_only)
        config = self._config
        meter = Meter([], cell_limit=config.max_cell_bytes, run_limit=config.max_run_bytes)
        index: int | None = None
        cur: sqlite3.Cursor | None = None
        self._arm()
        try:
            self._control(conn, "BEGIN")
            last_rows: Result | None = None
            last_count = -1
            for index, statement in enumerate(items):
                self._arm()
                cur = conn.execute(statement)
                if cur.description is not None:
                    meter.columns = [str(item[0]) for item in cur.description]
                    rows, count, truncated = _fetch(cur, max_rows, meter, strict=read_only)
                    columns = _columns(cur, rows)
                    last_rows = Result(columns, rows, count, truncated, len(items), index)
                    last_count = count
                else:
                    last_count = cur.rowcount
                cur.close()
                if not conn.in_transaction:
                    kind = "readonly" if read_only else "execution"
                    raise own_error(kind, TRANSACTION_CONTROL_MESSAGE)
            index = None
            self._arm()
            self._control(conn, "ROLLBACK" if read_only else "COMMIT")
        except sqlite3.Error as exc:
            error = self._map_error(exc, index, read_only)
            self._abandon(conn, cur)
            raise error from None
        except MemoryError:  # the heap limit (see _open): one row or value too large
            self._abandon(conn, cur)
            raise self._out_of_memory().at(index) from None
        except TargetError as exc:
            self._abandon(conn, cur)
            raise exc.at(index) from None
        except BaseException:
            self._abandon(conn, cur)
            raise
        finally:
            self._deadline = None
        if last_rows is not None:
            return last_rows
        return Result([], [], last_count, False, len(items))

    def stream(
        self, statement: str, *, read_only: bool, batch_size: int = 5000, keyed: bool = False
    ) -> tuple[list[Column], Iterator[list[tuple[Any, ...]]]]:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        check_statements([statement], 0)
        conn = self._connection(read_only)
        cur: sqlite3.Cursor | None = None
        self._arm()
        try:
            self._control(conn, "BEGIN")
            cur = conn.execute(statement)
            first = cur.fetchmany(batch_size) if cur.description is not None else []
        except sqlite3.Error as exc:
            error = self._map_error(exc, 0, read_only)
            self._abandon(conn, cur)
            raise error from None
        except MemoryError:
            self._abandon(conn, cur)
            raise self._out_of_memory().at(0) from None
        finally:
            self._deadline = None
        config = self._config
        names = [str(item[0]) for item in cur.description or ()]
        meter = Meter(names, cell_limit=config.max_cell_bytes, run_limit=None)
        batches = self._batches(conn, cur, first, meter, read_only, batch_size)
        return _columns(cur, first), batches

    def _batches(
        self,
        conn: sqlite3.Connection,
        cur: sqlite3.Cursor,
        first: list[Any],
        meter: Meter,
        read_only: bool,
        batch_size: int,
    ) -> Iterator[list[tuple[Any, ...]]]:
        finished = False
        try:
            batch = first
            while batch:
                meter.add_rows(batch)
                yield batch
                self._arm()
                batch = cur.fetchmany(batch_size)
                self._deadline = None
            cur.close()
            self._control(conn, "ROLLBACK" if read_only else "COMMIT")
            finished = True
        except sqlite3.Error as exc:
            raise self._map_error(exc, 0, read_only) from None
        except MemoryError:
            raise self._out_of_memory().at(0) from None
        except TargetError as exc:
            raise exc.at(0) from None
        finally:
            self._deadline = None
            if not finished:
                cur.close()
                self._rollback(conn)

    def preview(
        self,
        statements: Sequence[str],
        *,
        dml: Sequence[bool],
        tables: Sequence[str] = (),
        timeout_ms: int,
        keyed: Keyed = (),
    ) -> Preview:
        """Dry-run the plain writes on the write connection, in a transaction always rolled back.

        The write connection's authorizer applies, and refuses schema changes besides.
        """
        items, count = plan(statements, dml)
        if count == 0:
            return not_previewed(len(items), "Schema changes are not tried.")
        budget = Budget(timeout_ms)
        opened: list[sqlite3.Connection] = []
        self._interrupt = None
        self._denied = None
        self._previewing = True

        def start() -> None:  # every SQLite table rolls back: always a dry run
            conn = self._connection(read_only=False)
            opened.append(conn)
            self._control(conn, "BEGIN")

        def step(index: int, statement: str, dry_run: bool) -> int:
            (conn,) = opened
            self._deadline = time.monotonic() + budget.remaining_ms() / 1000
            rows = self._changed_rows(conn, statement)
            if not conn.in_transaction:
                raise TargetError("execution", TRANSACTION_CONTROL_MESSAGE)
            return rows

        def rollback() -> None:
            self._previewing = False
            self._deadline = None
            for conn in opened:
                self._rollback(conn)
                if conn.in_transaction:  # the rollback failed: never reuse this connection
                    conn.close()
                    self._rw = None

        return try_statements(
            items,
            count,
            start=start,
            step=step,
            rollback=rollback,
            db_error=sqlite3.Error,
            map_error=lambda exc: self._map_error(exc, None, read_only=False),
        )

    @staticmethod
    def _changed_rows(conn: sqlite3.Connection, statement: str) -> int:
        # changes() counts the last INSERT/UPDATE/DELETE (not its triggers), also when it comes
        # after a WITH or returns rows; total_changes tells whether this statement was one.
        before = conn.total_changes
        cur = conn.execute(statement)
        while cur.fetchmany(1000):
            pass  # RETURNING rows: drained, not kept
        cur.close()
        if conn.total_changes == before:
            return 0
        return int(conn.execute("SELECT changes()").fetchone()[0])

    def introspect(self) -> list[TableInfo]:
        conn = self._ro
        self._arm()
        try:
            objects = conn.execute(
                "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')"
                " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            ).fetchall()
            tables = []
            for kind, name in objects:
                quoted = '"' + str(name).replace('"', '""') + '"'
                info = conn.execute(f"PRAGMA main.table_info({quoted})").fetchall()
                columns = tuple(Column(str(col[1]), str(col[2] or "").lower()) for col in info)
                tables.append(TableInfo("main", str(name), columns, str(kind)))
        except sqlite3.Error as exc:
            raise self._map_error(exc) from None
        finally:
            self._deadline = None
        return tables

    def server_version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def close(self) -> None:
        """Close both connections whatever happens: one left open (held alive by an error's
        traceback) would keep its lock on the file until garbage collection."""
        for conn in (self._ro, self._rw):
            if conn is not None:
                try:
                    self._rollback(conn)
                finally:
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()
        self._rw = None


def _code(exc: sqlite3.Error) -> str | None:
    """The (extended) result code's name; Python's own errors (misuse) have none."""
    name = getattr(exc, "sqlite_errorname", None)
    return name if isinstance(name, str) and name.startswith("SQLITE_") else None


def _fetch(
    cur: sqlite3.Cursor, max_rows: int, meter: Meter, *, strict: bool
) -> tuple[list[tuple[Any, ...]], int, bool]:
    """Up to ``max_rows`` rows, fetched one at a time and counted by ``meter``; the row count
    and whether rows were left out. A read (``strict``) fails when the rows pass a bound; a
    write's returned rows are a sample, cut short there, and every row is counted."""
    rows: list[tuple[Any, ...]] = []
    truncated = False
    for row in cur:
        if len(rows) < max_rows:
            try:
                meter.add(row)
            except TargetError:
                if strict:
                    raise
            else:
                rows.append(row)
                continue
        truncated = True
        break
    count = len(rows)
    if truncated and not strict:  # a write's RETURNING: count every row
        count += 1 + sum(1 for _ in cur)
    return rows, count, truncated


def connect(
    config: TargetConfig,
    should_cancel: CancelCheck | None = None,
    functions: Functions | None = None,
) -> SQLiteSession:
    return SQLiteSession(config, should_cancel, functions)

"""MySQL / MariaDB driver (PyMySQL).

No CLIENT_MULTI_STATEMENTS (the server refuses ``SELECT 1; SELECT 2``), no LOCAL INFILE,
utf8mb4, autocommit off, unbuffered cursors. Reads set the *session* to read-only as well as
the transaction, because a DDL statement implicitly commits the read-only transaction and would
otherwise run outside it.

Rows stream through an unbuffered cursor one at a time; the server bounds every value by its
``max_allowed_packet``, and a ``Meter`` counts each value and the result as they arrive. A read
that passes a bound ends by closing the connection: draining the rest would fetch it all.

Errors carry the error number, the index of the batch statement that failed and, for syntax
errors, the position the server names ("near '…' at line n"), found in the statement's text.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pymysql
from pymysql.constants import FIELD_TYPE, SERVER_STATUS
from pymysql.cursors import Cursor, SSCursor
from pymysql.protocol import MysqlPacket

from . import tls
from .base import (
    RUN_LIMIT,
    TRANSACTION_CONTROL_MESSAGE,
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
    first_keyword,
    own_error,
    tag_is_safe,
    too_large,
)
from .preview import Budget, not_previewed, plan, try_statements

# The session variables the masking expressions read the key's HMAC pads from (the engine's
# masking templates name them: governance/engine/masking/functions.py).
_KEY_VARIABLES = ("warden_pk_i", "warden_pk_o")

DEFAULT_PORT = 3306
BINARY_CHARSET = 63
EXPLAIN = "EXPLAIN "

_TIMEOUT_CODES = frozenset({1969, 3024})  # MariaDB max_statement_time, MySQL max_execution_time
_CANCEL_CODES = frozenset({1317})  # KILL QUERY
_READONLY_CODES = frozenset({1792, 1207, 1290})
_AUTH_CODES = frozenset({1044, 1045, 1698, 1251, 2059})

_TYPE_NAMES: dict[int, str] = {
    FIELD_TYPE.DECIMAL: "decimal",
    FIELD_TYPE.NEWDECIMAL: "decimal",
    FIELD_TYPE.TINY: "tinyint",
    FIELD_TYPE.SHORT: "smallint",
    FIELD_TYPE.LONG: "int",
    FIELD_TYPE.INT24: "mediumint",
    FIELD_TYPE.LONGLONG: "bigint",
    FIELD_TYPE.FLOAT: "float",
    FIELD_TYPE.DOUBLE: "double",
    FIELD_TYPE.NULL: "null",
    FIELD_TYPE.TIMESTAMP: "timestamp",
    FIELD_TYPE.DATE: "date",
    FIELD_TYPE.NEWDATE: "date",
    FIELD_TYPE.TIME: "time",
    FIELD_TYPE.DATETIME: "datetime",
    FIELD_TYPE.YEAR: "year",
    FIELD_TYPE.VARCHAR: "varchar",
    FIELD_TYPE.VAR_STRING: "varchar",
    FIELD_TYPE.STRING: "char",
    FIELD_TYPE.BIT: "bit",
    FIELD_TYPE.JSON: "json",
    FIELD_TYPE.ENUM: "enum",
    FIELD_TYPE.SET: "set",
    FIELD_TYPE.TINY_BLOB: "text",
    FIELD_TYPE.MEDIUM_BLOB: "text",
    FIELD_TYPE.LONG_BLOB: "text",
    FIELD_TYPE.BLOB: "text",
    FIELD_TYPE.GEOMETRY: "geometry",
}
_BINARY_NAMES: dict[str, str] = {"varchar": "varbinary", "char": "binary", "text": "blob"}


def _code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _message(exc: BaseException) -> str:
    args = list(getattr(exc, "args", ()))
    if len(args) >= 2:
        return str(args[1])
    return str(exc)


def map_error(
    exc: BaseException, statement: int | None = None, sent: str = "", offset: int = 0
) -> TargetError:
    """``exc`` as a TargetError; ``sent`` is the text sent for batch statement ``statement``,
    which starts ``offset`` characters into it (after an ``EXPLAIN``, say)."""
    code = _code(exc)
    if code in _TIMEOUT_CODES:
        kind = "timeout"
    elif code in _CANCEL_CODES:
        kind = "cancelled"
    elif code in _READONLY_CODES:
        kind = "readonly"
    elif code in _AUTH_CODES:
        kind = "auth"
    elif isinstance(exc, pymysql.err.InterfaceError) or (code is not None and 2000 <= code < 3000):
        # client-side errors (CR_*: lost connection, cannot connect...); the server's own are
        # 1000-1999, MySQL 8's 3000+ and MariaDB's 4000+ (4025: a CHECK constraint failed)
        kind = "connect"
    else:
        kind = "execution"
    message = _message(exc)
    position = None
    if code in _SYNTAX_CODES and sent:
        found = syntax_position(message, sent)
        position = found - offset if found is not None and found > offset else None
    return TargetError(
        kind,
        message,
        code=None if code is None else str(code),
        statement=statement,
        position=position,
    )


_SYNTAX_CODES = frozenset({1064, 1149})
_NEAR = re.compile(r"near '(?P<text>.*)' at line (?P<line>[0-9]+)\Z", re.DOTALL)


def syntax_position(message: str, sent: str) -> int | None:
    """Where in ``sent`` (1-based) a syntax error is, from the server's "near '…' at line n".

    The server quotes the text that follows the error (up to 80 characters): the position is
    where that text starts in ``sent``, on or after line n; None when it is not found there.

    >>> syntax_position("… to use near 'FROM' at line 2", "SELECT 1 +\\nFROM t")
    12
    >>> syntax_position("… to use near '' at line 1", "SELECT 1 +")
    11
    """
    match = _NEAR.search(message)
    if match is None:
        return None
    line = int(match.group("line"))
    start = 0
    for _ in range(line - 1):
        start = sent.find("\n", start) + 1
        if start == 0:
            return None
    text = match.group("text").rstrip("\ufffd")  # a character the server cut in two
    if not text:
        return len(sent.rstrip()) + 1
    found = sent.find(text, start)
    return found + 1 if found >= 0 else None


# Warden reads SQL as the server does by default: '…' strings with backslash escapes and
# `…` identifiers. A server (or account) set to ANSI_QUOTES or NO_BACKSLASH_ESCAPES would read
# the same text differently, e.g. a string to Warden would be an identifier to the server, so
# every session takes these modes off its own copy of the server's sql_mode. The combination
# modes go too: ANSI implies ANSI_QUOTES, and MariaDB's ORACLE, POSTGRESQL, MSSQL, DB2 and MAXDB
# imply it and switch grammars, and a list that keeps one of them gets ANSI_QUOTES back when it
# is set. Commas around the list let each mode be removed as a whole word.
_PARSING_MODES = (
    "ANSI_QUOTES",
    "NO_BACKSLASH_ESCAPES",
    "ANSI",
    "ORACLE",
    "POSTGRESQL",
    "MSSQL",
    "DB2",
    "MAXDB",
)
_MODES_EXPR = "CONCAT(',', @@SESSION.sql_mode, ',')"
for _mode in _PARSING_MODES:
    _MODES_EXPR = f"REPLACE({_MODES_EXPR}, ',{_mode},', ',')"
PARSING_MODES_OFF = f"SET SESSION sql_mode = TRIM(BOTH ',' FROM {_MODES_EXPR})"


class _BoundedConnection(pymysql.connections.Connection):  # type: ignore[type-arg]
    """A PyMySQL connection that will not read one packet sequence (a row) past a bound.

    A value is at most the server's max_allowed_packet, but a row of a hundred of them is not:
    a hundred 16 MB columns took a worker past 3 GB before any count could stop it. Reading
    stops as the row's bytes pass the run's budget, and the connection is dropped (the rest
    of the row cannot be skipped without reading it).
    """

    row_limit: int | None = None
    _row_bytes = 0

    def _read_packet(self, packet_type: Any = MysqlPacket) -> Any:
        self._row_bytes = 0
        return super()._read_packet(packet_type)

    def _read_bytes(self, num_bytes: int) -> Any:
        if self.row_limit is not None:
            self._row_bytes += num_bytes
            if self._row_bytes > self.row_limit:
                result: Any = getattr(self, "_result", None)
                if result is not None:  # nothing more to drain: the socket goes
                    result.unbuffered_active = False
                self._force_close()  # type: ignore[attr-defined]  # PyMySQL's own
                raise too_large(RUN_LIMIT, self.row_limit, one_row=True)
        return super()._read_bytes(num_bytes)  # type: ignore[misc]  # untyped in the stubs


def _open(config: TargetConfig) -> pymysql.connections.Connection[Cursor]:
    if not config.host:
        raise own_error("connect", "no host configured for the MySQL connection")
    context, disabled = tls.mysql_options(config.tls_mode, config.tls_ca_pem)
    try:
        conn = _BoundedConnection(
            host=config.host,
            port=config.port or DEFAULT_PORT,
            user=config.user,
            password=config.password,
            database=config.database or None,
            charset="utf8mb4",
            autocommit=False,
            local_infile=False,
            client_flag=0,  # PyMySQL adds its base capabilities; never MULTI_STATEMENTS
            connect_timeout=max(1, int(config.connect_timeout_s)),
            read_default_file=None,
            init_command=PARSING_MODES_OFF,
            ssl=context,
            ssl_disabled=disabled,
        )
    except pymysql.err.MySQLError as exc:
        error = map_error(exc)
        kind = "auth" if error.kind == "auth" else "connect"
        raise TargetError(kind, error.message, code=error.code) from None
    conn.row_limit = max(1, int(config.max_run_bytes))
    return conn  # type: ignore[no-any-return]


def _column_type(type_code: int, charsetnr: int | None) -> str:
    name = _TYPE_NAMES.get(type_code, "unknown")
    if charsetnr == BINARY_CHARSET:
        return _BINARY_NAMES.get(name, name)
    return name


def _columns(cur: Cursor) -> list[Column]:
    description = cur.description or ()
    result = getattr(cur, "_result", None)
    fields: list[Any] = list(getattr(result, "fields", None) or [])
    columns = []
    for index, item in enumerate(description):
        charsetnr = getattr(fields[index], "charsetnr", None) if index < len(fields) else None
        columns.append(Column(str(item[0]), _column_type(int(item[1]), charsetnr)))
    return columns


class MySQLSession(SessionBase):
    def __init__(self, conn: pymysql.connections.Connection[Cursor], config: TargetConfig) -> None:
        self._conn = conn
        self._config = config
        untyped: Any = conn  # parts of PyMySQL are untyped
        self._server_version = str(untyped.get_server_info())
        self.is_mariadb = "mariadb" in self._server_version.lower()
        self.backend_id: str | None = str(untyped.thread_id())
        self._read_only_var = "tx_read_only" if self.is_mariadb else "transaction_read_only"

    def _tagged(self, statement: str) -> str:
        """The statement after a comment naming the run and the person (see session_tag), on
        the same line, so the general log shows who ran it and error line numbers stay."""
        if not self.tag:
            return statement
        if not tag_is_safe(self.tag):
            raise ValueError("a session tag holds only letters, digits and _.@+-= (session_tag)")
        return f"/* {self.tag} */ {statement}"

    # -- transaction plumbing ---------------------------------------------------------------
    def _command(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with self._conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def _begin(self, read_only: bool) -> None:
        if not self._conn.open:
            # Dropped under an unbuffered result (`_abandon`): a new connection, as `connect`
            # opens them, rather than a session nobody can use again.
            self._conn = _open(self._config)
            untyped: Any = self._conn
            self.backend_id = str(untyped.thread_id())
        try:
            self._rollback()
            seconds = max(0, int(self._config.statement_timeout_ms)) / 1000
            if self.is_mariadb:
                self._command("SET SESSION max_statement_time = %s", (seconds,))
            else:
                self._command("SET SESSION max_execution_time = %s", (int(seconds * 1000),))
            mode = "READ ONLY" if read_only else "READ WRITE"
            self._command(f"SET SESSION TRANSACTION {mode}")
            self._command(f"START TRANSACTION {mode}")
        except pymysql.err.MySQLError as exc:
            raise map_error(exc) from None

    def _rollback(self) -> None:
        if not self._conn.open:
            return
        try:
            self._conn.rollback()
        except pymysql.err.MySQLError:
            self._conn.close()

    def _check_in_transaction(self, read_only: bool, statement: int | None = None) -> None:
        # A buffered round trip refreshes the server status flags, and tells whether a
        # statement flipped the session out of read-only mode.
        row = self._command(f"SELECT @@session.{self._read_only_var}")
        status = int(getattr(self._conn, "server_status", 0) or 0)
        in_trans = bool(status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)
        still_read_only = bool(row and int(row[0][0]) == 1)
        if read_only and not (in_trans and still_read_only):
            raise own_error("readonly", TRANSACTION_CONTROL_MESSAGE, statement=statement)
        # Writes: DDL commits implicitly on MySQL, so only refuse a switch to autocommit.
        if not read_only and status & SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT:
            raise own_error("execution", TRANSACTION_CONTROL_MESSAGE, statement=statement)

    def _meter(self, columns: Sequence[Column], run_limit: bool) -> Meter:
        return Meter(
            [c.name for c in columns],
            cell_limit=self._config.max_cell_bytes,
            run_limit=self._config.max_run_bytes if run_limit else None,
        )

    def _bind_key(self, keyed: bool) -> None:
        """Set the key's HMAC pads in the session variables a keyed statement reads.

        PyMySQL cannot bind parameters server-side, so the pads travel in this SET's text
        (never in the masked statement's, which the process list shows while it runs); they
        are set right before each keyed statement and cleared right after it. The engine
        refuses user statements that name @warden… variables, so none can read or set them.
        """
        if keyed:
            ipad, opad = self.key_pads()
            names = _KEY_VARIABLES
            self._command(f"SET @{names[0]} = %s, @{names[1]} = %s", (ipad, opad))

    def _unbind_key(self) -> None:
        if self._conn.open:
            with contextlib.suppress(pymysql.err.MySQLError):
                self._command(f"SET @{_KEY_VARIABLES[0]} = NULL, @{_KEY_VARIABLES[1]} = NULL")

    def _run_one(
        self, statement: str, max_rows: int, *, read_only: bool, meter: Meter, keyed: bool = False
    ) -> tuple[list[Column] | None, list[tuple[Any, ...]], int, bool]:
        """Run one statement: its columns (None: no rows), kept rows, row count and whether
        rows were left out. Rows are counted by ``meter`` as they are kept: a read fails when
        they pass a bound; a write's returned rows are a sample, cut short there instead."""
        self._bind_key(keyed)
        cur = self._conn.cursor(SSCursor)
        try:
            cur.execute(self._tagged(statement))  # args=None: no client-side % interpolation
            if not cur.description:
                return None, [], cur.rowcount, False
            columns = _columns(cur)
            meter.columns = [c.name for c in columns]
            rows: list[tuple[Any, ...]] = []
            truncated = False
            while (row := cur.fetchone()) is not None:  # one row packet at a time
                if len(rows) == max_rows:
                    truncated = True
                    break
                try:
                    meter.add(row)
                except TargetError:
                    if read_only:
                        self._abandon(cur)
                        raise
                    truncated = True
                    break
                rows.append(row)
            return columns, rows, len(rows), truncated
        finally:
            if self._conn.open:
                cur.close()  # drains what is left of an unbuffered result
            if keyed:  # cleared at once: the batch's next statement must not find the pads
                self._unbind_key()

    def _abandon(self, cur: SSCursor) -> None:
        """Drop the connection under an unbuffered result: draining it would fetch it all."""
        result: Any = getattr(cur, "_result", None)
        if result is not None:
            result.unbuffered_active = False  # nothing left to read: the socket goes
        with contextlib.suppress(pymysql.err.Error, OSError):
            self._conn.close()

    # -- public API -------------------------------------------------------------------------
    def execute(
        self, statements: Sequence[str], *, read_only: bool, max_rows: int, keyed: Keyed = ()
    ) -> Result:
        items = check_statements(statements, max_rows)
        self._begin(read_only)
        meter = self._meter([], run_limit=True)
        index, statement = 0, ""
        try:
            last_rows: Result | None = None
            last_count = -1
            for index, statement in enumerate(items):
                columns, rows, count, truncated = self._run_one(
                    statement, max_rows, read_only=read_only, meter=meter, keyed=index in keyed
                )
                if columns is not None:
                    last_rows = Result(columns, rows, count, truncated, len(items), index)
                last_count = count
                self._check_in_transaction(read_only, index)
            index, statement = -1, ""
            if read_only:
                self._rollback()
            else:
                self._conn.commit()
        except pymysql.err.MySQLError as exc:
            self._rollback()
            raise map_error(exc, index if index >= 0 else None, statement) from None
        except TargetError as exc:
            self._rollback()
            raise exc.at(index if index >= 0 else None) from None
        except BaseException:
            self._rollback()
            raise
        finally:
            if keyed:
                self._unbind_key()
        if last_rows is not None:
            return last_rows
        return Result([], [], last_count, False, len(items))

    def stream(
        self, statement: str, *, read_only: bool, batch_size: int = 5000, keyed: bool = False
    ) -> tuple[list[Column], Iterator[list[tuple[Any, ...]]]]:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        check_statements([statement], 0)
        self._begin(read_only)
        cur = self._conn.cursor(SSCursor)
        try:
            self._bind_key(keyed)
            cur.execute(self._tagged(statement))
            columns = _columns(cur)
        except pymysql.err.MySQLError as exc:
            cur.close()
            self._rollback()
            raise map_error(exc, 0, statement) from None
        except BaseException:
            self._rollback()
            raise
        meter = self._meter(columns, run_limit=False)
        return columns, self._batches(cur, meter, read_only, batch_size)

    def _batches(
        self, cur: SSCursor, meter: Meter, read_only: bool, batch_size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        finished = False
        try:
            if cur.description:
                while batch := list(cur.fetchmany(batch_size)):
                    meter.add_rows(batch)
                    yield batch
            cur.close()
            self._check_in_transaction(read_only, 0)
            if read_only:
                self._rollback()
            else:
                self._conn.commit()
            finished = True
        except pymysql.err.MySQLError as exc:
            raise map_error(exc, 0) from None
        except TargetError as exc:
            self._abandon(cur)
            raise exc.at(0) from None
        finally:
            if not finished:
                # Stopped early (the reader went away): closing the cursor would read the
                # rest of the result first; dropping the connection ends it at once.
                self._abandon(cur)
                self._rollback()
            self._unbind_key()

    def preview(
        self,
        statements: Sequence[str],
        *,
        dml: Sequence[bool],
        tables: Sequence[str] = (),
        timeout_ms: int,
        keyed: Keyed = (),
    ) -> Preview:
        """Dry-run the plain writes when a rollback undoes them; else the planner's estimates.

        A dry run needs MariaDB (MySQL's max_execution_time does not bound writes) and every
        table in ``tables`` (all those the batch touches, ``name`` or ``schema.name``) to be a
        base table with a transactional engine and no triggers. The estimates come from
        EXPLAIN, which runs nothing. Either way the transaction is rolled back.
        """
        items, count = plan(statements, dml, executable_comments=True)
        if count == 0:
            why = "MySQL commits schema changes implicitly, so they cannot be tried and undone."
            return not_previewed(len(items), why)
        budget = Budget(timeout_ms)

        def start() -> str | None:
            self._begin(read_only=False)
            return self._dry_run_obstacle(tables)

        sent: dict[str, Any] = {"text": "", "offset": 0}  # for the statement tried now

        def step(index: int, statement: str, dry_run: bool) -> int | None:
            seconds = budget.remaining_ms() / 1000
            if self.is_mariadb:
                self._command("SET SESSION max_statement_time = %s", (seconds,))
            else:
                self._command("SET SESSION max_execution_time = %s", (int(seconds * 1000),))
            prefix = "" if dry_run else EXPLAIN
            self._bind_key(index in keyed)
            sent.update(text=prefix + statement, offset=len(prefix))
            try:
                rows = self._changed_rows(statement) if dry_run else self._estimated_rows(statement)
            finally:
                if index in keyed:  # cleared before the next statement, as in execute
                    self._unbind_key()
            sent.update(text="", offset=0)
            self._command("SELECT 1")  # refreshes the server status flags
            status = int(getattr(self._conn, "server_status", 0) or 0)
            if not status & SERVER_STATUS.SERVER_STATUS_IN_TRANS:
                raise own_error("execution", TRANSACTION_CONTROL_MESSAGE)
            return rows

        try:
            return try_statements(
                items,
                count,
                start=start,
                step=step,
                rollback=self._rollback,
                db_error=pymysql.err.MySQLError,
                # the statement's index is added by try_statements
                map_error=lambda exc: map_error(exc, None, sent["text"], sent["offset"]),
            )
        finally:
            if keyed:
                self._unbind_key()

    def _dry_run_obstacle(self, tables: Sequence[str]) -> str | None:
        """Why the statements must not run, even in a transaction; None when they may."""
        if not self.is_mariadb:
            return "MySQL cannot bound how long a write runs"
        names = {_split_table(table) for table in tables}
        if not names:
            return "The tables the statements write are not known"
        match = " OR ".join(
            ["(t.TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND t.TABLE_NAME = %s)"] * len(names)
        )
        found = self._command(
            "SELECT t.TABLE_NAME, t.TABLE_TYPE, t.ENGINE, e.TRANSACTIONS,"
            " (SELECT COUNT(*) FROM information_schema.TRIGGERS g"
            "   WHERE g.EVENT_OBJECT_SCHEMA = t.TABLE_SCHEMA"
            "   AND g.EVENT_OBJECT_TABLE = t.TABLE_NAME)"
            " FROM information_schema.TABLES t"
            " LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE"
            f" WHERE {match} ORDER BY t.TABLE_NAME",
            [part for name in sorted(names, key=str) for part in name],
        )
        for name, table_type, engine, transactional, triggers in found:
            if str(table_type).upper() != "BASE TABLE":
                return f"{name} is a view, not a table"
            if str(transactional).upper() != "YES":
                return f"{name} uses the {engine} engine, which cannot roll back changes"
            if int(triggers):
                return f"{name} has triggers, which may write tables that cannot roll back"
        if len(found) < len(names):
            return "Some of the tables the statements write were not found"
        return None

    def _changed_rows(self, statement: str) -> int | None:
        cur = self._conn.cursor(SSCursor)
        try:
            cur.execute(statement)
            if not cur.description:
                return cur.rowcount if cur.rowcount >= 0 else None
            returned = 0  # MariaDB's RETURNING: one row per changed row
            while batch := cur.fetchmany(1000):
                returned += len(batch)
            return None if first_keyword(statement) == "with" else returned
        finally:
            cur.close()

    def _estimated_rows(self, statement: str) -> int | None:
        with self._conn.cursor() as cur:
            cur.execute(EXPLAIN + statement)
            names = [str(item[0]).lower() for item in cur.description or ()]
            return explain_estimate(names, list(cur.fetchall()))

    def introspect(self) -> list[TableInfo]:
        query = (
            "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, t.TABLE_TYPE, c.COLUMN_NAME, c.DATA_TYPE"
            " FROM information_schema.COLUMNS c JOIN information_schema.TABLES t"
            " ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME"
            " WHERE c.TABLE_SCHEMA = DATABASE()"
            " ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION"
        )
        self._begin(read_only=True)
        try:
            rows = self._command(query)
        except pymysql.err.MySQLError as exc:
            raise map_error(exc) from None
        finally:
            self._rollback()
        tables: dict[tuple[str, str], tuple[str, list[Column]]] = {}
        for schema, name, table_type, column, data_type in rows:
            kind = "view" if str(table_type).upper() == "VIEW" else "table"
            entry = tables.setdefault((str(schema), str(name)), (kind, []))
            entry[1].append(Column(str(column), str(data_type).lower()))
        return [
            TableInfo(schema, name, tuple(cols), kind)
            for (schema, name), (kind, cols) in tables.items()
        ]

    def server_version(self) -> str:
        return self._server_version

    def close(self) -> None:
        if self._conn.open:
            self._rollback()
            with contextlib.suppress(pymysql.err.Error):
                self._conn.close()


def _split_table(name: str) -> tuple[str | None, str]:
    """``schema.table`` or ``table`` (the current database) as written by the caller."""
    parts = [part.strip("`") for part in name.split(".")]
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


def explain_estimate(columns: list[str], plan: list[tuple[Any, ...]]) -> int | None:
    """Rows the planner expects the outer query block to go through (None when it says nothing).

    Joined tables multiply; MySQL's ``filtered`` (percent of rows kept by the WHERE) applies.
    """
    if "rows" not in columns or not plan:
        return None
    rows_at, id_at = columns.index("rows"), columns.index("id")
    filtered_at = columns.index("filtered") if "filtered" in columns else None
    total: float | None = None
    for line in plan:
        if line[id_at] != plan[0][id_at] or line[rows_at] is None:
            continue
        kept = float(line[rows_at])
        if filtered_at is not None and line[filtered_at] is not None:
            kept *= float(line[filtered_at]) / 100
        total = kept if total is None else total * kept
    return None if total is None else round(total)


def connect(config: TargetConfig, pseudonym_key: bytes | None = None) -> MySQLSession:
    session = MySQLSession(_open(config), config)
    session.pseudonym_key = pseudonym_key
    return session


def cancel(config: TargetConfig, backend_id: str) -> bool:
    try:
        thread_id = int(backend_id)
    except (TypeError, ValueError):
        return False
    conn = _open(config)
    try:
        with conn.cursor() as cur:
            cur.execute("KILL QUERY %s", (thread_id,))
        return True
    except pymysql.err.MySQLError as exc:
        if _code(exc) == 1094:  # unknown thread id
            return False
        raise map_error(exc) from None
    finally:
        conn.close()

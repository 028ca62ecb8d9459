"""PostgreSQL driver (psycopg 3).

Every statement is first parsed on its own with the extended protocol (Parse of the unnamed
statement), which the server refuses for strings holding more than one command; the parse also
tells whether the statement returns rows. Row-returning statements are then read with
``cursor.stream()`` (extended protocol, single-row/chunked mode: bounded memory), others run
with a plain execute to get their row count.

The common case, one query read-only, takes one round trip instead: BEGIN READ ONLY, the
timeout, `DECLARE … CURSOR FOR <query>`, `FETCH cap + 1` and ROLLBACK are sent together in
pipeline mode. The pipeline uses the extended protocol too, so the query is still refused if
it holds more than one command; it ends the DECLARE's text, so it parses as it would alone;
and the FETCH bounds what comes back.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Generator, Iterator, Sequence
from typing import Any, cast

import psycopg
from psycopg import capabilities, pq, sql
from psycopg.conninfo import make_conninfo

from .base import (
    TRANSACTION_CONTROL_MESSAGE,
    Column,
    Keyed,
    Preview,
    Result,
    SessionBase,
    TableInfo,
    TargetConfig,
    TargetError,
    check_statements,
    first_keyword,
)
from .pg_reach import dry_run_obstacle
from .pg_support import connection_params, is_auth_failure
from .preview import Budget, not_previewed, plan, try_statements

# Readable names for the common built-in types (the rest are looked up once per session).
_BUILTIN_TYPES: dict[int, str] = {
    16: "boolean",
    17: "bytea",
    18: "char",
    19: "name",
    20: "bigint",
    21: "smallint",
    23: "integer",
    25: "text",
    26: "oid",
    114: "json",
    700: "real",
    701: "double precision",
    1042: "char",
    1043: "varchar",
    1082: "date",
    1083: "time without time zone",
    1114: "timestamp without time zone",
    1184: "timestamp with time zone",
    1186: "interval",
    1266: "time with time zone",
    1700: "numeric",
    2950: "uuid",
    3802: "jsonb",
}
# Statements that are queries, so they can be read through a cursor (`DECLARE … CURSOR FOR`).
CAPPABLE = frozenset({"select", "with", "values", "table"})
_TYPE_ALIASES: dict[str, str] = {"character varying": "varchar", "character": "char"}


def _normalise_type(name: str) -> str:
    name = name.lower()
    return _TYPE_ALIASES.get(name, name)


def _open(config: TargetConfig) -> psycopg.Connection[tuple[Any, ...]]:
    params = connection_params(config)
    try:
        conninfo = make_conninfo("", **params)
        conn = psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)
    except psycopg.Error as exc:
        message = str(exc)
        kind = "auth" if is_auth_failure(exc.sqlstate, message) else "connect"
        raise TargetError(kind, message) from None
    return conn


def map_error(exc: psycopg.Error) -> TargetError:
    sqlstate = exc.sqlstate
    primary = exc.diag.message_primary or str(exc)
    if sqlstate == "57014":
        kind = "timeout" if "statement timeout" in primary else "cancelled"
    elif sqlstate == "25006":
        kind = "readonly"
    elif sqlstate in {"57P01", "57P02"}:
        kind = "cancelled"
    elif sqlstate is None and isinstance(exc, psycopg.OperationalError):
        kind = "connect"
    else:
        kind = "execution"
    return TargetError(kind, primary)


def _error_from_pgresult(res: pq.abc.PGresult, encoding: str) -> TargetError:
    state = res.error_field(pq.DiagnosticField.SQLSTATE)
    primary = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)
    sqlstate = state.decode() if state else None
    message = (primary or res.error_message).decode(encoding, "replace")
    if sqlstate == "57014":
        kind = "timeout" if "statement timeout" in message else "cancelled"
    elif sqlstate == "25006":
        kind = "readonly"
    else:
        kind = "execution"
    return TargetError(kind, message)


class CopyCount:
    """Rows a COPY wrote, and whether the limit left some out, known once it is exhausted."""

    rows: int = 0
    truncated: bool = False


class PostgresSession(SessionBase):
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]], config: TargetConfig) -> None:
        self._conn = conn
        self._config = config
        self._types: dict[int, str] = dict(_BUILTIN_TYPES)
        self.backend_id: str | None = str(conn.info.backend_pid)

    # -- transaction plumbing ---------------------------------------------------------------
    def _begin(self, read_only: bool) -> None:
        self._ensure_idle()
        with self._or_rollback():
            # One round trip: both commands are ours, and the timeout is an integer. It must be a
            # SELECT, not SET LOCAL: a query takes the transaction's snapshot, after which
            # PostgreSQL refuses `SET TRANSACTION READ WRITE` from the user's statements.
            mode = "READ ONLY" if read_only else "READ WRITE"
            timeout = max(0, int(self._config.statement_timeout_ms))
            self._conn.execute(
                f"BEGIN {mode}; SELECT set_config('statement_timeout', '{timeout}', true)"
            )

    @contextlib.contextmanager
    def _or_rollback(self) -> Iterator[None]:
        """Roll the transaction back on any failure inside; database errors become
        TargetErrors."""
        try:
            yield
        except psycopg.Error as exc:
            self._rollback()
            raise map_error(exc) from None
        except BaseException:
            self._rollback()
            raise

    def _ensure_idle(self) -> None:
        if self._conn.closed:
            raise TargetError("connect", "the connection is closed")
        if self._conn.info.transaction_status != pq.TransactionStatus.IDLE:
            self._rollback()

    def _rollback(self) -> None:
        if self._conn.closed:
            return
        try:
            if self._conn.info.transaction_status != pq.TransactionStatus.IDLE:
                self._conn.execute("ROLLBACK")
        except psycopg.Error:
            self._conn.close()  # unknown state: never reuse it

    def _commit(self) -> None:
        cur = self._conn.execute("COMMIT")
        if cur.statusmessage != "COMMIT":
            raise TargetError("execution", "the transaction was rolled back by the server")

    def _check_in_transaction(self, read_only: bool) -> None:
        if self._conn.info.transaction_status != pq.TransactionStatus.INTRANS:
            raise TargetError("readonly" if read_only else "execution", TRANSACTION_CONTROL_MESSAGE)

    # -- statement helpers ------------------------------------------------------------------
    def _describe(self, statement: str) -> list[Column] | None:
        """Parse ``statement`` alone (refuses multiple commands); its columns, None if no rows."""
        encoding = self._conn.info.encoding
        pgconn = self._conn.pgconn
        res = pgconn.prepare(b"", statement.encode(encoding))
        if res.status != pq.ExecStatus.COMMAND_OK:
            raise _error_from_pgresult(res, encoding)
        desc = pgconn.describe_prepared(b"")
        if desc.status != pq.ExecStatus.COMMAND_OK:
            raise _error_from_pgresult(desc, encoding)
        if desc.nfields == 0:
            return None
        names = [(desc.fname(i) or b"?column?").decode(encoding) for i in range(desc.nfields)]
        oids = [desc.ftype(i) for i in range(desc.nfields)]
        types = self._type_names(oids)
        return [
            Column(name, types.get(oid, "unknown")) for name, oid in zip(names, oids, strict=True)
        ]

    def _type_names(self, oids: Sequence[int]) -> dict[int, str]:
        missing = sorted({oid for oid in oids if oid not in self._types})
        if missing:
            rows = self._conn.execute(
                "SELECT oid::int8, format_type(oid, NULL) FROM pg_type WHERE oid::int8 = ANY(%s)",
                (missing,),
            ).fetchall()
            for oid, name in rows:
                self._types[int(oid)] = _normalise_type(str(name))
            for oid in missing:
                self._types.setdefault(oid, "unknown")
        return self._types

    def _params(self, keyed: bool) -> tuple[bytes, bytes] | None:
        """The key's HMAC pads as ``$1`` and ``$2`` for a keyed statement (see masking)."""
        return self.key_pads() if keyed else None

    def _run_one(
        self, statement: str, max_rows: int, may_abandon: bool, keyed: bool = False
    ) -> tuple[list[Column] | None, list[tuple[Any, ...]], int, bool]:
        if first_keyword(statement) == "copy":
            # the COPY sub-protocol would leave the connection waiting for data
            raise TargetError("execution", "COPY is not supported here; use an export")
        columns = self._describe(statement)
        params = self._params(keyed)
        # RawCursor: the statement is sent as written (no %-placeholders of psycopg's own);
        # the only parameters are the key's pads, which a user's statement cannot name.
        with psycopg.RawCursor(self._conn) as cur:
            if columns is None:
                cur.execute(statement, params, prepare=False)  # verified to be one command
                return None, [], cur.rowcount, False
            size = min(max_rows + 1, 1000) if capabilities.has_stream_chunked() else 1
            rows: list[tuple[Any, ...]] = []
            truncated = False
            seen = 0  # every row, kept or not: a write's RETURNING counts the rows it changed
            stream = cast(
                "Generator[tuple[Any, ...], None, None]",
                cur.stream(statement, params, size=max(size, 1)),
            )
            try:
                for row in stream:
                    seen += 1
                    if len(rows) < max_rows:
                        rows.append(row)
                        continue
                    truncated = True
                    if may_abandon:
                        break  # closing the stream cancels the rest; the tx is rolled back
            finally:
                stream.close()
            return columns, rows, len(rows) if may_abandon else seen, truncated

    def _read_capped(self, statement: str, max_rows: int, keyed: bool = False) -> Result:
        """One query in a read-only transaction, at most `max_rows` rows, in one round trip."""
        self._ensure_idle()
        timeout = max(0, int(self._config.statement_timeout_ms))
        params = self._params(keyed)
        with self._or_rollback(), self._conn.cursor() as cur:
            with self._conn.pipeline() as pipeline:
                try:
                    self._conn.execute("BEGIN READ ONLY")
                    # SET LOCAL is safe here: the user's text can only be a query, which takes
                    # the snapshot, so nothing in it can switch the transaction to READ WRITE.
                    self._conn.execute(f"SET LOCAL statement_timeout = {timeout}")
                    # The statement ends the text, so it parses exactly as it would alone.
                    psycopg.RawCursor(self._conn).execute(
                        f"DECLARE warden_capped NO SCROLL CURSOR FOR\n{statement}", params
                    )
                    cur.execute(f"FETCH FORWARD {max_rows + 1} FROM warden_capped")
                    self._conn.execute("ROLLBACK")
                except psycopg.Error:
                    # Failed before the pipeline's end: drain it here, so that closing it is
                    # quiet, and report the first error rather than "pipeline aborted".
                    with contextlib.suppress(psycopg.Error):
                        pipeline.sync()
                    raise
            rows = cur.fetchall()
            description = cur.description or []
            types = self._type_names([d.type_code for d in description])
        columns = [Column(d.name, types.get(d.type_code, "unknown")) for d in description]
        truncated = len(rows) > max_rows
        del rows[max_rows:]
        return Result(columns, rows, len(rows), truncated, 1)

    # -- public API -------------------------------------------------------------------------
    def execute(
        self, statements: Sequence[str], *, read_only: bool, max_rows: int, keyed: Keyed = ()
    ) -> Result:
        items = check_statements(statements, max_rows)
        if read_only and len(items) == 1 and first_keyword(items[0]) in CAPPABLE:
            return self._read_capped(items[0], max_rows, keyed=0 in keyed)
        self._begin(read_only)
        with self._or_rollback():
            last_rows: Result | None = None
            last_count = -1
            for index, statement in enumerate(items):
                is_last = index == len(items) - 1
                columns, rows, count, truncated = self._run_one(
                    statement, max_rows, may_abandon=read_only and is_last, keyed=index in keyed
                )
                if columns is not None:
                    last_rows = Result(columns, rows, count, truncated, len(items))
                last_count = count
                if not (truncated and read_only and is_last):
                    self._check_in_transaction(read_only)
            if read_only:
                self._rollback()
            else:
                self._commit()
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
        with self._or_rollback():
            columns = self._describe(statement) or []
            cur = psycopg.RawServerCursor(self._conn, f"warden_export_{uuid.uuid4().hex}")
            cur.itersize = batch_size
            # DECLARE ... CURSOR FOR <one verified statement>, the key's pads bound if keyed
            cur.execute(statement, self._params(keyed))
            self._check_in_transaction(read_only)
        return columns, self._batches(cur, read_only, batch_size)

    def _batches(
        self,
        cur: psycopg.RawServerCursor[tuple[Any, ...]],
        read_only: bool,
        batch_size: int,
    ) -> Iterator[list[tuple[Any, ...]]]:
        finished = False
        try:
            while batch := cur.fetchmany(batch_size):
                yield batch
            cur.close()
            if read_only:
                self._rollback()
            else:
                self._commit()
            finished = True
        except psycopg.Error as exc:
            raise map_error(exc) from None
        finally:
            if not finished:
                self._rollback()

    def copy_csv(self, statement: str, *, limit: int) -> tuple[Iterator[bytes], CopyCount]:
        """Stream one query's rows as CSV (with a header) through COPY … TO STDOUT.

        The statement is described first (the server refuses several commands there), then
        wrapped as `COPY (SELECT * FROM (<query>) LIMIT n) TO STDOUT` inside a read-only
        transaction: the export runs at the speed of the database's own CSV writer.
        """
        check_statements([statement], 0)
        self._begin(read_only=True)
        with self._or_rollback():
            if self._describe(statement) is None:
                raise TargetError("execution", "an export must be a query that returns rows")
        counter = CopyCount()
        limit = max(0, int(limit))
        # One row more than the limit tells a cut export from one that fits exactly; it is
        # read and dropped. The newline keeps a trailing `-- comment` from eating the `)`.
        # The statement was parsed alone above, so it cannot close the parenthesis early.
        query = sql.SQL(
            "COPY (SELECT * FROM ({}\n) AS warden_export LIMIT {}) "
            "TO STDOUT WITH (FORMAT csv, HEADER)"
        ).format(
            sql.SQL(statement.rstrip().rstrip(";")),  # type: ignore[arg-type]
            sql.Literal(limit + 1),
        )
        return self._copy_chunks(query, counter, limit), counter

    def _copy_chunks(self, query: sql.Composed, counter: CopyCount, limit: int) -> Iterator[bytes]:
        finished = False
        try:
            with self._conn.cursor() as cur:
                with cur.copy(query) as copy:
                    # libpq hands COPY data over one row at a time, the header first.
                    for index, chunk in enumerate(copy):
                        if index <= limit:
                            yield bytes(chunk)
                copied = max(cur.rowcount, 0)
                counter.rows, counter.truncated = min(copied, limit), copied > limit
            self._check_in_transaction(read_only=True)
            self._rollback()
            finished = True
        except psycopg.Error as exc:
            raise map_error(exc) from None
        finally:
            if not finished:
                self._rollback()

    def preview(
        self,
        statements: Sequence[str],
        *,
        dml: Sequence[bool],
        tables: Sequence[str] = (),
        timeout_ms: int,
        keyed: Keyed = (),
    ) -> Preview:
        """Dry-run the plain writes in a read-write transaction that is always rolled back,
        when nothing they reach can act outside it; else the planner's estimates.

        ``timeout_ms`` bounds the whole batch (each statement gets what is left of it as its
        statement_timeout). ``tables`` names every table the batch touches (``name`` or
        ``schema.name``): a trigger, a rule or a foreign table there, or on a table a foreign
        key's action changes, could reach outside the transaction (dblink, a foreign server,
        NOTIFY), so the preview runs nothing and asks EXPLAIN instead.
        """
        items, count = plan(statements, dml)
        if count == 0:
            why = "PostgreSQL schema changes take strong locks, so they are not tried."
            return not_previewed(len(items), why)
        budget = Budget(timeout_ms)
        with_key = {statements[i] for i in keyed if 0 <= i < len(statements)}

        def start() -> str | None:
            self._begin(read_only=False)
            return dry_run_obstacle(self._conn, tables)

        def step(statement: str, dry_run: bool) -> int | None:
            timeout = str(budget.remaining_ms())
            self._conn.execute("SELECT set_config('statement_timeout', %s, true)", (timeout,))
            params = self._params(statement in with_key)
            if dry_run:
                rows = self._changed_rows(statement, params)
            else:
                rows = self._estimated_rows(statement, params)
            self._check_in_transaction(read_only=False)
            return rows

        return try_statements(
            items,
            count,
            start=start,
            step=step,
            rollback=self._rollback,
            db_error=psycopg.Error,
            map_error=map_error,
        )

    def _estimated_rows(self, statement: str, params: tuple[bytes, bytes] | None) -> int | None:
        self._describe(statement)  # refuses several commands
        with psycopg.RawCursor(self._conn) as cur:
            cur.execute(f"EXPLAIN (FORMAT JSON) {statement}", params, prepare=False)
            row = cur.fetchone()
        plans: Any = row[0] if row else None
        # One entry per query a rule adds (a utility such as NOTIFY is a bare name): the
        # statement's own plan is the first with a ModifyTable, which returns no rows itself,
        # so what it changes is the estimate of the node below it.
        for entry in plans if isinstance(plans, list) else ():
            node = entry.get("Plan") if isinstance(entry, dict) else None
            if not isinstance(node, dict):
                continue
            if node.get("Node Type") == "ModifyTable" and node.get("Plans"):
                node = node["Plans"][0]
            rows = node.get("Plan Rows")
            return int(rows) if isinstance(rows, int | float) else None
        return None

    def _changed_rows(self, statement: str, params: tuple[bytes, bytes] | None) -> int | None:
        columns = self._describe(statement)  # refuses several commands
        with psycopg.RawCursor(self._conn) as cur:
            if columns is None:
                cur.execute(statement, params, prepare=False)
                return cur.rowcount if cur.rowcount >= 0 else None
            # RETURNING: one row per changed row; count them without keeping them. A WITH
            # whose outer query is a SELECT returns other rows: its count is unknown.
            size = 1000 if capabilities.has_stream_chunked() else 1
            stream = cast(
                "Generator[tuple[Any, ...], None, None]",
                cur.stream(statement, params, size=size),
            )
            try:
                returned = sum(1 for _ in stream)
            finally:
                stream.close()
            return None if first_keyword(statement) == "with" else returned

    def introspect(self) -> list[TableInfo]:
        query = """
            SELECT n.nspname, c.relname, c.relkind, a.attname, format_type(a.atttypid, NULL)
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_catalog.pg_attribute a
              ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
            ORDER BY n.nspname, c.relname, a.attnum
        """
        self._begin(read_only=True)
        try:
            rows = self._conn.execute(query, ()).fetchall()
        except psycopg.Error as exc:
            raise map_error(exc) from None
        finally:
            self._rollback()
        tables: dict[tuple[str, str], tuple[str, list[Column]]] = {}
        for schema, name, relkind, column, type_name in rows:
            kind = "view" if relkind in ("v", "m") else "table"
            entry = tables.setdefault((schema, name), (kind, []))
            entry[1].append(Column(str(column), _normalise_type(str(type_name))))
        return [
            TableInfo(schema, name, tuple(cols), kind)
            for (schema, name), (kind, cols) in tables.items()
        ]

    def server_version(self) -> str:
        self._begin(read_only=True)
        try:
            row = self._conn.execute("SELECT version()").fetchone()
        except psycopg.Error as exc:
            raise map_error(exc) from None
        finally:
            self._rollback()
        return str(row[0]) if row else ""

    def reusable(self) -> bool:
        """Idle, open and outside any transaction: safe to hand to the next read."""
        return (
            not self._conn.closed
            and self._conn.info.transaction_status == pq.TransactionStatus.IDLE
        )

    def close(self) -> None:
        if not self._conn.closed:
            self._rollback()
            self._conn.close()


def connect(config: TargetConfig, pseudonym_key: bytes | None = None) -> PostgresSession:
    session = PostgresSession(_open(config), config)
    session.pseudonym_key = pseudonym_key
    return session


def cancel(config: TargetConfig, backend_id: str) -> bool:
    try:
        pid = int(backend_id)
    except (TypeError, ValueError):
        return False
    conn = _open(config)
    try:
        row = conn.execute("SELECT pg_cancel_backend(%s)", (pid,)).fetchone()
    except psycopg.Error as exc:
        raise map_error(exc) from None
    finally:
        conn.close()
    return bool(row and row[0])

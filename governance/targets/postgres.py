"""PostgreSQL driver (psycopg 3).

Every statement is first parsed on its own with the extended protocol (Parse of the unnamed
statement), which the server refuses for strings holding more than one command; the parse also
tells whether the statement returns rows. Row-returning statements are then read with
``cursor.stream()`` (extended protocol, single-row/chunked mode: bounded memory), others run
with a plain execute to get their row count.

The common case, one query read-only, takes one round trip instead: BEGIN READ ONLY, the
timeout, `DECLARE warden_raw … CURSOR FOR <query>`, `DECLARE warden_capped … CURSOR FOR
<guarded query>`, `FETCH cap + 1 FROM warden_capped` and ROLLBACK are sent together in pipeline
mode. The pipeline uses the extended protocol too, so the query is still refused if it holds
more than one command. The query ends the first DECLARE's text, so it parses as it would
alone; only if it does does the server go on (an error skips the rest of the pipeline) to the
second, where ``pg_guard`` wraps it so that the server refuses rows too large to fetch. The
first cursor is never read. The FETCH bounds how many rows come back.

Byte bounds (``TargetConfig.max_cell_bytes`` / ``max_run_bytes``): queries are wrapped by
``pg_guard`` wherever they run, so a value or a result over its bound is refused by the server
before it is sent; what arrives is counted again by a ``Meter``. Statements that cannot be
wrapped (a write's RETURNING, SHOW, EXPLAIN) are counted as their rows arrive, one at a time.

Errors carry the SQLSTATE, the index of the batch statement that failed and the server's
statement position mapped back to the text the caller passed (minus the prefixes above).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg import capabilities, pq
from psycopg.conninfo import make_conninfo

from . import tls
from .base import (
    CELL_LIMIT,
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
from .pg_guard import guarded, refusal, row_bound
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
RAW_PREFIX = "DECLARE warden_raw NO SCROLL CURSOR FOR"
CAPPED_PREFIX = "DECLARE warden_capped NO SCROLL CURSOR FOR\n"
EXPORT_PREFIX = "DECLARE warden_export NO SCROLL CURSOR FOR\n"
_TYPE_ALIASES: dict[str, str] = {"character varying": "varchar", "character": "char"}


def _normalise_type(name: str) -> str:
    name = name.lower()
    return _TYPE_ALIASES.get(name, name)


def _open(config: TargetConfig) -> psycopg.Connection[tuple[Any, ...]]:
    try:
        with tls.postgres_options(config.tls_mode, config.tls_ca_pem) as tls_params:
            conninfo = make_conninfo("", **connection_params(config, tls_params))
            conn = psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)
    except psycopg.Error as exc:
        message = str(exc)
        kind = "auth" if is_auth_failure(exc.sqlstate, message) else "connect"
        raise TargetError(kind, message, code=exc.sqlstate) from None
    except OSError as exc:  # the CA file libpq reads could not be written
        raise own_error("connect", f"cannot hand the CA certificate to libpq: {exc}") from None
    return conn


@dataclass(frozen=True)
class Sent:
    """Where a batch statement is in the text sent to the server, to map error positions."""

    statement: int | None = None  # its index in the batch
    offset: int = 0  # characters sent before it
    length: int = 0  # its own length


def map_error(
    exc: psycopg.Error, sent: Sent = Sent(), config: TargetConfig | None = None
) -> TargetError:
    diag = exc.diag
    return _target_error(
        exc.sqlstate,
        diag.message_primary or str(exc),
        diag.statement_position,
        sent,
        config,
        connection_lost=exc.sqlstate is None and isinstance(exc, psycopg.OperationalError),
    )


def _error_from_pgresult(
    res: pq.abc.PGresult, encoding: str, sent: Sent, config: TargetConfig | None
) -> TargetError:
    state = res.error_field(pq.DiagnosticField.SQLSTATE)
    primary = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)
    position = res.error_field(pq.DiagnosticField.STATEMENT_POSITION)
    message = (primary or res.error_message).decode(encoding, "replace")
    return _target_error(
        state.decode() if state else None,
        message,
        position.decode() if position else None,
        sent,
        config,
    )


def _target_error(
    sqlstate: str | None,
    message: str,
    position: str | None,
    sent: Sent,
    config: TargetConfig | None,
    *,
    connection_lost: bool = False,
) -> TargetError:
    if sqlstate == "22P02" and (bound := refusal(message)) is not None:
        limits = config or TargetConfig("postgresql")
        cell, run = limits.max_cell_bytes, limits.max_run_bytes
        if bound == "cell":
            error = too_large(CELL_LIMIT, cell)
        elif bound == "row":
            largest = row_bound(cell, run)
            error = too_large(CELL_LIMIT if largest < run else RUN_LIMIT, largest, one_row=True)
        else:
            error = too_large(RUN_LIMIT, run)
        return error.at(sent.statement)
    if sqlstate == "57014":
        kind = "timeout" if "statement timeout" in message else "cancelled"
    elif sqlstate == "25006":
        kind = "readonly"
    elif sqlstate in {"57P01", "57P02"}:
        kind = "cancelled"
    elif connection_lost:
        kind = "connect"
    else:
        kind = "execution"
    return TargetError(
        kind,
        message,
        code=sqlstate,
        statement=sent.statement,
        position=_position(position, sent),
    )


def _position(raw: str | None, sent: Sent) -> int | None:
    """The server's 1-based character position, as a position in the caller's statement."""
    if sent.statement is None or not raw or not raw.isdigit():
        return None
    position = int(raw) - sent.offset
    return position if 1 <= position <= sent.length + 1 else None


class CopyCount:
    """Rows a COPY wrote (counted as they are handed on, exact once it is exhausted), and
    whether the limit left some out."""

    rows: int = 0
    truncated: bool = False


class PostgresSession(SessionBase):
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]], config: TargetConfig) -> None:
        self._conn = conn
        self._config = config
        self._types: dict[int, str] = dict(_BUILTIN_TYPES)
        self.backend_id: str | None = str(conn.info.backend_pid)
        self._sent = Sent()  # the batch statement being sent now, for error positions

    def _tag(self) -> bool:
        if self.tag and not tag_is_safe(self.tag):
            raise ValueError("a session tag holds only letters, digits and _.@+-= (session_tag)")
        return bool(self.tag)

    # -- transaction plumbing ---------------------------------------------------------------
    def _begin(self, read_only: bool) -> None:
        self._ensure_idle()
        self._sent = Sent()
        with self._or_rollback():
            # One round trip: both commands are ours, and the timeout is an integer. It must be a
            # SELECT, not SET LOCAL: a query takes the transaction's snapshot, after which
            # PostgreSQL refuses `SET TRANSACTION READ WRITE` from the user's statements.
            mode = "READ ONLY" if read_only else "READ WRITE"
            timeout = max(0, int(self._config.statement_timeout_ms))
            name = f", set_config('application_name', '{self.tag}', true)" if self._tag() else ""
            self._conn.execute(
                f"BEGIN {mode}; SELECT set_config('statement_timeout', '{timeout}', true){name}"
            )

    @contextlib.contextmanager
    def _or_rollback(self) -> Iterator[None]:
        """Roll the transaction back on any failure inside; database errors become
        TargetErrors, marked with the batch statement that was being sent."""
        try:
            yield
        except psycopg.Error as exc:
            error = map_error(exc, self._sent, self._config)
            self._rollback()
            raise error from None
        except TargetError as exc:
            self._rollback()
            raise exc.at(self._sent.statement) from None
        except BaseException:
            self._rollback()
            raise

    def _ensure_idle(self) -> None:
        if self._conn.closed:
            raise own_error("connect", "the connection is closed")
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
        self._sent = Sent()
        cur = self._conn.execute("COMMIT")
        if cur.statusmessage != "COMMIT":
            raise own_error("execution", "the transaction was rolled back by the server")

    def _check_in_transaction(self, read_only: bool) -> None:
        if self._conn.info.transaction_status != pq.TransactionStatus.INTRANS:
            kind = "readonly" if read_only else "execution"
            raise own_error(kind, TRANSACTION_CONTROL_MESSAGE, statement=self._sent.statement)

    def _standard_strings(self) -> bool:
        """How the server reads backslashes in '…' now (a statement may have changed it)."""
        return self._conn.info.parameter_status("standard_conforming_strings") != "off"

    def _guarded(
        self,
        index: int,
        statement: str,
        *,
        rows: int | None = None,
        export: bool = False,
        prefix: str = "",
    ) -> tuple[str, Sent]:
        """``statement`` wrapped by ``pg_guard`` (after ``prefix``), and where it is in it:
        with at most ``rows`` rows fetched, their total is bounded too; an export's values are
        bounded by the server (nothing counts them on the way, for COPY).

        The statement must have been parsed alone already (see pg_guard).
        """
        config = self._config
        text, offset = guarded(
            statement,
            cell_limit=config.max_cell_bytes,
            run_limit=config.max_run_bytes,
            rows=rows,
            exact_cells=export,
            standard_strings=self._standard_strings(),
        )
        return prefix + text, Sent(index, len(prefix) + offset, len(statement))

    def _meter(self, columns: Sequence[Column], run_limit: bool) -> Meter:
        return Meter(
            [c.name for c in columns],
            cell_limit=self._config.max_cell_bytes,
            run_limit=self._config.max_run_bytes if run_limit else None,
        )

    # -- statement helpers ------------------------------------------------------------------
    def _describe(self, statement: str) -> list[Column] | None:
        """Parse ``statement`` alone (refuses multiple commands); its columns, None if no rows."""
        encoding = self._conn.info.encoding
        pgconn = self._conn.pgconn
        res = pgconn.prepare(b"", statement.encode(encoding))
        if res.status != pq.ExecStatus.COMMAND_OK:
            raise _error_from_pgresult(res, encoding, self._sent, self._config)
        desc = pgconn.describe_prepared(b"")
        if desc.status != pq.ExecStatus.COMMAND_OK:
            raise _error_from_pgresult(desc, encoding, self._sent, self._config)
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
        self,
        index: int,
        statement: str,
        max_rows: int,
        *,
        read_only: bool,
        last: bool,
        meter: Meter,
        keyed: bool = False,
    ) -> tuple[list[Column] | None, list[tuple[Any, ...]], int, bool]:
        """Run batch statement ``index``: its columns (None: no rows), kept rows, row count and
        whether rows were left out.

        Rows arrive one at a time and are counted by ``meter`` as they are kept: a read fails
        when they pass a bound; a write's returned rows are a sample, cut short there instead.
        """
        self._sent = Sent(index, 0, len(statement))
        if first_keyword(statement) == "copy":
            # the COPY sub-protocol would leave the connection waiting for data
            raise own_error("execution", "COPY is not supported here; use an export")
        columns = self._describe(statement)
        query = read_only and first_keyword(statement) in CAPPABLE
        params = self._params(keyed)
        # RawCursor: the statement is sent as written (no %-placeholders of psycopg's own);
        # the only parameters are the key's pads, which a user's statement cannot name.
        with psycopg.RawCursor(self._conn) as cur:
            if columns is None and not query:
                cur.execute(statement, params, prepare=False)  # verified to be one command
                return None, [], cur.rowcount, False
            text = statement
            if query and columns is not None:  # a read-only query: the server bounds its rows
                text, self._sent = self._guarded(index, statement)
            meter.columns = [c.name for c in columns or ()]
            rows: list[tuple[Any, ...]] = []
            truncated = False
            seen = 0  # every row, kept or not: a write's RETURNING counts the rows it changed
            stream = cast(
                "Generator[tuple[Any, ...], None, None]", cur.stream(text, params, size=1)
            )
            try:
                for row in stream:
                    seen += 1
                    if columns is None:  # a query without columns (SELECT FROM t): counted
                        continue
                    if not truncated and len(rows) < max_rows and _keep(meter, row, read_only):
                        rows.append(row)
                        continue
                    truncated = True
                    if read_only and last:
                        break  # closing the stream cancels the rest; the tx is rolled back
            finally:
                stream.close()
            if columns is None:
                return None, [], seen, False
            return columns, rows, len(rows) if read_only and last else seen, truncated

    def _read_capped(self, statement: str, max_rows: int, keyed: bool = False) -> Result:
        """One query in a read-only transaction, at most `max_rows` rows, in one round trip."""
        self._ensure_idle()
        params = self._params(keyed)
        timeout = max(0, int(self._config.statement_timeout_ms))
        capped, sent = self._guarded(0, statement, rows=max_rows + 1, prefix=CAPPED_PREFIX)
        # The statement alone, at the same offset, so that error positions map the same way.
        raw = RAW_PREFIX.ljust(sent.offset - 1) + "\n" + statement
        self._sent = sent
        with self._or_rollback(), self._conn.cursor() as cur:
            with self._conn.pipeline() as pipeline:
                try:
                    self._conn.execute("BEGIN READ ONLY")
                    # SET LOCAL is safe here: the user's text can only be a query, which takes
                    # the snapshot, so nothing in it can switch the transaction to READ WRITE.
                    self._conn.execute(f"SET LOCAL statement_timeout = {timeout}")
                    if self._tag():  # for this transaction: a pooled session reverts
                        self._conn.execute(
                            "SELECT set_config('application_name', %s, true)", [self.tag]
                        )
                    # Ends the text, so it parses exactly as it would alone; if it does not, the
                    # server skips the rest of the pipeline and the wrapper never runs.
                    psycopg.RawCursor(self._conn).execute(raw, params)
                    psycopg.RawCursor(self._conn).execute(capped, params)
                    cur.execute(f"FETCH FORWARD {max_rows + 1} FROM warden_capped")
                    self._conn.execute("ROLLBACK")
                except psycopg.Error:
                    # Failed before the pipeline's end: drain it here, so that closing it is
                    # quiet, and report the first error rather than "pipeline aborted".
                    with contextlib.suppress(psycopg.Error):
                        pipeline.sync()
                    raise
            description = cur.description or []
            types = self._type_names([d.type_code for d in description])
            columns = [Column(d.name, types.get(d.type_code, "unknown")) for d in description]
            # The server kept what the FETCH returns within the bounds (pg_guard); the
            # values are counted exactly once they are here.
            rows = cur.fetchall()
            truncated = len(rows) > max_rows
            del rows[max_rows:]
            self._meter(columns, run_limit=True).add_rows(rows)
        if not columns:  # SELECT FROM t: no rows to show, as in a batch (see Result)
            return Result([], [], len(rows), truncated, 1)
        return Result(columns, rows, len(rows), truncated, 1, 0)

    # -- public API -------------------------------------------------------------------------
    def execute(
        self, statements: Sequence[str], *, read_only: bool, max_rows: int, keyed: Keyed = ()
    ) -> Result:
        items = check_statements(statements, max_rows)
        if read_only and len(items) == 1 and first_keyword(items[0]) in CAPPABLE:
            return self._read_capped(items[0], max_rows, keyed=0 in keyed)
        self._begin(read_only)
        meter = self._meter([], run_limit=True)
        with self._or_rollback():
            last_rows: Result | None = None
            last_count = -1
            for index, statement in enumerate(items):
                is_last = index == len(items) - 1
                columns, rows, count, truncated = self._run_one(
                    index,
                    statement,
                    max_rows,
                    read_only=read_only,
                    last=is_last,
                    meter=meter,
                    keyed=index in keyed,
                )
                if columns is not None:
                    last_rows = Result(columns, rows, count, truncated, len(items), index)
                last_count = count
                if not (truncated and read_only and is_last):
                    self._check_in_transaction(read_only)
            self._sent = Sent()
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
        self._sent = Sent(0, 0, len(statement))
        with self._or_rollback():
            columns = self._describe(statement) or []
            if read_only and first_keyword(statement) in CAPPABLE:
                text, sent = self._guarded(0, statement, export=True, prefix=EXPORT_PREFIX)
            else:
                text, sent = EXPORT_PREFIX + statement, Sent(0, len(EXPORT_PREFIX), len(statement))
            self._sent = sent
            # DECLARE ... CURSOR FOR <one statement>, the key's pads bound when it needs them
            psycopg.RawCursor(self._conn).execute(text, self._params(keyed), prepare=False)
            self._check_in_transaction(read_only)
        return columns, self._batches(self._meter(columns, run_limit=False), read_only, batch_size)

    def _batches(
        self, meter: Meter, read_only: bool, batch_size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        finished = False
        fetch = f"FETCH FORWARD {int(batch_size)} FROM warden_export"
        try:
            while batch := self._conn.execute(fetch, prepare=False).fetchall():
                meter.add_rows(batch)
                yield batch
            self._sent = Sent()
            if read_only:
                self._rollback()
            else:
                self._commit()
            finished = True
        except psycopg.Error as exc:
            raise map_error(exc, self._sent, self._config) from None
        except TargetError as exc:
            raise exc.at(0) from None
        finally:
            if not finished:
                self._rollback()

    def copy_csv(self, statement: str, *, limit: int) -> tuple[Iterator[bytes], CopyCount]:
        """Stream one query's rows as CSV (with a header) through COPY … TO STDOUT.

        The statement is described first (the server refuses several commands there), then
        wrapped as `COPY (<guarded query> LIMIT n) TO STDOUT` inside a read-only transaction:
        the export runs at the speed of the database's own CSV writer, and the guard refuses
        values over the cell bound before they are sent.
        """
        check_statements([statement], 0)
        self._begin(read_only=True)
        self._sent = Sent(0, 0, len(statement))
        with self._or_rollback():
            if self._describe(statement) is None:
                raise own_error("execution", "an export must be a query that returns rows")
        counter = CopyCount()
        limit = max(0, int(limit))
        # One row more than the limit tells a cut export from one that fits exactly; it is
        # read and dropped. The statement was parsed alone above, so it cannot close the
        # parenthesis early.
        query, self._sent = self._guarded(0, statement, export=True, prefix="COPY (")
        query += f"\nLIMIT {limit + 1}) TO STDOUT WITH (FORMAT csv, HEADER)"
        return self._copy_chunks(query, counter, limit), counter

    def _copy_chunks(self, query: str, counter: CopyCount, limit: int) -> Iterator[bytes]:
        finished = False
        try:
            with self._conn.cursor() as cur:
                with cur.copy(query) as copy:  # no parameters: the text goes as it is
                    # libpq hands COPY data over one row at a time, the header first.
                    for index, chunk in enumerate(copy):
                        if index <= limit:
                            counter.rows = index  # rows handed on so far (0: the header)
                            yield bytes(chunk)
                copied = max(cur.rowcount, 0)
                counter.rows, counter.truncated = min(copied, limit), copied > limit
            self._check_in_transaction(read_only=True)
            self._rollback()
            finished = True
        except psycopg.Error as exc:
            raise map_error(exc, self._sent, self._config) from None
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

        def start() -> str | None:
            self._begin(read_only=False)
            return dry_run_obstacle(self._conn, tables)

        def step(index: int, statement: str, dry_run: bool) -> int | None:
            self._sent = Sent()
            timeout = str(budget.remaining_ms())
            self._conn.execute("SELECT set_config('statement_timeout', %s, true)", (timeout,))
            self._sent = Sent(index, 0, len(statement))
            params = self._params(index in keyed)
            if dry_run:
                rows = self._changed_rows(statement, params)
            else:
                rows = self._estimated_rows(index, statement, params)
            self._check_in_transaction(read_only=False)
            return rows

        return try_statements(
            items,
            count,
            start=start,
            step=step,
            rollback=self._rollback,
            db_error=psycopg.Error,
            map_error=lambda exc: map_error(exc, self._sent, self._config),
        )

    def _estimated_rows(
        self, index: int, statement: str, params: tuple[bytes, bytes] | None = None
    ) -> int | None:
        self._describe(statement)  # refuses several commands
        explain = "EXPLAIN (FORMAT JSON) "
        self._sent = Sent(index, len(explain), len(statement))
        with psycopg.RawCursor(self._conn) as cur:
            cur.execute(explain + statement, params, prepare=False)
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

    def _changed_rows(
        self, statement: str, params: tuple[bytes, bytes] | None = None
    ) -> int | None:
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


def _keep(meter: Meter, row: tuple[Any, ...], strict: bool) -> bool:
    """Count ``row`` into ``meter``; False when it passes a bound and ``strict`` is off."""
    try:
        meter.add(row)
    except TargetError:
        if strict:
            raise
        return False
    return True


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

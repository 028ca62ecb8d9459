"""CSV exports: an allowed export run, executed here and streamed in constant memory."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator

from governance import targets
from governance.crypto import DecryptionError
from governance.csv_cells import safe_cell
from governance.models import QueryRun
from governance.services.masking import keyed_statements, safety_net
from governance.services.runs import Status, _fail, _finish, _start
from governance.services.sessions import session_for, tagged
from governance.services.values import to_csv_cell


def run_export_csv(*, run: QueryRun, batch_size: int = 5000) -> Iterator[bytes]:
    """Execute an allowed export run here, yielding CSV (header first) in constant memory.

    PostgreSQL exports go through `COPY (masked query) TO STDOUT`, at the database's own speed;
    other engines, and exports whose free text must be scanned, stream rows through a cursor.
    Stops at the connection's export row limit.
    """
    run = QueryRun.objects.select_related("connection", "user").get(pk=run.pk)
    if not _start(run):
        return
    started = time.perf_counter()
    if run.decision != "allow":
        from governance.services.held import not_executed, release_problem

        if refusal := release_problem(run):
            _finish(run, Status.FAILED, started, error=refusal, **not_executed())
            return
    scrub = safety_net(run, statement=0)  # an export runs exactly one statement
    limit = run.connection.export_row_limit
    sent = 0
    truncated = False
    try:
        with session_for(run.connection, pooled=False) as session, tagged(session, run):
            copy_csv = getattr(session, "copy_csv", None)
            # COPY takes no parameters, so a statement that needs the pseudonym key bound
            # streams through a cursor instead.
            keyed = len(run.statements) - 1 in keyed_statements(run)
            if copy_csv is not None and scrub is None and not keyed:
                chunks, counter = copy_csv(run.statements[-1], limit=limit)
                try:
                    for index, chunk in enumerate(chunks):
                        sent = counter.rows  # what has left, if the reader goes away now
                        yield _safe_header(chunk) if index == 0 else chunk
                finally:
                    # Stopped early (the reader went away): end the COPY before the session
                    # closes; a ROLLBACK sent in the middle of COPY OUT would wait forever.
                    chunks.close()
                sent, truncated = counter.rows, counter.truncated
            else:
                columns, batches = session.stream(
                    run.statements[-1], read_only=True, batch_size=batch_size, keyed=keyed
                )
                buffer = io.StringIO()
                writer = csv.writer(buffer, lineterminator="\n")
                writer.writerow([safe_cell(c.name) for c in columns])
                try:
                    for batch in batches:
                        if sent >= limit:  # the limit fell on a batch's end: any more rows?
                            truncated = bool(batch)
                            break
                        chunk = batch[: limit - sent]
                        sent += len(chunk)
                        writer.writerows(
                            [to_csv_cell(v) for v in row]
                            for row in (scrub(chunk) if scrub else chunk)
                        )
                        yield buffer.getvalue().encode()
                        buffer.seek(0)
                        buffer.truncate()
                        if len(chunk) < len(batch):
                            truncated = True
                            break
                finally:
                    # Stopped at the limit: end the cursor while its session is still open,
                    # not when the generator is collected (a traceback on the user's stderr).
                    close = getattr(batches, "close", None)
                    if close is not None:
                        close()
                if buffer.tell():
                    yield buffer.getvalue().encode()
    except (targets.TargetError, DecryptionError) as exc:
        _fail(run, started, exc)
        raise
    except BaseException as exc:  # the reader went away (closed pipe, Ctrl+C) or a bug
        _finish(
            run,
            Status.FAILED,
            started,
            row_count=sent,
            error="The export stopped before its end.",
            error_kind="interrupted",
            _audit_detail={"error_kind": "interrupted", "exception": type(exc).__name__},
        )
        raise
    _finish(run, Status.SUCCEEDED, started, row_count=sent, truncated=truncated)


def _safe_header(line: bytes) -> bytes:
    """COPY's header line, each name formula-safe as the rows are (a column alias such as
    `=HYPERLINK(…)` must not run in a spreadsheet)."""
    names = next(csv.reader(io.StringIO(line.decode("utf-8"))), [])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([safe_cell(name) for name in names])
    return out.getvalue().encode("utf-8")

"""The floor under Warden's design for a governed read, for the benchmarks (`make bench`):
the round trips and the single disk wait a governed read needs, as bare psycopg calls, with
none of Warden's Python. Shared by the internal benchmark and the API's design-floor view."""

from __future__ import annotations

from typing import Any

COMMIT_TABLE = (
    "CREATE TABLE IF NOT EXISTS warden_bench_commit (id bigserial PRIMARY KEY, at timestamptz)"
)


def design_floor_read(app: Any, target: Any, sql: str) -> list[Any]:
    """Read the caller's access, record the intent without waiting for the disk, run the read
    in one pipeline (read-only transaction, timeout, cursor, capped fetch), commit the outcome
    durably. `app` and `target` are autocommit psycopg connections (`app` holding
    COMMIT_TABLE); the rows read come back."""
    app.execute("SELECT count(*) FROM warden_bench_commit WHERE id = 0").fetchall()
    app.execute(
        "BEGIN; SET LOCAL synchronous_commit = off;"
        " INSERT INTO warden_bench_commit (at) VALUES (now()); COMMIT"
    )
    cur = target.cursor()
    with target.pipeline():
        target.execute("BEGIN READ ONLY")
        target.execute("SET LOCAL statement_timeout = 30000")
        target.execute(f"DECLARE floor NO SCROLL CURSOR FOR {sql}")
        cur.execute("FETCH FORWARD 1001 FROM floor")
        target.execute("ROLLBACK")
    rows: list[Any] = cur.fetchall()
    app.execute("INSERT INTO warden_bench_commit (at) VALUES (now())")
    return rows

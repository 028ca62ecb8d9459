"""`manage.py govern` as a user would run it: a real process, real exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import subprocess_env

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)


def govern(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "govern", *args],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


def test_json_output_of_an_executed_read(alice: Any, sqlite_conn: Any) -> None:
    result = govern(
        "--as",
        "alice",
        "--connection",
        "demo",
        "--format",
        "json",
        "SELECT id, email FROM customers ORDER BY id LIMIT 3",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["decision"] == "allow" and data["status"] == "succeeded"
    assert data["columns"] == ["id", "email"]
    assert data["row_count"] == 3 and len(data["rows"]) == 3
    assert data["truncated"] is False and data["masked"] == [] and data["approval"] is None
    assert data["statements"][0]["category"] == "read"
    assert data["statements"][0]["tables"] == ["customers"]
    assert data["reasons"] and {"rule", "message"} <= set(data["reasons"][0])


def test_a_held_statement_exits_3_with_an_approval_id(alice: Any, sqlite_conn: Any) -> None:
    from tests.conftest import grant

    grant(sqlite_conn, alice, "write")
    result = govern(
        "--as", "alice", "--connection", "demo", "--format", "json", "DELETE FROM orders"
    )
    assert result.returncode == 3, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "pending_approval"
    assert isinstance(data["approval"]["id"], int)


def test_a_denied_statement_exits_4(alice: Any, sqlite_conn: Any) -> None:
    result = govern("--as", "alice", "--connection", "demo", "ATTACH DATABASE '/tmp/x' AS x")
    assert result.returncode == 4
    assert "decision: deny" in result.stdout


def test_check_decides_without_running(alice: Any, sqlite_conn: Any) -> None:
    from governance.models import QueryRun

    result = govern(
        "--as", "alice", "--connection", "demo", "--check", "--format", "json", "SELECT 1"
    )
    assert result.returncode == 0
    assert json.loads(result.stdout)["decision"] == "allow"
    assert not QueryRun.objects.exists()


def test_usage_errors_exit_2(alice: Any, sqlite_conn: Any) -> None:
    assert govern("--as", "nobody", "--connection", "demo", "SELECT 1").returncode == 2
    unknown = govern("--as", "alice", "--connection", "nope", "SELECT 1")
    assert unknown.returncode == 2 and "No connection named 'nope'" in unknown.stderr
    assert govern("--connection", "demo", "SELECT 1").returncode == 2


def test_empty_sql_from_stdin_is_a_usage_error_with_a_message(alice: Any, sqlite_conn: Any) -> None:
    from audit.models import AuditEvent

    result = govern("--as", "alice", "--connection", "demo", "-", stdin="  ")
    assert result.returncode == 2
    assert "Empty statement" in result.stderr
    assert AuditEvent.objects.filter(kind="query.rejected").exists()


def test_a_failed_execution_exits_1(alice: Any, sqlite_conn: Any) -> None:
    result = govern("--as", "alice", "--connection", "demo", "SELECT nope FROM customers")
    assert result.returncode in (1, 4)


def test_csv_streams_every_row_up_to_the_export_limit(alice: Any, sqlite_conn: Any) -> None:
    result = govern(
        "--as",
        "alice",
        "--connection",
        "demo",
        "--format",
        "csv",
        "SELECT id, status FROM orders ORDER BY id",
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["id", "status"]
    assert len(rows) - 1 > sqlite_conn.row_cap  # an export is not bound by the interactive cap
    sqlite_conn.export_row_limit = 7
    sqlite_conn.save()
    limited = govern(
        "--as", "alice", "--connection", "demo", "--format", "csv", "SELECT id FROM orders"
    )
    assert len(list(csv.reader(io.StringIO(limited.stdout)))) == 8
    assert limited.returncode == 0 and limited.stderr == ""  # no traceback at the limit


def test_csv_export_needs_the_export_capability(bob: Any, sqlite_conn: Any) -> None:
    from tests.conftest import grant

    grant(sqlite_conn, bob, "read")
    result = govern("--as", "bob", "--connection", "demo", "--format", "csv", "SELECT 1")
    assert result.returncode == 4


def test_table_output_escapes_control_characters_in_cells(alice: Any, sqlite_conn: Any) -> None:
    """Cell values are target data: an escape sequence must not drive the terminal, and a
    newline must not break the table into rows that were never returned."""
    result = govern(
        "--as",
        "alice",
        "--connection",
        "demo",
        "SELECT char(27) || '[2J' AS esc, 'a' || char(10) || 'b' AS nl, char(8238) || 'x' AS rlo",
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    lines = result.stdout.splitlines()
    assert len(lines) == 4  # header, rule, one row, count
    assert "\\x1b[2J" in lines[2] and "a\\nb" in lines[2] and "\\u202ex" in lines[2]


def test_error_messages_escape_control_characters(alice: Any, sqlite_conn: Any) -> None:
    result = govern(
        "--as",
        "alice",
        "--connection",
        "demo",
        'SELECT * FROM "x\x1b[2J"',
    )
    assert result.returncode in (1, 4)
    assert "\x1b" not in result.stdout + result.stderr


def test_csv_export_keeps_long_text_and_binary_whole(alice: Any, sqlite_conn: Any) -> None:
    """The grid shortens huge cells for display; an export is the data, never shortened."""
    result = govern(
        "--as",
        "alice",
        "--connection",
        "demo",
        "--format",
        "csv",
        "SELECT replace(hex(zeroblob(10001)), '00', 'xy') AS long_text, zeroblob(3000) AS blob",
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[1][0] == "xy" * 10001
    assert rows[1][1] == "\\x" + "00" * 3000


def test_json_cells_print_as_json_in_the_table(alice: Any, pg_conn: Any) -> None:
    sql = """SELECT '{"x": null, "y": true}'::jsonb AS j, 'a@b.example' AS note"""
    table = govern("--as", "alice", "--connection", "demo-postgres", sql)
    assert table.returncode == 0, table.stderr
    assert '{"x": null, "y": true}' in table.stdout

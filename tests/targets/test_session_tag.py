"""Every session Warden opens on a target names the run and the person, so the database's own
logs (pgaudit, MySQL's general log) join to the audit trail by run id: PostgreSQL as the
transaction's application_name (a pooled session reverts), MySQL and MariaDB as a comment
before each statement."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from governance import targets
from governance.targets import session_tag
from tests.targets.conftest import Engine, _my_admin

APP = "SELECT current_setting('application_name')"


def test_the_tag_keeps_only_characters_no_sql_or_log_format_reads() -> None:
    assert session_tag(7, "ann o'hara */ DROP") == "warden run=7 user=ann_o_hara____DROP"
    assert len(session_tag(10**12, "x" * 200)) == 63


def test_postgres_names_the_run_for_its_transaction_only(pg_engine: Engine) -> None:
    with targets.connect(pg_engine.config) as session:
        session.tag = session_tag(41, "ann o'hara")
        capped = session.execute([APP], read_only=True, max_rows=5)  # the one-round-trip read
        batch = session.execute(["SELECT 1", APP], read_only=True, max_rows=5)
        write = session.execute([APP], read_only=False, max_rows=5)
        assert capped.rows == batch.rows == write.rows == [("warden run=41 user=ann_o_hara",)]
        session.tag = ""  # the next run on this pooled session is someone else's
        after = session.execute([APP], read_only=True, max_rows=5)
        assert after.rows == [("warden",)]
        session.tag = "x'; DROP TABLE t; --"
        with pytest.raises(ValueError):
            session.execute(["SELECT 1"], read_only=True, max_rows=5)


@pytest.fixture
def general_log() -> Iterator[Any]:
    admin = _my_admin()
    with admin.cursor() as cur:
        cur.execute("SET GLOBAL log_output = 'TABLE'")
        cur.execute("SET GLOBAL general_log = 'ON'")

    def lines(marker: str) -> list[str]:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log "
                "WHERE CONVERT(argument USING utf8mb4) LIKE %s",
                (f"%{marker}%",),
            )
            return [row[0] for row in cur.fetchall()]

    yield lines
    with admin.cursor() as cur:
        cur.execute("SET GLOBAL general_log = 'OFF'")
        cur.execute("TRUNCATE TABLE mysql.general_log")
    admin.close()


def test_mysql_puts_the_tag_before_each_statement(mysql_engine: Engine, general_log: Any) -> None:
    marker = f"m{uuid.uuid4().hex[:8]}"
    with targets.connect(mysql_engine.config) as session:
        session.tag = session_tag(42, marker)
        session.execute(["SELECT 1", "SELECT 2"], read_only=True, max_rows=5)
        session.tag = ""
        session.execute([f"SELECT '{marker}-untagged'"], read_only=True, max_rows=5)
    logged = general_log(marker)
    assert f"/* warden run=42 user={marker} */ SELECT 1" in logged
    assert f"/* warden run=42 user={marker} */ SELECT 2" in logged
    assert f"SELECT '{marker}-untagged'" in logged


@pytest.mark.django_db(transaction=True)
def test_a_governed_run_is_named_in_the_servers_log(
    mysql_conn: Any, general_log: Any, groups: Any
) -> None:
    from django.contrib.auth import get_user_model

    from governance.services.caller import Caller
    from governance.services.runs import run_submit

    name = f"u{uuid.uuid4().hex[:8]}"
    user = get_user_model().objects.create_user(name)
    user.groups.add(groups["analyst"])
    run = run_submit(caller=Caller(user=user), connection=mysql_conn, sql="SELECT 1 AS one")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert any(
        line.startswith(f"/* warden run={run.pk} user={name} */") for line in general_log(name)
    )

"""The audit trail is append-only in the database itself, not only in the ORM.

On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE, except the sealer's one-time
write of ``prev_hash``/``hash``; the runtime role of the documented two-role setup has no
privilege to rewrite it either; and the actor is a plain id, so deleting a user rewrites
nothing.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction

from audit.kinds import EventKind
from audit.models import AppendOnlyError, AuditEvent
from audit.services import event_record
from tests.conftest import subprocess_env

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL app databases"
)


def _event(**extra: Any) -> AuditEvent:
    return event_record(kind=EventKind.AUTH_LOGIN, actor_name="someone", **extra)


def _refused(sql: str, params: list[Any] | None = None) -> str:
    with pytest.raises(DatabaseError) as info, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params or [])
    return str(info.value)


@pytest.mark.django_db
def test_the_database_refuses_updates_deletes_and_truncation() -> None:
    event = _event()
    table = AuditEvent._meta.db_table
    assert "append-only: UPDATE refused" in _refused(
        f"UPDATE {table} SET kind = 'x' WHERE id = %s", [event.pk]
    )
    assert "append-only: DELETE refused" in _refused(
        f"DELETE FROM {table} WHERE id = %s", [event.pk]
    )
    assert "append-only: TRUNCATE refused" in _refused(f"TRUNCATE {table}")
    # the ORM's back doors go through the same SQL
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent._base_manager.filter(pk=event.pk).update(kind="x")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk)._raw_delete(connection.alias)
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    event.refresh_from_db()
    assert event.kind == EventKind.AUTH_LOGIN


@pytest.mark.django_db
def test_only_the_sealers_one_time_write_of_the_hashes_passes() -> None:
    event = _event()
    table = AuditEvent._meta.db_table
    # changing anything else with the hashes is refused
    assert "refused" in _refused(
        f"UPDATE {table} SET hash = 'h', actor_name = 'other' WHERE id = %s", [event.pk]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET prev_hash = 'p', hash = 'h' WHERE id = %s AND hash = ''",
            [event.pk],
        )
        assert cursor.rowcount == 1
    # once sealed, never again
    assert "refused" in _refused(f"UPDATE {table} SET hash = 'forged' WHERE id = %s", [event.pk])
    event.refresh_from_db()
    assert (event.prev_hash, event.hash) == ("p", "h")


@pytest.mark.django_db
def test_deleting_a_user_changes_nothing_in_the_trail() -> None:
    user = get_user_model().objects.create_user("mallory", password="x")
    event = _event(actor=user)
    assert (event.actor_id, event.actor_name) == (user.pk, "someone")
    user_id = user.pk
    user.delete()
    event.refresh_from_db()
    assert (event.actor_id, event.actor_name) == (user_id, "someone")


@pytest.mark.django_db(transaction=True)
def test_the_runtime_role_of_the_two_role_setup_can_only_append() -> None:
    """README, *Audit trail in the database*: migrations run as the owner; the web and worker
    processes connect as a role that may INSERT and SELECT the trail and write the two hash
    columns (which the trigger allows once), nothing more."""
    role = f"warden_runtime_{uuid.uuid4().hex[:8]}"
    table = AuditEvent._meta.db_table
    settings = connection.settings_dict
    with connection.cursor() as cursor:  # the README's statements, word for word
        cursor.execute(f"CREATE ROLE {role} LOGIN")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        cursor.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        cursor.execute(
            "REVOKE UPDATE, DELETE, TRUNCATE ON audit_auditevent, audit_auditcheckpoint "
            f"FROM {role}"
        )
        cursor.execute(f"GRANT UPDATE (prev_hash, hash) ON audit_auditevent TO {role}")
        cursor.execute(f"GRANT SELECT ON SEQUENCE audit_auditevent_id_seq TO {role}")
    try:
        host, port = settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432)
        with psycopg.connect(
            dbname=settings["NAME"], user=role, autocommit=True, host=host, port=port
        ) as conn:
            new_id = conn.execute(
                f"INSERT INTO {table} (created_at, kind, actor_name, channel, connection_name, "
                "sql, categories, decision, risk, rule, error, detail, mac, prev_hash, hash) "
                "VALUES (now(), 'auth.login', 'x', 'web', '', '', '[]', '', '', '', '', '{}', "
                "'', '', '') "
                "RETURNING id"
            ).fetchone()
            assert new_id is not None
            for sql in (
                f"DELETE FROM {table}",
                f"UPDATE {table} SET kind = 'x'",
                "DELETE FROM audit_auditcheckpoint",
                f"TRUNCATE {table}",
                f"ALTER TABLE {table} DISABLE TRIGGER ALL",
                "SET session_replication_role = replica",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(sql)
            conn.execute(
                f"UPDATE {table} SET prev_hash = '', hash = 'h' WHERE id = %s", [new_id[0]]
            )
        # The sealer and the verifier work as this role (the events of a real flow, sealed).
        _event()
        url = f"postgresql://{role}@{host}:{port}/{settings['NAME']}"
        for command in (["audit", "seal"], ["audit", "verify"]):
            done = subprocess.run(
                [sys.executable, "manage.py", *command],
                env=subprocess_env(DATABASE_URL=url),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert "permission denied" not in done.stderr, done.stderr
            assert "Traceback" not in done.stderr, done.stderr
        assert not AuditEvent.objects.filter(kind="auth.login", hash="").exists()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
            cursor.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
            cursor.execute(f"DROP ROLE {role}")

"""The hash chain, its signed checkpoints and `audit verify`, against a real PostgreSQL app
database. Every tamper is done as a superuser who switched the trigger off
(``session_replication_role = replica``), and verification names the exact event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from audit.chain import GENESIS, content, event_mac, link
from audit.keys import mac_key
from audit.kinds import EventKind
from audit.models import AuditCheckpoint, AuditEvent
from audit.sealer import seal
from audit.services import event_record
from audit.verify import verify

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL app database"),
]
TABLE = "audit_auditevent"


def _events(n: int) -> list[AuditEvent]:
    return [
        event_record(
            kind=EventKind.QUERY_SUBMITTED,
            actor_name=f"user{i}",
            sql=f"SELECT {i}",
            detail={"n": i, "ratio": 1.0, "nested": {"b": [1, 2.5]}},
            source_ip="::ffff:10.0.0.1" if i % 2 else "10.0.0.2",
        )
        for i in range(n)
    ]


def _as_superuser(sql: str, params: list[Any] | None = None) -> None:
    """A DBA bypassing the trigger for one transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params or [])
        cursor.execute("SET LOCAL session_replication_role = origin")


@pytest.fixture
def trail() -> Iterator[list[AuditEvent]]:
    events = _events(8)
    result = seal(settle_s=0)
    assert result.sealed == 8 and not result.problems, result
    assert verify().ok
    yield events


def test_a_sealed_trail_verifies_and_links_every_event(trail: list[AuditEvent]) -> None:
    prev = GENESIS
    key = mac_key()
    for event in AuditEvent.objects.order_by("id"):
        assert event.mac == event_mac(event, key)
        assert event.prev_hash == prev
        assert event.hash == link(prev, event.id, event.mac, content(event))
        prev = event.hash
    report = verify()
    assert report.ok and report.sealed == 8 and report.head_hash == prev
    assert AuditCheckpoint.objects.count() == 1  # the first seal writes one


def test_an_edited_event_is_named(trail: list[AuditEvent]) -> None:
    target = trail[3]
    _as_superuser(f"UPDATE {TABLE} SET sql = 'SELECT 42' WHERE id = %s", [target.pk])
    report = verify()
    assert not report.ok and report.first_broken_id == target.pk, report.problems


def test_an_edit_that_recomputes_the_hash_is_still_named(trail: list[AuditEvent]) -> None:
    """Without the MAC key a forger can recompute the public chain, not the MAC."""
    target = trail[2]
    _as_superuser(f"UPDATE {TABLE} SET actor_name = 'nobody' WHERE id = %s", [target.pk])
    edited = AuditEvent.objects.get(pk=target.pk)
    prev = edited.prev_hash
    for event in AuditEvent.objects.filter(id__gte=target.pk).order_by("id"):
        digest = link(prev, event.id, event.mac, content(event))
        _as_superuser(
            f"UPDATE {TABLE} SET prev_hash = %s, hash = %s WHERE id = %s", [prev, digest, event.id]
        )
        prev = digest
    report = verify()
    assert report.first_broken_id == target.pk, report.problems


def test_a_deleted_event_is_named(trail: list[AuditEvent]) -> None:
    target = trail[4]
    _as_superuser(f"DELETE FROM {TABLE} WHERE id = %s", [target.pk])
    report = verify()
    assert report.first_broken_id == target.pk, report.problems


def test_a_deleted_last_event_is_named_through_the_checkpoint(trail: list[AuditEvent]) -> None:
    target = trail[-1]
    _as_superuser(f"DELETE FROM {TABLE} WHERE id = %s", [target.pk])
    report = verify()
    assert report.first_broken_id == target.pk, report.problems


def test_reordered_events_are_named(trail: list[AuditEvent]) -> None:
    a, b = trail[1], trail[5]
    _as_superuser(
        f"UPDATE {TABLE} SET sql = CASE id WHEN %s THEN %s ELSE %s END WHERE id IN (%s, %s)",
        [a.pk, b.sql, a.sql, a.pk, b.pk],
    )
    report = verify()
    assert report.first_broken_id == a.pk, report.problems


def test_an_event_forged_at_the_end_is_named(trail: list[AuditEvent]) -> None:
    """Appended after the last checkpoint, with a chain hash computed the public way."""
    head = AuditEvent.objects.order_by("-id").first()
    assert head is not None
    forged = AuditEvent(kind=EventKind.AUTH_LOGIN, actor_name="admin", sql="")
    forged.created_at = head.created_at
    forged.mac = "0" * 64
    forged.save(force_insert=True)
    digest = link(head.hash, forged.pk, forged.mac, content(forged))
    _as_superuser(
        f"UPDATE {TABLE} SET prev_hash = %s, hash = %s WHERE id = %s",
        [head.hash, digest, forged.pk],
    )
    report = verify()
    assert report.first_broken_id == forged.pk, report.problems


def test_an_unsealed_forged_event_is_named_and_the_sealer_reports_it(
    trail: list[AuditEvent],
) -> None:
    forged = AuditEvent(kind=EventKind.AUTH_LOGIN, actor_name="admin", sql="", mac="f" * 64)
    forged.save(force_insert=True)
    result = seal(settle_s=0)
    assert any(str(forged.pk) in p for p in result.problems), result.problems
    assert verify().first_broken_id == forged.pk


def test_a_forged_checkpoint_is_found(trail: list[AuditEvent]) -> None:
    checkpoint = AuditCheckpoint.objects.get()
    _as_superuser(
        "UPDATE audit_auditcheckpoint SET head_hash = %s WHERE id = %s",
        ["1" * 64, checkpoint.pk],
    )
    report = verify()
    assert not report.ok
    assert any("bad signature" in p.message for p in report.problems), report.problems


def test_the_trail_rewritten_whole_disagrees_with_the_files_outside(
    trail: list[AuditEvent], tmp_path: Path
) -> None:
    with override_settings(
        WARDEN_AUDIT_CHECKPOINT_DIR=str(tmp_path), WARDEN_AUDIT_CHECKPOINT_EVENTS=1
    ):
        _events(2)
        assert seal(settle_s=0).checkpoint is not None
        files = sorted(tmp_path.glob("checkpoint-*.json"))
        assert len(files) == 1
        record = json.loads(files[0].read_text())
        head = AuditEvent.objects.order_by("-id").first()
        assert head is not None and record["head_hash"] == head.hash
        assert verify().ok
        _as_superuser("DELETE FROM audit_auditcheckpoint WHERE id = %s", [record["id"]])
        report = verify()
        assert any("not in the database" in p.message for p in report.problems), report.problems


def test_checkpoints_are_written_when_nothing_happens(trail: list[AuditEvent]) -> None:
    with override_settings(WARDEN_AUDIT_CHECKPOINT_SECONDS=0):
        first = seal(settle_s=0)
        second = seal(settle_s=0)
    assert first.sealed == second.sealed == 0
    assert first.checkpoint is not None and second.checkpoint is not None
    assert second.checkpoint.last_event_id == trail[-1].pk
    assert verify().ok and verify().checkpoints == 3


def test_verify_command_exit_codes_and_its_own_event(
    trail: list[AuditEvent], capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("audit", "verify", "--format", "json", "--as", "auditor1")
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["first_broken_id"] is None
    event = AuditEvent.objects.order_by("-id").first()
    assert event is not None and event.kind == EventKind.AUDIT_VERIFIED
    assert event.actor_name == "auditor1" and event.detail["head_hash"] == out["head_hash"]
    _as_superuser(f"UPDATE {TABLE} SET risk = 'low' WHERE id = %s", [trail[0].pk])
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit", "verify")
    assert exit_info.value.code == 1
    text = capsys.readouterr().out
    assert f"first broken event {trail[0].pk}" in text
    last = AuditEvent.objects.order_by("-id").first()
    assert last is not None and last.kind == EventKind.AUDIT_BROKEN


def test_verify_since_starts_at_a_signed_checkpoint(trail: list[AuditEvent]) -> None:
    import datetime as dt

    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    _events(3)
    seal(settle_s=0)
    report = verify(since=later)
    assert report.ok and report.start_id == trail[-1].pk and report.events == 3


def test_events_of_real_flows_verify(
    pg_conn: Any, sqlite_conn: Any, alice: Any, client: Any
) -> None:
    """Runs written through run_store's one-statement INSERT (the run id set inside it), masked
    reads, failures, a held write and a sign-in: every MAC computed when the event was built
    is the one recomputed from the row."""
    from governance.services.caller import Caller
    from governance.services.runs import run_submit

    for connection_ in (pg_conn, sqlite_conn):
        for sql in (
            "SELECT id, email, ssn FROM customers LIMIT 3",
            "SELECT nonexistent FROM customers",
            "UPDATE orders SET status = 'x' WHERE id = 1",
            "SELECT 1/0",
        ):
            run_submit(caller=Caller(user=alice), connection=connection_, sql=sql)
    client.post("/accounts/login/", {"login": "alice", "password": "wrong"})
    result = seal(settle_s=0)
    assert result.sealed > 8 and not result.problems, result.problems
    report = verify()
    assert report.ok, report.problems
    assert AuditEvent.objects.exclude(run_id=None).exists()


def test_auditors_see_the_last_verification_and_the_public_key(
    trail: list[AuditEvent], dave: Any, client: Any
) -> None:
    from django.urls import reverse

    from audit.keys import public_key_text

    client.force_login(dave)
    page = client.get(reverse("audit_events")).content.decode()
    assert "Not verified yet" in page and public_key_text() in page
    call_command("audit", "verify", "--as", "dave")
    page = client.get(reverse("audit_events")).content.decode()
    assert "Verified intact" in page and "by dave" in page
    _as_superuser(f"UPDATE {TABLE} SET risk = 'low' WHERE id = %s", [trail[1].pk])
    with pytest.raises(SystemExit):
        call_command("audit", "verify", "--as", "dave")
    page = client.get(reverse("audit_events")).content.decode()
    assert f"first broken event {trail[1].pk}" in page


OTHER_KEY = "b3RoZXItYXVkaXQtc2lnbmluZy1rZXktMzItYnl0ZXM="  # 32 bytes, urlsafe base64


def test_rotating_the_signing_key_keeps_the_old_trail_verifiable(
    trail: list[AuditEvent], settings: Any
) -> None:
    from django.conf import settings as live

    old_key = live.WARDEN_AUDIT_SIGNING_KEY
    _events(2)  # tagged with the old key, sealed only after the rotation
    settings.WARDEN_AUDIT_SIGNING_KEY = OTHER_KEY
    settings.WARDEN_AUDIT_RETIRED_SIGNING_KEYS = [old_key]
    _events(3)  # tagged with the new key
    result = seal(settle_s=0)
    assert not result.problems, result.problems
    rotation = result.checkpoint
    assert rotation is not None  # a rotation is checkpointed at once
    (rotated,) = AuditEvent.objects.filter(kind="audit.key_rotated")
    assert rotated.detail["checkpoint"] == rotation.pk
    assert rotated.detail["retired_key_held"] is True
    seal(settle_s=0)
    report = verify()
    assert report.ok, report.problems

    # Without the retired key, its checkpoint and events no longer verify.
    settings.WARDEN_AUDIT_RETIRED_SIGNING_KEYS = []
    assert not verify().ok

    # A leaked retired key cannot tag events written after the rotation checkpoint.
    settings.WARDEN_AUDIT_RETIRED_SIGNING_KEYS = [old_key]
    settings.WARDEN_AUDIT_SIGNING_KEY = old_key
    (forged,) = _events(1)
    settings.WARDEN_AUDIT_SIGNING_KEY = OTHER_KEY
    report = verify()
    assert not report.ok and report.first_broken_id == forged.pk, report.problems


# ---------------------------------------------------------------- tenth review: the tail


@pytest.fixture
def outside(tmp_path: Path, trail: list[AuditEvent]) -> Iterator[Path]:
    """A checkpoint directory (the journal and checkpoint files outside the database), and a
    tail of sealed events after the last checkpoint."""
    with override_settings(WARDEN_AUDIT_CHECKPOINT_DIR=str(tmp_path)):
        _events(1)
        assert seal(settle_s=0).sealed == 1
        _events(4)
        result = seal(settle_s=0)
        assert result.sealed == 4 and result.checkpoint is None  # the tail: no checkpoint
        assert verify().ok
        yield tmp_path


def _tail() -> list[AuditEvent]:
    return list(AuditEvent.objects.order_by("-id")[:4])[::-1]


def test_deleting_the_newest_sealed_events_is_found(outside: Path) -> None:
    tail = _tail()
    _as_superuser(f"DELETE FROM {TABLE} WHERE id >= %s", [tail[2].pk])
    _as_superuser("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [TABLE, tail[1].pk])
    report = verify()
    assert not report.ok and report.first_broken_id == tail[2].pk, report.problems
    refused = seal(settle_s=0)
    assert refused.refused and refused.sealed == 0, refused


def test_a_deleted_event_chained_again_by_blanking_hashes_is_found(outside: Path) -> None:
    tail = _tail()
    _as_superuser(f"DELETE FROM {TABLE} WHERE id = %s", [tail[1].pk])
    _as_superuser(f"UPDATE {TABLE} SET hash = '', prev_hash = '' WHERE id > %s", [tail[1].pk])
    result = seal(settle_s=0)  # Warden's own sealer must not chain them again
    assert result.refused and result.sealed == 0
    assert AuditEvent.objects.filter(hash="").count() == 2
    report = verify()
    assert not report.ok and report.first_broken_id == tail[1].pk, report.problems


def test_a_tail_chained_again_with_recomputed_hashes_is_found(outside: Path) -> None:
    tail = _tail()
    _as_superuser(f"DELETE FROM {TABLE} WHERE id = %s", [tail[1].pk])
    prev = tail[0].hash
    for event in tail[2:]:
        digest = link(prev, event.pk, event.mac, content(event))
        _as_superuser(
            f"UPDATE {TABLE} SET prev_hash = %s, hash = %s WHERE id = %s",
            [prev, digest, event.pk],
        )
        prev = digest
    report = verify()
    assert not report.ok
    assert report.first_broken_id is not None and report.first_broken_id <= tail[1].pk


def test_an_approval_copied_onto_another_run_is_found(trail: list[AuditEvent]) -> None:
    approved = event_record(
        kind=EventKind.APPROVAL_APPROVED, actor_name="approver", run_id=7, detail={"request": 1}
    )
    fields = [f.column for f in AuditEvent._meta.concrete_fields if f.column != "id"]
    columns = ", ".join(fields)
    picked = ", ".join("12" if c == "run_id" else c for c in fields)
    # as the runtime role could: an INSERT, no key, the MAC copied
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} ({columns}) SELECT {picked} FROM {TABLE} WHERE id = %s "
            "RETURNING id",
            [approved.pk],
        )
        (copy_id,) = cursor.fetchone()
    seal(settle_s=0)
    report = verify()
    assert not report.ok and report.first_broken_id == copy_id, report.problems


def test_an_approval_moved_to_another_run_before_sealing_is_found(
    trail: list[AuditEvent],
) -> None:
    approved = event_record(
        kind=EventKind.APPROVAL_APPROVED, actor_name="approver", run_id=7, detail={"request": 1}
    )
    _as_superuser(f"UPDATE {TABLE} SET run_id = 12 WHERE id = %s", [approved.pk])
    seal(settle_s=0)
    report = verify()
    assert not report.ok and report.first_broken_id == approved.pk, report.problems


def test_a_checkpoint_row_inserted_by_someone_else_does_not_break_later_ones(
    trail: list[AuditEvent],
) -> None:
    fields = [f.column for f in AuditCheckpoint._meta.concrete_fields if f.column != "id"]
    columns = ", ".join(fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO audit_auditcheckpoint ({columns}) SELECT {columns} FROM "
            "audit_auditcheckpoint ORDER BY id LIMIT 1"
        )
    with override_settings(WARDEN_AUDIT_CHECKPOINT_SECONDS=0):
        _events(2)
        assert seal(settle_s=0).checkpoint is not None
    report = verify()
    messages = [p.message for p in report.problems]
    assert len(messages) == 1 and "does not follow" in messages[0], messages


def test_a_removed_checkpoint_file_is_found(outside: Path) -> None:
    with override_settings(WARDEN_AUDIT_CHECKPOINT_SECONDS=0):
        assert seal(settle_s=0).checkpoint is not None
        assert seal(settle_s=0).checkpoint is not None
        assert verify().ok
        newest = sorted(outside.glob("checkpoint-*.json"))[-1]
        newest.unlink()
        report = verify()
    assert any("no copy outside" in p.message for p in report.problems), report.problems


def test_a_checkpoint_removed_with_its_file_is_named_by_the_journal(outside: Path) -> None:
    with override_settings(WARDEN_AUDIT_CHECKPOINT_SECONDS=0):
        checkpoint = seal(settle_s=0).checkpoint
        assert checkpoint is not None
    _as_superuser("DELETE FROM audit_auditcheckpoint WHERE id = %s", [checkpoint.pk])
    (outside / f"checkpoint-{checkpoint.pk:012d}.json").unlink()
    report = verify()
    assert any(
        f"checkpoint {checkpoint.pk}, recorded in the journal" in p.message for p in report.problems
    ), report.problems


def test_stalled_sealing_is_a_warning_and_a_checkpoint_still_comes(
    trail: list[AuditEvent],
) -> None:
    (late,) = _events(1)
    _as_superuser(
        f"UPDATE {TABLE} SET created_at = now() - interval '10 minutes' WHERE id = %s", [late.pk]
    )
    report = verify()  # its MAC no longer matches, and it waits: both said
    assert any("not sealed yet" in w for w in report.warnings), report.warnings


# ---------------------------------------------------------------- eleventh review


def _forge_sealed_row(event_id: int) -> None:
    """What the runtime role can do: insert a row that claims to be sealed (no key)."""
    columns = [f.column for f in AuditEvent._meta.concrete_fields]
    values: dict[str, Any] = {c: "" for c in columns}
    values.update(
        id=event_id, created_at="2026-12-01 00:00:00+00", kind="query.submitted",
        actor_name="x", channel="web", categories="[]", detail="{}", hash="abcd", mac="deadbeef",
    )  # fmt: skip
    for name in ("actor_id", "source_ip", "connection_id", "run_id", "row_count", "duration_ms"):
        values[name] = None
    names = ", ".join(values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} ({names}) VALUES ({', '.join(['%s'] * len(values))})",
            list(values.values()),
        )


@pytest.mark.parametrize("where", ["far above", "just above"])
def test_a_row_inserted_as_sealed_neither_stops_sealing_nor_gets_signed(
    outside: Path, where: str
) -> None:
    head = AuditEvent.objects.order_by("-id").first()
    assert head is not None
    forged_id = 10**12 if where == "far above" else head.pk + 1
    if where == "just above":
        _as_superuser("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [TABLE, forged_id])
    _forge_sealed_row(forged_id)
    with override_settings(WARDEN_AUDIT_CHECKPOINT_SECONDS=0):
        later = _events(3)
        result = seal(settle_s=0)
    assert result.sealed == 3 and not result.refused, result
    assert result.checkpoint is not None and result.checkpoint.head_hash != "abcd"
    assert result.checkpoint.last_event_id == later[-1].pk
    assert any(f"event {forged_id} carries a hash" in p for p in result.problems)
    report = verify()
    assert not report.ok and report.first_broken_id == forged_id, report.problems


@pytest.mark.django_db(transaction=True)
def test_events_deleted_while_sealing_is_stalled_are_named(tmp_path: Path) -> None:
    import psycopg
    from django.db import transaction

    settings_dict = connection.settings_dict
    with override_settings(WARDEN_AUDIT_CHECKPOINT_DIR=str(tmp_path)):
        _events(2)
        assert seal(settle_s=0).sealed == 2
        stall = psycopg.connect(
            dbname=settings_dict["NAME"], user=settings_dict["USER"],
            host=settings_dict["HOST"] or "127.0.0.1", port=int(settings_dict["PORT"] or 5432),
        )  # fmt: skip
        try:
            stall.execute("SELECT pg_current_xact_id()")  # holds a transaction id, never ends
            waiting = _events(3)
            result = seal(settle_s=0, wait_s=0.2)
            assert result.busy and result.sealed == 0
            assert result.pending == [e.pk for e in waiting]
            with transaction.atomic():
                _as_superuser(f"DELETE FROM {TABLE} WHERE id = %s", [waiting[1].pk])
        finally:
            stall.rollback()
            stall.close()
        seal(settle_s=0)
        report = verify()
    assert not report.ok and report.first_broken_id == waiting[1].pk, report.problems


def test_the_files_outside_gone_is_a_problem_not_silence(outside: Path) -> None:
    for path in outside.iterdir():
        path.unlink()
    report = verify()
    assert any("holds no seal journal" in p.message for p in report.problems), report.problems


def test_a_checkpoint_file_the_journal_names_must_exist(outside: Path) -> None:
    first = AuditCheckpoint.objects.order_by("id").first()
    with override_settings(WARDEN_AUDIT_CHECKPOINT_SECONDS=0):
        checkpoint = seal(settle_s=0).checkpoint
    assert first is not None and checkpoint is not None
    (outside / f"checkpoint-{checkpoint.pk:012d}.json").unlink()
    report = verify()
    assert any(f"checkpoint {checkpoint.pk} has no copy" in p.message for p in report.problems)


def test_a_first_seal_that_stalled_does_not_stop_sealing_for_good(tmp_path: Path) -> None:
    """Thirteenth review: a fresh trail whose first seal stalled journals head 0 (nothing
    sealed yet); the next seals and `audit verify` go on from there."""
    from audit import journal

    with override_settings(WARDEN_AUDIT_CHECKPOINT_DIR=str(tmp_path)):
        events = _events(2)
        journal.append(
            first_id=0,
            head_id=0,
            head_hash=GENESIS,
            sealed=0,
            checkpoint=None,
            ranges=[],
            pending=[(events[0].pk, events[1].pk)],
        )
        result = seal(settle_s=0)
        assert not result.refused and result.sealed == 2, result.problems
        report = verify()
        assert report.ok, [p.message for p in report.problems]


@pytest.mark.parametrize("number", [1e25, 1e300, 1.7976931348623157e308, -1e23, 1.5e-10, -0.0])
def test_any_number_a_client_sends_verifies_as_stored(number: float) -> None:
    """An agent's metadata is the client's: a float the database keeps in another form
    (1e25 read back as 10**25) still matches its MAC, so no client can set off the alarm."""
    event_record(
        kind=EventKind.QUERY_SUBMITTED, actor_name="agent", detail={"metadata": {"f": number}}
    )
    result = seal(settle_s=0)
    assert result.sealed == 1 and not result.problems, result
    report = verify()
    assert report.ok, report

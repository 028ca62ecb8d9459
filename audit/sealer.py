"""The sealer: chains committed audit events in id order, and writes signed checkpoints.

Writers never wait for it: an event is inserted with its MAC and an empty ``hash``; the sealer
(a Celery task on a beat schedule, also asked for after each commit) links every committed
event to the one before it. Ids are handed out before commit, so a smaller id can commit after
a larger one; the sealer only chains ids up to a horizon below which every transaction that
took an id has ended (PostgreSQL: it waits for the transactions in progress when it read the
sequence), so it never passes over an id that will still commit. Sealers take turns through an
advisory lock; writers take no lock at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import journal
from audit.chain import GENESIS, checkpoint_message, content, link, mac_matches
from audit.keys import (
    key_id,
    mac_key,
    public_key_from_text,
    public_key_text,
    retired_keys,
    signing_key,
    trusted_public_keys,
)
from audit.models import AuditCheckpoint, AuditEvent, ColumnAccess, column_accesses

log = logging.getLogger(__name__)

LOCK = 0x57415244_454E  # "WARDEN": one sealer at a time
SETTLE_S = 0.3  # time for a transaction that took an id to show up as in progress
_last_request = 0.0
REQUESTS_ENABLED = True  # the benchmark compares the read path with and without requests


@dataclass
class SealResult:
    sealed: int = 0
    head_id: int = 0
    head_hash: str = GENESIS
    busy: bool = False  # another sealer holds the lock, or transactions did not end in time
    refused: bool = False  # the table disagrees with the journal outside: nothing sealed
    checkpoint: AuditCheckpoint | None = None
    first_id: int = 0
    ids: list[int] = field(default_factory=list)
    # While stalled: the committed events waiting to be sealed, recorded in the journal so
    # that deleting one of them before it is sealed still shows.
    pending: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def request_seal() -> None:
    """After a commit: ask a worker to seal soon, at most once a second per process (the beat
    schedule seals anyway). In the embedded mode (no broker) seal here on SQLite (one writer,
    nothing to wait for); on PostgreSQL `audit seal`/`audit verify` do it."""
    global _last_request
    now = time.monotonic()
    if not REQUESTS_ENABLED or now - _last_request < 1.0:
        return
    _last_request = now
    from celery import current_app as app  # the project's app (governance/celery.py)

    if app.conf.task_always_eager:
        if connection.vendor == "postgresql":
            return  # no workers and no beat: `audit verify` or `audit seal` seals
        try:
            seal()
        except Exception:  # never fail the caller's request over sealing
            log.exception("sealing the audit trail failed")
        return
    try:
        app.send_task("audit.seal", countdown=1)
    except Exception as exc:  # the beat schedule will seal them
        log.warning("could not ask for the audit trail to be sealed: %s", type(exc).__name__)


def seal(*, limit: int = 20_000, settle_s: float = SETTLE_S, wait_s: float = 5.0) -> SealResult:
    """Chain what can be chained now, then write a checkpoint if one is due.

    Refuses (and says why) when the table no longer holds the head the journal outside the
    database last recorded. When transactions that took ids have not ended in time, nothing
    is sealed, but a checkpoint that is due is still written at the current head, so a period
    in which sealing stalled shows as such."""
    result = SealResult()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK])
                if not cursor.fetchone()[0]:
                    result.busy = True
                    return result
        head_id, _ = _head()
        refusal = _journal_disagrees(head_id)
        if refusal:
            result.refused = True
            result.problems.append(refusal)
            log.error("audit trail: %s", refusal)
            return result
        result.head_id, result.head_hash = _trusted_head(result)
        horizon = _horizon(settle_s, wait_s)
        if horizon is None:
            result.busy = True
            result.pending = _pending(result.head_id)
        else:
            _chain(result, horizon, limit)
        rotated_from = _rotated_from()
        if rotated_from is not None or _checkpoint_due(result.head_id):
            result.checkpoint = _write_checkpoint(result.head_id, result.head_hash)
        if rotated_from is not None:
            _record_rotation(rotated_from, result.checkpoint)
    if result.checkpoint is not None:
        _export(result.checkpoint)
    global _verified_head
    _verified_head = (result.head_id, result.head_hash)
    if result.sealed or result.checkpoint is not None or result.pending:
        journal.append(
            first_id=result.first_id or result.head_id,
            head_id=result.head_id,
            head_hash=result.head_hash,
            sealed=result.sealed,
            checkpoint=result.checkpoint.pk if result.checkpoint else None,
            ranges=journal.ranges_of(result.ids),
            pending=journal.ranges_of(result.pending),
        )
    return result


def _chain(result: SealResult, horizon: int, limit: int) -> None:
    """Link every committed event above the head, up to the horizon, in id order."""
    late = AuditEvent.objects.filter(hash="", id__lt=result.head_id).values_list("id", flat=True)[
        :10
    ]
    for event_id in late:
        result.problems.append(
            f"event {event_id} was committed after later events were sealed (inserted "
            "out of order, or forged): it is not in the chain"
        )
    events = list(
        AuditEvent.objects.filter(hash="", id__gt=result.head_id, id__lte=horizon).order_by("id")[
            :limit
        ]
    )
    keys = [mac_key(), *retired_keys().values()]
    updates: list[tuple[str, str, int]] = []
    prev = result.head_hash
    for event in events:
        if not any(mac_matches(event, key) for key in keys):
            result.problems.append(
                f"event {event.id} does not match its MAC (altered before sealing, or "
                "not written by Warden)"
            )
        digest = link(prev, event.id, event.mac, content(event))
        updates.append((prev, digest, event.id))
        prev = digest
        result.head_id, result.head_hash = event.id, digest
    if updates:
        result.first_id = updates[0][2]
        result.ids = [u[2] for u in updates]
        table = connection.ops.quote_name(AuditEvent._meta.db_table)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {table} SET prev_hash = %s, hash = %s WHERE id = %s AND hash = ''",
                updates,
            )
    result.sealed = len(updates)
    # The index of who reached which sensitive column, from the events just chained.
    ColumnAccess.objects.bulk_create(column_accesses(events), ignore_conflicts=True)
    for problem in result.problems:
        log.error("audit trail: %s", problem)


def _journal_disagrees(head_id: int) -> str:
    """Why the table cannot be sealed further, if the journal outside says it was rewritten."""
    try:
        entry = journal.last()
    except journal.JournalError as exc:
        return f"the seal journal outside the database is unreadable ({exc}); sealing stopped"
    if entry is None:
        return ""
    if not entry.signature_ok(trusted_public_keys()):
        return (
            f"the last line of the seal journal ({entry.source}) is not signed by Warden; "
            "sealing stopped"
        )
    if head_id < entry.head_id:
        return (
            f"the journal outside the database recorded events up to {entry.head_id} as "
            f"sealed, but the table's sealed events end at {head_id}: sealed events were "
            "deleted or their hashes blanked; sealing stopped"
        )
    if entry.head_id == 0 and entry.head_hash == GENESIS:
        return ""  # nothing was sealed yet when it was written (a first seal that stalled)
    stored = AuditEvent.objects.filter(id=entry.head_id).values_list("hash", flat=True).first()
    if stored != entry.head_hash:
        return (
            f"event {entry.head_id} no longer has the hash the journal outside the database "
            "recorded when it was sealed: the trail was rewritten; sealing stopped"
        )
    return ""


_verified_head: tuple[int, str] | None = None  # this process's last seal, checked next time


def _anchor() -> tuple[int, str]:
    """Where the chain is known good: this process's last head if the table still holds it,
    else the journal's last seal (checked by _journal_disagrees), else the last checkpoint
    Warden signed, else the start."""
    if _verified_head is not None:
        stored = AuditEvent.objects.filter(id=_verified_head[0]).values_list("hash", flat=True)
        if stored.first() == _verified_head[1] and _verified_head[0] > 0:
            return _verified_head
    try:
        entry = journal.last()
    except journal.JournalError:
        entry = None
    if entry is not None:
        return entry.head_id, entry.head_hash
    checkpoint = _last_valid_checkpoint()
    if checkpoint is not None:
        return checkpoint.last_event_id, checkpoint.head_hash
    return 0, GENESIS


def _trusted_head(result: SealResult) -> tuple[int, str]:
    """The head to chain from: the anchor, then every sealed row above it that Warden could
    have written (its MAC holds and it links to the one before). A row carrying a hash Warden
    did not compute (inserted with one by whoever can write the table) is passed over and
    reported: it can neither stop sealing nor have Warden sign it."""
    head_id, head_hash = _anchor()
    keys = [mac_key(), *retired_keys().values()]
    above = AuditEvent.objects.filter(id__gt=head_id).exclude(hash="").order_by("id")
    for event in above[:5000]:
        if (
            event.prev_hash == head_hash
            and event.hash == link(head_hash, event.id, event.mac, content(event))
            and any(mac_matches(event, key) for key in keys)
        ):
            head_id, head_hash = event.id, event.hash
        else:
            result.problems.append(
                f"event {event.id} carries a hash Warden did not write (forged, or changed "
                "after sealing): it is left out of the chain"
            )
    return head_id, head_hash


def _pending(head_id: int) -> list[int]:
    """Committed events above the head still waiting to be sealed."""
    waiting = AuditEvent.objects.filter(hash="", id__gt=head_id).order_by("id")
    return list(waiting.values_list("id", flat=True)[:20_000])


def _head() -> tuple[int, str]:
    last = AuditEvent.objects.exclude(hash="").order_by("-id").values_list("id", "hash").first()
    return (last[0], last[1]) if last else (0, GENESIS)


def _horizon(settle_s: float, wait_s: float) -> int | None:
    """The largest id below which every id handed out belongs to an ended transaction."""
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            # SQLite has one writer at a time: what is visible is all there is
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")
            return int(cursor.fetchone()[0])
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}")
        horizon = int(cursor.fetchone()[0])
        if settle_s:
            time.sleep(settle_s)  # a transaction that took an id now has a transaction id
        # Every transaction that took an id has a transaction id older than ours: wait until
        # none older than ours is still running. (A snapshot's xip does not list the newest
        # ones: its xmax is one past the last *completed* transaction, not the last assigned.)
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        mine = int(cursor.fetchone()[0])
        deadline = time.monotonic() + wait_s
        while True:
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            if int(cursor.fetchone()[0]) >= mine:
                break
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        return horizon


def _rotated_from() -> str | None:
    """The previous signing key, when the last checkpoint was signed by another one."""
    last = _last_valid_checkpoint()
    return last.public_key if last is not None and last.public_key != public_key_text() else None


def _record_rotation(previous: str, checkpoint: AuditCheckpoint | None) -> None:
    from audit.kinds import EventKind
    from audit.services import event_record

    event_record(
        kind=EventKind.AUDIT_KEY_ROTATED,
        channel="system",
        detail={
            "previous_key_id": key_id(previous),
            "key_id": key_id(public_key_text()),
            "public_key": public_key_text(),
            "retired_key_held": previous in retired_keys(),
            "checkpoint": checkpoint.pk if checkpoint else None,
            "events_tagged_before": checkpoint.last_event_id if checkpoint else None,
        },
    )


def _checkpoint_due(head_id: int) -> bool:
    last = _last_valid_checkpoint()
    if last is None:
        return True
    if head_id - last.last_event_id >= settings.WARDEN_AUDIT_CHECKPOINT_EVENTS:
        return True
    age = (timezone.now() - last.created_at).total_seconds()
    return age >= settings.WARDEN_AUDIT_CHECKPOINT_SECONDS


def checkpoint_record(checkpoint: AuditCheckpoint) -> dict[str, object]:
    """A checkpoint as written outside the database and hashed into the next one."""
    return {
        "id": checkpoint.pk,
        "created_at": checkpoint.created_at.isoformat(timespec="microseconds"),
        "last_event_id": checkpoint.last_event_id,
        "head_hash": checkpoint.head_hash,
        "sealed_events": checkpoint.sealed_events,
        "previous": checkpoint.previous,
        "signature": checkpoint.signature,
        "public_key": checkpoint.public_key,
        "key_id": key_id(checkpoint.public_key),
    }


def record_hash(checkpoint: AuditCheckpoint) -> str:
    payload = checkpoint_record(checkpoint)
    payload.pop("id")
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def signature_problem(checkpoint: AuditCheckpoint) -> str:
    """Why the checkpoint's Ed25519 signature does not hold ('' when it does)."""
    message = checkpoint_message(
        checkpoint.last_event_id,
        checkpoint.head_hash,
        checkpoint.sealed_events,
        checkpoint.created_at.isoformat(timespec="microseconds"),
        checkpoint.previous,
    )
    try:
        public = public_key_from_text(checkpoint.public_key)
        public.verify(base64.b64decode(checkpoint.signature), message)
    except InvalidSignature:
        return "a bad signature"
    except ValueError:
        return "an unreadable key"
    return ""


def _last_valid_checkpoint() -> AuditCheckpoint | None:
    """The newest checkpoint Warden signed: a row inserted by someone else is passed over
    (verification reports it), so it cannot break every checkpoint after it."""
    trusted = trusted_public_keys()
    for checkpoint in AuditCheckpoint.objects.order_by("-id")[:50]:
        if checkpoint.public_key not in trusted:
            continue
        if signature_problem(checkpoint):
            log.error("audit checkpoint %s is not signed by Warden: passed over", checkpoint.pk)
            continue
        return checkpoint
    return None


def _write_checkpoint(head_id: int, head_hash: str) -> AuditCheckpoint:
    last = _last_valid_checkpoint()
    previous = record_hash(last) if last else GENESIS
    since = last.last_event_id if last else 0
    sealed = (last.sealed_events if last else 0) + (
        AuditEvent.objects.filter(id__gt=since, id__lte=head_id).exclude(hash="").count()
    )
    created = timezone.now()
    message = checkpoint_message(
        head_id, head_hash, sealed, created.isoformat(timespec="microseconds"), previous
    )
    signature = base64.b64encode(signing_key().sign(message)).decode()
    return AuditCheckpoint.objects.create(
        created_at=created,
        last_event_id=head_id,
        head_hash=head_hash,
        sealed_events=sealed,
        previous=previous,
        signature=signature,
        public_key=public_key_text(),
    )


def _export(checkpoint: AuditCheckpoint) -> None:
    """Write the checkpoint outside the database, so rewriting the table and re-signing (with
    the key) still leaves copies that disagree. Atomic: a file is whole or absent."""
    directory = settings.WARDEN_AUDIT_CHECKPOINT_DIR
    if not directory:
        return
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        data = json.dumps(checkpoint_record(checkpoint), sort_keys=True, indent=2).encode()
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".checkpoint-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path / f"checkpoint-{checkpoint.pk:012d}.json")
    except OSError as exc:
        log.error("could not write audit checkpoint %s to %s: %s", checkpoint.pk, path, exc)

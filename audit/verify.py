"""Recompute the audit chain and its checkpoints, and name the first event that is not as
Warden wrote it.

What is checked, in id order:
- every event's MAC (only Warden's key makes one: a row forged into the table, even at the very
  end, after the last checkpoint, is found; so is one edited before it was sealed);
- every sealed event's link to the one before it (an edited, deleted or reordered event breaks
  it), and that no unsealed event sits below sealed ones;
- every checkpoint's Ed25519 signature and its link to the checkpoint before it, and that the
  chain reaches each checkpoint's head at its last event;
- the checkpoint files written outside the database, when WARDEN_AUDIT_CHECKPOINT_DIR is set:
  each must match the database's checkpoint of the same id.

A superuser who switched the trigger off can rewrite rows, but not make the MACs, the links
and the signed checkpoints agree without the signing key, nor change the copies outside.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from django.conf import settings

from audit.chain import GENESIS, checkpoint_message, content, event_mac, link
from audit.keys import mac_key, public_key_from_text, public_key_text, retired_keys
from audit.models import AuditCheckpoint, AuditEvent
from audit.sealer import checkpoint_record, record_hash

BATCH = 2000


@dataclass
class Problem:
    event_id: int | None  # the first event concerned (None: a checkpoint or a file)
    message: str


@dataclass
class Report:
    events: int = 0
    sealed: int = 0
    checkpoints: int = 0
    head_id: int = 0
    head_hash: str = GENESIS
    start_id: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_broken_id(self) -> int | None:
        ids = [p.event_id for p in self.problems if p.event_id is not None]
        return min(ids) if ids else None

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "first_broken_id": self.first_broken_id,
            "events": self.events,
            "sealed": self.sealed,
            "checkpoints": self.checkpoints,
            "head_id": self.head_id,
            "head_hash": self.head_hash,
            "start_id": self.start_id,
            "public_key": public_key_text(),
            "problems": [{"event_id": p.event_id, "message": p.message} for p in self.problems],
        }


def verify(since: dt.datetime | None = None) -> Report:
    report = Report()
    checkpoints = list(AuditCheckpoint.objects.order_by("id"))
    valid = _check_checkpoints(checkpoints, report)
    _check_files(checkpoints, report)
    # Start from the last valid checkpoint at or before `since` (its head is signed).
    start_id, prev = 0, GENESIS
    if since is not None:
        for checkpoint in valid:
            if checkpoint.created_at <= since:
                start_id, prev = checkpoint.last_event_id, checkpoint.head_hash
    report.start_id = start_id
    pins = {c.last_event_id: c for c in valid if c.last_event_id > start_id}
    key = mac_key()
    retired = _retired_windows(valid)
    last_id = start_id
    seen_unsealed: int | None = None
    after = start_id
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=after).order_by("id")[:BATCH])
        if not batch:
            break
        for event in batch:
            report.events += 1
            _check_event(event, key, retired, prev, last_id, seen_unsealed, report)
            if event.hash:
                if seen_unsealed is None:
                    prev = event.hash
                report.sealed += 1
                report.head_id, report.head_hash = event.id, event.hash
            elif seen_unsealed is None:
                seen_unsealed = event.id
            pinned = pins.pop(event.id, None)
            if pinned is not None and pinned.head_hash != event.hash:
                report.problems.append(
                    Problem(
                        event.id,
                        f"checkpoint {pinned.pk} signed hash {pinned.head_hash[:16]}… for event "
                        f"{event.id}, which now hashes to {event.hash[:16] or '(unsealed)'}…",
                    )
                )
            # A checkpoint whose last event is gone: something up to it was deleted.
            for missing_id in sorted(i for i in pins if i < event.id):
                checkpoint = pins.pop(missing_id)
                report.problems.append(
                    Problem(
                        missing_id,
                        f"event {missing_id}, the last event of checkpoint {checkpoint.pk}, is "
                        "missing (deleted)",
                    )
                )
            last_id = event.id
        after = batch[-1].id
    for missing_id, checkpoint in sorted(pins.items()):
        if missing_id > last_id:
            report.problems.append(
                Problem(
                    missing_id,
                    f"event {missing_id}, the last event of checkpoint {checkpoint.pk}, is missing "
                    "(deleted from the end of the trail)",
                )
            )
    report.problems.sort(key=lambda p: (p.event_id is None, p.event_id or 0))
    return report


def _retired_windows(valid: list[AuditCheckpoint]) -> list[tuple[bytes, float]]:
    """For each retired key, its MAC key and the last event id it may have tagged: the last
    event of the first checkpoint signed by another key after its own last one (no limit while
    no checkpoint has taken over yet)."""
    windows: list[tuple[bytes, float]] = []
    for public, key in retired_keys().items():
        own = [i for i, c in enumerate(valid) if c.public_key == public]
        after = valid[own[-1] + 1 :] if own else valid
        successor = next((c for c in after if c.public_key != public), None)
        windows.append((key, successor.last_event_id if successor else float("inf")))
    return windows


def _mac_ok(event: AuditEvent, key: bytes, retired: list[tuple[bytes, float]]) -> bool:
    if event.mac == event_mac(event, key):
        return True
    return any(event.id <= until and event.mac == event_mac(event, old) for old, until in retired)


def _check_event(
    event: AuditEvent,
    key: bytes,
    retired: list[tuple[bytes, float]],
    prev: str,
    last_id: int,
    seen_unsealed: int | None,
    report: Report,
) -> None:
    if not _mac_ok(event, key, retired):
        report.problems.append(
            Problem(
                event.id,
                f"event {event.id} does not match its MAC: changed, or not written by Warden",
            )
        )
    if not event.hash:
        return
    if seen_unsealed is not None:
        report.problems.append(
            Problem(
                seen_unsealed,
                f"event {seen_unsealed} is not sealed though later events are (inserted out of "
                "order, or forged)",
            )
        )
        return
    if event.prev_hash != prev:
        gap = (
            f" (ids {last_id + 1} to {event.id - 1} are missing)" if event.id > last_id + 1 else ""
        )
        report.problems.append(
            Problem(
                event.id if not gap else last_id + 1,
                f"the chain breaks before event {event.id}{gap}: an event before it was deleted, "
                "changed or moved",
            )
        )
    if event.hash != link(event.prev_hash, event.id, event.mac, content(event)):
        report.problems.append(
            Problem(event.id, f"event {event.id} was changed after it was sealed")
        )


def _check_checkpoints(checkpoints: list[AuditCheckpoint], report: Report) -> list[AuditCheckpoint]:
    valid: list[AuditCheckpoint] = []
    previous = GENESIS
    for checkpoint in checkpoints:
        report.checkpoints += 1
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
        except (InvalidSignature, ValueError) as exc:
            reason = "a bad signature" if isinstance(exc, InvalidSignature) else "an unreadable key"
            report.problems.append(
                Problem(None, f"checkpoint {checkpoint.pk} has {reason}: forged or altered")
            )
            continue
        if checkpoint.public_key not in _trusted_keys():
            report.problems.append(
                Problem(
                    None,
                    f"checkpoint {checkpoint.pk} is signed by a key Warden does not hold "
                    "(re-signed by someone else)",
                )
            )
            continue
        if checkpoint.previous != previous:
            report.problems.append(
                Problem(
                    None,
                    f"checkpoint {checkpoint.pk} does not follow the checkpoint before it (one "
                    "was removed or replaced)",
                )
            )
        previous = record_hash(checkpoint)
        valid.append(checkpoint)
    return valid


def _trusted_keys() -> set[str]:
    """The current signing key, and the retired ones (WARDEN_AUDIT_RETIRED_SIGNING_KEYS)."""
    return {public_key_text(), *retired_keys()}


def _check_files(checkpoints: list[AuditCheckpoint], report: Report) -> None:
    directory = settings.WARDEN_AUDIT_CHECKPOINT_DIR
    if not directory or not Path(directory).is_dir():
        return
    in_db = {c.pk: checkpoint_record(c) for c in checkpoints}
    for path in sorted(Path(directory).glob("checkpoint-*.json")):
        try:
            record = json.loads(path.read_text())
            number = int(record["id"])
        except (ValueError, KeyError, TypeError, OSError):
            report.problems.append(Problem(None, f"{path.name} cannot be read"))
            continue
        stored = in_db.get(number)
        if stored is None:
            report.problems.append(
                Problem(
                    None,
                    f"checkpoint {number} was written to {path.name} but is not in the database "
                    "(the table was rewritten)",
                )
            )
        elif stored != record:
            report.problems.append(
                Problem(
                    None,
                    f"checkpoint {number} in the database differs from {path.name} written when "
                    "it was made (the table was rewritten)",
                )
            )

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

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Max, Min
from django.utils import timezone

from audit import journal
from audit.chain import GENESIS, RUN_OPENING, content, link, mac_matches
from audit.keys import mac_key, public_key_text, retired_keys
from audit.keys import trusted_public_keys as _trusted_keys
from audit.kinds import EventKind
from audit.models import AuditCheckpoint, AuditEvent
from audit.sealer import checkpoint_record, record_hash, signature_problem

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
    journal_lines: int = 0
    problems: list[Problem] = field(default_factory=list)
    # Not alterations, but what an auditor must know: events waiting to be sealed for long,
    # an overdue checkpoint, seals the journal outside does not record.
    warnings: list[str] = field(default_factory=list)

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
            "journal_lines": self.journal_lines,
            "public_key": public_key_text(),
            "problems": [{"event_id": p.event_id, "message": p.message} for p in self.problems],
            "warnings": list(self.warnings),
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
            genuine = _check_event(event, key, retired, prev, last_id, seen_unsealed, report)
            if event.hash:
                # A row Warden did not write (its MAC fails) is not a link of the chain: the
                # sealer passed over it, so the next event links to the one before it.
                if seen_unsealed is None and genuine:
                    prev = event.hash
                    report.head_id, report.head_hash = event.id, event.hash
                report.sealed += 1
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
    _check_copies(start_id, report)
    _check_journal(valid, report)
    _check_lag(report)
    unique: dict[tuple[int | None, str], Problem] = {}
    for problem in report.problems:
        unique.setdefault((problem.event_id, problem.message), problem)
    report.problems = sorted(unique.values(), key=lambda p: (p.event_id is None, p.event_id or 0))
    return report


def _check_copies(start_id: int, report: Report) -> None:
    """A MAC is unique to its event (it covers the time to the microsecond): two rows with one
    MAC are a copy, such as an approval replayed onto another run. And a run opens once."""
    copies = (
        AuditEvent.objects.filter(id__gt=start_id)
        .values("mac")
        .annotate(n=Count("id"), first=Min("id"), last=Max("id"))
        .filter(n__gt=1)
        .order_by("last")[:20]
    )
    for copy in copies:
        report.problems.append(
            Problem(
                copy["last"],
                f"event {copy['last']} is a copy of event {copy['first']} (same MAC, "
                f"{copy['n']} rows): replayed into the trail",
            )
        )
    for kind in sorted(RUN_OPENING - {EventKind.UNMASK_USED.value}):
        twice = (
            AuditEvent.objects.filter(id__gt=start_id, kind=kind, run_id__isnull=False)
            .values("run_id")
            .annotate(n=Count("id"), last=Max("id"))
            .filter(n__gt=1)
            .order_by("last")[:20]
        )
        for run in twice:
            report.problems.append(
                Problem(
                    run["last"],
                    f"run {run['run_id']} has {run['n']} '{kind}' events; event {run['last']} "
                    "was moved onto it or forged",
                )
            )


def _check_journal(valid: list[AuditCheckpoint], report: Report) -> None:
    """Every seal the journal outside the database recorded since the last valid checkpoint
    must still be in the table (what that checkpoint pins, the chain and its signature cover;
    the journal guards what came after it). Only the journal files from the day before that
    checkpoint on are read, so verification does not grow with the journal's age."""
    cutoff = valid[-1] if valid else None
    since = (cutoff.created_at - dt.timedelta(days=1)).date() if cutoff else None
    entries, unreadable = journal.entries(since)
    for where in unreadable:
        report.problems.append(Problem(None, f"seal journal line {where} cannot be read"))
    directory = journal.directory()
    if directory is not None and valid and not journal.files():
        report.problems.append(
            Problem(
                None,
                f"WARDEN_AUDIT_CHECKPOINT_DIR ({directory}) holds no seal journal although the "
                "trail has checkpoints: the files outside were removed, or the directory is "
                "not the one Warden writes to (an unmounted volume?)",
            )
        )
    if not entries:
        return
    report.journal_lines = len(entries)
    trusted = _trusted_keys()
    wanted = sorted({e.head_id for e in entries})
    heads: dict[int, str] = {}
    for at in range(0, len(wanted), 1000):
        chunk = wanted[at : at + 1000]
        heads.update(AuditEvent.objects.filter(id__in=chunk).values_list("id", "hash"))
    checkpoint_ids = set(AuditCheckpoint.objects.values_list("id", flat=True))
    pending = sorted({i for e in entries for i in e.pending_ids()})
    present_pending: set[int] = set()
    for at in range(0, len(pending), 1000):
        chunk = pending[at : at + 1000]
        present_pending.update(AuditEvent.objects.filter(id__in=chunk).values_list("id", flat=True))
    previous_head = 0
    for entry in entries:
        if not entry.signature_ok(trusted):
            report.problems.append(
                Problem(None, f"seal journal line {entry.source} is not signed by Warden")
            )
            continue
        if entry.head_id < report.start_id:
            previous_head = entry.head_id
            continue
        stored = heads.get(entry.head_id)
        # A line written before anything was sealed (a first seal that stalled) pins no event.
        genesis = entry.head_id == 0 and entry.head_hash == GENESIS
        if stored != entry.head_hash and not genesis:
            first = max(previous_head + 1, entry.first_id if entry.sealed else entry.head_id)
            first = _first_gone(entry, first)
            what = "is missing" if stored is None else "has another hash"
            report.problems.append(
                Problem(
                    first,
                    f"event {entry.head_id}, sealed at {entry.at} as the journal outside the "
                    f"database records ({entry.source}), {what}: events {first} to "
                    f"{entry.head_id} were deleted, changed or chained again",
                )
            )
        gone = [i for i in entry.pending_ids() if i not in present_pending]
        if gone:
            report.problems.append(
                Problem(
                    gone[0],
                    f"event {gone[0]} was committed and waiting to be sealed at {entry.at} (as "
                    f"the journal outside records, {entry.source}) and is gone: deleted before "
                    "it was sealed",
                )
            )
        if entry.checkpoint is not None and directory is not None:
            copy = directory / f"checkpoint-{entry.checkpoint:012d}.json"
            if entry.checkpoint in checkpoint_ids and not copy.exists():
                report.problems.append(
                    Problem(
                        None,
                        f"checkpoint {entry.checkpoint} has no copy outside the database "
                        f"({copy.name} was removed)",
                    )
                )
        if entry.checkpoint is not None and entry.checkpoint not in checkpoint_ids:
            report.problems.append(
                Problem(
                    None,
                    f"checkpoint {entry.checkpoint}, recorded in the journal ({entry.source}), "
                    "is missing from the database",
                )
            )
        previous_head = max(previous_head, entry.head_id)
    if report.head_id > previous_head:  # a seal that committed may be writing its line now
        time.sleep(1.0)
        last = journal.last()
        if last is not None and last.head_id >= report.head_id:
            previous_head = last.head_id
    if report.head_id > previous_head:
        report.problems.append(
            Problem(
                None,
                f"events {previous_head + 1} to {report.head_id} are sealed but the journal "
                "outside the database does not record it: lines were removed from it, or "
                "writing to it failed (see Warden's log)",
            )
        )


def _first_gone(entry: journal.Entry, fallback: int) -> int:
    """The first id the journal says that seal chained which is now missing or unsealed;
    otherwise (all there, yet the head differs: chained again with new hashes) the first of
    that seal."""
    expected = [i for i in entry.ids() if i >= fallback]
    if not expected:
        return fallback
    present = set(
        AuditEvent.objects.filter(id__in=expected).exclude(hash="").values_list("id", flat=True)
    )
    return next((i for i in expected if i not in present), expected[0])


LAG_WARNING_S = 60


def _check_lag(report: Report) -> None:
    now = timezone.now()
    oldest = (
        AuditEvent.objects.filter(hash="").order_by("id").values_list("id", "created_at").first()
    )
    if oldest is not None and (now - oldest[1]).total_seconds() > LAG_WARNING_S:
        waiting = AuditEvent.objects.filter(hash="").count()
        report.warnings.append(
            f"{waiting} events are not sealed yet, the oldest (event {oldest[0]}) since "
            f"{oldest[1]:%Y-%m-%d %H:%M:%S}: sealing is stalled (a transaction held open, or no "
            "beat running); until sealed they are protected by their MAC only"
        )
    last = AuditCheckpoint.objects.order_by("-id").values_list("created_at", flat=True).first()
    limit = 2 * settings.WARDEN_AUDIT_CHECKPOINT_SECONDS + LAG_WARNING_S
    if last is not None and (now - last).total_seconds() > limit:
        report.warnings.append(
            f"the last checkpoint is from {last:%Y-%m-%d %H:%M:%S}, older than twice "
            "WARDEN_AUDIT_CHECKPOINT_SECONDS: checkpoints are not being written"
        )


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
    if mac_matches(event, key):
        return True
    return any(event.id <= until and mac_matches(event, old) for old, until in retired)


def _check_event(
    event: AuditEvent,
    key: bytes,
    retired: list[tuple[bytes, float]],
    prev: str,
    last_id: int,
    seen_unsealed: int | None,
    report: Report,
) -> bool:
    """Report what is wrong with one event; whether its MAC holds."""
    genuine = _mac_ok(event, key, retired)
    if not genuine:
        report.problems.append(
            Problem(
                event.id,
                f"event {event.id} does not match its MAC: changed, or not written by Warden",
            )
        )
    if not event.hash or not genuine:  # a row Warden did not write is no link of the chain
        return genuine
    if seen_unsealed is not None:
        report.problems.append(
            Problem(
                seen_unsealed,
                f"event {seen_unsealed} is not sealed though later events are (inserted out of "
                "order, or forged)",
            )
        )
        return genuine
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
    return genuine


def _check_checkpoints(checkpoints: list[AuditCheckpoint], report: Report) -> list[AuditCheckpoint]:
    valid: list[AuditCheckpoint] = []
    previous = GENESIS
    for checkpoint in checkpoints:
        report.checkpoints += 1
        reason = signature_problem(checkpoint)
        if reason:
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


def _check_files(checkpoints: list[AuditCheckpoint], report: Report) -> None:
    directory = settings.WARDEN_AUDIT_CHECKPOINT_DIR
    if not directory or not Path(directory).is_dir():
        return
    in_db = {c.pk: checkpoint_record(c) for c in checkpoints}
    paths = sorted(Path(directory).glob("checkpoint-*.json"))
    on_disk: set[int] = set()
    for path in paths:
        try:
            on_disk.add(int(path.stem.rsplit("-", 1)[-1]))
        except ValueError:
            continue
    if on_disk:  # from the first file on, every checkpoint has its copy outside
        for number in sorted(n for n in in_db if n >= min(on_disk) and n not in on_disk):
            report.problems.append(
                Problem(
                    None,
                    f"checkpoint {number} has no copy outside the database "
                    f"(checkpoint-{number:012d}.json was removed, or never written)",
                )
            )
    for path in paths:
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

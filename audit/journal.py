"""The seal journal: one signed line per seal, written outside the database.

The chain links events to each other, and checkpoints pin its head now and then; but what
lies after the last checkpoint, or what has yet to be sealed, lives only in the database, so
whoever can rewrite the table could blank the hashes of the last events, delete one and let the
sealer chain the rest again, or drop the newest events altogether. After every seal the sealer
appends a line to ``WARDEN_AUDIT_CHECKPOINT_DIR/seals-YYYY-MM-DD.jsonl``: the first and last
event it sealed, the head hash, the checkpoint it wrote if any, signed with the audit key.
The sealer refuses to go on when the database no longer holds the head the journal last
recorded, and `audit verify` checks every line against the table.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from django.conf import settings

from audit.chain import JOURNAL_DOMAIN
from audit.keys import key_id, public_key_from_text, public_key_text, signing_key

log = logging.getLogger(__name__)

PATTERN = "seals-*.jsonl"


@dataclass(frozen=True)
class Entry:
    first_id: int
    head_id: int
    head_hash: str
    sealed: int
    checkpoint: int | None
    at: str
    public_key: str
    signature: str
    ranges: tuple[tuple[int, int], ...] = ()  # the ids sealed, as [first, last] runs
    pending: tuple[tuple[int, int], ...] = ()  # ids committed but not sealed yet (a stall)
    source: str = ""  # file name and line, for messages

    def pending_ids(self) -> list[int]:
        return [i for first, last in self.pending for i in range(first, last + 1)]

    def ids(self) -> list[int]:
        return [i for first, last in self.ranges for i in range(first, last + 1)]

    def message(self) -> bytes:
        return _message(self.payload())

    def payload(self) -> dict[str, Any]:
        return {
            "first_id": self.first_id,
            "head_id": self.head_id,
            "head_hash": self.head_hash,
            "sealed": self.sealed,
            "checkpoint": self.checkpoint,
            "at": self.at,
            "key_id": key_id(self.public_key),
            "ranges": [list(r) for r in self.ranges],
            **({"pending": [list(r) for r in self.pending]} if self.pending else {}),
        }

    def signature_ok(self, trusted: set[str]) -> bool:
        if self.public_key not in trusted:
            return False
        try:
            public_key_from_text(self.public_key).verify(
                base64.b64decode(self.signature), self.message()
            )
        except (InvalidSignature, ValueError):
            return False
        return True


def _message(payload: dict[str, Any]) -> bytes:
    return JOURNAL_DOMAIN + json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def directory() -> Path | None:
    configured = settings.WARDEN_AUDIT_CHECKPOINT_DIR
    return Path(configured) if configured else None


def ranges_of(ids: list[int]) -> list[tuple[int, int]]:
    """Sorted ids as runs: [3, 4, 5, 9] -> [(3, 5), (9, 9)]."""
    runs: list[tuple[int, int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def append(
    *,
    first_id: int,
    head_id: int,
    head_hash: str,
    sealed: int,
    checkpoint: int | None,
    ranges: list[tuple[int, int]],
    pending: list[tuple[int, int]] | None = None,
) -> None:
    """Record a seal that has committed. A failure is logged, never raised: the seal stands,
    and the next one goes on from the database (verification then says the journal is
    behind)."""
    where = directory()
    if where is None:
        return
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    payload = {
        "first_id": first_id,
        "head_id": head_id,
        "head_hash": head_hash,
        "sealed": sealed,
        "checkpoint": checkpoint,
        "at": at,
        "key_id": key_id(public_key_text()),
        "ranges": [list(r) for r in ranges],
        **({"pending": [list(r) for r in pending]} if pending else {}),
    }
    line = {
        **payload,
        "public_key": public_key_text(),
        "signature": base64.b64encode(signing_key().sign(_message(payload))).decode(),
    }
    path = where / f"seals-{at[:10]}.jsonl"
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("could not append to the audit seal journal %s: %s", path, exc)


def _parse(raw: str, source: str) -> Entry:
    record = json.loads(raw)
    return Entry(
        first_id=int(record["first_id"]),
        head_id=int(record["head_id"]),
        head_hash=str(record["head_hash"]),
        sealed=int(record["sealed"]),
        checkpoint=None if record.get("checkpoint") is None else int(record["checkpoint"]),
        at=str(record["at"]),
        public_key=str(record["public_key"]),
        signature=str(record["signature"]),
        ranges=tuple((int(a), int(b)) for a, b in record.get("ranges") or []),
        pending=tuple((int(a), int(b)) for a, b in record.get("pending") or []),
        source=source,
    )


def files() -> list[Path]:
    where = directory()
    if where is None or not where.is_dir():
        return []
    return sorted(where.glob(PATTERN))


def entries(since: dt.date | None = None) -> tuple[list[Entry], list[str]]:
    """Every line of the journal files from `since` (a day; all when None) in order, and the
    lines that cannot be read."""
    found: list[Entry] = []
    unreadable: list[str] = []
    for path in files():
        day = path.stem.removeprefix("seals-")
        if since is not None and day < since.isoformat():
            continue
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            unreadable.append(f"{path.name}: {exc}")
            continue
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                found.append(_parse(raw, f"{path.name}:{number}"))
            except (ValueError, KeyError, TypeError):
                unreadable.append(f"{path.name}:{number}")
    return found, unreadable


class JournalError(Exception):
    """The journal's newest line cannot be read: the sealer stops rather than guess."""


def last() -> Entry | None:
    """The newest line (read from the end of the newest file: no full scan per seal)."""
    for path in reversed(files()):
        try:
            with path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 8192))
                tail = handle.read().decode(errors="replace")
        except OSError as exc:
            raise JournalError(f"cannot read {path.name}: {exc}") from None
        for raw in reversed(tail.splitlines()):
            if raw.strip():
                try:
                    return _parse(raw, path.name)
                except (ValueError, KeyError, TypeError):
                    raise JournalError(f"the last line of {path.name} cannot be read") from None
    return None

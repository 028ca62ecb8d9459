"""The tamper-evident chain: how an event is serialised, tagged and linked.

- ``canonical(event)``: the event's fields as JSON with sorted keys and no spaces, times in UTC
  with microseconds. Every field an auditor reads is in it; the chain fields are not.
- ``mac``: HMAC-SHA-256 under the audit MAC key (audit/keys.py) of the canonical form, written
  with the row. Only Warden can write a valid one. It covers the run id, so an approval cannot
  be copied onto another run; only the events written together with a new run (the run's id is
  handed out inside that INSERT) are tagged with the run id left empty (``RUN_OPENING``).
- ``hash``: SHA-256 of the previous event's hash, the id and the canonical form with its MAC,
  written by the sealer (audit/sealer.py) in id order. Changing, removing or reordering any
  sealed event breaks every later link, and signed checkpoints pin the head.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

from audit.kinds import EventKind

GENESIS = "0" * 64

#: The fields the chain covers, in the order they are documented (JSON sorts them anyway).
FIELDS = (
    "created_at",
    "kind",
    "actor_id",
    "actor_name",
    "channel",
    "source_ip",
    "connection_id",
    "connection_name",
    "run_id",
    "sql",
    "categories",
    "decision",
    "risk",
    "rule",
    "row_count",
    "duration_ms",
    "error",
    "detail",
)


def _value(value: Any) -> Any:
    """One field as the chain sees it, the same whether it was just built or read back (the
    database stores JSON numbers without their float-ness: 1.0 and 1e25 read back as ints)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(value, float) and value.is_integer():
        # The number the database keeps: 1e25 is stored and read back as 10**25, which is
        # not int(1e25) (= 10000000000000000905969664); its shortest decimal form is.
        return int(Decimal(repr(value)))
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    return value


#: Kinds written in the same INSERT as a new run (governance/services/run_store.py): the run's
#: id is not known when they are tagged, so their MAC has an empty run id. The chain, sealed
#: seconds later, covers it; verification also refuses two such events of one kind on one run.
RUN_OPENING = frozenset({EventKind.QUERY_SUBMITTED.value, EventKind.UNMASK_USED.value})


def content(event: Any, *, unbound_run: bool = False) -> bytes:
    """The canonical form of what the event says (no id, no chain fields)."""
    document = {name: _value(getattr(event, name)) for name in FIELDS}
    if unbound_run:
        document["run_id"] = None
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def event_mac(event: Any, key: bytes, *, unbound_run: bool = False) -> str:
    body = content(event, unbound_run=unbound_run)
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def mac_matches(event: Any, key: bytes) -> bool:
    """Whether the event carries the MAC Warden wrote for it (see RUN_OPENING)."""
    if hmac.compare_digest(event.mac, event_mac(event, key)):
        return True
    return (
        event.kind in RUN_OPENING
        and event.run_id is not None
        and hmac.compare_digest(event.mac, event_mac(event, key, unbound_run=True))
    )


def link(prev_hash: str, event_id: int, mac: str, body: bytes) -> str:
    """The chain hash of one event: its predecessor's hash, its id, its MAC and its content."""
    digest = hashlib.sha256()
    for part in (prev_hash.encode(), b"\n", str(event_id).encode(), b"\n", mac.encode(), b"\n"):
        digest.update(part)
    digest.update(body)
    return digest.hexdigest()


#: The first bytes of each kind of message the checkpoint key signs (domain separation).
CHECKPOINT_DOMAIN = b"warden-audit-checkpoint/1\n"
JOURNAL_DOMAIN = b"warden-audit-journal/1\n"
MANIFEST_DOMAIN = b"warden-evidence-manifest/1\n"


def checkpoint_message(
    last_event_id: int, head_hash: str, sealed: int, at: str, prev: str
) -> bytes:
    """What a checkpoint signs: the head it pins and the checkpoint before it, after a prefix
    that no other message signed with the same key starts with (journal lines and evidence
    manifests have their own), so a signature made for one can never be passed off as another."""
    return (
        CHECKPOINT_DOMAIN
        + json.dumps(
            {
                "last_event_id": last_event_id,
                "head_hash": head_hash,
                "sealed_events": sealed,
                "created_at": at,
                "previous": prev,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    )

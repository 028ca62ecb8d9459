"""Writing the audit trail. Callers pass plain values and a registered kind (audit/kinds.py);
this module knows nothing of governance."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.chain import event_mac
from audit.keys import mac_key
from audit.kinds import EventKind
from audit.models import AuditEvent

MAX_SQL_CHARS = 100_000  # an audit row keeps the first 100k characters and says so


def event_record(**fields: Any) -> AuditEvent:
    """Write one audit event (see `event_build` for the fields)."""
    event = event_build(**fields)
    event.save(force_insert=True)
    transaction.on_commit(request_seal)
    return event


def request_seal() -> None:
    """Ask for the new events to be chained soon (audit/sealer.py); the beat schedule does it
    anyway every WARDEN_AUDIT_SEAL_SECONDS. Never a database round trip here."""
    from audit.sealer import request_seal as request

    request()


def event_build(
    *,
    kind: EventKind,
    actor: Any = None,
    actor_name: str = "",
    channel: str = AuditEvent.Channel.WEB,
    source_ip: str | None = None,
    connection_id: int | None = None,
    connection_name: str = "",
    run_id: int | None = None,
    sql: str = "",
    categories: list[str] | None = None,
    decision: str = "",
    risk: str = "",
    rule: str = "",
    row_count: int | None = None,
    duration_ms: float | None = None,
    error: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    kind = EventKind(kind)  # a kind that is not registered is a bug: ValueError
    user = actor if actor is not None and actor.is_authenticated else None
    detail = dict(detail or {})
    if len(sql) > MAX_SQL_CHARS:
        detail["sql_truncated_from"] = len(sql)
        sql = sql[:MAX_SQL_CHARS]
    event = AuditEvent(
        created_at=timezone.now(),
        kind=kind,
        actor_id=user.pk if user is not None else None,
        actor_name=actor_name or (user.get_username() if user is not None else ""),
        channel=channel,
        source_ip=source_ip,
        connection_id=connection_id,
        connection_name=connection_name,
        run_id=run_id,
        sql=sql,
        categories=categories or [],
        decision=decision,
        risk=risk,
        rule=rule[:200],
        row_count=row_count,
        duration_ms=duration_ms,
        error=error,
        detail=_as_stored(detail),
    )
    event.source_ip = _SOURCE_IP.get_prep_value(event.source_ip)
    event.mac = event_mac(event, mac_key())
    return event


_SOURCE_IP = AuditEvent._meta.get_field("source_ip")


def _as_stored(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail as the database will give it back (JSON types only), so the MAC computed
    now is the one a verifier computes from the row."""
    result: dict[str, Any] = json.loads(json.dumps(detail, default=str))
    return result

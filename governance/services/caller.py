"""Who acts, through which channel, and the audit record of what they did."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from audit.kinds import EventKind
from audit.models import AuditEvent
from audit.services import event_build
from governance.models import Connection
from governance.signals import client_ip


@dataclass(frozen=True)
class Caller:
    user: Any
    channel: str = "web"
    source_ip: str | None = None
    # Who acts when no account does (a command line: "manage.py agents (os user root)").
    name: str = ""
    # A run through a token: the agent and the person it acts for, the token, what the client
    # said of itself. Every event the caller causes carries it in `detail.provenance`.
    provenance: dict[str, Any] | None = None

    @classmethod
    def of_run(cls, run: Any) -> Caller:
        """Whoever submitted `run`, through the channel they used."""
        return cls(
            user=run.user,
            channel=run.channel,
            source_ip=run.source_ip,
            provenance=getattr(run, "provenance", None) or None,
        )


def web_caller(request: HttpRequest) -> Caller:
    """The signed-in user of a web request, with the client's address."""
    return Caller(user=request.user, channel="web", source_ip=client_ip(request))


def record(
    kind: EventKind, caller: Caller, connection: Connection | None = None, **fields: Any
) -> None:
    """An audit event for `caller`, naming the connection it concerns."""
    event(kind, caller, connection, **fields).save(force_insert=True)


def event(
    kind: EventKind, caller: Caller, connection: Connection | None = None, **fields: Any
) -> AuditEvent:
    """The unsaved audit event `record` writes (for writers that batch it with other rows)."""
    if caller.name and "actor_name" not in fields:
        fields["actor_name"] = caller.name[:150]
    if caller.provenance:
        fields["detail"] = {**(fields.get("detail") or {}), "provenance": caller.provenance}
    return event_build(
        kind=kind,
        actor=caller.user,
        channel=caller.channel,
        source_ip=caller.source_ip,
        connection_id=connection.pk if connection else None,
        connection_name=connection.name if connection else "",
        **fields,
    )

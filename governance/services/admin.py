"""Admin writes: connections, grants, guardrails. Every change is audited (never secrets)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.kinds import EventKind
from governance import targets
from governance.crypto import DecryptionError
from governance.models import AccessGrant, Connection, Guardrail
from governance.services.caller import Caller, record
from governance.targets.base import without_secret

log = logging.getLogger(__name__)


def _snapshot(connection: Connection) -> dict[str, Any]:
    data = {f: getattr(connection, f) for f in Connection.SETTINGS}
    # The CA certificate is public, but kilobytes long: the trail keeps its fingerprint.
    data["tls_ca_pem"] = ca_fingerprint(connection.tls_ca_pem)
    data["has_password"] = connection.has_password
    return data


def ca_fingerprint(pem: str) -> str:
    """ "sha256:<first 16 hex digits>" of the CA text as stored, "" for none."""
    text = pem.strip()
    return f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:16]}" if text else ""


def _audit(kind: EventKind, caller: Caller, connection: Connection | None, **detail: Any) -> None:
    record(kind, caller, connection, detail=detail)


@transaction.atomic
def connection_save(
    *,
    caller: Caller,
    connection: Connection,
    password: str | None,
    clear_password: bool = False,
) -> Connection:
    """Create or update. `password=None`/"" keeps the stored one; it is never audited."""
    created = connection.pk is None
    before = {} if created else _snapshot(Connection.objects.get(pk=connection.pk))
    if clear_password:
        connection.set_password("")
    elif password:
        connection.set_password(password)
    connection.save()
    after = _snapshot(connection)
    changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    if not created and before.get("has_password") and password:
        changes["password"] = ["(set)", "(changed)"]
    _audit(
        EventKind.CONNECTION_CREATED if created else EventKind.CONNECTION_UPDATED,
        caller,
        connection,
        changes=changes,
    )
    transaction.on_commit(partial(_refresh_catalog_later, connection.pk))
    return connection


def _refresh_catalog_later(connection_id: int) -> None:
    from governance.tasks import refresh_catalog

    try:
        refresh_catalog.delay(connection_id)
    except Exception as exc:  # discovery can wait for beat; saving the connection must not fail
        log.warning("could not queue discovery for connection %s: %s", connection_id, exc)


@transaction.atomic
def connection_delete(*, caller: Caller, connection: Connection) -> None:
    _audit(EventKind.CONNECTION_DELETED, caller, connection, snapshot=_snapshot(connection))
    connection.delete()


def connection_test(
    *, caller: Caller, connection: Connection, password: str | None = None
) -> tuple[bool, str]:
    """Connect and run `SELECT 1`; (ok, "Connected: <server version>" or the error).

    `connection` may be unsaved values from the connection form (tried before saving; nothing
    is written but the audit event, which then says which settings were tried). `password`
    replaces the stored one for this try ("" = none); None keeps it. The error never repeats
    a password.
    """
    secret = password or ""
    try:
        config = connection.target_config()
        if password is not None:
            config = dataclasses.replace(config, password=password)
        secret = config.password
        version = targets.test_connection(config)
    except targets.TargetError as exc:
        ok, message = False, f"{exc.kind}: {exc.message}"
    except DecryptionError as exc:
        ok, message = False, str(exc)
    else:
        ok, message = True, f"Connected: {version}"
    message = without_secret(message, secret)
    detail: dict[str, Any] = {"ok": ok, "message": message}
    unsaved = connection.pk is None or _snapshot(connection) != _snapshot(
        Connection.objects.get(pk=connection.pk)
    )
    if unsaved or password is not None:
        snapshot = _snapshot(connection)
        snapshot["has_password"] = connection.has_password if password is None else bool(password)
        detail["unsaved"] = {k: snapshot[k] for k in _TRIED if k in snapshot}
    _audit(EventKind.CONNECTION_TESTED, caller, connection, **detail)
    return ok, message


# What a test of unsaved values records of them (the settings that decide where it connects).
_TRIED = (
    "name", "engine", "host", "port", "database", "username", "tls_mode", "tls_ca_pem",
    "has_password",
)  # fmt: skip


@transaction.atomic
def grant_create(
    *,
    caller: Caller,
    connection: Connection,
    user: Any = None,
    group: Any = None,
    capabilities: list[str],
    expires_at: Any = None,
    reason: str = "",
) -> AccessGrant:
    grant = AccessGrant.objects.create(
        connection=connection,
        user=user,
        group=group,
        capabilities=sorted(set(capabilities)),
        expires_at=expires_at,
        reason=reason,
        created_by=caller.user if caller.user.is_authenticated else None,
    )
    _audit(
        EventKind.GRANT_CREATED,
        caller,
        connection,
        grant=grant.pk,
        grantee=grant.grantee,
        capabilities=grant.capabilities,
        expires_at=expires_at.isoformat() if expires_at else None,
        reason=reason,
    )
    return grant


@transaction.atomic
def grant_revoke(*, caller: Caller, grant: AccessGrant) -> None:
    _audit(
        EventKind.GRANT_REVOKED,
        caller,
        grant.connection,
        grant=grant.pk,
        grantee=grant.grantee,
        capabilities=grant.capabilities,
    )
    grant.delete()


def _guardrail_snapshot(guardrail: Guardrail) -> dict[str, Any]:
    rule = guardrail.to_rule()
    return {
        "name": rule.name,
        "action": rule.action.value,
        "priority": rule.priority,
        "enabled": guardrail.enabled,
        "message": rule.message,
        "environments": sorted(rule.environments),
        "connections": sorted(rule.connections),
        "groups": sorted(rule.groups),
        "exempt_groups": sorted(rule.exempt_groups),
        "categories": sorted(c.value for c in rule.categories),
        "min_risk": rule.min_risk.value if rule.min_risk else None,
        "table_pattern": rule.table_pattern,
        "function_name": rule.function_name,
        "unfiltered_write": rule.unfiltered_write,
        "sensitive_to_public": rule.sensitive_to_public,
        "restricted_predicate": rule.restricted_predicate,
    }


@transaction.atomic
def guardrail_save(*, caller: Caller, form: Any) -> Guardrail:
    """Save a bound, valid GuardrailForm; bumps updated_at so decision caches reload."""
    created = form.instance.pk is None
    before = {} if created else _guardrail_snapshot(Guardrail.objects.get(pk=form.instance.pk))
    guardrail: Guardrail = form.save()
    Guardrail.objects.filter(pk=guardrail.pk).update(updated_at=timezone.now())
    after = _guardrail_snapshot(guardrail)
    record(
        EventKind.GUARDRAIL_CREATED if created else EventKind.GUARDRAIL_UPDATED,
        caller,
        rule=guardrail.name,
        detail={"changes": {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}},
    )
    return guardrail


@transaction.atomic
def guardrail_delete(*, caller: Caller, guardrail: Guardrail) -> None:
    record(
        EventKind.GUARDRAIL_DELETED,
        caller,
        rule=guardrail.name,
        detail={"snapshot": _guardrail_snapshot(guardrail)},
    )
    guardrail.delete()

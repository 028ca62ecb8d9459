"""Who may use which connection, and the policy the engine decides with."""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

from django.db import connection as db
from django.db.models import Count, Max
from django.utils import timezone

from governance import engine
from governance.models import AccessGrant, Connection, Guardrail
from governance.roles import user_groups
from governance.services.masking import catalog_facts
from governance.services.rowload import columns, hot_cursor, instance, width


class UnknownConnection(Exception):
    """Raised for a connection that does not exist *or* that the caller may not use.

    The two cases read the same so that names of connections do not leak.
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"No connection named {name!r} is available to you.")


def _grants_sql(connection_id: str) -> str:
    """The guardrail version joined to the caller's active grants on the connection whose id
    is `connection_id` (SQL): one row per grant, or one row of NULL capabilities."""
    user_model: Any = AccessGrant._meta.get_field("user").related_model
    memberships = user_model.groups.through
    quote = db.ops.quote_name
    return (
        f"(SELECT COUNT(*) AS n, MAX({quote('updated_at')}) AS at "
        f"FROM {quote(Guardrail._meta.db_table)}) v "
        f"LEFT JOIN {quote(AccessGrant._meta.db_table)} g "
        f"ON g.{quote('connection_id')} = {connection_id} "
        f"AND (g.{quote('expires_at')} IS NULL OR g.{quote('expires_at')} > %s) "
        f"AND (g.{quote('user_id')} = %s OR g.{quote('group_id')} IN "
        f"(SELECT m.{quote(memberships._meta.get_field('group').column)} "
        f"FROM {quote(memberships._meta.db_table)} m "
        f"WHERE m.{quote(memberships._meta.get_field('user').column)} = %s))"
    )


@cache
def _access_sql() -> str:
    """The caller's active grants on one connection, joined to the guardrail version.

    Hand-written because it runs on every governed statement: building the equivalent
    queryset (`AccessGrant.objects.active().for_user(user)`) costs more CPU than the query.
    Parameters: the connection's id, now, the user's id twice.
    """
    return f"SELECT v.n, v.at, g.{db.ops.quote_name('capabilities')} FROM {_grants_sql('%s')}"


@cache
def _connection_access_sql(by: str) -> str:
    """A connection found by `by` (its name or id) with the caller's grants on it and the
    guardrail version (`_access_sql`'s columns after the connection's): one round trip.
    Parameters: now, the user's id twice, the name or id."""
    quote = db.ops.quote_name
    return (
        f"SELECT {columns(Connection, 'c')}, v.n, v.at, g.{quote('capabilities')} "
        f"FROM {quote(Connection._meta.db_table)} c CROSS JOIN "
        f"{_grants_sql('c.' + quote('id'))} WHERE c.{quote(by)} = %s"
    )


#: How long the access read with a connection (`connection_for`) answers the decision that
#: follows in the same call, once: the one request asks once, not twice.
ACCESS_REUSE_SECONDS = 1.0


def _fold(rows: list[Any]) -> tuple[frozenset[str], tuple[Any, ...]]:
    caps: set[str] = set()
    for *_, capabilities in rows:
        if capabilities is not None:
            caps.update(json.loads(capabilities) if isinstance(capabilities, str) else capabilities)
    n, at = rows[0][-3], rows[0][-2]
    return frozenset(caps), (n, at)


def _user_id(user: Any) -> Any:
    return user.pk if user is not None and user.is_authenticated else None


def _access(*, user: Any, connection: Connection) -> tuple[frozenset[str], tuple[Any, ...]]:
    """(the caller's capabilities on `connection`, the guardrail version) in one round trip,
    or none when `connection_for` has just read them for this caller."""
    user_id = _user_id(user)
    kept = connection.__dict__.pop("_warden_access", None)
    fresh = kept is not None and time.monotonic() - kept[3] < ACCESS_REUSE_SECONDS
    if fresh and kept[0] == user_id:
        return kept[1], kept[2]
    now = db.ops.adapt_datetimefield_value(timezone.now())
    with hot_cursor() as cursor:
        cursor.execute(_access_sql(), [connection.pk, now, user_id, user_id])
        rows = cursor.fetchall()
    return _fold(rows)


def capabilities_for(*, user: Any, connection: Connection) -> frozenset[str]:
    return _access(user=user, connection=connection)[0]


def connections_for(user: Any) -> list[Connection]:
    """Connections the user holds an active grant on, by name."""
    ids = AccessGrant.objects.active().for_user(user).values("connection_id")
    return list(Connection.objects.filter(pk__in=ids).order_by("name"))


def export_connection_ids(user: Any) -> frozenset[int]:
    """Connections `user` holds an active grant with the `export` capability on (the editor
    offers a CSV download there; `run_submit` decides it, whatever the page offered)."""
    grants = (
        AccessGrant.objects.active().for_user(user).values_list("connection_id", "capabilities")
    )
    return frozenset(pk for pk, capabilities in grants if "export" in (capabilities or []))


def connection_for(*, user: Any, name: str | int) -> Connection:
    if isinstance(name, str) and "\x00" in name:  # no name has one; PostgreSQL refuses to compare
        raise UnknownConnection(name)
    if not isinstance(name, (int, str)) or isinstance(name, bool):
        raise UnknownConnection(str(name))
    if isinstance(name, int) and not -(2**63) <= name < 2**63:  # no id is; drivers overflow
        raise UnknownConnection(str(name))
    user_id = _user_id(user)
    now = db.ops.adapt_datetimefield_value(timezone.now())
    by = "id" if isinstance(name, int) else "name"
    with hot_cursor() as cursor:
        cursor.execute(_connection_access_sql(by), [now, user_id, user_id, name])
        rows = cursor.fetchall()
    if not rows:
        raise UnknownConnection(str(name))
    capabilities, version = _fold(rows)
    if not capabilities:
        raise UnknownConnection(str(name))
    connection: Connection = instance(Connection, rows[0][: width(Connection)])
    connection.__dict__["_warden_access"] = (user_id, capabilities, version, time.monotonic())
    return connection


def decision_context(*, user: Any, connection: Connection) -> engine.Context:
    return decision_inputs(user=user, connection=connection)[0]


def decision_inputs(
    *, user: Any, connection: Connection
) -> tuple[engine.Context, tuple[engine.Rule, ...]]:
    """The engine's context for `user` on `connection` and the policy rules, in one query."""
    capabilities, version = _access(user=user, connection=connection)
    sensitive, public = catalog_facts(connection)
    context = engine.Context(
        environment=connection.environment,
        connection_id=connection.pk,
        groups=user_groups(user),
        capabilities=capabilities,
        sensitive_columns=sensitive,
        public_tables=public,
    )
    return context, policy_rules(version)


_rules_cache: dict[tuple[Any, ...], tuple[engine.Rule, ...]] = {}


def policy_rules(version: tuple[Any, ...] | None = None) -> tuple[engine.Rule, ...]:
    """Enabled guardrails as engine rules, reloaded only when a guardrail changed.

    The version is (count, latest `updated_at`): one cheap aggregate query per call unless the
    caller already read it (`decision_inputs`); `guardrail_*` services bump `updated_at` on
    every change, M2M edits included.
    """
    if version is None:
        version = tuple(Guardrail.objects.aggregate(n=Count("id"), at=Max("updated_at")).values())
    rules = _rules_cache.get(version)
    if rules is None:
        guardrails = Guardrail.objects.filter(enabled=True).prefetch_related(
            "connections", "groups", "exempt_groups"
        )
        rules = tuple(g.to_rule() for g in guardrails)
        _rules_cache.clear()
        _rules_cache[version] = rules
    return rules

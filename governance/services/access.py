"""Who may use which connection, and the policy the engine decides with."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from django.db import connection as db
from django.db.models import Count, Max
from django.utils import timezone

from governance import engine
from governance.models import AccessGrant, Connection, Guardrail
from governance.roles import user_groups
from governance.services.masking import catalog_facts


class UnknownConnection(Exception):
    """Raised for a connection that does not exist *or* that the caller may not use.

    The two cases read the same so that names of connections do not leak.
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"No connection named {name!r} is available to you.")


@cache
def _access_sql() -> str:
    """The caller's active grants on one connection, joined to the guardrail version.

    Hand-written because it runs on every governed statement: building the equivalent
    queryset (`AccessGrant.objects.active().for_user(user)`) costs more CPU than the query.
    One row per grant, or one row of NULL capabilities when there is none.
    """
    user_model: Any = AccessGrant._meta.get_field("user").related_model
    memberships = user_model.groups.through
    quote = db.ops.quote_name
    return (
        f"SELECT v.n, v.at, g.{quote('capabilities')} "
        f"FROM (SELECT COUNT(*) AS n, MAX({quote('updated_at')}) AS at "
        f"FROM {quote(Guardrail._meta.db_table)}) v "
        f"LEFT JOIN {quote(AccessGrant._meta.db_table)} g "
        f"ON g.{quote('connection_id')} = %s "
        f"AND (g.{quote('expires_at')} IS NULL OR g.{quote('expires_at')} > %s) "
        f"AND (g.{quote('user_id')} = %s OR g.{quote('group_id')} IN "
        f"(SELECT m.{quote(memberships._meta.get_field('group').column)} "
        f"FROM {quote(memberships._meta.db_table)} m "
        f"WHERE m.{quote(memberships._meta.get_field('user').column)} = %s))"
    )


def _access(*, user: Any, connection: Connection) -> tuple[frozenset[str], tuple[Any, ...]]:
    """(the caller's capabilities on `connection`, the guardrail version) in one round trip."""
    user_id = user.pk if user is not None and user.is_authenticated else None
    now = db.ops.adapt_datetimefield_value(timezone.now())
    with db.cursor() as cursor:
        cursor.execute(_access_sql(), [connection.pk, now, user_id, user_id])
        rows = cursor.fetchall()
    caps: set[str] = set()
    for _, _, capabilities in rows:
        if capabilities is not None:
            caps.update(json.loads(capabilities) if isinstance(capabilities, str) else capabilities)
    return frozenset(caps), (rows[0][0], rows[0][1])


def capabilities_for(*, user: Any, connection: Connection) -> frozenset[str]:
    return _access(user=user, connection=connection)[0]


def connections_for(user: Any) -> list[Connection]:
    """Connections the user holds an active grant on, by name."""
    ids = AccessGrant.objects.active().for_user(user).values("connection_id")
    return list(Connection.objects.filter(pk__in=ids).order_by("name"))


def connection_for(*, user: Any, name: str | int) -> Connection:
    lookup: dict[str, Any] = {"pk": name} if isinstance(name, int) else {"name": name}
    if isinstance(name, str) and "\x00" in name:  # no name has one; PostgreSQL refuses to compare
        raise UnknownConnection(name)
    try:
        connection = Connection.objects.get(**lookup)
    except (Connection.DoesNotExist, ValueError):
        raise UnknownConnection(str(name)) from None
    if not capabilities_for(user=user, connection=connection):
        raise UnknownConnection(str(name))
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

"""Who may use which connection, and the policy the engine decides with."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max

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


def capabilities_for(*, user: Any, connection: Connection) -> frozenset[str]:
    caps: set[str] = set()
    grants = AccessGrant.objects.active().for_user(user).filter(connection=connection)
    for capabilities in grants.values_list("capabilities", flat=True):
        caps.update(capabilities)
    return frozenset(caps)


def connections_for(user: Any) -> list[Connection]:
    """Connections the user holds an active grant on, by name."""
    ids = AccessGrant.objects.active().for_user(user).values("connection_id")
    return list(Connection.objects.filter(pk__in=ids).order_by("name"))


def connection_for(*, user: Any, name: str | int) -> Connection:
    lookup: dict[str, Any] = {"pk": name} if isinstance(name, int) else {"name": name}
    try:
        connection = Connection.objects.get(**lookup)
    except (Connection.DoesNotExist, ValueError):
        raise UnknownConnection(str(name)) from None
    if not capabilities_for(user=user, connection=connection):
        raise UnknownConnection(str(name))
    return connection


def decision_context(*, user: Any, connection: Connection) -> engine.Context:
    sensitive, public = catalog_facts(connection)
    return engine.Context(
        environment=connection.environment,
        connection_id=connection.pk,
        groups=user_groups(user),
        capabilities=capabilities_for(user=user, connection=connection),
        sensitive_columns=sensitive,
        public_tables=public,
    )


_rules_cache: dict[tuple[Any, ...], tuple[engine.Rule, ...]] = {}


def policy_rules() -> tuple[engine.Rule, ...]:
    """Enabled guardrails as engine rules, reloaded only when a guardrail changed.

    One cheap aggregate query per call; `guardrail_*` services bump `updated_at` on every
    change, M2M edits included.
    """
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

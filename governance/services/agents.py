"""Agents and API tokens: creating, revoking, and recognising a token on a request.

Every change is an audit event naming the token by its public part only; the secret is shown
once, to whoever created it, and stored as a digest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.kinds import EventKind
from governance.models import Agent, ApiToken, Connection
from governance.roles import APPROVER, groups_known
from governance.services.caller import Caller, record
from governance.services.rowload import column, columns, hot_cursor, instance, table, width

User = get_user_model()

#: How often a token's `last_used_at` is written: not on every request.
LAST_USED_EVERY = dt.timedelta(minutes=1)


class AgentError(ValueError):
    """A request about agents or tokens that cannot be done; the message says why."""


@dataclass(frozen=True)
class Bearer:
    """Who a valid token speaks for."""

    user: Any
    token: ApiToken
    agent: Agent | None


class TokenRefused(Exception):
    """No valid token: the message is safe to show (it never says which check failed in a
    way that helps guess a token)."""


def _future(expires_at: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
    if expires_at is not None and expires_at <= now:
        raise AgentError("The expiry must be in the future.")
    return expires_at


def agent_create(
    *,
    caller: Caller,
    name: str,
    owner: Any,
    groups: list[str] | None = None,
    description: str = "",
    expires_at: dt.datetime | None = None,
    connections: list[str] | None = None,
) -> tuple[Agent, str]:
    """A new agent and its first token's text (shown once)."""
    now = timezone.now()
    name = (name or "").strip()
    try:
        UnicodeUsernameValidator()(name)
    except ValidationError:
        raise AgentError(
            "An agent's name may contain letters, digits and @/./+/-/_ only."
        ) from None
    if not name or len(name) > 150:
        raise AgentError("Give the agent a name of at most 150 characters.")
    if User._default_manager.filter(username__iexact=name).exists():
        raise AgentError(f"The name {name!r} is taken by an account or another agent.")
    if owner is None or not owner.is_active:
        raise AgentError("An agent's owner must be an active person.")
    if Agent.objects.filter(user=owner).exists():
        raise AgentError("An agent cannot own another agent: its owner must be a person.")
    _future(expires_at, now)
    if APPROVER in (groups or []):
        raise AgentError(
            "An agent cannot be an approver: approvals are decided by people (the owner of an "
            "agent never counts, and an agent of the same owner would)."
        )
    found_groups = list(Group.objects.filter(name__in=groups or []))
    missing = sorted(set(groups or []) - {g.name for g in found_groups})
    if missing:
        raise AgentError(f"No such role: {', '.join(missing)}.")
    found_connections = list(Connection.objects.filter(name__in=connections or []))
    unknown = sorted(set(connections or []) - {c.name for c in found_connections})
    if unknown:
        raise AgentError(f"No such connection: {', '.join(unknown)}.")
    with transaction.atomic():
        user = User(username=name, is_active=True)
        user.set_unusable_password()  # an agent never signs in to the web pages
        user.save()
        agent = Agent.objects.create(
            user=user,
            owner=owner,
            description=description[:500],
            expires_at=expires_at,
            created_by=caller.user if getattr(caller.user, "is_authenticated", False) else None,
        )
        agent.allowed_connections.set(found_connections)
        if found_connections:
            agent.connections_restricted = True
            agent.save(update_fields=["connections_restricted"])
        user.groups.set(found_groups)
        record(
            EventKind.AGENT_CREATED,
            caller,
            detail={
                "agent": name,
                "user": name,
                "user_id": user.pk,
                "agent_id": agent.pk,
                "owner": owner.get_username(),
                "owner_id": owner.pk,
                "roles": sorted(g.name for g in found_groups),
                "connections": sorted(c.name for c in found_connections),
                "expires_at": expires_at.isoformat() if expires_at else None,
                "description": agent.description,
            },
        )
        _, text = token_create(caller=caller, user=user, name="first token", expires_at=expires_at)
    return agent, text


def agent_revoke(*, caller: Caller, name: str) -> Agent:
    """Stop an agent: its account is deactivated and every token revoked."""
    agent = Agent.objects.select_related("user", "owner").filter(user__username=name).first()
    if agent is None:
        raise AgentError(f"No agent named {name!r}.")
    with transaction.atomic():
        now = timezone.now()
        for token in agent.user.api_tokens.filter(revoked_at__isnull=True):
            _revoke(caller, token, now)
        if agent.user.is_active:
            agent.user.is_active = False
            agent.user.save(update_fields=["is_active"])
        record(
            EventKind.AGENT_REVOKED,
            caller,
            detail={
                "agent": agent.name,
                "user": agent.name,
                "user_id": agent.user_id,
                "agent_id": agent.pk,
                "owner": agent.owner.get_username(),
            },
        )
    return agent


def agent_budget_set(*, caller: Caller, name: str, **limits: int | None) -> Agent:
    """Set an agent's budgets (None: back to the default). Recorded with before and after."""
    agent = Agent.objects.select_related("user").filter(user__username=name).first()
    if agent is None:
        raise AgentError(f"No agent named {name!r}.")
    unknown = sorted(set(limits) - set(Agent.BUDGETS))
    if unknown:
        raise AgentError(f"No such budget: {', '.join(unknown)}.")
    for key, value in limits.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise AgentError(f"{key} must be a whole number.")
        if value is not None and not 1 <= value <= 10**15:
            raise AgentError(f"{key} must be at least 1.")
    before = {key: getattr(agent, key) for key in Agent.BUDGETS}
    with transaction.atomic():
        for key, value in limits.items():
            setattr(agent, key, value)
        agent.save(update_fields=list(limits))
        record(
            EventKind.AGENT_UPDATED,
            caller,
            detail={
                "agent": agent.name,
                "user": agent.name,
                "user_id": agent.user_id,
                "agent_id": agent.pk,
                "before": before,
                "after": {key: getattr(agent, key) for key in Agent.BUDGETS},
            },
        )
    return agent


def token_create(
    *, caller: Caller, user: Any, name: str = "", expires_at: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    """A token for `user` (a person's personal token, or an agent's) and its text."""
    if user is None or not user.is_active:
        raise AgentError("Tokens are only made for active accounts.")
    _future(expires_at, timezone.now())
    token, text = ApiToken.issue(
        user=user,
        name=(name or "")[:100],
        expires_at=expires_at,
        created_by=caller.user if getattr(caller.user, "is_authenticated", False) else None,
    )
    record(
        EventKind.TOKEN_CREATED,
        caller,
        detail={
            "token": token.shown,
            "token_id": token.pk,
            "name": token.name,
            "user": user.get_username(),
            "user_id": user.pk,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, text


def _revoke(caller: Caller, token: ApiToken, now: dt.datetime) -> None:
    if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
        record(
            EventKind.TOKEN_REVOKED,
            caller,
            detail={
                "token": token.shown,
                "token_id": token.pk,
                "user": token.user.get_username(),
                "user_id": token.user_id,
            },
        )


def token_revoke(*, caller: Caller, key_id: str, user: Any = None) -> ApiToken:
    """Revoke a token by its public part (`wdn_<key id>_…` or the key id alone). With `user`,
    only one of that user's own tokens."""
    key = key_id.removeprefix("wdn_").split("_", 1)[0]
    tokens = ApiToken.objects.select_related("user").filter(key_id=key)
    if user is not None:
        tokens = tokens.filter(user=user)
    token = tokens.first()
    if token is None:
        raise AgentError(f"No token {key_id!r}.")
    _revoke(caller, token, timezone.now())
    token.refresh_from_db()
    return token


def token_bearer(text: str) -> Bearer:
    """Who the token `text` speaks for; TokenRefused when it does not (unknown, wrong,
    revoked, expired, its account or agent inactive or expired, or the agent's owner
    inactive)."""
    parsed = ApiToken.parse(text)
    if parsed is None:
        raise TokenRefused("The token is not a Warden token (wdn_…).")
    key_id, secret = parsed
    token, agent = _bearer_load(key_id)
    if token is None or not token.matches(secret):
        raise TokenRefused("The token is not valid.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenRefused("The token was revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRefused("The token has expired.")
    user = token.user
    if not user.is_active:
        raise TokenRefused("The token's account is disabled.")
    if agent is not None and not agent.usable(now):
        raise TokenRefused("The agent has expired or its owner's account is disabled.")
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return Bearer(user=user, token=token, agent=agent)


@cache
def _bearer_sql() -> str:
    """The token, its account, the account's agent and that agent's owner, and the account's
    groups (one row per group): everything a call needs to know of its caller, at once."""
    memberships: Any = User.groups.through
    return (
        f"SELECT {columns(ApiToken, 't')}, {columns(User, 'u')}, {columns(Agent, 'a')}, "
        f"{columns(User, 'o')}, g.{column(Group, 'name')} "
        f"FROM {table(ApiToken)} t "
        f"JOIN {table(User)} u ON u.{column(User, 'id')} = t.{column(ApiToken, 'user')} "
        f"LEFT JOIN {table(Agent)} a ON a.{column(Agent, 'user')} = u.{column(User, 'id')} "
        f"LEFT JOIN {table(User)} o ON o.{column(User, 'id')} = a.{column(Agent, 'owner')} "
        f"LEFT JOIN {table(memberships)} m ON m.{column(memberships, 'user')} = "
        f"u.{column(User, 'id')} "
        f"LEFT JOIN {table(Group)} g ON g.{column(Group, 'id')} = m.{column(memberships, 'group')} "
        f"WHERE t.{column(ApiToken, 'key_id')} = %s"
    )


def _bearer_load(key_id: str) -> tuple[ApiToken | None, Agent | None]:
    """The token with its account (its groups known to `user_groups`) and agent, in one
    round trip."""
    with hot_cursor() as cursor:
        cursor.execute(_bearer_sql(), [key_id])
        rows = cursor.fetchall()
    if not rows:
        return None, None
    first = rows[0]
    spans = [width(ApiToken), width(User), width(Agent), width(User)]
    parts, at = [], 0
    for span in spans:
        parts.append(first[at : at + span])
        at += span
    token = instance(ApiToken, parts[0])
    user = instance(User, parts[1])
    token.user = user
    groups_known(user, [row[-1] for row in rows if row[-1] is not None])
    agent = instance(Agent, parts[2])
    if agent is not None:
        agent.user = user
        agent.owner = instance(User, parts[3])
    return token, agent


def agent_of(user: Any) -> Agent | None:
    if getattr(user, "pk", None) is None:
        return None
    return Agent.objects.select_related("owner").filter(user_id=user.pk).first()


def agent_refusal(user: Any, connection: Connection | None = None) -> str:
    """Why a statement or request of `user` must not go on because of its agent ('' when it
    may, or when `user` is no agent): checked again when a held statement is approved and
    when it is released, as the token is at every call."""
    agent = agent_of(user)
    if agent is None:
        return ""
    agent.user = user
    if not agent.usable():
        return (
            "The agent that asked has expired or been revoked, or its owner's account is "
            "disabled: its requests can only be rejected."
        )
    if connection is not None and not agent.allows(connection):
        return "The agent that asked may no longer use this connection."
    return ""

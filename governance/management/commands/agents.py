"""`manage.py agents create NAME --owner USER [--group G]… [--connection C]… [--expires DATE]
[--description TEXT] [--format json]`, `agents list [--format json]`, `agents revoke NAME`,
`agents token NAME [--expires DATE]` (another token for an agent)."""

from __future__ import annotations

import datetime as dt
import json
from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from governance.management.commands._cli_caller import cli_caller
from governance.models import Agent
from governance.services.agents import (
    AgentError,
    agent_budget_set,
    agent_create,
    agent_revoke,
    token_create,
)


def parse_expiry(text: str | None) -> dt.datetime | None:
    """A date (the end of that day, UTC) or a date and time; None when not given."""
    if not text:
        return None
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text) if len(text) == 10 else None
        if day is None:
            raise CommandError(f"--expires: {text!r} is not a date (YYYY-MM-DD) or date and time")
        moment = dt.datetime.combine(day, dt.time.max)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


def agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "agent": agent.name,
        "owner": agent.owner.get_username(),
        "description": agent.description,
        "roles": sorted(agent.user.groups.values_list("name", flat=True)),
        "connections": sorted(agent.allowed_connections.values_list("name", flat=True)),
        "expires_at": agent.expires_at.isoformat() if agent.expires_at else None,
        "active": agent.usable(),
        "budgets": {key: getattr(agent, key) for key in Agent.BUDGETS},
        "tokens": [
            {
                "token": t.shown,
                "name": t.name,
                "state": t.state,
                "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            }
            for t in agent.user.api_tokens.all()
        ],
    }


class Command(BaseCommand):
    help = "Create, list and revoke AI agents (identities of their own, owned by a person)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create an agent and print its first token once")
        create.add_argument("name")
        create.add_argument("--owner", required=True, help="the person accountable for it")
        create.add_argument("--group", action="append", default=[], help="a role (repeatable)")
        create.add_argument(
            "--connection", action="append", default=[], help="only these connections"
        )
        create.add_argument("--expires", help="YYYY-MM-DD or an ISO date and time")
        create.add_argument("--description", default="")
        create.add_argument("--format", choices=["text", "json"], default="text")
        create.add_argument("--as", dest="operator", default="", help="who creates it")
        listing = sub.add_parser("list", help="every agent, its owner, roles and tokens")
        listing.add_argument("--format", choices=["text", "json"], default="text")
        revoke = sub.add_parser("revoke", help="deactivate an agent and revoke its tokens")
        revoke.add_argument("name")
        revoke.add_argument("--as", dest="operator", default="")
        budget = sub.add_parser(
            "budget", help="set an agent's budgets (0: back to the default from the environment)"
        )
        budget.add_argument("name")
        for key in Agent.BUDGETS:
            budget.add_argument(f"--{key.replace('_', '-')}", type=int, dest=key)
        budget.add_argument("--as", dest="operator", default="")
        token = sub.add_parser("token", help="another token for an agent, printed once")
        token.add_argument("name")
        token.add_argument("--expires")
        token.add_argument("--format", choices=["text", "json"], default="text")
        token.add_argument("--as", dest="operator", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except AgentError as exc:
            raise CommandError(str(exc)) from None

    def _create(self, options: dict[str, Any]) -> None:
        owner = get_user_model().objects.filter(username=options["owner"]).first()
        if owner is None:
            raise CommandError(f"--owner: no account {options['owner']!r}")
        agent, text = agent_create(
            caller=cli_caller(options["operator"]),
            name=options["name"],
            owner=owner,
            groups=options["group"],
            connections=options["connection"],
            description=options["description"],
            expires_at=parse_expiry(options["expires"]),
        )
        if options["format"] == "json":
            self.stdout.write(json.dumps({**agent_json(agent), "token": text}))
            return
        self.stdout.write(f"agent {agent.name} created, owned by {agent.owner.get_username()}")
        self.stdout.write(f"token (shown once, store it now): {text}")

    def _list(self, options: dict[str, Any]) -> None:
        agents = Agent.objects.select_related("user", "owner").prefetch_related(
            "user__groups", "user__api_tokens", "allowed_connections"
        )
        rows = [agent_json(agent) for agent in agents]
        if options["format"] == "json":
            self.stdout.write(json.dumps(rows))
            return
        if not rows:
            self.stdout.write("no agents yet: manage.py agents create NAME --owner USER")
        for row in rows:
            state = "active" if row["active"] else "inactive"
            live = sum(1 for t in row["tokens"] if t["state"] == "active")
            self.stdout.write(
                f"{row['agent']}  owner {row['owner']}  {state}  roles "
                f"{','.join(row['roles']) or '-'}  tokens {live} active"
            )

    def _revoke(self, options: dict[str, Any]) -> None:
        agent = agent_revoke(caller=cli_caller(options["operator"]), name=options["name"])
        self.stdout.write(f"agent {agent.name} revoked: account disabled, every token revoked")

    def _budget(self, options: dict[str, Any]) -> None:
        limits = {key: (options[key] or None) for key in Agent.BUDGETS if options[key] is not None}
        if not limits:
            raise CommandError(
                "give at least one of "
                + ", ".join(f"--{key.replace('_', '-')}" for key in Agent.BUDGETS)
            )
        agent = agent_budget_set(
            caller=cli_caller(options["operator"]), name=options["name"], **limits
        )
        shown = {key: getattr(agent, key) or "default" for key in Agent.BUDGETS}
        self.stdout.write(
            f"agent {agent.name}: "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in shown.items())
        )

    def _token(self, options: dict[str, Any]) -> None:
        agent = Agent.objects.select_related("user").filter(user__username=options["name"]).first()
        if agent is None:
            raise CommandError(f"no agent named {options['name']!r}")
        _token, text = token_create(
            caller=cli_caller(options["operator"]),
            user=agent.user,
            name="added by command",
            expires_at=parse_expiry(options["expires"]),
        )
        if options["format"] == "json":
            self.stdout.write(json.dumps({"agent": agent.name, "token": text}))
            return
        self.stdout.write(f"token (shown once, store it now): {text}")

"""`manage.py tokens create --user USER [--name NAME] [--expires DATE] [--format json]`,
`tokens list --user USER`, `tokens revoke wdn_<key id>_…`: personal access tokens."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from governance.management.commands._cli_caller import cli_caller
from governance.management.commands.agents import parse_expiry
from governance.models import ApiToken
from governance.services.agents import AgentError, token_create, token_revoke


class Command(BaseCommand):
    help = "Personal access tokens: create (printed once), list, revoke."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="a token for a person, printed once")
        create.add_argument("--user", required=True)
        create.add_argument("--name", default="")
        create.add_argument("--expires")
        create.add_argument("--format", choices=["text", "json"], default="text")
        create.add_argument("--as", dest="operator", default="")
        listing = sub.add_parser("list", help="a person's tokens (never their secret)")
        listing.add_argument("--user", required=True)
        listing.add_argument("--format", choices=["text", "json"], default="text")
        revoke = sub.add_parser("revoke", help="revoke a token by its public part")
        revoke.add_argument("token")
        revoke.add_argument("--as", dest="operator", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except AgentError as exc:
            raise CommandError(str(exc)) from None

    def _user(self, name: str) -> Any:
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise CommandError(f"--user: no account {name!r}")
        return user

    def _create(self, options: dict[str, Any]) -> None:
        _token, text = token_create(
            caller=cli_caller(options["operator"]),
            user=self._user(options["user"]),
            name=options["name"],
            expires_at=parse_expiry(options["expires"]),
        )
        if options["format"] == "json":
            self.stdout.write(json.dumps({"user": options["user"], "token": text}))
            return
        self.stdout.write(f"token (shown once, store it now): {text}")

    def _list(self, options: dict[str, Any]) -> None:
        tokens = ApiToken.objects.filter(user=self._user(options["user"]))
        rows = [
            {
                "token": t.shown,
                "name": t.name,
                "state": t.state,
                "created_at": t.created_at.isoformat(),
                "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            }
            for t in tokens
        ]
        if options["format"] == "json":
            self.stdout.write(json.dumps(rows))
            return
        for row in rows:
            self.stdout.write(f"{row['token']}  {row['state']}  {row['name']}")

    def _revoke(self, options: dict[str, Any]) -> None:
        token = token_revoke(caller=cli_caller(options["operator"]), key_id=options["token"])
        self.stdout.write(f"{token.shown} revoked")

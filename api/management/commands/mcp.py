"""`manage.py mcp`: Warden's MCP server over stdio, as the token in WARDEN_TOKEN.

An MCP client (Claude Desktop, Claude Code, Cursor, ...) starts it; see README: MCP. Standard
output carries the protocol only; messages for people go to standard error.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import anyio
from django.core.management.base import BaseCommand, CommandError

from api.mcp_server import Presented, presented, server
from governance.services.agents import TokenRefused, token_bearer


class Command(BaseCommand):
    help = "Serve Warden's tools to an MCP client over stdio, as the token in WARDEN_TOKEN."

    def handle(self, *args: Any, **options: Any) -> None:
        token = os.environ.get("WARDEN_TOKEN", "").strip()
        if not token:
            raise CommandError("Set WARDEN_TOKEN to an agent's or a personal token (wdn_…).")
        try:
            bearer = token_bearer(token)
        except TokenRefused as exc:
            raise CommandError(f"WARDEN_TOKEN: {exc}") from None
        # The protocol owns standard output: every log line goes to standard error.
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING, force=True)
        sys.stderr.write(f"Warden MCP server on stdio, as {bearer.user.get_username()}\n")
        presented.set(Presented(token=token, source_ip=None))
        anyio.run(server.run_stdio_async)

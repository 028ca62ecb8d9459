"""`manage.py discover --connection NAME`: refresh a connection's catalog and classification."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from governance import targets
from governance.models import Connection
from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh


class Command(BaseCommand):
    help = "Introspect a connection, sample values and classify sensitive columns."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--connection", required=True, help="Connection name, or 'all'.")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["connection"]
        connections = (
            Connection.objects.all() if name == "all" else Connection.objects.filter(name=name)
        )
        if not connections:
            raise CommandError(f"no connection named {name!r}")
        failed = False
        for connection in connections:
            try:
                summary = catalog_refresh(
                    connection=connection, caller=Caller(user=None, channel="cli")
                )
            except targets.TargetError as exc:
                self.stderr.write(f"{connection.name}: {exc.kind}: {exc.message}")
                failed = True
                continue
            self.stdout.write(
                f"{connection.name}: {summary.tables} tables, {summary.columns} columns, "
                f"{summary.sensitive} sensitive ({summary.confirmed} confirmed by an admin)"
                + (f", {summary.unsampled} tables not sampled" if summary.unsampled else "")
            )
        if failed:
            raise CommandError("discovery failed for some connections")

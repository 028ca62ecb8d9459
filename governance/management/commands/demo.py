"""`manage.py demo`: users, seeded targets and grants, then serve the app (idempotent)."""

from __future__ import annotations

import os
import subprocess
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from governance import demo_data
from governance.models import (
    AccessGrant,
    CatalogTable,
    Connection,
    QueryRun,
    Sensitivity,
    Source,
)
from governance.roles import ROLES
from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh
from governance.services.runs import run_submit

USERS = {  # username: (groups, password); demo only, printed on every run
    "admin": (["admin"], "warden-admin-demo"),
    "analyst": (["analyst"], "warden-analyst-demo"),
    "approver": (["approver"], "warden-approver-demo"),
    "lead": (["approver"], "warden-lead-demo"),
    "auditor": (["auditor"], "warden-auditor-demo"),
}
ALL_CAPS = ["read", "write", "ddl", "admin", "export"]


class Command(BaseCommand):
    help = "Create demo users and seeded demo targets, then serve Warden on 127.0.0.1:8000."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--seed-only", action="store_true", help="Seed, do not serve.")
        parser.add_argument("--postgres", metavar="DSN", help="postgresql://user:pass@host/db")
        parser.add_argument("--mysql", metavar="DSN", help="mysql://user:pass@host/db")
        parser.add_argument("--customers", type=int, default=1000)
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        targets = {"demo": f"sqlite:///{Path(settings.BASE_DIR) / 'var' / 'demo.sqlite3'}"}
        if options["postgres"]:
            targets["demo-postgres"] = options["postgres"]
        if options["mysql"]:
            targets["demo-mysql"] = options["mysql"]
        parsed = {}
        for name, url in targets.items():
            try:
                parsed[name] = demo_data.parse_dsn(url)
            except ValueError as exc:
                raise CommandError(f"{name}: {exc}") from None
        Path(settings.BASE_DIR, "var").mkdir(exist_ok=True)
        for name, dsn in parsed.items():
            counts = demo_data.seed(dsn, customers=options["customers"])
            self.stdout.write(f"seeded {name} ({dsn.engine}): {counts}")
        self._accounts_and_grants(parsed)
        self._discover(parsed)
        self._pending_example()
        if options["seed_only"]:
            return
        self._serve(options["addr"])

    @transaction.atomic
    def _accounts_and_grants(self, parsed: dict[str, demo_data.DSN]) -> None:
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
        user_model = get_user_model()
        self.stdout.write("\nDemo accounts (sign in at /accounts/login/):")
        for username, (names, password) in USERS.items():
            user, created = user_model.objects.get_or_create(username=username)
            if created:  # never reset the password of an account that already exists
                user.set_password(password)
                user.save()
            user.groups.set([groups[n] for n in names])
            shown = password if created or user.check_password(password) else "(changed)"
            self.stdout.write(f"  {username:<9} {shown:<22} {', '.join(names)}")
        for name, dsn in parsed.items():
            connection, _ = Connection.objects.get_or_create(
                name=name,
                defaults={"engine": dsn.engine, "database": dsn.database},
            )
            connection.engine = dsn.engine
            connection.host, connection.port = dsn.host, dsn.port
            connection.database, connection.username = dsn.database, dsn.user
            connection.environment = "production"
            connection.set_password(dsn.password)
            connection.save()
            for group, caps in (
                ("analyst", ["read", "write", "export"]),
                ("approver", ["read"]),
                ("admin", ALL_CAPS),
            ):
                AccessGrant.objects.update_or_create(
                    connection=connection,
                    group=groups[group],
                    user=None,
                    defaults={"capabilities": caps, "reason": "demo"},
                )

    def _discover(self, parsed: dict[str, demo_data.DSN]) -> None:
        """Classify the demo targets now (zero setup) and label the public table."""
        for name in parsed:
            connection = Connection.objects.get(name=name)
            summary = catalog_refresh(connection=connection)
            CatalogTable.objects.filter(
                connection=connection, name__in=demo_data.PUBLIC_TABLES
            ).update(label=Sensitivity.PUBLIC, label_source=Source.CONFIRMED)
            self.stdout.write(
                f"discovered {name}: {summary.sensitive} sensitive columns of {summary.columns}"
            )

    def _pending_example(self) -> None:
        """One write waiting for approval, so the approvers' queue is not empty (idempotent)."""
        analyst = get_user_model().objects.get(username="analyst")
        if QueryRun.objects.filter(user=analyst, purpose__endswith="(demo)").exists():
            return  # seeded before (it may have been approved or rejected since)
        run = run_submit(
            caller=Caller(user=analyst, channel="cli"),
            connection=Connection.objects.get(name="demo"),
            sql="UPDATE orders SET status = 'refunded' WHERE id = 7",
            purpose="Refund for support ticket #1234 (demo)",
        )
        self.stdout.write(f"a write by analyst waits for approval (run {run.pk}, {run.status})")

    def _serve(self, addr: str) -> None:
        worker = None
        if settings.REDIS_URL:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "governance",
                    "worker",
                    "-l",
                    "info",
                    "--concurrency",
                    "2",
                ],
                env=os.environ.copy(),
            )
            self.stdout.write("started a celery worker (REDIS_URL is set)")
        else:
            self.stdout.write("queries run in-process (set REDIS_URL for Celery workers)")
        # Served as in production: hashed, compressed files from STATIC_ROOT (WhiteNoise).
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write(f"\nWarden is at http://{addr}/ — Ctrl+C to stop.\n")
        try:
            call_command("runserver", addr, use_reloader=False)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(10)

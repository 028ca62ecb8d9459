"""`manage.py demo`: users, seeded targets and grants, then serve the app (idempotent)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from argparse import ArgumentParser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.management.commands import runserver
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
# What the README's "Try it" walks through; the analyst's UPDATE is held for approval.
TRY = (
    "Try it: sign in as analyst and run, on the connection demo,\n"
    "  SELECT * FROM customers LIMIT 10                  sensitive columns come back masked\n"
    "  UPDATE orders SET status = 'shipped' WHERE id = 1  held for approval, with its reason\n"
    "then sign in as approver in another browser: the queue has it (and a seeded write)."
)


@contextmanager
def _quiet_task_logs() -> Iterator[None]:
    """Queries run as eager Celery tasks in the demo's process, and Celery logs each one at
    INFO: those lines would bury the demo's instructions. A failing task still logs (ERROR)."""
    loggers = [logging.getLogger(name) for name in ("celery", "kombu")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class DemoServer(runserver.Command):
    """Django's runserver, printing the demo's instructions once it listens: one block after
    the server's own banner, rather than lost among the startup lines."""

    instructions = ""
    addr: str  # set by runserver's handle()

    def on_bind(self, server_port: int) -> None:
        super().on_bind(server_port)
        # Bound to every interface, the demo is still reached on this machine's loopback.
        host = {"0": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.addr, self.addr)  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        url = f"{self.protocol}://{host}:{server_port}"
        self.stdout.write(self.instructions.replace("{url}", url))


class Command(BaseCommand):
    help = "Create demo users and seeded demo targets, then serve Warden on 127.0.0.1:8000."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--seed-only", action="store_true", help="Seed, do not serve.")
        parser.add_argument("--postgres", metavar="DSN", help="postgresql://user:pass@host/db")
        parser.add_argument("--mysql", metavar="DSN", help="mysql://user:pass@host/db")
        parser.add_argument("--customers", type=int, default=1000)
        parser.add_argument(
            "--addr",
            default="127.0.0.1:8000",
            help="Address and port to serve on, as runserver takes them (default 127.0.0.1:8000).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with _quiet_task_logs():
            self._demo(**options)

    def _demo(self, **options: Any) -> None:
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
            self.stdout.write(self._instructions(url=""))
            return
        self._serve(options["addr"])

    @transaction.atomic
    def _accounts_and_grants(self, parsed: dict[str, demo_data.DSN]) -> None:
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
        user_model = get_user_model()
        self._accounts: list[str] = []
        for username, (names, password) in USERS.items():
            user, created = user_model.objects.get_or_create(username=username)
            if created:  # never reset the password of an account that already exists
                user.set_password(password)
                user.save()
            user.groups.set([groups[n] for n in names])
            shown = password if created or user.check_password(password) else "(changed)"
            self._accounts.append(f"  {username:<9} {shown:<22} {', '.join(names)}")
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

    def _instructions(self, *, url: str) -> str:
        """The demo accounts and what to try, as one block; `url` where Warden listens."""
        lines = [
            "",
            f"Demo accounts (sign in at {url}/accounts/login/):",
            *self._accounts,
            "",
            TRY,
        ]
        if url:
            lines += ["", f"Warden is at {url}/ (Ctrl+C to stop).", ""]
        return "\n".join(lines)

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
                    "--quiet",  # no banner in the middle of the demo's lines
                    "worker",
                    "-l",
                    "warning",
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
        server = DemoServer()
        server.instructions = self._instructions(url="{url}")
        try:
            call_command(server, addr, use_reloader=False)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(10)

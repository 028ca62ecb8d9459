"""`manage.py audit verify [--since DATE] [--format json]`, `manage.py audit seal`,
`manage.py audit watch-identity` and
`manage.py audit reindex` (rebuild the index of sensitive column access from the trail)."""

from __future__ import annotations

import datetime as dt
import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.kinds import EventKind
from audit.models import AuditEvent, ColumnAccess, column_accesses
from audit.sealer import seal
from audit.services import event_record
from audit.verify import Problem, verify


def _since(text: str) -> dt.datetime:
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise CommandError(f"--since: {text!r} is not a date (YYYY-MM-DD) or a date and time")
        moment = dt.datetime.combine(day, dt.time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


def _reindex() -> int:
    """File every sealed `query.submitted` event's sensitive columns (what is there stays)."""
    filed, after = 0, 0
    while True:
        batch = list(
            AuditEvent.objects.filter(kind=EventKind.QUERY_SUBMITTED, id__gt=after)
            .exclude(hash="")
            .order_by("id")[:2000]
        )
        if not batch:
            return filed
        rows = column_accesses(batch)
        ColumnAccess.objects.bulk_create(rows, ignore_conflicts=True)
        filed += len(rows)
        after = batch[-1].id


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chain and signed checkpoints, seal it now or "
        "check accounts and roles."
    )

    def _watch_identity(self) -> None:
        import time

        from audit.identity_watch import lock_holder, watch

        deadline = time.monotonic() + 10
        result = watch()
        while result.busy and time.monotonic() < deadline:
            time.sleep(0.5)  # another look is running: it takes a moment
            result = watch()
        if result.busy:
            self.stderr.write(
                f"the identity watch's lock is held by another session: {lock_holder()}"
            )
            raise SystemExit(1)
        for problem in result.problems:
            self.stderr.write(problem)
        for change in result.unexplained:
            self.stderr.write(f"changed outside Warden: {json.dumps(change.as_detail())}")
        if result.unexplained or result.problems:
            raise SystemExit(1)
        state = (
            "first snapshot taken"
            if result.baseline
            else ("changed, every change recorded" if result.changed else "unchanged")
        )
        self.stdout.write(f"accounts and roles: {state}")

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("verify", help="recompute the chain; exit 0 only when intact")
        check.add_argument("--since", help="start at the last checkpoint before this date")
        check.add_argument("--format", choices=["text", "json"], default="text")
        check.add_argument("--as", dest="operator", default="", help="who runs it (recorded)")
        sub.add_parser("seal", help="chain committed events and write a due checkpoint now")
        sub.add_parser(
            "watch-identity",
            help="compare accounts, roles and second factors with the last snapshot now",
        )
        sub.add_parser(
            "reindex", help="rebuild the index of who reached which sensitive column from the trail"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "watch-identity":
            self._watch_identity()
            return
        if options["action"] == "reindex":
            self.stdout.write(f"indexed {_reindex()} column accesses")
            return
        if options["action"] == "seal":
            result = seal()
            for problem in result.problems:
                self.stderr.write(problem)
            if result.refused:
                raise SystemExit(1)
            state = "busy, try again" if result.busy else f"head {result.head_id}"
            self.stdout.write(f"sealed {result.sealed} events ({state})")
            return
        since = _since(options["since"]) if options["since"] else None
        try:
            seal()  # chain what has been committed, so the report covers it
        except DatabaseError as exc:  # verify what is there all the same
            self.stderr.write(f"sealing failed ({exc}); verifying the trail as it stands")
        report = verify(since)
        try:
            with transaction.atomic():
                event_record(
                    kind=EventKind.AUDIT_VERIFIED if report.ok else EventKind.AUDIT_BROKEN,
                    actor_name=options["operator"],
                    channel=AuditEvent.Channel.CLI,
                    detail={
                        **{k: v for k, v in report.as_dict().items() if k != "problems"},
                        "problems": [p.message for p in report.problems[:20]],
                        "since": since.isoformat() if since else None,
                    },
                )
        except DatabaseError as exc:  # e.g. the id sequence was set back: report all the same
            report.problems.append(
                Problem(None, f"the result could not be recorded in the trail: {exc}".strip())
            )
        if options["format"] == "json":
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self._text(report)
        if not report.ok:
            raise SystemExit(1)

    def _text(self, report: Any) -> None:
        self.stdout.write(
            f"{report.events} events checked from id {report.start_id + 1} ({report.sealed} "
            f"sealed), {report.checkpoints} checkpoints; head {report.head_id} "
            f"{report.head_hash[:16]}…"
        )
        for warning in report.warnings:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))
        if report.ok:
            partial = f" (from event {report.start_id + 1})" if report.start_id else ""
            self.stdout.write(self.style.SUCCESS(f"intact{partial}"))
            return
        first = report.first_broken_id
        named = f"first broken event {first}" if first is not None else "see below"
        self.stdout.write(self.style.ERROR(f"BROKEN: {named}"))
        for problem in report.problems:
            self.stdout.write(f"  - {problem.message}")

"""`manage.py evidence_report --start DATE --end DATE --output FILE.zip [--as NAME]` and
`manage.py evidence_report verify FILE.zip [--public-key KEY]`."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date

from evidence.bundle import verify
from evidence.services import (
    PeriodError,
    bundle_bytes,
    period_validate,
    record_generated,
    write_atomically,
)


class Command(BaseCommand):
    help = "Write a signed evidence bundle for a period, or verify one."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", nargs="?", choices=["verify"], help="verify FILE.zip")
        parser.add_argument("file", nargs="?", help="the bundle to verify")
        parser.add_argument("--start", help="first day of the period (YYYY-MM-DD)")
        parser.add_argument("--end", help="last day of the period (YYYY-MM-DD), included")
        parser.add_argument("--output", help="where to write the zip")
        parser.add_argument("--as", dest="operator", default="", help="who asks (recorded)")
        parser.add_argument("--public-key", help="verify against this key (urlsafe base64)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            self._verify(options)
            return
        start, end = (self._date(options, name) for name in ("start", "end"))
        if not options["output"]:
            raise CommandError("--output FILE.zip is required")
        try:
            start, end = period_validate(start, end)
        except PeriodError as exc:
            raise CommandError(str(exc)) from None
        output = Path(options["output"])

        def progress(percent: int, step: str) -> None:
            self.stderr.write(f"{percent:3d}% {step}")

        data = bundle_bytes(start, end, generated_by=options["operator"], progress=progress)
        try:
            write_atomically(output, data)
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc}") from None
        digest = record_generated(
            start=start,
            end=end,
            data=data,
            where=str(output),
            channel="cli",
            actor_name=options["operator"],
        )
        self.stdout.write(f"wrote {output} ({len(data)} bytes, sha256 {digest})")

    def _date(self, options: dict[str, Any], name: str) -> Any:
        text = options[name]
        if not text:
            raise CommandError(f"--{name} YYYY-MM-DD is required")
        day = parse_date(text) if len(text) == 10 else None
        if day is None:
            raise CommandError(f"--{name}: {text!r} is not a date (YYYY-MM-DD)")
        return day

    def _verify(self, options: dict[str, Any]) -> None:
        if not options["file"]:
            raise CommandError("usage: evidence_report verify FILE.zip")
        if options["public_key"] is not None and not options["public_key"].strip():
            raise CommandError("--public-key is empty: give the key to trust, or leave it out")
        problems = verify(Path(options["file"]), public_key=options["public_key"])
        if problems:
            for problem in problems:
                self.stdout.write(f"  - {problem}")
            self.stdout.write(self.style.ERROR("NOT VERIFIED"))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS("verified: every file matches the signed manifest"))

"""`manage.py approvals`: list, show and review approval requests from a shell.

    approvals list [--pending] [--format table|json]
    approvals show ID [--format table|json]
    approvals review ID --as USER (--approve|--reject) [--comment TEXT]

Exit codes: 0 done (a review was accepted), 1 refused (the reason is printed), 2 usage.
A review from the shell is trusted as a fresh sign-in: whoever runs it holds the server.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser, ArgumentTypeError
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from approvals.models import ApprovalRequest, Review
from approvals.services import ReviewRefused, plain_text, request_review
from approvals.summary import request_summary
from governance.services.caller import Caller
from governance.services.values import printable

EXIT = {"ok": 0, "refused": 1, "usage": 2}


def _positive(value: str) -> int:
    """--limit: a whole number from 1 (0 or -5 is a mistake, not "one row")."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ArgumentTypeError(f"the limit must be a whole number of at least 1, not {value!r}")
    return number


class Command(BaseCommand):
    help = "List, show and review approval requests."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        assert isinstance(parser, CommandParser)
        listing = sub.add_parser("list", help="Requests, newest first.")
        listing.add_argument("--pending", action="store_true", help="Only pending requests.")
        listing.add_argument("--limit", type=_positive, default=50, help="At most this many.")
        listing.add_argument("--format", choices=["table", "json"], default="table")
        show = sub.add_parser("show", help="One request, with its statement and reviews.")
        show.add_argument("id", type=int)
        show.add_argument("--format", choices=["table", "json"], default="table")
        review = sub.add_parser("review", help="Approve or reject a request as a user.")
        review.add_argument("id", type=int)
        review.add_argument("--as", dest="username", required=True)
        verdict = review.add_mutually_exclusive_group(required=True)
        verdict.add_argument("--approve", action="store_true")
        verdict.add_argument("--reject", action="store_true")
        review.add_argument("--comment", default="")

    def _say(self, text: str) -> None:
        self.stdout.write(printable(text))

    def handle(self, *args: Any, **options: Any) -> None:
        code = getattr(self, f"_{options['action']}")(options)
        if code:
            sys.exit(code)

    def _list(self, options: dict[str, Any]) -> int:
        requests = ApprovalRequest.objects.select_related(
            "run", "connection", "requester", "column__table"
        ).prefetch_related("reviews__reviewer")
        if options["pending"]:
            requests = requests.filter(status=ApprovalRequest.Status.PENDING)
        rows = [request_summary(r) for r in requests[: options["limit"]]]
        if options["format"] == "json":
            self.stdout.write(json.dumps(rows))
            return EXIT["ok"]
        if not rows:
            self._say("No approval requests." if not options["pending"] else "Nothing pending.")
            return EXIT["ok"]
        self._say(f"{'ID':>6}  {'STATUS':<9} {'RISK':<8} {'APPROVALS':<9} {'REQUESTER':<14} WHAT")
        for r in rows:
            self._say(
                f"{r['id']:>6}  {r['status']:<9} {r['risk']:<8} "
                f"{r['approvals']}/{r['required']:<7} "
                f"{(r['requester'] + ('*' if r['agent_for'] else ''))[:14]:<14} {r['title']}"
                + (f": {r['statement']}" if r["statement"] else "")
            )
        if any(r["agent_for"] for r in rows):
            self._say("* an AI agent: `approvals show ID` names the person it acts for")
        return EXIT["ok"]

    def _show(self, options: dict[str, Any]) -> int:
        request = ApprovalRequest.objects.filter(pk=options["id"]).first()
        if request is None:
            self.stderr.write(f"error: no approval request #{options['id']}")
            return EXIT["usage"]
        data = request_summary(request, full=True)
        if options["format"] == "json":
            self.stdout.write(json.dumps(data, default=str))
            return EXIT["ok"]
        if data["agent_for"]:
            owner = data["agent_for"]
            data["requester"] += f" (an AI agent acting for {owner}, who cannot approve)"
        for key in (
            "id",
            "kind",
            "status",
            "risk",
            "connection",
            "requester",
            "created_at",
            "expires_at",
            "purpose",
        ):
            self._say(f"{key + ':':<12} {data[key]}")
        self._say(
            f"{'approvals:':<12} {data['approvals']} of {data['required']} "
            f"(from {', '.join(data['approver_groups'])})"
        )
        if data.get("sql"):
            self._say(f"sql:\n  {data['sql']}")
        if data.get("runs") and data["runs"] != [data.get("sql")]:
            self._say("runs as:\n" + "\n".join(f"  {s}" for s in data["runs"]))
        for review in data["reviews"]:
            comment = f": {review['comment']}" if review["comment"] else ""
            said = Review.Verdict.said(review["verdict"])
            self._say(f"  {said} by {review['reviewer']}{comment}")
        return EXIT["ok"]

    def _review(self, options: dict[str, Any]) -> int:
        user = get_user_model().objects.filter(username=options["username"], is_active=True)
        if not plain_text(options["username"]) or not user.exists():
            self.stderr.write(f"error: no active user {options['username']!r}")
            return EXIT["usage"]
        try:
            request = request_review(
                caller=Caller(user=user.get(), channel="cli"),
                request_id=options["id"],
                approve=bool(options["approve"]),
                comment=options["comment"],
                reauthenticated=True,
            )
        except ReviewRefused as exc:
            self.stderr.write(f"refused: {exc}")
            return EXIT["refused"]
        request.refresh_from_db()
        verdict = "approved" if options["approve"] else "rejected"
        self._say(f"{verdict} request #{request.pk}; it is now {request.status}")
        return EXIT["ok"]

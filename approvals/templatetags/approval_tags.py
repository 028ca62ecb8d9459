"""Template filters of the approval pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template

from approvals.services import counted_approvals
from approvals.summary import STATEMENT_LINE_CHARS, reauthentication_subject, statement_line
from governance.services.values import printable

register = template.Library()


@register.filter
def duration(value: Any) -> Any:
    """A timedelta in words, to the minute: "2 hours", "1 day 4 hours" (not "1 day, 4:00:00")."""
    if not isinstance(value, dt.timedelta):
        return value
    minutes = round(value.total_seconds() / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [
        f"{n} {unit}{'' if n == 1 else 's'}"
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if n
    ]
    return " ".join(parts) or "0 minutes"


@register.filter
def counted(request: Any) -> int:
    """How many of a request's approvals still count (their authors may still approve)."""
    return len(counted_approvals(request))


@register.filter
def reveal(value: Any) -> str:
    """Text a requester wrote, with control and bidi/invisible characters shown as escapes."""
    return printable(str(value))


@register.filter(name="statement_line")
def statement_line_filter(value: Any, limit: int = STATEMENT_LINE_CHARS) -> str:
    """A statement on one line, cut to `limit` characters (its full text goes in a title)."""
    return statement_line(str(value), int(limit))


@register.simple_tag(takes_context=True)
def reauth_subject(context: Any) -> dict[str, Any] | None:
    """On a re-authentication page: the approval request it confirms a review of, if any."""
    request = context.get("request")
    return reauthentication_subject(request) if request is not None else None

"""The auditor's filters on the trail, shared by the page, its exports and the evidence views.

Every value comes from the query string, so every one is validated: a bad date, run id or kind
is a message on the page, never a 500 and never an unfiltered answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from audit.kinds import FAMILIES, EventKind, stored_names
from audit.models import AuditEvent

FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(9998, 12, 31)  # a day after must exist

DECISIONS = [
    ("", "Any decision"),
    ("allow", "Allowed"),
    ("require_approval", "Held for approval"),
    ("deny", "Denied"),
]


def kind_choices() -> list[tuple[str, Any]]:
    """The registry as grouped options: each family ('auth.') and then its kinds."""
    choices: list[tuple[str, Any]] = [("", "All events")]
    for family, label in FAMILIES.items():
        members = [(f"{family}.", f"All: {label.lower()}")]
        members += [(k.value, str(k.label)) for k in EventKind if k.startswith(f"{family}.")]
        choices.append((label, members))
    return choices


class _Text(forms.CharField):
    def to_python(self, value: Any) -> str:
        return str(super().to_python(value) or "").replace("\x00", "").strip()


class TrailFilter(forms.Form):
    start = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    actor = _Text(required=False, max_length=150, label="Actor contains")
    connection = _Text(required=False, max_length=100)
    run = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, label="Run")
    decision = forms.ChoiceField(required=False, choices=DECISIONS)
    rule = _Text(required=False, max_length=200, label="Rule")
    channel = forms.ChoiceField(
        required=False, choices=[("", "Any channel"), *AuditEvent.Channel.choices]
    )
    kind = forms.ChoiceField(
        required=False,
        label="Event",
        error_messages={"invalid_choice": "Unknown event kind: choose one from the list."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind = self.fields["kind"]
        assert isinstance(kind, forms.ChoiceField)
        kind.choices = kind_choices()
        self.fields["run"].widget.attrs["inputmode"] = "numeric"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        for name in ("start", "end"):
            day = data.get(name)
            if day is not None and not FIRST_DAY <= day <= LAST_DAY:
                self.add_error(name, "Choose a date between 1970 and 9998.")
                data[name] = None
        if start and end and start > end:
            self.add_error("end", "The end date is before the start date.")
        return data

    def active(self) -> dict[str, str]:
        """The filters in use, as given (for links, exports and the audit of searches)."""
        if not self.is_valid():
            return {}
        return {
            name: value.isoformat() if isinstance(value, dt.date) else str(value)
            for name, value in self.cleaned_data.items()
            if value not in (None, "")
        }

    def events(self) -> QuerySet[AuditEvent]:
        """The filtered trail, newest first; nothing at all while a filter is invalid."""
        if not self.is_valid():
            return AuditEvent.objects.none()
        return trail_filter(AuditEvent.objects.all(), **self.cleaned_data)


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def trail_filter(
    events: QuerySet[AuditEvent],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    actor: str = "",
    connection: str = "",
    run: int | None = None,
    decision: str = "",
    rule: str = "",
    channel: str = "",
    kind: str = "",
) -> QuerySet[AuditEvent]:
    """Dates are whole days in the display time zone, both ends included."""
    if start:
        events = events.filter(created_at__gte=_day_start(start))
    if end:
        events = events.filter(created_at__lt=_day_start(end + dt.timedelta(days=1)))
    if actor:
        events = events.filter(actor_name__icontains=actor)
    if connection:
        events = events.filter(connection_name__iexact=connection)
    if run:
        events = events.filter(run_id=run)
    if decision:
        events = events.filter(decision=decision)
    if rule:
        events = events.filter(rule=rule)
    if channel:
        events = events.filter(channel=channel)
    if kind in EventKind.values:  # with the older names its rows were stored under
        events = events.filter(kind__in=stored_names(EventKind(kind)))
    elif kind.endswith(".") and kind[:-1] in FAMILIES:
        events = events.filter(kind__startswith=kind)
    return events

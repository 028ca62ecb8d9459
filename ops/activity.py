"""What the activity dashboard shows, read from the audit trail (and, for approvals, from the
approval requests): who touched what, through which channel, and how it was decided.

The figures come from the same events the trail shows, so every chart's link opens exactly the
events behind it (the trail's filters: kind, channel, decision, rule, actor, days).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDay, TruncHour
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest
from audit.kinds import EventKind
from audit.models import AuditEvent, ColumnAccess
from governance.models import Agent
from ops import charts

CHANNELS = {
    "web": "#3b5bdb",
    "cli": "#f08c00",
    "api": "#0ca678",
    "mcp": "#ae3ec9",
    "proxy": "#e8590c",
}
DECISIONS = {"allow": "#2f9e44", "require_approval": "#f08c00", "deny": "#e03131"}
DECISION_LABELS = {"allow": "allowed", "require_approval": "held", "deny": "denied"}


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    span: dt.timedelta
    hourly: bool


PERIODS = {
    "24h": Period("24h", "Last 24 hours", dt.timedelta(hours=24), hourly=True),
    "7d": Period("7d", "Last 7 days", dt.timedelta(days=7), hourly=False),
    "30d": Period("30d", "Last 30 days", dt.timedelta(days=30), hourly=False),
}
DEFAULT_PERIOD = "7d"


def _buckets(period: Period, now: dt.datetime) -> list[dt.datetime]:
    local = timezone.localtime(now)
    if period.hourly:
        last = local.replace(minute=0, second=0, microsecond=0)
        return [last - dt.timedelta(hours=h) for h in range(23, -1, -1)]
    last = local.replace(hour=0, minute=0, second=0, microsecond=0)
    days = period.span.days
    return [last - dt.timedelta(days=d) for d in range(days - 1, -1, -1)]


def trail_link(**filters: Any) -> str:
    """A link to the audit trail with these filters (dates as whole days)."""
    query = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in filters.items() if v}
    return f"{reverse('audit_events')}?{urlencode(query)}"


def _submitted(since: dt.datetime) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(kind=EventKind.QUERY_SUBMITTED, created_at__gte=since)


def _over_time(
    period: Period, now: dt.datetime, by: str, colors: dict[str, str], labels: dict[str, str]
) -> charts.Columns:
    buckets = _buckets(period, now)
    trunc = TruncHour if period.hourly else TruncDay
    rows = (
        _submitted(buckets[0])
        .annotate(bucket=trunc("created_at", tzinfo=timezone.get_current_timezone()))
        .values_list("bucket", by)
        .annotate(n=Count("id"))
    )
    counts: dict[dt.datetime, dict[str, int]] = defaultdict(dict)
    for bucket, value, n in rows:
        counts[timezone.localtime(bucket)][value] = n
    data = []
    for start in buckets:
        day = start.date()
        label = start.strftime("%H:00") if period.hourly else start.strftime("%m-%d")
        prefix = start.strftime("%Y-%m-%d %H:00") if period.hourly else day.isoformat()
        found = counts.get(start, {})
        data.append(
            (
                label,
                {labels.get(k, k): v for k, v in found.items() if k in colors},
                {
                    labels.get(k, k): trail_link(
                        kind=EventKind.QUERY_SUBMITTED.value, start=day, end=day, **{by: k}
                    )
                    for k in colors
                },
                prefix,
            )
        )
    shown = {labels.get(k, k): c for k, c in colors.items()}
    every = 3 if period.hourly else (1 if len(buckets) <= 7 else 3)
    return charts.stacked_columns(data, shown, label_every=every)


def _by_rule(since: dt.datetime) -> charts.Bars:
    rows = (
        _submitted(since)
        .filter(decision__in=["require_approval", "deny"])
        .values_list("rule", "decision")
        .annotate(n=Count("id"))
        .order_by("-n", "rule")[:12]
    )
    day = since.date()
    return charts.horizontal_bars(
        [
            (
                f"{rule or '(no rule)'} · {DECISION_LABELS[decision]}",
                n,
                trail_link(
                    kind=EventKind.QUERY_SUBMITTED.value, decision=decision, rule=rule, start=day
                ),
                DECISIONS[decision],
            )
            for rule, decision, n in rows
        ],
        label_width=260,
    )


def _identities(since: dt.datetime) -> tuple[charts.Bars, charts.Bars]:
    agent_ids = set(Agent.objects.values_list("user_id", flat=True))
    rows = (
        _submitted(since)
        .exclude(actor_id=None)
        .values_list("actor_id", "actor_name")
        .annotate(n=Count("id"))
        .order_by("-n", "actor_name")[:200]
    )
    people: list[tuple[str, int, str, str]] = []
    agents: list[tuple[str, int, str, str]] = []
    day = since.date()
    for actor_id, name, n in rows:
        target = agents if actor_id in agent_ids else people
        if len(target) < 10:
            link = trail_link(kind=EventKind.QUERY_SUBMITTED.value, actor=name, start=day)
            target.append((name, n, link, "#ae3ec9" if target is agents else "#3b5bdb"))
    return charts.horizontal_bars(people), charts.horizontal_bars(agents)


def _columns(period: Period, now: dt.datetime) -> charts.Heatmap:
    days = [b.date() for b in _buckets(PERIODS["7d"] if period.hourly else period, now)]
    since = timezone.make_aware(dt.datetime.combine(days[0], dt.time.min))
    accesses = ColumnAccess.objects.filter(created_at__gte=since, how__in=["masked", "unmasked"])
    top = (
        accesses.values_list("connection_name", "table", "column")
        .annotate(n=Count("id"))
        .order_by("-n", "connection_name", "table", "column")[:15]
    )
    wanted = {(c, t, col) for c, t, col, _ in top}
    grid: dict[tuple[str, str, str], dict[str, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    rows = (
        accesses.filter(
            Q(*[Q(connection_name=c, table=t, column=col) for c, t, col in wanted], _connector="OR")
        )
        .annotate(day=TruncDay("created_at", tzinfo=timezone.get_current_timezone()))
        .values_list("connection_name", "table", "column", "day", "how")
        .annotate(n=Count("id"))
        if wanted
        else []
    )
    for connection, table, column, day, how, n in rows:
        cell = grid[(connection, table, column)][timezone.localtime(day).date().isoformat()]
        cell[0] += n
        if how == "unmasked":
            cell[1] += n
    return charts.heatmap(
        [
            (
                f"{c}: {t}.{col}",
                reverse("access_column", args=[c, t, col]),
                {day: (v[0], v[1]) for day, v in grid[(c, t, col)].items()},
            )
            for c, t, col, _ in top
        ],
        [d.isoformat() for d in days],
    )


def _exemptions(since: dt.datetime) -> list[dict[str, Any]]:
    rows = (
        ColumnAccess.objects.filter(created_at__gte=since, how="unmasked")
        .values("connection_name", "table", "column", "exemption")
        .annotate(n=Count("id"), people=Count("actor_id", distinct=True))
        .order_by("-n")[:20]
    )
    return [
        {
            **row,
            "href": reverse(
                "access_column", args=[row["connection_name"], row["table"], row["column"]]
            ),
        }
        for row in rows
    ]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _approvals(since: dt.datetime, now: dt.datetime) -> dict[str, Any]:
    decided = ApprovalRequest.objects.filter(decided_at__gte=since).exclude(
        status=ApprovalRequest.Status.WITHDRAWN
    )
    waits = sorted(
        (decided_at - created_at).total_seconds()
        for created_at, decided_at in decided.values_list("created_at", "decided_at")[:20_000]
        if decided_at is not None
    )
    pending = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING)
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    return {
        "decided": len(waits),
        "median": _percentile(waits, 0.5),
        "p90": _percentile(waits, 0.9),
        "waiting": pending.count(),
        "oldest": (now - oldest).total_seconds() if oldest else None,
        "by_status": dict(
            decided.values_list("status").annotate(n=Count("id")).values_list("status", "n")
        ),
    }


def dashboard(period: Period, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    since = now - period.span
    people, agents = _identities(since)
    totals = dict(
        _submitted(since)
        .values_list("decision")
        .annotate(n=Count("id"))
        .values_list("decision", "n")
    )
    return {
        "totals": {DECISION_LABELS.get(k, k): v for k, v in totals.items()},
        "total": sum(totals.values()),
        "by_channel": _over_time(period, now, "channel", CHANNELS, {}),
        "by_decision": _over_time(period, now, "decision", DECISIONS, DECISION_LABELS),
        "channel_colors": CHANNELS,
        "decision_colors": {DECISION_LABELS[k]: c for k, c in DECISIONS.items()},
        "by_rule": _by_rule(since),
        "people": people,
        "agents": agents,
        "columns": _columns(period, now),
        "exemptions": _exemptions(since),
        "approvals": _approvals(since, now),
        "since_day": since.date(),
    }

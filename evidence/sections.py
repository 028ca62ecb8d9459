"""What an evidence report says, section by section, each naming the controls it evidences.

Every section is one table (the CSV, the JSON and the PDF show the same rows). Most of it is
read from the audit trail, the tamper-evident record; the access review and the masking
coverage also read the current configuration and wind it back to the end of the period with
the trail's own account of what changed since.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals.models import ApprovalRequest, Review
from audit.chain import mac_matches
from audit.keys import key_id, mac_key, public_key_text, retired_keys
from audit.kinds import EventKind, kind_label
from audit.models import AuditCheckpoint, AuditEvent
from audit.verify import verify
from governance.models import (
    AccessGrant,
    Agent,
    CatalogColumn,
    MaskingRule,
    QueryRun,
    UnmaskExemption,
)

PRIVILEGED_CATEGORIES = frozenset({"write", "ddl", "admin", "privilege", "code", "file"})
HIGH_RISK = frozenset({"high", "critical"})


@dataclass
class Section:
    key: str
    title: str
    soc2: tuple[str, ...]
    nist: tuple[str, ...]
    description: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def controls(self) -> str:
        return "SOC 2 " + ", ".join(self.soc2) + " · NIST SP 800-53 " + ", ".join(self.nist)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "controls": {"soc2": list(self.soc2), "nist_800_53": list(self.nist)},
            "description": self.description,
            "columns": list(self.columns),
            "rows": self.rows,
            "notes": self.notes,
        }


@dataclass
class Evidence:
    start: dt.date
    end: dt.date
    generated_at: dt.datetime
    generated_by: str
    public_key: str
    sections: list[Section]

    @property
    def period(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "generated_by": self.generated_by,
            "audit_public_key": self.public_key,
            "audit_key_id": key_id(self.public_key),
            "sections": [s.as_dict() for s in self.sections],
        }


def bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The period as instants: from the start of `start` to the end of `end`, in the display
    time zone."""
    first = timezone.make_aware(dt.datetime.combine(start, dt.time.min))
    after = timezone.make_aware(dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min))
    return first, after


def _when(moment: dt.datetime | None) -> str:
    return timezone.localtime(moment).isoformat(timespec="seconds") if moment else ""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _detail(value: Any, limit: int = 400) -> str:
    import json

    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


Progress = Callable[[int, str], None]


def collect(
    start: dt.date, end: dt.date, *, generated_by: str = "", progress: Progress | None = None
) -> Evidence:
    report = progress or (lambda _percent, _step: None)
    first, after = bounds(start, end)
    events = AuditEvent.objects.filter(created_at__gte=first, created_at__lt=after)
    builders: list[tuple[str, Callable[[], Section]]] = [
        ("Summarising the trail", lambda: _summary(events)),
        ("Reviewing access as of the period end", lambda: _access_review(after)),
        ("Access changes", lambda: _access_changes(events)),
        ("Privileged operations", lambda: _privileged(first, after)),
        ("Denied and held attempts", lambda: _denied_held(events)),
        ("Configuration changes", lambda: _changes(events)),
        ("Masking coverage", _masking_coverage),
        ("Unmask exemptions", lambda: _exemptions(first, after, events)),
        ("Authentication", lambda: _authentication(events)),
        ("Verifying the trail", lambda: _integrity(first, after)),
    ]
    sections: list[Section] = []
    total = len(builders) + 1
    for index, (step, build) in enumerate(builders):
        report(int(100 * index / total), step)
        sections.append(build())
    report(int(100 * len(builders) / total), "Exceptions")
    integrity = next(s for s in sections if s.key == "integrity")
    sections.append(_exceptions(first, after, integrity))
    return Evidence(
        start=start,
        end=end,
        generated_at=timezone.now(),
        generated_by=generated_by,
        public_key=public_key_text(),
        sections=sections,
    )


# ---------------------------------------------------------------- sections


def _summary(events: QuerySet[AuditEvent]) -> Section:
    section = Section(
        "summary",
        "Recorded activity",
        ("CC7.2",),
        ("AU-2", "AU-3", "AU-12"),
        "Every kind of event the audit trail recorded in the period, with its count: what "
        "Warden audits (statements, decisions, approvals, sign-ins, account, role, access and "
        "configuration changes), each event with its time, actor, channel and source.",
        ("kind", "label", "events"),
    )
    counts = Counter(events.values_list("kind", flat=True).iterator())
    for kind, n in sorted(counts.items()):
        section.rows.append({"kind": kind, "label": kind_label(kind), "events": n})
    section.notes.append(f"{sum(counts.values())} events in the period.")
    return section


def _roles_as_of(after: dt.datetime) -> dict[int, set[str]]:
    """Each user's roles at `after`: today's, with later membership changes undone."""
    User = get_user_model()
    roles: dict[int, set[str]] = defaultdict(set)
    for user_id, name in User.groups.through.objects.values_list("user_id", "group__name"):
        roles[user_id].add(name)
    later = AuditEvent.objects.filter(
        created_at__gte=after,
        kind__in=[EventKind.ROLE_MEMBER_ADDED, EventKind.ROLE_MEMBER_REMOVED],
    ).order_by("-id")
    for event in later.iterator():
        user_id, role = event.detail.get("user_id"), event.detail.get("role")
        if not isinstance(user_id, int) or not isinstance(role, str):
            continue
        if event.kind == EventKind.ROLE_MEMBER_ADDED:
            roles[user_id].discard(role)
        else:
            roles[user_id].add(role)
    return roles


def _access_review(after: dt.datetime) -> Section:
    section = Section(
        "access_review",
        "Access review as of the period end",
        ("CC6.1", "CC6.2", "CC6.3"),
        ("AC-2", "AC-3", "AC-6"),
        "Every identity that existed at the end of the period, whether it was active, a "
        "superuser or enrolled in a second factor, its roles, and the capabilities it held on "
        "each connection (through a role or directly), with expiry. Roles are today's wound "
        "back with the role changes the trail recorded after the period.",
        (
            "user",
            "active",
            "superuser",
            "second_factor",
            "roles",
            "connection",
            "capabilities",
            "through",
            "expires_at",
        ),
    )
    User = get_user_model()
    roles = _roles_as_of(after)
    with_mfa = set(Authenticator.objects.values_list("user_id", flat=True))
    grants = list(
        AccessGrant.objects.filter(created_at__lt=after).select_related(
            "connection", "user", "group"
        )
    )
    by_group: dict[str, list[AccessGrant]] = defaultdict(list)
    by_user: dict[int, list[AccessGrant]] = defaultdict(list)
    for grant in grants:
        if grant.group_id is not None and grant.group is not None:
            by_group[grant.group.name].append(grant)
        elif grant.user_id is not None:
            by_user[grant.user_id].append(grant)
    for user in User.objects.filter(date_joined__lt=after).order_by("username"):
        user_roles = sorted(roles.get(user.pk, set()))
        base = {
            "user": user.get_username(),
            "active": user.is_active,
            "superuser": user.is_superuser,
            "second_factor": user.pk in with_mfa,
            "roles": ", ".join(user_roles),
        }
        held: list[tuple[AccessGrant, str]] = [(g, "direct") for g in by_user.get(user.pk, [])]
        for role in user_roles:
            held += [(g, f"role {role}") for g in by_group.get(role, [])]
        if not held:
            section.rows.append(
                {**base, "connection": "", "capabilities": "", "through": "", "expires_at": ""}
            )
        for grant, through in sorted(held, key=lambda h: (h[0].connection.name, h[1])):
            section.rows.append(
                {
                    **base,
                    "connection": grant.connection.name,
                    "capabilities": ", ".join(grant.capabilities),
                    "through": through,
                    "expires_at": _when(grant.expires_at),
                }
            )
    revoked_later = AuditEvent.objects.filter(created_at__gte=after, kind=EventKind.GRANT_REVOKED)
    if revoked_later.exists():
        section.notes.append(
            f"{revoked_later.count()} grant(s) revoked after the period are not listed: see the "
            "access changes of the following period."
        )
    return section


def _event_rows(events: Iterable[AuditEvent], subject: str = "user") -> list[dict[str, Any]]:
    return [
        {
            "time": _when(e.created_at),
            "event": e.kind,
            "label": kind_label(e.kind),
            "by": e.actor_name,
            "channel": e.channel,
            "concerns": str(e.detail.get(subject) or e.detail.get("grantee") or e.connection_name),
            "detail": _detail(e.detail),
            "event_id": e.pk,
        }
        for e in events
    ]


EVENT_COLUMNS = ("time", "event", "label", "by", "channel", "concerns", "detail", "event_id")


def _access_changes(events: QuerySet[AuditEvent]) -> Section:
    section = Section(
        "access_changes",
        "Changes to identities and access during the period",
        ("CC6.2", "CC6.3"),
        ("AC-2", "AC-6"),
        "Accounts created, deactivated, made superuser; role membership changes (including by "
        "the identity provider and Django admin); access grants and time-boxed access; unmask "
        "exemptions granted and revoked; second factors enrolled and removed; changes made "
        "outside Warden that the identity watch found.",
        EVENT_COLUMNS,
    )
    changed = events.filter(
        Q(kind__startswith="user.")
        | Q(kind__startswith="role.")
        | Q(kind__startswith="grant.")
        | Q(kind__startswith="access.")
        | Q(kind__startswith="mfa.")
        | Q(kind=EventKind.IDENTITY_UNRECORDED)
        | Q(kind__in=[EventKind.UNMASK_GRANTED, EventKind.UNMASK_REVOKED, EventKind.UNMASK_EXPIRED])
    ).order_by("id")
    section.rows = _event_rows(changed.iterator())
    return section


def _approvers(request: ApprovalRequest | None) -> str:
    if request is None:
        return ""
    return ", ".join(
        f"{r.reviewer.get_username() if r.reviewer else '?'} {_when(r.created_at)}"
        for r in request.reviews.all()
        if r.verdict == Review.Verdict.APPROVE
    )


def _privileged(first: dt.datetime, after: dt.datetime) -> Section:
    section = Section(
        "privileged",
        "Privileged and high-risk operations",
        ("CC6.1", "CC8.1"),
        ("AC-6", "CM-3", "AU-12"),
        "Every statement submitted in the period that changes data, schema, code, privileges "
        "or files, or that the engine rated high or critical risk: who asked, who approved and "
        "when, what ran (by SHA-256 of its text) and how it ended.",
        (
            "run",
            "submitted_at",
            "requester",
            "channel",
            "connection",
            "categories",
            "risk",
            "decision",
            "sql_sha256",
            "approvers",
            "status",
            "finished_at",
        ),
    )
    runs = (
        QueryRun.objects.filter(created_at__gte=first, created_at__lt=after)
        .select_related("user", "connection", "approval")
        .prefetch_related("approval__reviews__reviewer")
        .order_by("id")
    )
    for run in runs.iterator(chunk_size=500):
        categories = {s.get("category", "") for s in run.statement_summaries}
        if not (categories & PRIVILEGED_CATEGORIES or run.risk in HIGH_RISK):
            continue
        section.rows.append(
            {
                "run": run.pk,
                "submitted_at": _when(run.created_at),
                "requester": run.user.get_username(),
                "channel": run.channel,
                "connection": run.connection.name,
                "categories": ", ".join(sorted(c for c in categories if c)),
                "risk": run.risk,
                "decision": run.decision,
                "sql_sha256": _sha(run.sql),
                "approvers": _approvers(getattr(run, "approval", None)),
                "status": run.status,
                "finished_at": _when(run.finished_at),
            }
        )
    return section


def _denied_held(events: QuerySet[AuditEvent]) -> Section:
    section = Section(
        "denied_held",
        "Denied and held attempts",
        ("CC6.1", "CC7.2"),
        ("AC-3", "AU-6"),
        "Statements that were denied or held for approval, with the rule that decided. The "
        "notes count them by rule.",
        ("time", "actor", "channel", "connection", "decision", "rule", "sql_sha256", "run"),
    )
    attempts = events.filter(
        kind=EventKind.QUERY_SUBMITTED, decision__in=["deny", "require_approval"]
    ).order_by("id")
    by_rule: Counter[tuple[str, str]] = Counter()
    for event in attempts.iterator():
        by_rule[(event.decision, event.rule or "(none)")] += 1
        section.rows.append(
            {
                "time": _when(event.created_at),
                "actor": event.actor_name,
                "channel": event.channel,
                "connection": event.connection_name,
                "decision": event.decision,
                "rule": event.rule,
                "sql_sha256": _sha(event.sql),
                "run": event.run_id,
            }
        )
    for (decision, rule), n in sorted(by_rule.items(), key=lambda item: -item[1]):
        section.notes.append(f"{decision} by {rule}: {n}")
    return section


CONFIG_FAMILIES = ("connection.", "guardrail.", "approval_policy.", "masking.", "catalog.")


def _changes(events: QuerySet[AuditEvent]) -> Section:
    section = Section(
        "changes",
        "Guardrail, policy, masking-rule and connection changes",
        ("CC8.1",),
        ("CM-3", "AU-12"),
        "Every change to connections, guardrails, approval policies, masking rules and the "
        "catalog's classification, and every key rotation, with the change itself (its before "
        "and after as recorded).",
        EVENT_COLUMNS,
    )
    query = Q(kind__in=[EventKind.KEYS_ROTATED, EventKind.AUDIT_KEY_ROTATED])
    for family in CONFIG_FAMILIES:
        query |= Q(kind__startswith=family)
    changed = events.filter(query).exclude(kind=EventKind.CONNECTION_TESTED).order_by("id")
    section.rows = _event_rows(changed.iterator(), subject="name")
    return section


def _masking_coverage() -> Section:
    section = Section(
        "masking_coverage",
        "Masking coverage",
        ("CC6.1",),
        ("AC-3", "AC-6"),
        "Every column discovery or an admin classified as sensitive, and how it is masked "
        "inside the database (its own strategy, or its semantic type's rule). A free-text "
        "column is scanned for values instead. Columns classified but not masked would show "
        "here as 'not masked'.",
        (
            "connection",
            "table",
            "column",
            "semantic_type",
            "sensitivity",
            "source",
            "masking",
        ),
    )
    rules = dict(MaskingRule.objects.values_list("semantic_type", "strategy"))
    columns = (
        CatalogColumn.objects.exclude(semantic_type="")
        .select_related("table__connection")
        .order_by("table__connection__name", "table__name", "position")
    )
    discovered = masked = 0
    for column in columns.iterator():
        discovered += 1
        strategy = column.strategy or rules.get(column.semantic_type, "")
        how = "free text: values scanned" if column.free_text else strategy or "not masked"
        masked += how != "not masked"
        section.rows.append(
            {
                "connection": column.table.connection.name,
                "table": column.table.qualified_name,
                "column": column.name,
                "semantic_type": column.semantic_type,
                "sensitivity": column.sensitivity,
                "source": column.source,
                "masking": how,
            }
        )
    section.notes.append(f"{discovered} sensitive columns, {masked} masked or scanned.")
    return section


def _exemptions(first: dt.datetime, after: dt.datetime, events: QuerySet[AuditEvent]) -> Section:
    section = Section(
        "exemptions",
        "Unmask exemptions and each use",
        ("CC6.1", "CC6.3"),
        ("AC-3", "AC-6"),
        "Every unmask exemption in force during the period (who may read which column as "
        "stored, why, until when) and how many statements used it in the period.",
        ("exemption", "column", "grantee", "reason", "created_at", "expires_at", "uses"),
    )
    uses = Counter(
        e.get("exemption")
        for e in events.filter(kind=EventKind.UNMASK_USED).values_list("detail", flat=True)
    )
    exemptions = (
        UnmaskExemption.objects.filter(created_at__lt=after, expires_at__gte=first)
        .select_related("column__table__connection", "user", "group")
        .order_by("id")
    )
    for exemption in exemptions:
        section.rows.append(
            {
                "exemption": exemption.pk,
                "column": f"{exemption.column.table.connection.name}: {exemption.column}",
                "grantee": str(exemption.user or exemption.group),
                "reason": exemption.reason,
                "created_at": _when(exemption.created_at),
                "expires_at": _when(exemption.expires_at),
                "uses": uses.get(exemption.pk, 0),
            }
        )
    return section


def _authentication(events: QuerySet[AuditEvent]) -> Section:
    section = Section(
        "authentication",
        "Authentication",
        ("CC6.1", "CC6.2"),
        ("IA-2", "AC-2"),
        "Per identity: sign-ins, failed sign-ins, lockouts after repeated failures, "
        "re-authentications, and whether a second factor is enrolled now. Failed attempts for "
        "names that are no account are listed under those names.",
        (
            "user",
            "account",
            "active",
            "second_factor",
            "sign_ins",
            "failures",
            "lockouts",
            "reauthentications",
            "last_sign_in",
        ),
    )
    User = get_user_model()
    users = {u.get_username(): u for u in User.objects.all()}
    with_mfa = set(Authenticator.objects.values_list("user_id", flat=True))
    stats: dict[str, Counter[str]] = defaultdict(Counter)
    last: dict[str, dt.datetime] = {}
    auth = events.filter(
        kind__in=[
            EventKind.AUTH_LOGIN,
            EventKind.AUTH_LOGIN_FAILED,
            EventKind.AUTH_LOGIN_THROTTLED,
            EventKind.AUTH_REAUTHENTICATED,
        ]
    ).values_list("kind", "actor_name", "created_at", "detail")
    for kind, name, at, detail in auth.iterator():
        who = name
        if kind == EventKind.AUTH_REAUTHENTICATED and isinstance(detail, dict):
            who = str(detail.get("user") or name)
        stats[who][kind] += 1
        if kind == EventKind.AUTH_LOGIN:
            last[who] = max(last.get(who, at), at)
    for name in sorted(set(users) | set(stats)):
        user = users.get(name)
        counts = stats.get(name, Counter())
        section.rows.append(
            {
                "user": name,
                "account": "yes" if user else "no such account",
                "active": user.is_active if user else "",
                "second_factor": (user.pk in with_mfa) if user else "",
                "sign_ins": counts[EventKind.AUTH_LOGIN],
                "failures": counts[EventKind.AUTH_LOGIN_FAILED],
                "lockouts": counts[EventKind.AUTH_LOGIN_THROTTLED],
                "reauthentications": counts[EventKind.AUTH_REAUTHENTICATED],
                "last_sign_in": _when(last.get(name)),
            }
        )
    without = sorted(n for n, u in users.items() if u.is_active and u.pk not in with_mfa)
    section.notes.append(
        f"{len(without)} active account(s) without a second factor"
        + (f": {', '.join(without[:50])}" if without else ".")
    )
    return section


def _integrity(first: dt.datetime, after: dt.datetime) -> Section:
    section = Section(
        "integrity",
        "Audit trail integrity",
        ("CC7.2",),
        ("AU-9", "AU-10"),
        "The whole trail verified when this report was generated (every event's MAC, every "
        "link of the hash chain, every checkpoint's Ed25519 signature and its copy outside the "
        "database, the seal journal), and the signed checkpoints of the period with the head "
        "hash each pins.",
        ("checkpoint", "created_at", "last_event_id", "head_hash", "sealed_events", "key_id"),
    )
    result = verify()
    section.notes.append(
        ("Intact" if result.ok else f"BROKEN: first broken event {result.first_broken_id}")
        + f": {result.events} events checked, {result.sealed} sealed, {result.checkpoints} "
        f"checkpoints; head {result.head_id} {result.head_hash}."
    )
    section.notes += [f"Problem: {p.message}" for p in result.problems[:50]]
    section.notes += [f"Warning: {w}" for w in result.warnings]
    checkpoints = AuditCheckpoint.objects.filter(
        created_at__gte=first, created_at__lt=after
    ).order_by("id")
    for checkpoint in checkpoints.iterator():
        section.rows.append(
            {
                "checkpoint": checkpoint.pk,
                "created_at": _when(checkpoint.created_at),
                "last_event_id": checkpoint.last_event_id,
                "head_hash": checkpoint.head_hash,
                "sealed_events": checkpoint.sealed_events,
                "key_id": key_id(checkpoint.public_key),
            }
        )
    section.verify_report = result  # type: ignore[attr-defined]  # read by _exceptions
    return section


def _refused_before_running(runs: list[str], keys: list[bytes]) -> set[str]:
    """Of `runs` ("run N"), those the trail shows refused by the worker before they reached
    the target (a genuine outcome event saying so): no execution to count."""
    ids = [int(text.split()[-1]) for text in runs]
    outcomes = AuditEvent.objects.filter(
        kind__in=[EventKind.QUERY_SUCCEEDED, EventKind.QUERY_FAILED], run_id__in=ids
    )
    ran: set[int] = set()
    refused: set[int] = set()
    for event in outcomes:
        if event.run_id is None or not any(mac_matches(event, key) for key in keys):
            continue
        if (event.detail or {}).get("executed") is False:
            refused.add(event.run_id)
        else:
            ran.add(event.run_id)
    return {f"run {run_id}" for run_id in refused - ran}


def _executed_unapproved_by_the_trail(
    first: dt.datetime, after: dt.datetime, keys: list[bytes]
) -> list[str]:
    """Runs the trail itself shows held for approval and then executed without enough
    approvals, each fact from a genuine event (its MAC holds): rows of the run and request
    tables flipped by hand change none of it."""

    def genuine(event: AuditEvent) -> bool:
        return any(mac_matches(event, key) for key in keys)

    held: dict[int, int | None] = {
        event.run_id: event.actor_id
        for event in AuditEvent.objects.filter(
            kind=EventKind.QUERY_SUBMITTED,
            decision__in=["require_approval", "deny"],
            created_at__gte=first,
            created_at__lt=after,
            run_id__isnull=False,
        ).iterator(chunk_size=500)
        if event.run_id is not None and genuine(event)
    }
    executed: set[int] = {
        event.run_id
        for event in AuditEvent.objects.filter(
            kind__in=[EventKind.QUERY_SUCCEEDED, EventKind.QUERY_FAILED], run_id__in=list(held)
        )
        if event.run_id is not None
        and genuine(event)
        and (event.detail or {}).get("executed") is not False
    }
    requested: dict[int, tuple[Any, Any]] = {}
    for event in AuditEvent.objects.filter(
        kind=EventKind.APPROVAL_REQUESTED, run_id__in=list(executed)
    ):
        if event.run_id is not None and genuine(event) and isinstance(event.detail, dict):
            requested[event.run_id] = (event.detail.get("request"), event.detail.get("required"))
    approvers: dict[Any, set[int]] = defaultdict(set)
    for event in AuditEvent.objects.filter(
        kind=EventKind.APPROVAL_APPROVED,
        detail__request__in=[r for r, _ in requested.values() if isinstance(r, int)],
    ):
        if genuine(event):
            approvers[event.detail.get("request")].add(event.actor_id or 0)
    found = []
    for run_id in sorted(executed):
        request_id, required = requested.get(run_id, (None, None))
        needed = required if isinstance(required, int) and required > 0 else 1
        if request_id is None or len(approvers[request_id] - {held[run_id]}) < needed:
            found.append(f"run {run_id}")
    return found


def _exceptions(first: dt.datetime, after: dt.datetime, integrity: Section) -> Section:
    section = Section(
        "exceptions",
        "Exceptions",
        ("CC6.2", "CC6.3", "CC7.2", "CC8.1"),
        ("AC-2", "AC-6", "AU-6", "AU-9", "CM-3"),
        "Counts that should be zero, each with the runs or events behind a count that is not: "
        "self-approvals (an agent's owner approving it included), executions without the "
        "required approvals, executed statements whose hash differs from the approved one, "
        "approvals used after they expired, account, role "
        "or second-factor changes made outside Warden (found by the identity watch), and "
        "breaks in the audit chain.",
        ("check", "count", "expected", "evidence"),
    )
    requests = (
        ApprovalRequest.objects.filter(created_at__gte=first, created_at__lt=after)
        .select_related("run", "requester")
        .prefetch_related("reviews")
    )
    # Approvals as the trail attests them (an approval.approved event with a valid MAC), not
    # as review rows say: a row written into the table directly is not an approval.
    keys = [mac_key(), *retired_keys().values()]
    attested: dict[int, set[int]] = defaultdict(set)
    for event in AuditEvent.objects.filter(kind=EventKind.APPROVAL_APPROVED, created_at__gte=first):
        request_id = event.detail.get("request") if isinstance(event.detail, dict) else None
        if isinstance(request_id, int) and any(mac_matches(event, k) for k in keys):
            attested[request_id].add(event.actor_id or 0)
    self_approved: list[str] = []
    unapproved: list[str] = []
    mismatched: list[str] = []
    expired: list[str] = []
    executed = {QueryRun.Status.SUCCEEDED, QueryRun.Status.FAILED, QueryRun.Status.RUNNING}
    # An agent's owner is on its side: approving its request is a self-approval.
    owners = dict(Agent.objects.values_list("user_id", "owner_id"))
    for request in requests.iterator(chunk_size=200):
        approvals = [r for r in request.reviews.all() if r.verdict == Review.Verdict.APPROVE]
        owner = owners.get(request.requester_id)
        # An agent's approval (it can no longer give one) counts as a self-approval too.
        if any(r.reviewer_id in (request.requester_id, owner) or r.reviewer_id in owners
               for r in approvals):  # fmt: skip
            self_approved.append(f"request {request.pk}")
        run = request.run
        if run is None or run.status not in executed:
            continue
        distinct = attested.get(request.pk, set()) - {request.requester_id, owner} - set(owners)
        if request.status != ApprovalRequest.Status.APPROVED or len(distinct) < (
            request.required_approvals
        ):
            unapproved.append(f"run {run.pk}")
        if (request.sql_sha256 and request.sql_sha256 != ApprovalRequest.digest(run.sql)) or (
            request.statements_sha256
            and request.statements_sha256 != (ApprovalRequest.statements_digest(run.statements))
        ):
            mismatched.append(f"run {run.pk}")
        if run.started_at and run.run_before and run.started_at > run.run_before:
            expired.append(f"run {run.pk}")
    outside = [
        f"event {event.pk}"
        for event in AuditEvent.objects.filter(
            kind__in=[EventKind.IDENTITY_UNRECORDED, EventKind.IDENTITY_WATCH_BLOCKED],
            created_at__gte=first,
            created_at__lt=after,
        ).order_by("id")
    ]
    unapproved = sorted(
        (set(unapproved) - _refused_before_running(unapproved, keys))
        | set(_executed_unapproved_by_the_trail(first, after, keys)),
        key=lambda text: int(text.split()[-1]),
    )
    verified = getattr(integrity, "verify_report", None)
    problems = list(verified.problems) if verified is not None else []
    checks = [
        ("self-approvals", self_approved),
        ("executions without the required approvals", unapproved),
        ("executed statement differs from the approved one", mismatched),
        ("approvals used after they expired", expired),
        ("account, role or configuration changes made outside Warden", outside),
        (
            "breaks in the audit chain",
            [f"event {p.event_id}" if p.event_id else p.message for p in problems],
        ),
    ]
    for name, found in checks:
        section.rows.append(
            {
                "check": name,
                "count": len(found),
                "expected": 0,
                "evidence": ", ".join(found[:200]),
            }
        )
    nonzero = [name for name, found in checks if found]
    section.notes.append(
        "Every count is zero." if not nonzero else "NOT ZERO: " + "; ".join(nonzero) + "."
    )
    return section

"""Audit events in the Open Cybersecurity Schema Framework (OCSF 1.3), for a SIEM.

Where an event fits an OCSF class it takes that class's fields: statements are Datastore
Activity (6005: the connection as `database`, the statement as `query_info`, the decision as
`action`/`disposition`), sign-ins Authentication (3002), account and second-factor changes
Account Change (3001), role membership Group Management (3006), configuration changes API
Activity (6003). The rest is a Base Event (0). Every event keeps Warden's own fields (its kind,
decision, rule, detail, MAC and chain hash) under `unmapped`, and its id as `metadata.uid`; the
run id is `metadata.correlation_uid`, so a SIEM groups a statement's events.
"""

from __future__ import annotations

from typing import Any

from audit.kinds import EventKind, kind_label
from audit.models import AuditEvent

SCHEMA_VERSION = "1.3.0"
PRODUCT = {"name": "Warden", "vendor_name": "Warden", "feature": {"name": "audit trail"}}

# class_uid: (class name, category_uid, category name)
CLASSES: dict[int, tuple[str, int, str]] = {
    0: ("Base Event", 0, "Uncategorized"),
    3001: ("Account Change", 3, "Identity & Access Management"),
    3002: ("Authentication", 3, "Identity & Access Management"),
    3006: ("Group Management", 3, "Identity & Access Management"),
    6003: ("API Activity", 6, "Application Activity"),
    6005: ("Datastore Activity", 6, "Application Activity"),
}

# kind -> (class_uid, activity_id, activity name)
ACTIVITIES: dict[str, tuple[int, int, str]] = {
    EventKind.AUTH_LOGIN: (3002, 1, "Logon"),
    EventKind.AUTH_LOGOUT: (3002, 2, "Logoff"),
    EventKind.AUTH_LOGIN_FAILED: (3002, 1, "Logon"),
    EventKind.AUTH_LOGIN_THROTTLED: (3002, 1, "Logon"),
    EventKind.AUTH_REAUTHENTICATED: (3002, 1, "Logon"),
    EventKind.AUTH_REAUTH_FAILED: (3002, 1, "Logon"),
    EventKind.AUTH_MFA_FAILED: (3002, 1, "Logon"),
    EventKind.AUTH_PASSWORD_CHANGED: (3001, 3, "Password Change"),
    EventKind.USER_CREATED: (3001, 1, "Create"),
    EventKind.USER_REACTIVATED: (3001, 2, "Enable"),
    EventKind.USER_DEACTIVATED: (3001, 5, "Disable"),
    EventKind.USER_DELETED: (3001, 6, "Delete"),
    EventKind.USER_SUPERUSER_GRANTED: (3001, 7, "Attach Policy"),
    EventKind.USER_SUPERUSER_REVOKED: (3001, 8, "Detach Policy"),
    EventKind.USER_STAFF_GRANTED: (3001, 7, "Attach Policy"),
    EventKind.USER_STAFF_REVOKED: (3001, 8, "Detach Policy"),
    EventKind.USER_RENAMED: (3001, 99, "Other"),
    EventKind.MFA_ENROLLED: (3001, 10, "MFA Factor Enable"),
    EventKind.MFA_REMOVED: (3001, 11, "MFA Factor Disable"),
    EventKind.MFA_RESET: (3001, 99, "Other"),
    EventKind.ROLE_MEMBER_ADDED: (3006, 3, "Add User"),
    EventKind.ROLE_MEMBER_REMOVED: (3006, 4, "Remove User"),
    EventKind.ROLE_CREATED: (3006, 6, "Create"),
    EventKind.ROLE_DELETED: (3006, 5, "Delete"),
    EventKind.ROLE_RENAMED: (3006, 99, "Other"),
}
FAILED_AUTH = frozenset(
    {
        EventKind.AUTH_LOGIN_FAILED,
        EventKind.AUTH_LOGIN_THROTTLED,
        EventKind.AUTH_REAUTH_FAILED,
        EventKind.AUTH_MFA_FAILED,
    }
)
CONFIG_FAMILIES = (
    "connection.",
    "guardrail.",
    "approval_policy.",
    "masking.",
    "catalog.",
    "grant.",
)
SEVERITY = {"": 1, "none": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
SEVERITY_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}


def _activity(event: AuditEvent) -> tuple[int, int, str]:
    if event.kind in ACTIVITIES:
        return ACTIVITIES[event.kind]
    if event.kind.startswith("query."):
        return 6005, 4, "Query"
    if event.kind.startswith(CONFIG_FAMILIES):
        verb = event.kind.rsplit(".", 1)[-1]
        number = {"created": 1, "updated": 3, "deleted": 4}.get(verb, 99)
        return 6003, number, {1: "Create", 3: "Update", 4: "Delete"}.get(number, "Other")
    return 0, 99, "Other"


def to_ocsf(event: AuditEvent) -> dict[str, Any]:
    class_uid, activity_id, activity = _activity(event)
    class_name, category_uid, category_name = CLASSES[class_uid]
    severity_id = SEVERITY.get(event.risk, 1)
    record: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": class_uid * 100 + activity_id,
        "time": int(event.created_at.timestamp() * 1000),
        "time_dt": event.created_at.isoformat(timespec="microseconds"),
        "severity_id": severity_id,
        "severity": SEVERITY_NAME[severity_id],
        "message": kind_label(event.kind),
        "metadata": {
            "version": SCHEMA_VERSION,
            "product": PRODUCT,
            "uid": str(event.pk),
            "log_name": "audit",
            **({"correlation_uid": f"run-{event.run_id}"} if event.run_id else {}),
        },
        "actor": {
            "user": {
                "name": event.actor_name,
                **({"uid": str(event.actor_id)} if event.actor_id is not None else {}),
            },
            "app_name": f"Warden ({event.channel})",
        },
        "unmapped": {
            "warden_kind": event.kind,
            "channel": event.channel,
            "decision": event.decision,
            "rule": event.rule,
            "categories": event.categories,
            "detail": event.detail,
            "mac": event.mac,
            "hash": event.hash,
        },
    }
    if event.source_ip:
        record["src_endpoint"] = {"ip": event.source_ip}
    if event.decision in ("allow", "deny", "require_approval"):
        allowed = event.decision == "allow"
        record["action_id"], record["action"] = (1, "Allowed") if allowed else (2, "Denied")
        record["disposition_id"], record["disposition"] = (
            (1, "Allowed")
            if allowed
            else ((2, "Blocked") if event.decision == "deny" else (99, "Held for approval"))
        )
    failed = event.kind in FAILED_AUTH or event.kind in (
        EventKind.QUERY_FAILED,
        EventKind.QUERY_REJECTED,
    )
    record["status_id"], record["status"] = (2, "Failure") if failed else (1, "Success")
    if event.error:
        record["status_detail"] = event.error[:2000]
    if class_uid == 6005:
        record["database"] = {"name": event.connection_name}
        if event.connection_id is not None:
            record["database"]["uid"] = str(event.connection_id)
        if event.sql:
            record["query_info"] = {"query_string": event.sql}
        if event.row_count is not None:
            record["count"] = event.row_count
        if event.duration_ms is not None:
            record["duration"] = int(event.duration_ms)
    if class_uid == 3002:
        subject = event.detail.get("user") if isinstance(event.detail, dict) else None
        record["user"] = {"name": str(subject or event.actor_name)}
    if class_uid in (3001, 3006) and isinstance(event.detail, dict):
        subject = event.detail.get("user")
        if subject:
            record["user"] = {"name": str(subject), "uid": str(event.detail.get("user_id", ""))}
        if class_uid == 3006 and event.detail.get("role"):
            record["group"] = {"name": str(event.detail["role"])}
    return record

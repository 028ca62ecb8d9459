"""Every kind of audit event, in one registry: its stored name and what people read.

Code records a member of `EventKind`, never a string it builds, so a kind cannot be
misspelled (`approval.rejectd`), and the audit page, its filter and any report read the same
labels. `event_build` refuses a kind that is not registered.

The trail is append-only: rows recorded under an older name keep it. `LEGACY` says which
current kind each old name stands for, so they are still labelled and filtered with it.
"""

from __future__ import annotations

from django.db import models


class EventKind(models.TextChoices):
    # Sign-in
    AUTH_LOGIN = "auth.login", "Signed in"
    AUTH_LOGOUT = "auth.logout", "Signed out"
    AUTH_LOGIN_FAILED = "auth.login_failed", "Sign-in failed"
    AUTH_LOGIN_THROTTLED = "auth.login_throttled", "Sign-in refused after repeated failures"
    AUTH_PASSWORD_CHANGED = "auth.password_changed", "Password changed"
    AUTH_REAUTHENTICATED = "auth.reauthenticated", "Identity confirmed again (re-authentication)"
    AUTH_REAUTH_FAILED = "auth.reauth_failed", "Re-authentication failed"
    AUTH_MFA_FAILED = "auth.mfa_failed", "Second-factor code refused"
    # Accounts and roles (whoever changes them: the app, Django admin, a shell, an identity
    # provider's sign-in)
    USER_CREATED = "user.created", "Account created"
    USER_DELETED = "user.deleted", "Account deleted"
    USER_RENAMED = "user.renamed", "Account renamed"
    USER_DEACTIVATED = "user.deactivated", "Account deactivated"
    USER_REACTIVATED = "user.reactivated", "Account reactivated"
    USER_SUPERUSER_GRANTED = "user.superuser_granted", "Made superuser"
    USER_SUPERUSER_REVOKED = "user.superuser_revoked", "Superuser status removed"
    USER_STAFF_GRANTED = "user.staff_granted", "Given Django admin access"
    USER_STAFF_REVOKED = "user.staff_revoked", "Django admin access removed"
    USER_EMAIL_CHANGED = "user.email_changed", "Account e-mail changed"
    USER_EMAIL_ADDRESS_ADDED = "user.email_address_added", "E-mail address added"
    USER_EMAIL_ADDRESS_CHANGED = "user.email_address_changed", "E-mail address changed"
    USER_EMAIL_ADDRESS_REMOVED = "user.email_address_removed", "E-mail address removed"
    USER_PERMISSION_GRANTED = "user.permission_granted", "Django permission given"
    USER_PERMISSION_REVOKED = "user.permission_revoked", "Django permission removed"
    USER_LOGIN_LINKED = "user.login_linked", "Identity-provider login linked"
    USER_LOGIN_UNLINKED = "user.login_unlinked", "Identity-provider login unlinked"
    USER_PASSWORD_LINK_ISSUED = "user.password_link_issued", "Set-password link issued"
    ROLE_MEMBER_ADDED = "role.member_added", "Added to a role"
    ROLE_MEMBER_REMOVED = "role.member_removed", "Removed from a role"
    ROLE_CREATED = "role.created", "Role created"
    ROLE_RENAMED = "role.renamed", "Role renamed"
    ROLE_DELETED = "role.deleted", "Role deleted"
    ROLE_PERMISSION_GRANTED = "role.permission_granted", "Django permission given to a role"
    ROLE_PERMISSION_REVOKED = "role.permission_revoked", "Django permission removed from a role"
    # Agents and API tokens
    AGENT_CREATED = "agent.created", "Agent created"
    AGENT_UPDATED = "agent.updated", "Agent changed"
    AGENT_REVOKED = "agent.revoked", "Agent revoked"
    TOKEN_CREATED = "token.created", "API token created"
    TOKEN_REVOKED = "token.revoked", "API token revoked"
    TOKEN_REFUSED = "token.refused", "API token refused"
    AGENT_BUDGET_EXCEEDED = "agent.budget_exceeded", "API budget exceeded"
    # The identity watch (audit/identity_watch.py): the accounts, roles, second factors and
    # linked logins as they stand, and any change to them that no event above recorded.
    IDENTITY_SNAPSHOT = "identity.snapshot", "Accounts and roles as they stand (snapshot)"
    IDENTITY_WATCH_BLOCKED = (
        "identity.watch_blocked",
        "Identity watch kept from looking (its lock held elsewhere)",
    )
    IDENTITY_UNRECORDED = (
        "identity.unrecorded_change",
        "Account, role or second factor changed outside Warden",
    )
    MFA_ENROLLED = "mfa.enrolled", "Second factor enrolled"
    MFA_REMOVED = "mfa.removed", "Second factor removed"
    MFA_RESET = "mfa.reset", "Recovery codes regenerated"
    # Statements
    QUERY_SUBMITTED = "query.submitted", "Statement submitted and decided"
    QUERY_CHECKED = "query.checked", "Statement checked (not run)"
    # Input refused before it was parsed, and a held statement an approver rejected.
    QUERY_REJECTED = "query.rejected", "Statement refused or rejected"
    QUERY_RELEASED = "query.released", "Approved statement released to run"
    QUERY_SUCCEEDED = "query.succeeded", "Statement succeeded"
    QUERY_FAILED = "query.failed", "Statement failed"
    QUERY_CANCEL_REQUESTED = "query.cancel_requested", "Cancellation requested"
    QUERY_CANCELLED = "query.cancelled", "Statement cancelled"
    QUERY_EXPIRED = "query.expired", "Statement not run: its approval expired"
    # Saved queries: only what others see is recorded (a private one is the owner's notebook).
    SAVED_QUERY_SHARED = "saved_query.shared", "Saved query shared"
    SAVED_QUERY_UNSHARED = "saved_query.unshared", "Saved query no longer shared"
    SAVED_QUERY_UPDATED = "saved_query.updated", "Shared query changed"
    SAVED_QUERY_DELETED = "saved_query.deleted", "Shared query deleted"
    # Approval requests
    APPROVAL_REQUESTED = "approval.requested", "Approval requested"
    APPROVAL_APPROVED = "approval.approved", "Request approved by a reviewer"
    APPROVAL_REJECTED = "approval.rejected", "Request rejected by a reviewer"
    APPROVAL_GRANTED = "approval.granted", "Request fully approved"
    APPROVAL_WITHDRAWN = "approval.withdrawn", "Request withdrawn"
    APPROVAL_EXPIRED = "approval.expired", "Request expired unanswered"
    APPROVAL_POLICY_CREATED = "approval_policy.created", "Approval policy created"
    APPROVAL_POLICY_UPDATED = "approval_policy.updated", "Approval policy changed"
    APPROVAL_POLICY_DELETED = "approval_policy.deleted", "Approval policy deleted"
    # Access
    GRANT_CREATED = "grant.created", "Access granted"
    GRANT_REVOKED = "grant.revoked", "Access revoked"
    ACCESS_GRANTED = "access.granted", "Time-boxed access granted on approval"
    ACCESS_EXPIRED = "access.expired", "Time-boxed access ended"
    UNMASK_GRANTED = "unmask.granted", "Unmasked access to a column granted"
    UNMASK_REVOKED = "unmask.revoked", "Unmasked access to a column revoked"
    UNMASK_EXPIRED = "unmask.expired", "Unmasked access to a column ended"
    UNMASK_USED = "unmask.used", "Column read unmasked"
    # Configuration
    CONNECTION_CREATED = "connection.created", "Connection created"
    CONNECTION_UPDATED = "connection.updated", "Connection changed"
    CONNECTION_DELETED = "connection.deleted", "Connection deleted"
    CONNECTION_TESTED = "connection.tested", "Connection tested"
    GUARDRAIL_CREATED = "guardrail.created", "Guardrail created"
    GUARDRAIL_UPDATED = "guardrail.updated", "Guardrail changed"
    GUARDRAIL_DELETED = "guardrail.deleted", "Guardrail deleted"
    CATALOG_REFRESHED = "catalog.refreshed", "Catalog discovered"
    CATALOG_COLUMN_REVIEWED = "catalog.column_reviewed", "Column classification confirmed"
    CATALOG_COLUMN_RELEASED = "catalog.column_released", "Column classification cleared"
    CATALOG_TABLE_LABELLED = "catalog.table_labelled", "Table sensitivity set"
    MASKING_RULE_CHANGED = "masking.rule_changed", "Masking rule changed"
    KEYS_ROTATED = "keys.rotated", "Encryption keys rotated"

    AUDIT_VERIFIED = "audit.verified", "Audit trail verified"
    AUDIT_BROKEN = "audit.broken", "Audit trail found altered"
    AUDIT_VIEWED = "audit.viewed", "Audit trail viewed or searched"
    AUDIT_EXPORTED = "audit.exported", "Audit trail exported"
    AUDIT_KEY_ROTATED = "audit.key_rotated", "Audit signing key changed"
    EVIDENCE_REQUESTED = "evidence.requested", "Evidence report requested"
    EVIDENCE_GENERATED = "evidence.generated", "Evidence report generated"
    EVIDENCE_DOWNLOADED = "evidence.downloaded", "Evidence report downloaded"


# Names rows were once recorded under, and the kind each means. Never recorded again.
LEGACY: dict[str, EventKind] = {
    "approval.rejectd": EventKind.APPROVAL_REJECTED,  # a misspelling, until 2026-12
}

# The families a filter offers: the part of a kind's name before the dot.
FAMILIES: dict[str, str] = {
    "auth": "Sign-in",
    "user": "Accounts",
    "role": "Role membership",
    "mfa": "Second factor",
    "identity": "Identity watch",
    "agent": "Agents",
    "token": "API tokens",
    "query": "Statements",
    "saved_query": "Saved queries",
    "approval": "Approval requests",
    "approval_policy": "Approval policies",
    "grant": "Access grants",
    "access": "Time-boxed access",
    "unmask": "Unmasked access",
    "connection": "Connections",
    "guardrail": "Guardrails",
    "catalog": "Catalog",
    "masking": "Masking rules",
    "keys": "Encryption keys",
    "audit": "The audit trail itself",
    "evidence": "Evidence reports",
}


def kind_label(kind: str) -> str:
    """What people read for a stored kind, old names included; an unknown one as it is."""
    if kind in EventKind.values:
        return str(EventKind(kind).label)
    if kind in LEGACY:
        return str(LEGACY[kind].label)
    return kind


def stored_names(kind: EventKind) -> list[str]:
    """Every name rows of `kind` are stored under: its own, and any older spelling."""
    return [kind.value, *(old for old, new in LEGACY.items() if new == kind)]

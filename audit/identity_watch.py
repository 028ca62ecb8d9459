"""The identity watch: any change to who may do what shows in the trail, whichever path made it.

governance/identity_events.py records account, role, second-factor and login changes as they
happen, from model and allauth signals. Those fire for Warden's pages, Django admin, a shell
and an identity provider's sign-in, but not for `QuerySet.update()`, `bulk_create()`, a row
written to a through table, a fixture or plain SQL from someone with the app database's
credentials: a planted TOTP secret, a linked identity-provider login or `is_superuser = true`
set that way would take over an account and leave no event.

So the watch compares *state*, not code paths. Every few seconds (the beat task
`audit.watch_identity`) it reads what decides access: each account's name, e-mail, flags,
password (as a keyed fingerprint), roles and Django permissions; each role's name and
permissions; each second factor (a keyed fingerprint of its secret, never the secret); each
e-mail address and each linked identity-provider login. When that differs from the last
snapshot, every difference must be explained by a genuine event (its MAC holds) of the
matching kind about the same account or role, recorded since the last snapshot was taken;
what is not explained is recorded as one `identity.unrecorded_change` event naming each
change, and the new state becomes the snapshot (`identity.snapshot`, whose MAC'd detail holds
the snapshot's keyed digest, so a snapshot row edited to hide a change is refused).

What it cannot see: a change made and undone between two looks (every
WARDEN_IDENTITY_WATCH_SECONDS, 10 by default), and a change made in the same interval as a
genuine event of the same kind about the same account. It needs no trigger, so a superuser
who bypasses triggers is seen as well. No secret enters the trail or the snapshot table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import mac_matches
from audit.keys import mac_key
from audit.kinds import EventKind
from audit.models import AuditEvent, IdentitySnapshot
from audit.services import event_record

log = logging.getLogger("warden.audit")

LOCK = 0x5741524449  # "WARDI": one watcher at a time
#: How far before the previous snapshot an event may lie and still explain a change: its
#: change may have committed just after that snapshot read the tables.
EXPLAIN_BEFORE = dt.timedelta(seconds=60)
#: A change whose event is being committed right now: look again once after this long.
SETTLE_S = 1.0
WATCHER = "identity watch"

State = dict[str, dict[str, dict[str, Any]]]


def _fingerprint(value: Any) -> str:
    """A keyed fingerprint: equal values give equal text, and nothing of the value leaks."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hmac.new(mac_key(), b"identity\n" + text.encode(), hashlib.sha256).hexdigest()[:20]


def _factor_secret(kind: str, data: Any) -> Any:
    """What of a second factor's data is its secret: a recovery-code sheet's seed (its
    used-codes mask changes at every use), a security key's credential (not its name). Read
    through allauth's MFA adapter, so a secret re-encrypted under a new key is the same."""
    if not isinstance(data, dict):
        return data
    if kind == Authenticator.Type.RECOVERY_CODES:
        return {"seed": _opened(data.get("seed")), "migrated": data.get("migrated_codes")}
    if kind == Authenticator.Type.WEBAUTHN:
        return data.get("credential")
    return {**data, "secret": _opened(data.get("secret"))}


def _opened(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return get_mfa_adapter().decrypt(value)
    except Exception:
        return value  # unreadable: its text stands for it


def current_state() -> State:
    """What decides who may do what, now (no secret in it)."""
    user_model = get_user_model()
    permissions = {
        pk: f"{app}.{codename}"
        for pk, app, codename in Permission.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    users: dict[str, dict[str, Any]] = {}
    for row in user_model._default_manager.values(
        "pk", "username", "email", "is_active", "is_staff", "is_superuser", "password"
    ).order_by("pk"):
        users[str(row["pk"])] = {
            "username": row["username"],
            "email": row["email"],
            "active": row["is_active"],
            "staff": row["is_staff"],
            "superuser": row["is_superuser"],
            "password": _fingerprint(row["password"]),
            "roles": [],
            "permissions": [],
        }
    for user_id, group_id in user_model.groups.through.objects.values_list("user_id", "group_id"):
        if str(user_id) in users:
            users[str(user_id)]["roles"].append(group_id)
    for user_id, perm_id in user_model.user_permissions.through.objects.values_list(
        "user_id", "permission_id"
    ):
        if str(user_id) in users:
            users[str(user_id)]["permissions"].append(permissions.get(perm_id, str(perm_id)))
    for user in users.values():
        user["roles"].sort()
        user["permissions"].sort()
    roles: dict[str, dict[str, Any]] = {
        str(pk): {"name": name, "permissions": []}
        for pk, name in Group.objects.values_list("pk", "name")
    }
    for group_id, perm_id in Group.permissions.through.objects.values_list(
        "group_id", "permission_id"
    ):
        if str(group_id) in roles:
            roles[str(group_id)]["permissions"].append(permissions.get(perm_id, str(perm_id)))
    for role in roles.values():
        role["permissions"].sort()
    factors = {
        str(pk): {"user": user_id, "type": kind, "secret": _fingerprint(_factor_secret(kind, data))}
        for pk, user_id, kind, data in Authenticator.objects.values_list(
            "pk", "user_id", "type", "data"
        )
    }
    emails = {
        str(pk): {"user": user_id, "email": email, "verified": verified, "primary": primary}
        for pk, user_id, email, verified, primary in EmailAddress.objects.values_list(
            "pk", "user_id", "email", "verified", "primary"
        )
    }
    logins = {
        str(pk): {"user": user_id, "provider": provider, "uid": uid}
        for pk, user_id, provider, uid in SocialAccount.objects.values_list(
            "pk", "user_id", "provider", "uid"
        )
    }
    state: State = {
        "users": users,
        "roles": roles,
        "factors": factors,
        "emails": emails,
        "logins": logins,
    }
    state.update(_agent_state())
    state.update(_config_state())
    return state


@dataclass(frozen=True)
class Watched:
    """A table of Warden's own configuration that decides access or masking: each row is
    kept as a keyed fingerprint of the fields that matter (not its bookkeeping: timestamps,
    counters), with the connection it belongs to."""

    key: str
    model: str
    fields: tuple[str, ...]
    kinds: tuple[EventKind, ...]  # the events that record a change to it; none: never explained
    noun: str
    m2m: tuple[str, ...] = ()
    connection: str | None = None  # the lookup of the row's connection id
    owners: tuple[str, ...] = ()  # user_id / group_id: the row goes when they go
    reuse: bool = False  # an event that explained another change may explain this one too


_CONNECTION_KINDS = (
    EventKind.CONNECTION_CREATED,
    EventKind.CONNECTION_UPDATED,
    EventKind.CONNECTION_DELETED,
    EventKind.KEYS_ROTATED,
)
_CATALOG_KINDS = (
    EventKind.CATALOG_REFRESHED,
    EventKind.CATALOG_COLUMN_REVIEWED,
    EventKind.CATALOG_COLUMN_RELEASED,
    EventKind.CATALOG_TABLE_LABELLED,
)

WATCHED: tuple[Watched, ...] = (
    Watched(
        "connections", "governance.Connection",
        ("name", "engine", "host", "port", "database", "username", "password_encrypted", "key",
         "environment", "statement_timeout_ms", "row_cap", "export_row_limit", "scan_free_text"),
            _CONNECTION_KINDS, "connection", connection="id",
    ),
    # Processes cache masking plans and exemptions by a connection's catalog version: bumped
    # and left, a change undone in the table would stay in force in them. Whatever moves it
    # legitimately explains it, however many other changes that event explains.
    Watched(
        "catalog_versions", "governance.Connection", ("catalog_version",),
        (*_CATALOG_KINDS, EventKind.MASKING_RULE_CHANGED, EventKind.UNMASK_GRANTED,
         EventKind.UNMASK_REVOKED, EventKind.UNMASK_EXPIRED, *_CONNECTION_KINDS),
        "connection's catalog version", connection="id", reuse=True,
    ),
    Watched(
        "grants", "governance.AccessGrant",
        ("connection_id", "user_id", "group_id", "capabilities", "expires_at"),
        (EventKind.GRANT_CREATED, EventKind.GRANT_REVOKED, EventKind.ACCESS_GRANTED,
         EventKind.ACCESS_EXPIRED),
        "access grant", connection="connection_id", owners=("user_id", "group_id"),
    ),
    Watched(
        "exemptions", "governance.UnmaskExemption",
        ("column_id", "user_id", "group_id", "expires_at"),
        (EventKind.UNMASK_GRANTED, EventKind.UNMASK_REVOKED, EventKind.UNMASK_EXPIRED),
        "unmask exemption", connection="column__table__connection_id",
        owners=("user_id", "group_id"),
    ),
    Watched(
        "guardrails", "governance.Guardrail",
        ("name", "message", "action", "priority", "enabled", "environments", "categories",
         "min_risk", "table_pattern", "function_name", "unfiltered_write", "sensitive_to_public",
         "restricted_predicate", "updated_at"),  # processes cache guardrails by updated_at
        (EventKind.GUARDRAIL_CREATED, EventKind.GUARDRAIL_UPDATED, EventKind.GUARDRAIL_DELETED),
        "guardrail", m2m=("connections", "groups", "exempt_groups"),
    ),
    Watched(
        "policies", "approvals.ApprovalPolicy",
        ("name", "risk", "required_approvals", "environments", "request_ttl", "approval_ttl",
         "priority", "updated_at"),
        (EventKind.APPROVAL_POLICY_CREATED, EventKind.APPROVAL_POLICY_UPDATED,
         EventKind.APPROVAL_POLICY_DELETED),
        "approval policy", m2m=("approver_groups", "connections"),
    ),
    Watched(
        "masking_rules", "governance.MaskingRule", ("semantic_type", "strategy", "updated_at"),
        (EventKind.MASKING_RULE_CHANGED,), "masking rule",
    ),
    Watched(
        "catalog_tables", "governance.CatalogTable", ("connection_id", "schema", "name", "label"),
        _CATALOG_KINDS, "catalog table", connection="connection_id",
    ),
    Watched(
        "catalog_columns", "governance.CatalogColumn",
        ("table_id", "name", "semantic_type", "sensitivity", "free_text", "strategy"),
        _CATALOG_KINDS, "catalog column", connection="table__connection_id",
    ),
    # Providers come from the environment: a provider app in the table is never Warden's.
    Watched(
        "provider_apps", "socialaccount.SocialApp",
        ("provider", "provider_id", "name", "client_id", "secret", "key", "settings"),
        (), "identity-provider app",
    ),
)  # fmt: skip


def _config_state() -> State:
    state: State = {}
    for spec in WATCHED:
        try:
            model = apps.get_model(spec.model)
        except LookupError:
            continue
        lookups = [*spec.fields, *([spec.connection] if spec.connection else []), *spec.owners]
        rows: dict[str, dict[str, Any]] = {}
        for row in model._default_manager.values("pk", *lookups):
            values = {name: row[name] for name in spec.fields}
            rows[str(row["pk"])] = {
                "values": values,
                "connection": row[spec.connection] if spec.connection else None,
                "owners": [row[name] for name in spec.owners],
            }
        for name in spec.m2m:
            through = model._meta.get_field(name).remote_field.through
            source = model._meta.model_name + "_id"
            target = next(
                f.attname
                for f in through._meta.concrete_fields
                if f.is_relation and f.attname != source
            )
            for owner, other in through.objects.values_list(source, target):
                if str(owner) in rows:
                    rows[str(owner)]["values"].setdefault(name, []).append(other)
        state[spec.key] = {
            pk: {
                "fp": _fingerprint({k: sorted(v) if isinstance(v, list) and k in spec.m2m else v
                                    for k, v in row["values"].items()}),
                "connection": row["connection"],
                **({"user": row["owners"][0], "group": row["owners"][1]} if spec.owners else {}),
            }
            for pk, row in rows.items()
        }  # fmt: skip
    return state


def _went_with_its_owner(spec: Watched, row: dict[str, Any], after: State) -> bool:
    """A row deleted with the account, role or connection it belongs to (a cascade): that
    deletion is the change, recorded on its own."""
    if row.get("user") is not None and str(row["user"]) not in after.get("users", {}):
        return True
    if row.get("group") is not None and str(row["group"]) not in after.get("roles", {}):
        return True
    connection = row.get("connection")
    return (
        spec.key != "connections"
        and connection is not None
        and str(connection) not in after.get("connections", {})
    )


def _config_changes(before: State, after: State) -> list[Change]:
    changes: list[Change] = []
    for spec in WATCHED:
        old, new = before.get(spec.key, {}), after.get(spec.key, {})
        for pk in sorted(set(old) | set(new), key=int):
            a, b = old.get(pk), new.get(pk)
            if a == b:
                continue
            what = "added" if a is None else "removed" if b is None else "changed"
            row = b if b is not None else a
            assert row is not None
            if b is None and _went_with_its_owner(spec, row, after):
                continue
            changes.append(
                Change(
                    f"{spec.noun} {what}",
                    spec.kinds,
                    detail={"table": spec.key, "id": int(pk)},
                    connection_id=row.get("connection"),
                    reuse=spec.reuse,
                )
            )
    return changes


def _agent_state() -> State:
    """Agents (owner, expiry, allowed connections) and API tokens (a keyed fingerprint of the
    digest, expiry, revocation): a token row planted by hand is a way into an account. Read
    by model name, as the audit record does not import the layers above it."""
    try:
        agent_model = apps.get_model("governance", "Agent")
        token_model = apps.get_model("governance", "ApiToken")
    except LookupError:
        return {}
    agents: dict[str, dict[str, Any]] = {}
    budgets = getattr(agent_model, "BUDGETS", ())
    for row in agent_model.objects.values(
        "pk", "user_id", "owner_id", "expires_at", "connections_restricted", *budgets
    ):
        agents[str(row["pk"])] = {
            "user": row["user_id"],
            "owner": row["owner_id"],
            "expires": str(row["expires_at"]),
            "restricted": row["connections_restricted"],
            "budgets": [row[name] for name in budgets],
            "connections": [],
        }
    for agent_id, connection_id in agent_model.allowed_connections.through.objects.values_list(
        "agent_id", "connection_id"
    ):
        if str(agent_id) in agents:
            agents[str(agent_id)]["connections"].append(connection_id)
    for agent in agents.values():
        agent["connections"].sort()
    tokens = {
        str(pk): {
            "user": user_id,
            "secret": _fingerprint(digest_text),
            "expires": str(expires),
            "revoked": revoked is not None,
        }
        for pk, user_id, digest_text, expires, revoked in token_model.objects.values_list(
            "pk", "user_id", "digest", "expires_at", "revoked_at"
        )
    }
    return {"agents": agents, "tokens": tokens}


def digest(state: State) -> str:
    text = json.dumps(state, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(mac_key(), b"identity-state\n" + text.encode(), hashlib.sha256).hexdigest()


@dataclass
class Change:
    """One difference between two snapshots, and the kinds of event that would explain it."""

    what: str
    kinds: tuple[EventKind, ...]  # empty: nothing Warden does explains it
    user_id: int | None = None
    role_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    connection_id: int | None = None
    reuse: bool = False

    def as_detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {"what": self.what}
        if self.user_id is not None:
            out["user_id"] = self.user_id
        if self.role_id is not None:
            out["role_id"] = self.role_id
        if self.connection_id is not None:
            out["connection_id"] = self.connection_id
        return {**out, **self.detail}


_FLAGS = {
    "active": (EventKind.USER_REACTIVATED, EventKind.USER_DEACTIVATED),
    "superuser": (EventKind.USER_SUPERUSER_GRANTED, EventKind.USER_SUPERUSER_REVOKED),
    "staff": (EventKind.USER_STAFF_GRANTED, EventKind.USER_STAFF_REVOKED),
}


def _user_changes(before: State, after: State) -> list[Change]:
    changes: list[Change] = []
    old, new = before.get("users", {}), after.get("users", {})
    for key in sorted(set(old) | set(new), key=int):
        uid = int(key)
        a, b = old.get(key), new.get(key)
        if a is None and b is not None:
            changes.append(
                Change(
                    "account created",
                    (EventKind.USER_CREATED,),
                    uid,
                    detail={"user": b["username"], "superuser": b["superuser"]},
                )
            )
            continue
        if b is None and a is not None:
            changes.append(
                Change(
                    "account deleted",
                    (EventKind.USER_DELETED,),
                    uid,
                    detail={"user": a["username"]},
                )
            )
            continue
        assert a is not None and b is not None
        name = {"user": b["username"]}
        if a["username"] != b["username"]:
            changes.append(
                Change(
                    "account renamed",
                    (EventKind.USER_RENAMED,),
                    uid,
                    detail={**name, "previous": a["username"]},
                )
            )
        if a["email"] != b["email"]:
            changes.append(
                Change("account e-mail changed", (EventKind.USER_EMAIL_CHANGED,), uid, detail=name)
            )
        for flag, (on, off) in _FLAGS.items():
            if a[flag] != b[flag]:
                changes.append(
                    Change(f"{flag} set to {b[flag]}", (on if b[flag] else off,), uid, detail=name)
                )
        if a["password"] != b["password"]:
            changes.append(
                Change(
                    "password changed",
                    # a set-password link replaces the unusable password's random marker, and
                    # so does a deactivation (spending any link still out)
                    (
                        EventKind.AUTH_PASSWORD_CHANGED,
                        EventKind.USER_PASSWORD_LINK_ISSUED,
                        EventKind.USER_DEACTIVATED,
                    ),
                    uid,
                    detail=name,
                )
            )
        for role in sorted(set(b["roles"]) - set(a["roles"])):
            changes.append(
                Change("added to a role", (EventKind.ROLE_MEMBER_ADDED,), uid, role, detail=name)
            )
        # A role deleted takes its memberships with it: that is the role's deletion.
        gone_roles = {int(k) for k in before.get("roles", {})} - {
            int(k) for k in after.get("roles", {})
        }
        for role in sorted(set(a["roles"]) - set(b["roles"]) - gone_roles):
            changes.append(
                Change(
                    "removed from a role", (EventKind.ROLE_MEMBER_REMOVED,), uid, role, detail=name
                )
            )
        for perm in sorted(set(b["permissions"]) - set(a["permissions"])):
            changes.append(
                Change(
                    "Django permission given",
                    (EventKind.USER_PERMISSION_GRANTED,),
                    uid,
                    detail={**name, "permission": perm},
                )
            )
        for perm in sorted(set(a["permissions"]) - set(b["permissions"])):
            changes.append(
                Change(
                    "Django permission removed",
                    (EventKind.USER_PERMISSION_REVOKED,),
                    uid,
                    detail={**name, "permission": perm},
                )
            )
    return changes


def _role_changes(before: State, after: State) -> list[Change]:
    changes: list[Change] = []
    old, new = before.get("roles", {}), after.get("roles", {})
    for key in sorted(set(old) | set(new), key=int):
        rid = int(key)
        a, b = old.get(key), new.get(key)
        if a is None and b is not None:
            changes.append(
                Change(
                    "role created",
                    (EventKind.ROLE_CREATED,),
                    role_id=rid,
                    detail={"role": b["name"]},
                )
            )
            continue
        if b is None and a is not None:
            changes.append(
                Change(
                    "role deleted",
                    (EventKind.ROLE_DELETED,),
                    role_id=rid,
                    detail={"role": a["name"]},
                )
            )
            continue
        assert a is not None and b is not None
        if a["name"] != b["name"]:
            changes.append(
                Change(
                    "role renamed",
                    (EventKind.ROLE_RENAMED,),
                    role_id=rid,
                    detail={"role": b["name"], "previous": a["name"]},
                )
            )
        for perm in sorted(set(b["permissions"]) ^ set(a["permissions"])):
            given = perm in b["permissions"]
            changes.append(
                Change(
                    "Django permission given to a role"
                    if given
                    else "Django permission removed from a role",
                    (
                        EventKind.ROLE_PERMISSION_GRANTED
                        if given
                        else EventKind.ROLE_PERMISSION_REVOKED,
                    ),
                    role_id=rid,
                    detail={"role": b["name"], "permission": perm},
                )
            )
    return changes


def _owned_changes(
    before: State,
    after: State,
    table: str,
    noun: str,
    added: EventKind,
    removed: EventKind,
    changed: EventKind | None,
    shown: tuple[str, ...],
) -> list[Change]:
    """Second factors, e-mail addresses and linked logins: rows that belong to one account.
    A row moved to another account is explained by nothing."""
    changes: list[Change] = []
    old, new = before.get(table, {}), after.get(table, {})
    for key in sorted(set(old) | set(new), key=int):
        a, b = old.get(key), new.get(key)
        row = b if b is not None else a
        assert row is not None
        detail = {name: row.get(name) for name in shown}
        detail[f"{table[:-1]}_id"] = int(key)
        if a is None:
            changes.append(Change(f"{noun} added", (added,), row["user"], detail=detail))
        elif b is None:
            if str(row["user"]) not in after.get("users", {}):
                continue  # its account was deleted: that is the account's deletion
            changes.append(Change(f"{noun} removed", (removed,), row["user"], detail=detail))
        elif a["user"] != b["user"]:
            changes.append(
                Change(
                    f"{noun} moved to another account",
                    (),
                    b["user"],
                    detail={**detail, "previous_user_id": a["user"]},
                )
            )
        elif a != b:
            changes.append(
                Change(f"{noun} changed", (changed,) if changed else (), row["user"], detail=detail)
            )
    return changes


def changes_between(before: State, after: State) -> list[Change]:
    return [
        *_config_changes(before, after),
        *_user_changes(before, after),
        *_role_changes(before, after),
        *_owned_changes(
            before, after, "factors", "second factor",
            EventKind.MFA_ENROLLED, EventKind.MFA_REMOVED, EventKind.MFA_RESET, ("type",),
        ),
        *_owned_changes(
            before, after, "emails", "e-mail address",
            EventKind.USER_EMAIL_ADDRESS_ADDED, EventKind.USER_EMAIL_ADDRESS_REMOVED,
            EventKind.USER_EMAIL_ADDRESS_CHANGED, ("email",),
        ),
        *_owned_changes(
            before, after, "agents", "agent",
            EventKind.AGENT_CREATED, EventKind.AGENT_REVOKED, EventKind.AGENT_UPDATED, (),
        ),
        *_owned_changes(
            before, after, "tokens", "API token",
            EventKind.TOKEN_CREATED, EventKind.TOKEN_REVOKED, EventKind.TOKEN_REVOKED, (),
        ),
        *_owned_changes(
            before, after, "logins", "identity-provider login",
            EventKind.USER_LOGIN_LINKED, EventKind.USER_LOGIN_UNLINKED, None,
            ("provider", "uid"),
        ),
    ]  # fmt: skip


#: Kinds of event that explain many changes at once (a catalog discovery rewrites a
#: connection's columns; a key rotation re-encrypts every connection): not used up by one.
BULK = frozenset({EventKind.CATALOG_REFRESHED.value, EventKind.KEYS_ROTATED.value})


def _explaining(change: Change, events: list[AuditEvent], used: set[int]) -> AuditEvent | None:
    """The genuine event that explains `change`, not already used for another one. `used`
    collects what this look used: the next look passes over all of it, bulk events too."""
    for event in events:
        if event.kind not in change.kinds or (
            event.pk in used and event.kind not in BULK and not change.reuse
        ):
            continue
        detail = event.detail if isinstance(event.detail, dict) else {}
        if change.user_id is not None and detail.get("user_id") != change.user_id:
            continue
        if change.role_id is not None and detail.get("role_id") != change.role_id:
            continue
        if (
            change.connection_id is not None
            and event.connection_id is not None
            and event.connection_id != change.connection_id
        ):
            continue
        if not change.reuse:  # a reused event stays free for the change it belongs to
            used.add(event.pk)
        return event
    return None


def _unexplained(changes: list[Change], events: list[AuditEvent], used: set[int]) -> list[Change]:
    return [change for change in changes if _explaining(change, events, used) is None]


def _genuine_events(since: dt.datetime, kinds: set[str], spent: set[int]) -> list[AuditEvent]:
    key = mac_key()
    candidates = AuditEvent.objects.filter(created_at__gte=since, kind__in=kinds).order_by("id")
    return [e for e in candidates if e.pk not in spent and mac_matches(e, key)]


@dataclass
class WatchResult:
    busy: bool = False
    baseline: bool = False
    changed: bool = False
    unexplained: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


#: How many `identity.snapshot` events to look through for a genuine one before giving up.
SCAN_LIMIT = 5000


def _last_snapshot(result: WatchResult) -> tuple[IdentitySnapshot | None, AuditEvent | None]:
    """The newest snapshot the trail vouches for: its digest is in a genuine
    `identity.snapshot` event and its content still has that digest. Rows inserted into the
    trail without Warden's MAC are passed over (and counted), however many there are."""
    key = mac_key()
    forged = 0
    anchor: AuditEvent | None = None
    events = AuditEvent.objects.filter(kind=EventKind.IDENTITY_SNAPSHOT).order_by("-id")
    for event in events[:SCAN_LIMIT].iterator(chunk_size=200):
        if mac_matches(event, key):
            anchor = event
            break
        forged += 1
    if forged:
        result.problems.append(
            f"{forged} identity snapshot event(s) without Warden's MAC were passed over"
        )
    if anchor is None:
        if forged:
            result.problems.append("no genuine identity snapshot found")
        return None, None
    wanted = (anchor.detail or {}).get("digest")
    for snapshot in IdentitySnapshot.objects.filter(digest=wanted).order_by("-id")[:5]:
        if hmac.compare_digest(digest(snapshot.state), snapshot.digest):
            return snapshot, anchor
    result.problems.append(
        f"the snapshot that identity snapshot event {anchor.pk} names is missing or altered"
    )
    return None, anchor


#: Clocks of the hosts that record events and of the one that watches may differ this much.
CLOCK_SKEW = dt.timedelta(seconds=2)
KEEP_SNAPSHOTS = 20


#: Another look holds the lock for a moment; longer than this, someone keeps the watch out.
BLOCKED_AFTER_S = 60
BUSY_SINCE = "warden:identity-watch:busy-since"


def lock_holder() -> dict[str, Any]:
    """Who holds the watch's lock (the session, as PostgreSQL shows it), for the record."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.pid, a.usename, a.application_name, host(a.client_addr), a.datname"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s LIMIT 1",
            [LOCK],
        )
        row = cursor.fetchone()
    keys = ("pid", "user", "application", "address", "database")
    return dict(zip(keys, row, strict=True)) if row else {}


def _blocked() -> None:
    """A look that found the lock taken: after BLOCKED_AFTER_S of that, record it (every ten
    minutes while it lasts), naming the session that holds the lock."""
    now = time.time()
    since = float(cache.get_or_set(BUSY_SINCE, now, 24 * 3600) or now)
    if now - since < BLOCKED_AFTER_S or not cache.add(f"{BUSY_SINCE}:reported", 1, 600):
        return
    holder = lock_holder() if connection.vendor == "postgresql" else {}
    log.error("the identity watch has been kept from looking for %.0f s by %s", now - since, holder)
    event_record(
        kind=EventKind.IDENTITY_WATCH_BLOCKED,
        actor_name=WATCHER,
        channel=AuditEvent.Channel.SYSTEM,
        detail={
            "since": dt.datetime.fromtimestamp(since, dt.UTC).isoformat(),
            "holder": holder,
        },
    )


def watch(*, settle_s: float = SETTLE_S) -> WatchResult:
    """Compare who may do what with the last snapshot; record what no event explains.

    Every time it needs comes from the last genuine `identity.snapshot` event (its MAC
    covers when that state was read and which events it used up), never from the snapshot
    table, so rewinding a row cannot make old events explain new changes."""
    result = WatchResult()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK])
                if not cursor.fetchone()[0]:
                    result.busy = True
        if result.busy:
            _blocked()
            return result
        cache.delete(BUSY_SINCE)
        snapshot, anchor = _last_snapshot(result)
        read_at = timezone.now()
        state = current_state()
        now_digest = digest(state)
        if snapshot is not None and hmac.compare_digest(snapshot.digest, now_digest):
            return result
        result.changed = True
        used: set[int] = set()
        if snapshot is None or anchor is None:
            result.baseline = not result.problems
            if not result.baseline:
                result.problems.append(
                    "no trustworthy earlier snapshot: this one starts a new baseline"
                )
        else:
            anchor_detail = anchor.detail if isinstance(anchor.detail, dict) else {}
            since = _moment(anchor_detail.get("read_at")) or anchor.created_at
            spent = {i for i in anchor_detail.get("explained_by", []) if isinstance(i, int)}
            changes = changes_between(snapshot.state, state)
            kinds = {kind.value for change in changes for kind in change.kinds}
            events = _genuine_events(since - CLOCK_SKEW, kinds, spent)
            result.unexplained = _unexplained(changes, events, used)
            if result.unexplained and settle_s:
                # The event of a change committed a moment ago may be committing right now.
                time.sleep(settle_s)
                events = _genuine_events(since - CLOCK_SKEW, kinds, spent | used)
                result.unexplained = _unexplained(result.unexplained, events, used)
        if result.unexplained or result.problems:
            event_record(
                kind=EventKind.IDENTITY_UNRECORDED,
                actor_name=WATCHER,
                channel=AuditEvent.Channel.SYSTEM,
                detail={
                    "changes": [c.as_detail() for c in result.unexplained],
                    "problems": result.problems,
                },
            )
            for change in result.unexplained:
                log.warning("identity changed outside Warden: %s", change.as_detail())
        event_record(
            kind=EventKind.IDENTITY_SNAPSHOT,
            actor_name=WATCHER,
            channel=AuditEvent.Channel.SYSTEM,
            detail={
                "digest": now_digest,
                "read_at": read_at.isoformat(),
                "explained_by": sorted(used),
                "accounts": len(state["users"]),
                "roles": len(state["roles"]),
                "second_factors": len(state["factors"]),
                "baseline": result.baseline,
            },
        )
        created = IdentitySnapshot.objects.create(taken_at=read_at, digest=now_digest, state=state)
        IdentitySnapshot.objects.filter(id__lte=created.pk - KEEP_SNAPSHOTS).delete()
    return result


def _moment(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None

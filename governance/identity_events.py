"""Accounts, roles, passwords and second factors go to the audit trail, whoever changes them.

The receivers sit on the models and on allauth's signals rather than in views, so a change made
in Warden's pages, in Django admin, from a shell (`createsuperuser`, `changepassword`) or by an
identity provider's first sign-in is recorded the same way. Who acted comes from
audit/context.py: the signed-in person for a request, the command line for manage.py.
Nothing secret is recorded: no password, hash, TOTP secret or recovery code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa import signals as mfa_signals
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from audit.context import acting
from audit.kinds import EventKind
from audit.services import event_record
from governance.signals import client_ip

User = get_user_model()

# What the trail compares before and after a save; a save that touches none of these (the
# last_login stamp of every sign-in) costs no extra query.
_WATCHED = ("username", "email", "is_active", "is_superuser", "is_staff")

_FLAGS: dict[str, tuple[EventKind, EventKind]] = {
    "is_active": (EventKind.USER_REACTIVATED, EventKind.USER_DEACTIVATED),
    "is_superuser": (EventKind.USER_SUPERUSER_GRANTED, EventKind.USER_SUPERUSER_REVOKED),
    "is_staff": (EventKind.USER_STAFF_GRANTED, EventKind.USER_STAFF_REVOKED),
}


_context: ContextVar[dict[str, Any] | None] = ContextVar("warden_identity_context", default=None)


@contextmanager
def identity_context(**detail: Any) -> Iterator[None]:
    """Within the block, every event recorded here also carries `detail`: a service that
    changes an account says what it did as a whole (the roles before and after, the sessions
    it ended), while the events themselves still come from the signals, whichever path."""
    token = _context.set({**(_context.get() or {}), **detail})
    try:
        yield
    finally:
        _context.reset(token)


def record_identity(kind: EventKind, *, subject: Any = None, **detail: Any) -> None:
    """One event about an account or role, attributed to whoever is acting now."""
    who = acting()
    actor = who.actor
    if subject is not None:
        detail = {"user": subject.get_username(), "user_id": subject.pk, **detail}
    detail = {**(_context.get() or {}), **detail}  # what the event itself says comes first
    if who.via:
        detail["via"] = who.via
    event_record(
        kind=kind,
        actor=actor,
        actor_name="" if actor is not None else who.via[:150],
        channel=who.channel,
        source_ip=client_ip(who.request) if who.request is not None else None,
        detail=detail,
    )


@receiver(pre_save, sender=User)
def _user_before(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    instance._audit_before = None
    if instance.pk is None or kwargs.get("raw"):
        return
    if update_fields is not None and not set(update_fields) & set(_WATCHED):
        return
    instance._audit_before = User._default_manager.filter(pk=instance.pk).values(*_WATCHED).first()


@receiver(post_save, sender=User)
def _user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    if created:
        record_identity(
            EventKind.USER_CREATED,
            subject=instance,
            active=instance.is_active,
            superuser=instance.is_superuser,
            staff=instance.is_staff,
            password_set=instance.has_usable_password(),
        )
        return
    before = getattr(instance, "_audit_before", None)
    instance._audit_before = None
    if before is not None:
        if before["username"] != instance.get_username():
            record_identity(EventKind.USER_RENAMED, subject=instance, previous=before["username"])
        if (before["email"] or "") != (instance.email or ""):
            record_identity(EventKind.USER_EMAIL_CHANGED, subject=instance)
        for flag, (on, off) in _FLAGS.items():
            if bool(before[flag]) != bool(getattr(instance, flag)):
                record_identity(on if getattr(instance, flag) else off, subject=instance)
    # Django keeps the raw password on the instance from set_password() until this save ends;
    # a hash upgrade at sign-in clears it first, so only a real change is recorded.
    if getattr(instance, "_password", None) is not None:
        record_identity(EventKind.AUTH_PASSWORD_CHANGED, subject=instance)


@receiver(pre_delete, sender=User)
def _user_deleting(sender: Any, instance: Any, **kwargs: Any) -> None:
    instance._audit_roles = sorted(instance.groups.values_list("name", flat=True))


@receiver(post_delete, sender=User)
def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    record_identity(
        EventKind.USER_DELETED, subject=instance, roles=getattr(instance, "_audit_roles", [])
    )


@receiver(m2m_changed, sender=User.groups.through)
def _membership(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    if action == "pre_clear":
        # clear() says nothing of what it removes: note it now, record it once it is done.
        if reverse:
            instance._audit_cleared = list(instance.user_set.all())
        else:
            instance._audit_cleared = list(instance.groups.all())
        return
    if action == "post_clear":
        others = getattr(instance, "_audit_cleared", [])
        instance._audit_cleared = []
    elif action in ("post_add", "post_remove") and pk_set:
        model = User if reverse else Group
        others = list(model._default_manager.filter(pk__in=pk_set))
    else:
        return
    kind = EventKind.ROLE_MEMBER_ADDED if action == "post_add" else EventKind.ROLE_MEMBER_REMOVED
    for other in sorted(others, key=lambda o: o.pk):
        user, group = (other, instance) if reverse else (instance, other)
        record_identity(kind, subject=user, role=group.name, role_id=group.pk)


def _permission_names(pk_set: Any) -> list[str]:
    return sorted(
        f"{app}.{codename}"
        for app, codename in Permission.objects.filter(pk__in=pk_set).values_list(
            "content_type__app_label", "codename"
        )
    )


@receiver(m2m_changed, sender=User.user_permissions.through)
@receiver(m2m_changed, sender=Group.permissions.through)
def _permissions(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """Django permissions given to or taken from an account or a role (admin's forms)."""
    if action == "pre_clear":
        instance._audit_cleared = (
            [] if reverse else list(getattr(instance, _PERMS[sender]).values_list("pk", flat=True))
        )
        return
    if action == "post_clear":
        pk_set, added = set(getattr(instance, "_audit_cleared", [])), False
    elif action in ("post_add", "post_remove") and pk_set:
        added = action == "post_add"
    else:
        return
    is_user = sender is User.user_permissions.through
    if reverse:  # permission.user_set / group_set: one permission, several holders
        holders = (User if is_user else Group)._default_manager.filter(pk__in=pk_set)
        names = _permission_names([instance.pk])
        pairs = [(holder, names) for holder in holders]
    else:
        pairs = [(instance, _permission_names(pk_set))]
    for holder, names in pairs:
        for name in names:
            if is_user:
                kind = (
                    EventKind.USER_PERMISSION_GRANTED
                    if added
                    else EventKind.USER_PERMISSION_REVOKED
                )
                record_identity(kind, subject=holder, permission=name)
            else:
                kind = (
                    EventKind.ROLE_PERMISSION_GRANTED
                    if added
                    else EventKind.ROLE_PERMISSION_REVOKED
                )
                role = str(getattr(holder, "name", ""))
                record_identity(kind, role=role, role_id=holder.pk, permission=name)


_PERMS = {
    User.user_permissions.through: "user_permissions",
    Group.permissions.through: "permissions",
}


@receiver(pre_save, sender=EmailAddress)
def _email_before(sender: Any, instance: Any, **kwargs: Any) -> None:
    instance._audit_before = None
    if instance.pk is not None and not kwargs.get("raw"):
        instance._audit_before = (
            EmailAddress.objects.filter(pk=instance.pk)
            .values("email", "verified", "primary", "user_id")
            .first()
        )


@receiver(post_save, sender=EmailAddress)
def _email_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    now = {
        "email": instance.email,
        "verified": instance.verified,
        "primary": instance.primary,
        "user_id": instance.user_id,
    }
    before = getattr(instance, "_audit_before", None)
    if not created and before == now:
        return
    kind = EventKind.USER_EMAIL_ADDRESS_ADDED if created else EventKind.USER_EMAIL_ADDRESS_CHANGED
    record_identity(
        kind,
        subject=instance.user,
        email=instance.email,
        email_address_id=instance.pk,
        verified=instance.verified,
        primary=instance.primary,
    )


@receiver(post_delete, sender=EmailAddress)
def _email_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    record_identity(
        EventKind.USER_EMAIL_ADDRESS_REMOVED,
        subject=User(pk=instance.user_id, username=_username(instance.user_id)),
        email=instance.email,
        email_address_id=instance.pk,
    )


def _username(user_id: Any) -> str:
    return str(
        User._default_manager.filter(pk=user_id).values_list("username", flat=True).first() or ""
    )


@receiver(post_save, sender=SocialAccount)
def _login_linked(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """An identity provider's account tied to a Warden account: whoever holds it signs in."""
    if kwargs.get("raw") or not created:
        return
    record_identity(
        EventKind.USER_LOGIN_LINKED,
        subject=instance.user,
        provider=instance.provider,
        uid=instance.uid,
        login_id=instance.pk,
    )


@receiver(post_delete, sender=SocialAccount)
def _login_unlinked(sender: Any, instance: Any, **kwargs: Any) -> None:
    record_identity(
        EventKind.USER_LOGIN_UNLINKED,
        subject=User(pk=instance.user_id, username=_username(instance.user_id)),
        provider=instance.provider,
        uid=instance.uid,
        login_id=instance.pk,
    )


@receiver(pre_save, sender=Group)
def _group_before(sender: Any, instance: Any, **kwargs: Any) -> None:
    instance._audit_before_name = None
    if instance.pk is not None and not kwargs.get("raw"):
        instance._audit_before_name = (
            Group.objects.filter(pk=instance.pk).values_list("name", flat=True).first()
        )


@receiver(post_save, sender=Group)
def _group_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    if created:
        record_identity(EventKind.ROLE_CREATED, role=instance.name, role_id=instance.pk)
        return
    before = getattr(instance, "_audit_before_name", None)
    if before is not None and before != instance.name:
        record_identity(
            EventKind.ROLE_RENAMED, role=instance.name, role_id=instance.pk, previous=before
        )


@receiver(pre_delete, sender=Group)
def _group_deleting(sender: Any, instance: Any, **kwargs: Any) -> None:
    instance._audit_members = sorted(instance.user_set.values_list("username", flat=True))


@receiver(post_delete, sender=Group)
def _group_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    record_identity(
        EventKind.ROLE_DELETED,
        role=instance.name,
        role_id=instance.pk,
        members=getattr(instance, "_audit_members", []),
    )


def _authenticator(authenticator: Any) -> dict[str, Any]:
    return {"factor": str(getattr(authenticator, "type", "") or ""), "factor_id": authenticator.pk}


@receiver(mfa_signals.authenticator_added)
def _mfa_added(sender: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    record_identity(EventKind.MFA_ENROLLED, subject=user, **_authenticator(authenticator))


@receiver(mfa_signals.authenticator_removed)
def _mfa_removed(sender: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    record_identity(EventKind.MFA_REMOVED, subject=user, **_authenticator(authenticator))


@receiver(mfa_signals.authenticator_reset)
def _mfa_reset(sender: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    record_identity(EventKind.MFA_RESET, subject=user, **_authenticator(authenticator))


@receiver(mfa_signals.authenticator_used)
def _mfa_used(sender: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    if kwargs.get("reauthenticated"):
        factor = _authenticator(authenticator)
        record_identity(EventKind.AUTH_REAUTHENTICATED, subject=user, method="mfa", **factor)


@receiver(mfa_signals.authentication_failed)
def _mfa_failed(sender: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    record_identity(
        EventKind.AUTH_MFA_FAILED,
        subject=user,
        reauthentication=bool(kwargs.get("reauthentication")),
        **_authenticator(authenticator),
    )

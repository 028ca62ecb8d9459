"""Accounts of people: one by name with its roles, in one round trip (the command line's
acting user); and the writes of the user pages (create, roles, deactivate, reactivate)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress
from allauth.account.utils import user_pk_to_url_str
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db import connection as db
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from audit.kinds import EventKind
from governance.identity_events import identity_context
from governance.models import Agent, ApiToken
from governance.roles import ADMIN, ROLES, groups_known
from governance.services.agents import token_revoke
from governance.services.caller import Caller, record
from governance.services.rowload import column, columns, instance, table, width
from governance.session_store import SessionStore

User = get_user_model()


@cache
def _active_user_sql() -> str:
    memberships: Any = User.groups.through
    return (
        f"SELECT {columns(User, 'u')}, g.{column(Group, 'name')} FROM {table(User)} u "
        f"LEFT JOIN {table(memberships)} m ON m.{column(memberships, 'user')} = "
        f"u.{column(User, 'id')} "
        f"LEFT JOIN {table(Group)} g ON g.{column(Group, 'id')} = m.{column(memberships, 'group')} "
        f"WHERE u.{column(User, User.USERNAME_FIELD)} = %s AND u.{column(User, 'is_active')}"
    )


def active_user(username: str) -> Any:
    """The active account named `username`, its groups known to `user_groups`; else None."""
    if not isinstance(username, str) or "\x00" in username:
        return None
    with db.cursor() as cursor:
        cursor.execute(_active_user_sql(), [username])
        rows = cursor.fetchall()
    if not rows:
        return None
    user = instance(User, rows[0][: width(User)])
    groups_known(user, [row[-1] for row in rows if row[-1] is not None])
    return user


# ---------------------------------------------------------------- people, managed by admins
#
# Warden's user pages (/manage/users/) call these. The account events themselves (created,
# added to or removed from a role, deactivated, reactivated) come from the signals in
# governance/identity_events.py, as they do for Django admin or a shell, so the identity watch
# finds each change explained; `identity_context` adds what the service knows of the change
# as a whole (the roles before and after, the sessions and tokens it ended). Nothing here
# deletes an account: the trail names people long after they leave.


class AccountError(ValueError):
    """A change to an account that cannot be made; the message says why. `field` names the
    form field it concerns, if any."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _refuse_agent(user: Any) -> None:
    if Agent.objects.filter(user_id=user.pk).exists():
        raise AccountError("This account is an agent's: manage it on its agent page.")


def _lock_admins() -> None:
    """Role changes and deactivations take the admin role's row lock first, so two admins
    removing each other at the same moment cannot together leave no admin."""
    list(Group.objects.select_for_update().filter(name=ADMIN))


def _locked(user: Any) -> Any:
    return User._default_manager.select_for_update().get(pk=user.pk)


def _is_admin(user: Any) -> bool:
    return bool(user.is_superuser or user.groups.filter(name=ADMIN).exists())


def _another_admin(user: Any) -> bool:
    """Whether an active person other than `user` is an admin (agents never count: they
    cannot sign in to these pages)."""
    return (
        User._default_manager.filter(is_active=True, agent__isnull=True)
        .filter(Q(is_superuser=True) | Q(groups__name=ADMIN))
        .exclude(pk=user.pk)
        .exists()
    )


def _is_self(caller: Caller, user: Any) -> bool:
    return getattr(caller.user, "pk", None) is not None and caller.user.pk == user.pk


def _roles(names: Any) -> list[Any]:
    wanted = set(names)
    unknown = sorted(wanted - set(ROLES))
    if unknown:
        raise AccountError(f"No such role: {', '.join(unknown)}.", field="roles")
    groups = list(Group.objects.filter(name__in=wanted))
    missing = sorted(wanted - {g.name for g in groups})
    if missing:  # a role's group deleted in Django admin: say so rather than half-apply
        raise AccountError(f"The role {', '.join(missing)} does not exist.", field="roles")
    return groups


def account_create(
    *,
    caller: Caller,
    username: str,
    email: str,
    first_name: str = "",
    last_name: str = "",
    roles: list[str],
) -> tuple[Any, str]:
    """A new person's account, without a password, and the path of a one-time link where they
    set one (see `account_password_link`)."""
    username = (username or "").strip()
    email = (email or "").strip()
    if not username or len(username) > 150:
        raise AccountError("Give a username of at most 150 characters.", field="username")
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise AccountError(
            "A username may contain letters, digits and @/./+/-/_ only.", field="username"
        ) from None
    if User._default_manager.filter(username__iexact=username).exists():
        raise AccountError(
            f"The username {username!r} is taken by an account or an agent.", field="username"
        )
    try:
        validate_email(email)
    except ValidationError:
        raise AccountError("Give a valid e-mail address.", field="email") from None
    if (
        User._default_manager.filter(email__iexact=email).exists()
        or EmailAddress.objects.filter(email__iexact=email).exists()
    ):
        raise AccountError(f"Another account has the e-mail {email}.", field="email")
    groups = _roles(roles)
    names = sorted(g.name for g in groups)
    try:
        with transaction.atomic():
            user = User(
                username=username,
                email=email,
                first_name=(first_name or "").strip()[:150],
                last_name=(last_name or "").strip()[:150],
                is_active=True,
            )
            user.set_unusable_password()  # they choose it, through the link; nobody else knows it
            with identity_context(roles=names, sign_in="password set through a one-time link"):
                user.save()
            with identity_context(roles_before=[], roles_after=names):
                user.groups.add(*groups)
            path = account_password_link(caller=caller, user=user)
    except IntegrityError:  # the same username made at the same moment by another admin
        raise AccountError(f"The username {username!r} is taken.", field="username") from None
    return user, path


def account_password_link(*, caller: Caller, user: Any) -> str:
    """The path of a link where `user` sets their first password (allauth's reset-from-key
    page). The key is bound to the password's hash: setting a password spends it, and each
    new link replaces the unusable password's random marker, so any earlier link stops
    working; it expires after PASSWORD_RESET_TIMEOUT. Only for an active local account that
    has no password yet: never a way for an admin to take over an account in use, nor to
    give a local password to someone who signs in through the identity provider (who would
    keep it after the provider drops them)."""
    with transaction.atomic():
        user = _locked(user)  # a password being set right now is never wiped
        _refuse_agent(user)
        if not user.is_active:
            raise AccountError("The account is deactivated: reactivate it first.")
        if SocialAccount.objects.filter(user_id=user.pk).exists():
            raise AccountError("This person signs in through the identity provider.")
        if user.has_usable_password():
            raise AccountError("This person has set a password already; they change it themselves.")
        # An account created from the command line (createsuperuser --noinput) or one already
        # in use (signed in, or calling the API with its tokens) has no password to protect it
        # from whoever holds a link: a link is only for a new person who never came in.
        if user.is_superuser or user.is_staff:
            raise AccountError(
                "A superuser or staff account sets its password from the command line "
                "(manage.py changepassword), never through a link an admin holds."
            )
        if user.last_login is not None or ApiToken.objects.filter(user_id=user.pk).exists():
            raise AccountError(
                "This account has been used already (signed in or issued API tokens): "
                "a set-password link would let whoever holds it take it over."
            )
        user.set_unusable_password()
        user.save(update_fields=["password"])
        key = default_token_generator.make_token(user)
        valid_until = timezone.now() + dt.timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)
        # The identity watch takes this event as the explanation of the new marker.
        record(
            EventKind.USER_PASSWORD_LINK_ISSUED,
            caller,
            detail={
                "user": user.get_username(),
                "user_id": user.pk,
                "valid_until": valid_until.isoformat(),
            },
        )
    return reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": key},
    )


def account_roles_set(
    *, caller: Caller, user: Any, roles: list[str]
) -> tuple[list[str], list[str]]:
    """Give `user` exactly these of Warden's roles (other groups are left alone); the roles
    before and after. They apply from the person's next request: roles are read per request."""
    groups = _roles(roles)
    with transaction.atomic():
        _lock_admins()
        user = _locked(user)
        _refuse_agent(user)
        before = sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        after = sorted(g.name for g in groups)
        if before == after:
            return before, after
        if ADMIN in before and ADMIN not in after:
            if _is_self(caller, user):
                raise AccountError("You cannot remove your own admin role: another admin can.")
            if user.is_active and not user.is_superuser and not _another_admin(user):
                raise AccountError("This is the last active admin: make someone else admin first.")
        with identity_context(roles_before=before, roles_after=after):
            user.groups.remove(
                *[g for g in user.groups.all() if g.name in set(before) - set(after)]
            )
            user.groups.add(*[g for g in groups if g.name not in before])
    return before, after


def _sessions_of(user: Any) -> list[str]:
    """The stored keys of the sessions signed in as `user`. Sessions are kept under a digest
    of their cookie (governance/session_store.py) with their data signed, so each is read;
    an admin's action, not a hot path."""
    store = SessionStore()
    model = store.get_model_class()
    rows = model.objects.filter(expire_date__gt=timezone.now()).values_list(
        "session_key", "session_data"
    )
    return [
        key
        for key, data in rows.iterator(chunk_size=500)
        if str(store.decode(data).get(SESSION_KEY)) == str(user.pk)
    ]


def _end_sessions(keys: list[str]) -> None:
    SessionStore.get_model_class().objects.filter(session_key__in=keys).delete()


def account_deactivate(*, caller: Caller, user: Any) -> dict[str, Any]:
    """Stop a person: the account cannot sign in, its sessions end now, its personal tokens
    are revoked, and the agents it owns stop with it (their tokens work again if it is
    reactivated; its own tokens do not). Nothing is deleted. What it did, for the message."""
    with transaction.atomic():
        _lock_admins()
        user = _locked(user)
        _refuse_agent(user)
        if _is_self(caller, user):
            raise AccountError("You cannot deactivate your own account: another admin can.")
        if not user.is_active:
            return {"already": True}
        if _is_admin(user) and not _another_admin(user):
            raise AccountError("This is the last active admin: make someone else admin first.")
        tokens = list(ApiToken.objects.filter(user_id=user.pk, revoked_at__isnull=True))
        sessions = _sessions_of(user)
        agents = sorted(
            Agent.objects.filter(owner_id=user.pk).values_list("user__username", flat=True)
        )
        done = {
            "sessions_ended": len(sessions),
            "tokens_revoked": [t.shown for t in tokens],
            "agents_stopped": agents,
        }
        user.is_active = False
        fields = ["is_active"]
        if not user.has_usable_password():
            # A new marker spends any set-password link still out: a leaked link must not
            # wait for the account's reactivation.
            user.set_unusable_password()
            fields.append("password")
            done["password_links_cancelled"] = True
        with identity_context(**done):
            user.save(update_fields=fields)
        for token in tokens:
            token_revoke(caller=caller, key_id=token.key_id)
        _end_sessions(sessions)
    return done


def account_reactivate(*, caller: Caller, user: Any) -> dict[str, Any]:
    """Let a deactivated person sign in again. Any session left from before ends too (a
    sign-in racing the deactivation), so they start afresh; revoked tokens stay revoked."""
    with transaction.atomic():
        user = _locked(user)
        _refuse_agent(user)
        if user.is_active:
            return {"already": True}
        sessions = _sessions_of(user)
        done = {"sessions_ended": len(sessions)}
        user.is_active = True
        with identity_context(**done):
            user.save(update_fields=["is_active"])
        _end_sessions(sessions)
    return done

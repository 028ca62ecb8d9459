"""Accounts, roles, passwords, second factors and re-authentication reach the audit trail,
whichever way they change: Warden's pages, Django admin, a shell command, an identity
provider's first sign-in, or code."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from audit.models import AuditEvent
from tests.conftest import subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


def events(kind: str, **detail: Any) -> list[AuditEvent]:
    found = AuditEvent.objects.filter(kind=kind).order_by("id")
    return [e for e in found if all(e.detail.get(k) == v for k, v in detail.items())]


def test_code_that_changes_an_account_is_recorded_as_the_system(groups: Any) -> None:
    user = User.objects.create_user("mallory", password="first-pass-123!")
    (created,) = events("user.created", user="mallory")
    assert created.channel == "system" and created.detail["superuser"] is False
    assert created.detail["user_id"] == user.pk

    user.is_superuser = True
    user.save()
    user.is_staff = True
    user.is_active = False
    user.save()
    user.username = "mallory2"
    user.save()
    user.is_active = True
    user.is_superuser = False
    user.save()
    assert [e.kind for e in AuditEvent.objects.filter(kind__startswith="user.").order_by("id")] == [
        "user.created",
        "user.superuser_granted",
        "user.deactivated",
        "user.staff_granted",
        "user.renamed",
        "user.reactivated",
        "user.superuser_revoked",
    ]
    assert events("user.renamed")[0].detail == {
        "user": "mallory2",
        "user_id": user.pk,
        "previous": "mallory",
    }


def test_a_sign_in_stamp_costs_no_event_and_no_query(alice: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    before = AuditEvent.objects.count()
    with CaptureQueriesContext(connection) as queries:
        alice.save(update_fields=["last_login"])
    assert len(queries) == 1  # the UPDATE alone: no lookup of the old row
    assert AuditEvent.objects.count() == before


def test_password_changes_are_recorded_but_never_the_password(alice: Any) -> None:
    alice.set_password("a-brand-new-secret-9")
    alice.save()
    (changed,) = events("auth.password_changed", user="alice")
    assert "a-brand-new-secret-9" not in str(changed.detail)
    assert alice.password not in str(changed.detail)


@override_settings(
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
)
def test_a_hash_upgrade_at_sign_in_is_not_a_password_change(groups: Any) -> None:
    from django.contrib.auth.hashers import make_password

    user = User.objects.create(username="old", password=make_password("old-pass-123!", None, "md5"))
    assert user.check_password("old-pass-123!")  # re-hashes with PBKDF2 and saves
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_")
    assert events("auth.password_changed") == []


def test_role_membership_is_recorded_from_both_sides(alice: Any, groups: Any) -> None:
    start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    alice.groups.add(groups["approver"], groups["analyst"])  # analyst: already a member
    groups["admin"].user_set.add(alice)
    alice.groups.remove(groups["approver"])
    groups["auditor"].user_set.add(alice)
    alice.groups.set([groups["auditor"]])  # removes analyst and admin
    groups["auditor"].user_set.clear()
    recorded = [
        (e.kind, e.detail["role"], e.detail["user"])
        for e in AuditEvent.objects.filter(id__gt=start, kind__startswith="role.").order_by("id")
    ]
    assert recorded == [
        ("role.member_added", "approver", "alice"),
        ("role.member_added", "admin", "alice"),
        ("role.member_removed", "approver", "alice"),
        ("role.member_added", "auditor", "alice"),
        ("role.member_removed", "analyst", "alice"),
        ("role.member_removed", "admin", "alice"),
        ("role.member_removed", "auditor", "alice"),
    ]


def test_roles_created_renamed_and_deleted_with_their_members(alice: Any) -> None:
    group = Group.objects.create(name="contractors")
    alice.groups.add(group)
    group.name = "admin-contractors"
    group.save()
    group.delete()
    assert events("role.created", role="contractors")
    assert events("role.renamed", role="admin-contractors", previous="contractors")
    (deleted,) = events("role.deleted", role="admin-contractors")
    assert deleted.detail["members"] == ["alice"]


def test_deleting_a_user_is_recorded_and_leaves_their_events(alice: Any) -> None:
    Client().post(reverse("account_login"), {"login": "alice", "password": "alice-pass-123!"})
    pk = alice.pk
    alice.delete()
    (deleted,) = events("user.deleted", user="alice")
    assert deleted.detail["roles"] == ["analyst"] and deleted.detail["user_id"] == pk
    assert AuditEvent.objects.filter(kind="auth.login", actor_id=pk, actor_name="alice").exists()


def _admin_change(client: Client, user: Any, **changes: Any) -> Any:
    page = client.get(reverse("admin:auth_user_change", args=[user.pk]))
    assert page.status_code == 200
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if name in ("groups", "user_permissions"):
            data[name] = [getattr(v, "pk", v) for v in (value or [])]
        elif name in ("last_login", "date_joined"):
            data[f"{name}_0"] = value.date().isoformat() if value else ""
            data[f"{name}_1"] = value.time().isoformat(timespec="seconds") if value else ""
        elif name == "password":
            continue
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = value or ""
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        elif value is True:
            data[name] = "on"
        else:
            data[name] = value
    return client.post(reverse("admin:auth_user_change", args=[user.pk]), data)


def test_django_admin_changes_name_the_admin_and_their_address(alice: Any, groups: Any) -> None:
    root = User.objects.create_superuser("root", password="root-pass-123!")
    client = Client(REMOTE_ADDR="10.1.2.3")
    client.force_login(root)
    response = _admin_change(
        client,
        alice,
        is_superuser=True,
        is_staff=True,
        groups=[groups["analyst"].pk, groups["admin"].pk],
    )
    assert response.status_code == 302
    changed = [
        *events("user.superuser_granted", user="alice"),
        *events("user.staff_granted", user="alice"),
        *events("role.member_added", user="alice", role="admin"),
    ]
    assert len(changed) == 3
    for event in changed:
        assert (event.actor_name, event.actor_id, event.channel) == ("root", root.pk, "web")
        assert event.source_ip == "10.1.2.3"


def test_a_shell_command_is_recorded_as_the_command_line(db: Any) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "createsuperuser",
            "--noinput",
            "--username",
            "ops",
            "--email",
            "ops@example.com",
        ],
        env=subprocess_env(DJANGO_SUPERUSER_PASSWORD="ops-pass-123!-long"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (created,) = events("user.created", user="ops")
    assert created.channel == "cli" and created.actor_id is None
    assert created.actor_name.startswith("manage.py createsuperuser (os user ")
    assert created.detail["superuser"] is True and created.detail["staff"] is True


def test_identity_provider_provisioning_records_the_account_and_its_roles(
    groups: Any,
) -> None:
    from allauth.socialaccount.models import SocialAccount, SocialLogin
    from django.contrib.sessions.backends.db import SessionStore

    from governance.auth import SocialAccountAdapter

    request = RequestFactory().get("/accounts/oidc/login/callback/", REMOTE_ADDR="10.9.9.9")
    request.session = SessionStore()
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    sociallogin = SocialLogin(
        user=User(username="ines", email="ines@example.com"),
        account=SocialAccount(provider="oidc", uid="sub-123"),
    )
    with override_settings(OIDC_DEFAULT_GROUPS=["analyst"]):
        SocialAccountAdapter().save_user(request, sociallogin)
    (created,) = events("user.created", user="ines")
    (added,) = events("role.member_added", user="ines")
    for event in (created, added):
        assert event.actor_name == "identity provider oidc"
        assert event.detail["via"] == "identity provider oidc"
        assert event.source_ip == "10.9.9.9"
    assert added.detail["role"] == "analyst"


def test_mfa_and_reauthentication_are_recorded(alice: Any) -> None:
    from allauth.mfa.totp.internal.auth import (
        format_hotp_value,
        hotp_value,
        yield_hotp_counters_from_time,
    )

    client = Client()
    client.post(reverse("account_login"), {"login": "alice", "password": "alice-pass-123!"})
    client.get(reverse("mfa_activate_totp"))
    client.post(reverse("account_reauthenticate"), {"password": "wrong-password"})
    client.post(reverse("account_reauthenticate"), {"password": "alice-pass-123!"})
    assert [e.detail["method"] for e in events("auth.reauth_failed", user="alice")] == ["password"]
    assert [e.detail["method"] for e in events("auth.reauthenticated", user="alice")] == [
        "password"
    ]
    page = client.get(reverse("mfa_activate_totp"))
    secret = page.context["form"].secret
    client.post(reverse("mfa_activate_totp"), {"code": "000000"})  # a wrong code is refused
    counter = next(iter(yield_hotp_counters_from_time()))
    client.post(
        reverse("mfa_activate_totp"), {"code": format_hotp_value(hotp_value(secret, counter))}
    )
    (enrolled,) = events("mfa.enrolled", user="alice", factor="totp")
    assert enrolled.actor_name == "alice" and enrolled.channel == "web"
    assert secret not in str(AuditEvent.objects.values_list("detail", flat=True))

    client.post(reverse("mfa_deactivate_totp"))
    (removed,) = events("mfa.removed", user="alice", factor="totp")
    assert removed.actor_name == "alice"

"""Identity (allauth: MFA, rate limits, OIDC from env), connection testing and the demo command."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from audit.models import AuditEvent
from governance.models import AccessGrant, Connection, QueryRun

pytestmark = pytest.mark.django_db(transaction=True)

OIDC = {
    "openid_connect": {
        "APPS": [
            {
                "provider_id": "oidc",
                "name": "Acme SSO",
                "client_id": "warden",
                "secret": "s3cret",
                "settings": {"server_url": "https://idp.example.com"},
            }
        ]
    }
}


def test_the_login_page_offers_the_configured_identity_provider(client: Client) -> None:
    with override_settings(SOCIALACCOUNT_PROVIDERS=OIDC):
        page = client.get(reverse("account_login"))
    assert b"Acme SSO" in page.content
    assert b"s3cret" not in page.content


def test_a_user_sets_up_totp_and_then_needs_a_code_to_sign_in(alice: Any) -> None:
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import (
        format_hotp_value,
        hotp_value,
        yield_hotp_counters_from_time,
    )

    client = Client()
    client.post(reverse("account_login"), {"login": "alice", "password": "alice-pass-123!"})
    assert client.get(reverse("mfa_activate_totp")).status_code == 302  # asks the password again
    client.post(reverse("account_reauthenticate"), {"password": "alice-pass-123!"})
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = page.context["form"].secret
    counter = next(iter(yield_hotp_counters_from_time()))
    code = format_hotp_value(hotp_value(secret, counter))
    client.post(reverse("mfa_activate_totp"), {"code": code})
    assert Authenticator.objects.filter(user=alice, type="totp").exists()

    fresh = Client()
    response = fresh.post(
        reverse("account_login"), {"login": "alice", "password": "alice-pass-123!"}
    )
    assert response.status_code == 302
    assert "2fa" in response["Location"]  # the password alone does not sign in
    assert fresh.get(reverse("editor")).status_code == 302


def test_repeated_failed_logins_lock_the_account_for_a_while(alice: Any) -> None:
    client = Client()
    for _ in range(6):
        client.post(reverse("account_login"), {"login": "alice", "password": "nope"})
    response = client.post(
        reverse("account_login"), {"login": "alice", "password": "alice-pass-123!"}
    )
    assert response.status_code in (200, 429)  # refused even with the right password
    assert b"Too many failed login attempts" in response.content
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(kind="auth.login_failed").count() >= 5
    assert AuditEvent.objects.filter(kind="auth.login_throttled", actor_name="alice").exists()


def test_admin_tests_a_connection_for_real(carol: Any, pg_conn: Any, db: Any) -> None:
    client = Client()
    client.force_login(carol)
    page = client.post(reverse("connection_test", args=[pg_conn.pk]), follow=True)
    assert b"Connected: PostgreSQL" in page.content
    broken = Connection.objects.create(
        name="broken", engine="postgresql", host="127.0.0.1", port=1, database="x"
    )
    page = client.post(reverse("connection_test", args=[broken.pk]), follow=True)
    assert b"connect:" in page.content
    assert AuditEvent.objects.filter(kind="connection.tested").count() == 2


def test_demo_seeds_users_targets_and_grants_idempotently(
    pg_target: str, mysql_target: str, groups: Any
) -> None:
    args = [
        "--seed-only",
        "--customers", "1000",
        "--postgres", f"postgresql://postgres@127.0.0.1:5432/{pg_target}",
        "--mysql", f"mysql://root@127.0.0.1:3306/{mysql_target}",
    ]  # fmt: skip
    call_command("demo", *args)
    call_command("demo", *args)
    users = get_user_model().objects.filter(
        username__in=["admin", "analyst", "approver", "lead", "auditor"]
    )
    assert users.count() == 5
    assert {c.name for c in Connection.objects.all()} == {"demo", "demo-postgres", "demo-mysql"}
    for connection in Connection.objects.all():
        analyst = AccessGrant.objects.get(connection=connection, group__name="analyst")
        assert analyst.capabilities == ["read", "write", "export"]
        assert connection.environment == "production"
    analyst_user = users.get(username="analyst")
    assert analyst_user.check_password("warden-analyst-demo")
    # one write waits in the approvers' queue, however often the demo is seeded
    held = QueryRun.objects.filter(user=analyst_user, status="pending_approval")
    assert held.count() == 1 and held.get().approval.status == "pending"
    analyst_user.set_password("a-new-private-password-1")
    analyst_user.save()
    call_command("demo", *args)
    analyst_user.refresh_from_db()
    assert analyst_user.check_password("a-new-private-password-1")  # never reset


def test_the_demo_prints_its_instructions_as_one_block_without_task_logs(
    groups: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    from io import StringIO

    from governance.management.commands.demo import TRY, USERS

    out = StringIO()
    with caplog.at_level(logging.INFO):
        call_command("demo", "--seed-only", "--customers", "50", stdout=out)
    # the seeded write ran an eager task, which Celery logs at INFO: not in the demo's output
    assert QueryRun.objects.filter(purpose__endswith="(demo)").exists()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("celery")] == []
    assert logging.getLogger("celery").level == logging.NOTSET  # quiet only while it runs
    text = out.getvalue()
    block = text[text.index("Demo accounts") :]
    assert block.rstrip().endswith(TRY)  # accounts, then what to try, nothing between
    for username, (_, password) in USERS.items():
        assert f"  {username:<9} {password}" in block


def test_the_demo_server_prints_the_instructions_after_its_own_banner() -> None:
    from io import StringIO

    from governance.management.commands.demo import DemoServer

    out = StringIO()
    server = DemoServer(stdout=out)
    server.addr = "0"  # as runserver's handle() sets them for --addr 0:8000
    server._raw_ipv6 = False  # type: ignore[attr-defined]
    server.instructions = "Warden is at {url}/"
    server.on_bind(8000)
    text = out.getvalue()
    assert text.index("Starting development server") < text.index("Warden is at")
    assert text.rstrip().endswith("Warden is at http://127.0.0.1:8000/")

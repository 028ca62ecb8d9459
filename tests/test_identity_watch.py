"""The identity watch finds account, role, second-factor and login changes that no event
recorded: `QuerySet.update()`, `bulk_create()`, through-table rows, plain SQL, and plain SQL
with triggers switched off, each named with the account it touched. Changes made the ordinary
way (signals fire) are explained by their own events and raise nothing."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test import Client

from audit.identity_watch import current_state, watch
from audit.models import AuditEvent, IdentitySnapshot
from evidence.sections import collect
from governance.services.caller import Caller

pytestmark = pytest.mark.django_db

User = get_user_model()


def _unrecorded() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind="identity.unrecorded_change").order_by("id"))


@pytest.fixture
def watched(alice: Any, bob: Any, carol: Any) -> dict[str, Any]:
    """Three accounts and the roles, with the watch's first snapshot taken."""
    first = watch(settle_s=0)
    assert first.baseline and not first.unexplained
    return {"alice": alice, "bob": bob, "carol": carol}


def test_the_first_look_is_a_baseline_and_an_unchanged_state_records_nothing(
    watched: dict[str, Any],
) -> None:
    (snapshot,) = AuditEvent.objects.filter(kind="identity.snapshot")
    assert snapshot.detail["baseline"] is True and snapshot.detail["accounts"] == 3
    assert snapshot.actor_name == "identity watch" and snapshot.channel == "system"
    before = AuditEvent.objects.count()
    again = watch(settle_s=0)
    assert not again.changed and AuditEvent.objects.count() == before
    # The snapshot holds fingerprints, never a password hash or a second factor's secret.
    stored = str(IdentitySnapshot.objects.get().state)
    assert "pbkdf2" not in stored and "md5$" not in stored and "argon2" not in stored


def test_changes_made_the_ordinary_way_are_explained_by_their_own_events(
    watched: dict[str, Any],
) -> None:
    alice = watched["alice"]
    mallory = User.objects.create_user("mallory", password="mallory-pass-123!")
    mallory.groups.add(Group.objects.get(name="admin"))
    alice.is_superuser = True
    alice.email = "alice@example.com"
    alice.set_password("a-new-password-123!")
    alice.save()
    alice.user_permissions.add(Permission.objects.get(codename="view_group"))
    Group.objects.get(name="auditor").permissions.add(Permission.objects.get(codename="add_group"))
    Authenticator.objects.create(user=alice, type="totp", data={"secret": "x"})
    EmailAddress.objects.create(user=alice, email="alice@example.com", verified=True, primary=True)
    SocialAccount.objects.create(user=alice, provider="openid_connect", uid="alice-at-idp")
    # The enrolment itself comes through allauth's signal; the row alone is the ORM's.
    from allauth.mfa import signals

    signals.authenticator_added.send(
        sender=Authenticator, request=None, user=alice, authenticator=Authenticator.objects.get()
    )
    result = watch(settle_s=0)
    assert result.changed and not result.unexplained and not result.problems, [
        c.as_detail() for c in result.unexplained
    ]
    assert not _unrecorded()
    kinds = set(AuditEvent.objects.values_list("kind", flat=True))
    assert {
        "user.permission_granted",
        "role.permission_granted",
        "user.email_changed",
        "user.email_address_added",
        "user.login_linked",
    } <= kinds


def _superuser_by_update(w: dict[str, Any]) -> int:
    User.objects.filter(pk=w["alice"].pk).update(is_superuser=True)
    return w["alice"].pk


def _account_by_bulk_create(w: dict[str, Any]) -> int:
    User.objects.bulk_create([User(username="ghost", is_superuser=True)])
    return User.objects.get(username="ghost").pk


def _role_by_through_table(w: dict[str, Any]) -> int:
    User.groups.through.objects.create(user=w["alice"], group=Group.objects.get(name="admin"))
    return w["alice"].pk


def _permission_by_through_table(w: dict[str, Any]) -> int:
    User.user_permissions.through.objects.create(
        user=w["alice"], permission=Permission.objects.get(codename="change_user")
    )
    return w["alice"].pk


def _password_by_sql(w: dict[str, Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE auth_user SET password = 'md5$planted$0' WHERE id = %s", [w["bob"].pk]
        )
    return w["bob"].pk


def _totp_planted_by_sql(w: dict[str, Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO mfa_authenticator (user_id, type, data, created_at) "
            "VALUES (%s, 'totp', '{\"secret\": \"planted\"}', now())",
            [w["carol"].pk],
        )
    return w["carol"].pk


def _totp_secret_swapped(w: dict[str, Any]) -> int:
    Authenticator.objects.filter(pk=w["factor"].pk).update(data={"secret": "attacker"})
    return w["alice"].pk


def _login_linked_by_bulk_create(w: dict[str, Any]) -> int:
    SocialAccount.objects.bulk_create(
        [SocialAccount(user=w["alice"], provider="openid_connect", uid="attacker")]
    )
    return w["alice"].pk


def _email_by_update(w: dict[str, Any]) -> int:
    User.objects.filter(pk=w["bob"].pk).update(email="attacker@example.com")
    return w["bob"].pk


def _superuser_with_triggers_off(w: dict[str, Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE auth_user SET is_superuser = true WHERE id = %s", [w["carol"].pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
    return w["carol"].pk


@pytest.mark.parametrize(
    "change, what",
    [
        (_superuser_by_update, "superuser set to True"),
        (_account_by_bulk_create, "account created"),
        (_role_by_through_table, "added to a role"),
        (_permission_by_through_table, "Django permission given"),
        (_password_by_sql, "password changed"),
        (_totp_planted_by_sql, "second factor added"),
        (_totp_secret_swapped, "second factor changed"),
        (_login_linked_by_bulk_create, "identity-provider login added"),
        (_email_by_update, "account e-mail changed"),
        (_superuser_with_triggers_off, "superuser set to True"),
    ],
)
def test_a_change_no_event_recorded_is_found_and_named(
    watched: dict[str, Any], change: Callable[[dict[str, Any]], int], what: str
) -> None:
    factor = Authenticator.objects.create(user=watched["alice"], type="totp", data={"secret": "s"})
    watch(settle_s=0)  # the factor above was added without its signal: found, then settled
    _unrecorded_before = len(_unrecorded())
    user_id = change({**watched, "factor": factor})
    result = watch(settle_s=0)
    assert [(c.what, c.user_id) for c in result.unexplained] == [(what, user_id)]
    found = _unrecorded()[_unrecorded_before:]
    assert len(found) == 1
    (recorded,) = found[0].detail["changes"]
    assert recorded["what"] == what and recorded["user_id"] == user_id
    # No secret reaches the trail.
    assert "planted" not in str(found[0].detail) and 'attacker"' not in str(found[0].detail)
    # Once recorded, the new state is the snapshot: nothing more is raised.
    assert not watch(settle_s=0).changed


def test_a_genuine_event_of_another_kind_or_account_explains_nothing(
    watched: dict[str, Any],
) -> None:
    alice, bob = watched["alice"], watched["bob"]
    bob.is_superuser = True
    bob.save()  # recorded: user.superuser_granted about bob
    User.objects.filter(pk=alice.pk).update(is_superuser=True)  # not recorded
    result = watch(settle_s=0)
    assert [(c.what, c.user_id) for c in result.unexplained] == [
        ("superuser set to True", alice.pk)
    ]


def test_a_forged_explaining_event_explains_nothing(watched: dict[str, Any]) -> None:
    alice = watched["alice"]
    User.objects.filter(pk=alice.pk).update(is_superuser=True)
    # A row written straight into the trail, without Warden's MAC.
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                kind="user.superuser_granted",
                actor_name="admin",
                channel="web",
                detail={"user": "alice", "user_id": alice.pk},
                mac="0" * 64,
            )
        ]
    )
    assert [c.user_id for c in watch(settle_s=0).unexplained] == [alice.pk]


def test_an_edited_snapshot_is_refused_not_trusted(watched: dict[str, Any]) -> None:
    alice = watched["alice"]
    User.objects.filter(pk=alice.pk).update(is_superuser=True)
    # Someone rewrites the stored snapshot so the change looks old.
    snapshot = IdentitySnapshot.objects.get()
    IdentitySnapshot.objects.filter(pk=snapshot.pk).update(state=current_state())
    result = watch(settle_s=0)
    anchor = AuditEvent.objects.filter(kind="identity.snapshot").order_by("id").first()
    assert anchor is not None
    assert result.problems == [
        f"the snapshot that identity snapshot event {anchor.pk} names is missing or altered",
        "no trustworthy earlier snapshot: this one starts a new baseline",
    ]
    (event,) = _unrecorded()
    assert any("missing or altered" in p for p in event.detail["problems"])


def test_the_command_exits_1_and_names_the_change(
    watched: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("audit", "watch-identity")
    assert "unchanged" in capsys.readouterr().out
    User.objects.filter(pk=watched["bob"].pk).update(is_staff=True)
    with pytest.raises(SystemExit) as exit_code:
        call_command("audit", "watch-identity")
    assert exit_code.value.code == 1
    assert '"what": "staff set to True"' in capsys.readouterr().err


def test_evidence_counts_changes_made_outside_warden_as_an_exception(
    watched: dict[str, Any],
) -> None:
    User.objects.filter(pk=watched["carol"].pk).update(is_superuser=True)
    watch(settle_s=0)
    today = dt.date.today()
    evidence = collect(today - dt.timedelta(days=1), today + dt.timedelta(days=1))
    exceptions = next(s for s in evidence.sections if s.key == "exceptions")
    row = next(r for r in exceptions.rows if "outside Warden" in r["check"])
    assert row["count"] == 1 and row["evidence"] == f"event {_unrecorded()[0].pk}"


def test_django_admin_shows_no_second_factor_secret(admin_client: Client) -> None:
    assert admin_client.get("/django-admin/mfa/authenticator/").status_code == 404
    assert admin_client.get("/django-admin/socialaccount/socialapp/").status_code == 404
    assert admin_client.get("/django-admin/socialaccount/socialtoken/").status_code == 404
    assert admin_client.get("/django-admin/auth/user/").status_code == 200


# ---------------------------------------------------------------- Warden's own configuration


@pytest.fixture
def configured(watched: dict[str, Any], sqlite_conn: Any) -> dict[str, Any]:
    from governance.services.catalog import catalog_refresh

    catalog_refresh(connection=sqlite_conn)
    watch(settle_s=0)  # the connection, its grants and catalog, as set up: the new baseline
    return {**watched, "connection": sqlite_conn}


def _sql(statement: str, *params: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, list(params))


@pytest.mark.parametrize(
    "statement, what",
    [
        (
            'UPDATE governance_accessgrant SET capabilities = \'["read", "write", "ddl"]\' '
            "WHERE group_id = (SELECT id FROM auth_group WHERE name = 'analyst')",
            "access grant changed",
        ),
        (
            "INSERT INTO governance_guardrail_exempt_groups (guardrail_id, group_id) "
            "SELECT g.id, r.id FROM governance_guardrail g, auth_group r "
            "WHERE r.name = 'analyst' ORDER BY g.id LIMIT 1",
            "guardrail changed",
        ),
        (
            "UPDATE governance_catalogcolumn SET semantic_type = '' WHERE name = 'ssn'",
            "catalog column changed",
        ),
        (
            "UPDATE governance_connection SET host = 'attacker.example' WHERE name = 'demo'",
            "connection changed",
        ),
        (
            # Cached masking plans and exemptions are keyed by it: left bumped after a change
            # was undone, the change would stay in force in running processes.
            "UPDATE governance_connection SET catalog_version = catalog_version + 1",
            "connection's catalog version changed",
        ),
        (
            "UPDATE governance_guardrail SET updated_at = now() WHERE id = "
            "(SELECT min(id) FROM governance_guardrail)",
            "guardrail changed",
        ),
        (
            "INSERT INTO socialaccount_socialapp (provider, provider_id, name, client_id, "
            "secret, key, settings) VALUES ('openid_connect', 'evil', 'evil', 'c', 's', '', '{}')",
            "identity-provider app added",
        ),
    ],
)
def test_a_configuration_change_no_event_recorded_is_found(
    configured: dict[str, Any], statement: str, what: str
) -> None:
    _sql(statement)
    result = watch(settle_s=0)
    assert [c.what for c in result.unexplained] == [what]


def test_configuration_changed_through_warden_is_explained(configured: dict[str, Any]) -> None:
    from governance.services.admin import grant_create
    from governance.services.catalog_admin import masking_rule_set

    carol = User.objects.create_user("carol2", password="carol-pass-123!")
    grant_create(
        caller=Caller(user=carol),
        connection=configured["connection"],
        user=configured["alice"],
        capabilities=["write"],
    )
    masking_rule_set(caller=Caller(user=carol), semantic_type="email", strategy="hash")
    result = watch(settle_s=0)
    assert result.changed and not result.unexplained, [c.as_detail() for c in result.unexplained]


def test_deleting_an_account_or_a_role_is_one_change_not_its_cascade(
    configured: dict[str, Any],
) -> None:
    alice = configured["alice"]
    Authenticator.objects.create(user=alice, type="totp", data={"secret": "s"})
    watch(settle_s=0)
    from tests.conftest import grant

    grant(configured["connection"], alice, "read")
    watch(settle_s=0)
    alice.delete()  # signals record user.deleted; the factor and grant go with it
    Group.objects.get(name="auditor").delete()
    result = watch(settle_s=0)
    assert not result.unexplained, [c.as_detail() for c in result.unexplained]


# ---------------------------------------------------------------- the watch's own records


def test_rewinding_the_snapshot_lets_no_old_event_explain_a_new_change(
    watched: dict[str, Any],
) -> None:
    """The window comes from the MAC'd snapshot event, and an event explains one change."""
    alice = watched["alice"]
    alice.set_password("genuine-change-123!")
    alice.save()  # recorded
    assert not watch(settle_s=0).unexplained  # ... and used up
    IdentitySnapshot.objects.update(taken_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    User.objects.filter(pk=alice.pk).update(password="md5$rewound$0")
    assert [c.what for c in watch(settle_s=0).unexplained] == ["password changed"]


def test_an_event_explains_one_change_only(watched: dict[str, Any]) -> None:
    bob = watched["bob"]
    bob.is_staff = True
    bob.save()  # recorded: user.staff_granted
    User.objects.filter(pk=bob.pk).update(is_staff=False)
    User.objects.filter(pk=bob.pk).update(is_staff=True)  # back and forth: nets to one change
    carol = watched["carol"]
    User.objects.filter(pk=carol.pk).update(is_staff=True)
    result = watch(settle_s=0)
    assert [(c.what, c.user_id) for c in result.unexplained] == [("staff set to True", carol.pk)]


def test_forged_snapshot_events_do_not_stop_the_watch(watched: dict[str, Any]) -> None:
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(kind="identity.snapshot", channel="system", detail={"digest": "x"}, mac="x")
            for _ in range(25)
        ]
    )
    User.objects.filter(pk=watched["alice"].pk).update(is_superuser=True)
    result = watch(settle_s=0)
    assert "25 identity snapshot event(s) without Warden's MAC were passed over" in (
        result.problems
    )
    (event,) = _unrecorded()
    assert event.detail["problems"] == result.problems
    # The next look has a genuine snapshot again, newer than the forged ones.
    User.objects.filter(pk=watched["bob"].pk).update(is_superuser=True)
    assert [c.user_id for c in watch(settle_s=0).unexplained] == [watched["bob"].pk]


@pytest.mark.django_db(transaction=True)  # the lock of each look ends with its transaction
def test_a_watch_kept_from_looking_is_recorded_with_who_holds_its_lock(
    watched: dict[str, Any],
) -> None:
    """Thirteenth review: holding the watch's advisory lock in another session silenced it.
    Now a look that finds the lock taken for a minute is recorded, naming that session."""
    import psycopg
    from django.core.cache import cache

    from audit.identity_watch import BUSY_SINCE, LOCK

    settings_dict = connection.settings_dict
    other = psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        dbname=settings_dict["NAME"],
        autocommit=True,
        application_name="someone-else",
    )
    try:
        other.execute("SET lock_timeout = '5s'")
        other.execute("SELECT pg_advisory_lock(%s)", [LOCK])
        assert watch(settle_s=0).busy
        assert not AuditEvent.objects.filter(kind="identity.watch_blocked").exists()
        cache.set(BUSY_SINCE, time.time() - 120, 3600)  # as if it had lasted two minutes
        assert watch(settle_s=0).busy
        (blocked,) = AuditEvent.objects.filter(kind="identity.watch_blocked")
        assert blocked.detail["holder"]["application"] == "someone-else"
        assert watch(settle_s=0).busy  # recorded once per ten minutes, not at every look
        assert AuditEvent.objects.filter(kind="identity.watch_blocked").count() == 1
    finally:
        other.close()
    assert not watch(settle_s=0).busy

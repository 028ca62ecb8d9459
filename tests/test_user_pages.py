"""The user pages (/manage/users/): admins create people (who set their own password through a
one-time link), change their roles, deactivate and reactivate them, each change audited with
events the identity watch accepts; auditors see read-only; everyone else is refused. Agents are
never managed here, nobody locks out the last admin, and nothing deletes an account."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.identity_watch import watch
from audit.kinds import EventKind
from audit.models import AuditEvent
from governance.models import ApiToken
from governance.services.accounts import (
    AccountError,
    account_deactivate,
    account_roles_set,
)
from governance.services.agents import TokenRefused, agent_create, token_bearer, token_create
from governance.services.caller import Caller

pytestmark = pytest.mark.django_db

User = get_user_model()


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _link_on(page: str) -> str:
    match = re.search(r'id="set-password-link" class="token" readonly value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def _roles(user: Any) -> list[str]:
    return sorted(User.objects.get(pk=user.pk).groups.values_list("name", flat=True))


def _events(kind: EventKind, user: Any) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=kind, detail__user_id=user.pk).order_by("id"))


NEW = {
    "username": "frank",
    "email": "frank@example.com",
    "first_name": "Frank",
    "last_name": "Ocean",
    "roles": ["analyst", "approver"],
}


# ---------------------------------------------------------------- who may


@pytest.mark.parametrize("who", ["alice", "bob", "eve"])
def test_non_admins_are_refused_every_page_and_every_post(
    who: str, request: Any, carol: Any
) -> None:
    client = _client(request.getfixturevalue(who))
    pk = carol.pk
    for url in ("/manage/users/", "/manage/users/new/", f"/manage/users/{pk}/"):
        assert client.get(url).status_code == 403, url
    for url in (
        "/manage/users/new/",
        f"/manage/users/{pk}/roles/",
        f"/manage/users/{pk}/deactivate/",
        f"/manage/users/{pk}/reactivate/",
        f"/manage/users/{pk}/password-link/",
    ):
        assert client.post(url, {**NEW, "roles": ["admin"]}).status_code == 403, url
    assert not User.objects.filter(username="frank").exists()
    assert _roles(carol) == ["admin"] and User.objects.get(pk=pk).is_active


def test_an_auditor_sees_the_list_and_a_person_read_only(dave: Any, alice: Any) -> None:
    auditor = _client(dave)
    listing = auditor.get("/manage/users/").content.decode()
    assert "alice" in listing and "Read-only" in listing and "New user" not in listing
    page = auditor.get(f"/manage/users/{alice.pk}/").content.decode()
    assert "analyst" in page and "Save roles" not in page and "Deactivate" not in page
    assert auditor.get("/manage/users/new/").status_code == 403
    assert auditor.post(f"/manage/users/{alice.pk}/roles/", {"roles": ["admin"]}).status_code == 403
    assert auditor.post(f"/manage/users/{alice.pk}/deactivate/").status_code == 403
    assert _roles(alice) == ["analyst"] and User.objects.get(pk=alice.pk).is_active


def test_signed_out_visitors_are_sent_to_sign_in(carol: Any) -> None:
    response = Client().get("/manage/users/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert Client().post(f"/manage/users/{carol.pk}/deactivate/").status_code == 302
    assert User.objects.get(pk=carol.pk).is_active


def test_a_post_without_the_csrf_token_is_refused(carol: Any, alice: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(carol)
    assert client.post(f"/manage/users/{alice.pk}/deactivate/").status_code == 403
    assert client.post("/manage/users/new/", NEW).status_code == 403
    assert User.objects.get(pk=alice.pk).is_active
    assert not User.objects.filter(username="frank").exists()


def test_the_users_link_is_in_the_nav_of_admins_and_auditors_only(
    carol: Any, dave: Any, alice: Any
) -> None:
    assert 'href="/manage/users/"' in _client(carol).get("/agents/").content.decode()
    assert 'href="/manage/users/"' in _client(dave).get("/agents/").content.decode()
    assert 'href="/manage/users/"' not in _client(alice).get("/history/").content.decode()


# ---------------------------------------------------------------- the list


def test_the_list_shows_people_not_agents_and_searches_and_pages(
    carol: Any, alice: Any, bob: Any, groups: Any
) -> None:
    agent_create(caller=Caller(user=carol), name="nightly-bot", owner=alice, groups=["analyst"])
    for i in range(55):
        User.objects.create_user(f"person{i:02}", email=f"p{i}@example.com")
    admin = _client(carol)
    first = admin.get("/manage/users/").content.decode()
    assert "nightly-bot" not in first
    assert "58 people" in first and "Page 1 of 2" in first
    second = admin.get("/manage/users/?page=2").content.decode()
    assert "person54" in second and "Page 2 of 2" in second
    found = admin.get("/manage/users/?q=ALIC").content.decode()
    assert "1 person matches" in found and f"/manage/users/{alice.pk}/" in found
    assert "1 person matches" in admin.get("/manage/users/?q=p7@example").content.decode()
    approvers = admin.get("/manage/users/?role=approver").content.decode()
    assert "bob" in approvers and "alice" not in approvers
    # Nothing a visitor types is a 500: a NUL, a page that is not a number, an unknown role.
    for query in ("?q=%00", "?page=abc", "?page=999", "?role=root&state=x", "?q=" + "x" * 500):
        assert admin.get("/manage/users/" + query).status_code == 200, query


def test_the_list_says_who_has_a_second_factor_and_who_signs_in_through_sso(
    carol: Any, alice: Any, bob: Any
) -> None:
    from allauth.mfa.models import Authenticator
    from allauth.socialaccount.models import SocialAccount

    Authenticator.objects.create(user=alice, type="totp", data={"secret": "x"})
    SocialAccount.objects.create(user=bob, provider="openid_connect", uid="bob-at-idp")
    page = _client(carol).get("/manage/users/").content.decode()
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"<tr>\s*<td><a[^>]*>(\w+)</a>.*?</tr>", page, re.S)
    }
    assert ">on<" in rows["alice"] and "local password" in rows["alice"]
    assert "off" in rows["bob"] and "identity provider" in rows["bob"]


def test_an_agents_account_is_not_found_here_and_its_service_refuses(
    carol: Any, alice: Any, groups: Any
) -> None:
    agent, _ = agent_create(caller=Caller(user=carol), name="bot", owner=alice, groups=["analyst"])
    admin = _client(carol)
    pk = agent.user_id
    assert admin.get(f"/manage/users/{pk}/").status_code == 404
    assert admin.post(f"/manage/users/{pk}/roles/", {"roles": ["admin"]}).status_code == 404
    assert admin.post(f"/manage/users/{pk}/deactivate/").status_code == 404
    assert admin.post(f"/manage/users/{pk}/password-link/").status_code == 404
    with pytest.raises(AccountError, match="agent"):
        account_roles_set(caller=Caller(user=carol), user=agent.user, roles=["admin"])
    with pytest.raises(AccountError, match="agent"):
        account_deactivate(caller=Caller(user=carol), user=agent.user)
    assert _roles(agent.user) == ["analyst"] and User.objects.get(pk=pk).is_active


# ---------------------------------------------------------------- creating


def test_an_admin_creates_a_person_who_sets_their_own_password_once(
    carol: Any, groups: Any
) -> None:
    admin = _client(carol)
    assert admin.get("/manage/users/new/").status_code == 200
    response = admin.post("/manage/users/new/", NEW)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    link = _link_on(response.content.decode())
    frank = User.objects.get(username="frank")
    assert frank.email == "frank@example.com" and frank.get_full_name() == "Frank Ocean"
    assert _roles(frank) == ["analyst", "approver"]
    assert not frank.has_usable_password() and not frank.is_superuser and not frank.is_staff
    assert link.startswith("http://testserver/accounts/password/reset/key/")
    # The link is not on any later page.
    assert link not in admin.get(f"/manage/users/{frank.pk}/").content.decode()
    # Frank follows it, sets his password, and signs in with it.
    visitor = Client()
    form_page = visitor.get(link, follow=True)
    assert form_page.status_code == 200
    done = visitor.post(
        form_page.redirect_chain[-1][0],
        {"password1": "frank-chose-this-1!", "password2": "frank-chose-this-1!"},
    )
    assert done.status_code == 302
    assert User.objects.get(pk=frank.pk).check_password("frank-chose-this-1!")
    signed_in = Client()
    assert signed_in.login(username="frank", password="frank-chose-this-1!")
    # The link worked once.
    again = Client().get(link, follow=True).content.decode()
    assert "invalid" in again.lower()
    # No new link once he has a password: an admin never sets or resets it for him.
    refused = admin.post(f"/manage/users/{frank.pk}/password-link/", follow=True)
    assert "set a password already" in refused.content.decode()
    # Audited: created (with roles), each role added, the link issued, the password set.
    (created,) = _events(EventKind.USER_CREATED, frank)
    assert created.actor_id == carol.pk and created.detail["roles"] == ["analyst", "approver"]
    added = _events(EventKind.ROLE_MEMBER_ADDED, frank)
    assert sorted(e.detail["role"] for e in added) == ["analyst", "approver"]
    assert all(e.detail["roles_after"] == ["analyst", "approver"] for e in added)
    assert len(_events(EventKind.USER_PASSWORD_LINK_ISSUED, frank)) == 1
    assert len(_events(EventKind.AUTH_PASSWORD_CHANGED, frank)) == 1


def test_a_new_link_while_the_person_has_no_password_yet(carol: Any, groups: Any) -> None:
    admin = _client(carol)
    first = _link_on(admin.post("/manage/users/new/", NEW).content.decode())
    frank = User.objects.get(username="frank")
    assert watch(settle_s=0).baseline
    response = admin.post(f"/manage/users/{frank.pk}/password-link/")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    second = _link_on(response.content.decode())
    assert second.startswith("http://testserver/accounts/password/") and second != first
    assert len(_events(EventKind.USER_PASSWORD_LINK_ISSUED, frank)) == 2
    # The new link replaces the first: only one link is ever live.
    assert "invalid" in Client().get(first, follow=True).content.decode().lower()
    assert "invalid" not in Client().get(second, follow=True).content.decode().lower()
    result = watch(settle_s=0)  # the new password marker is explained by the link's event
    assert result.changed and not result.unexplained, [c.as_detail() for c in result.unexplained]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"username": "ALICE"}, "username", "is taken"),
        ({"username": "bad name!"}, "username", "letters, digits"),
        ({"username": "x" * 151}, "username", "at most 150"),
        ({"username": ""}, "username", "required"),
        ({"username": "nul\x00name"}, "username", "Null characters"),
        ({"email": "alice@EXAMPLE.com"}, "email", "Another account has"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"roles": ["root"]}, "roles", "not one of the available"),
    ],
)
def test_a_bad_new_person_is_a_form_error_never_a_500(
    carol: Any, alice: Any, change: dict[str, Any], field: str, message: str
) -> None:
    alice.email = "alice@example.com"
    alice.save(update_fields=["email"])
    response = _client(carol).post("/manage/users/new/", {**NEW, **change})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in str(errors[field]), errors
    assert User.objects.count() == 2


def test_a_name_an_agent_has_is_taken(carol: Any, alice: Any, groups: Any) -> None:
    agent_create(caller=Caller(user=carol), name="frank", owner=alice, groups=["analyst"])
    response = _client(carol).post("/manage/users/new/", NEW)
    assert response.status_code == 400 and "is taken" in str(response.context["form"].errors)


def test_the_superuser_and_staff_flags_cannot_be_set_here(carol: Any, groups: Any) -> None:
    _client(carol).post("/manage/users/new/", {**NEW, "is_superuser": "on", "is_staff": "on"})
    frank = User.objects.get(username="frank")
    assert not frank.is_superuser and not frank.is_staff
    _client(carol).post(
        f"/manage/users/{frank.pk}/roles/", {"roles": ["admin"], "is_superuser": "on"}
    )
    assert not User.objects.get(pk=frank.pk).is_superuser


# ---------------------------------------------------------------- roles


def test_a_role_change_is_recorded_with_before_and_after_and_applies_at_the_next_request(
    carol: Any, alice: Any, sqlite_conn: Any
) -> None:
    analyst = _client(alice)
    assert analyst.get("/editor/").status_code == 200
    admin = _client(carol)
    response = admin.post(f"/manage/users/{alice.pk}/roles/", {"roles": ["auditor"]}, follow=True)
    assert "roles are now: auditor" in response.content.decode()
    assert _roles(alice) == ["auditor"]
    # alice's very next request, in the session she already had.
    assert analyst.get("/editor/").status_code == 403
    assert analyst.get("/audit/").status_code == 200
    (removed,) = _events(EventKind.ROLE_MEMBER_REMOVED, alice)
    # (the cast's fixture added her to analyst: that event has no roles_after)
    (added,) = [e for e in _events(EventKind.ROLE_MEMBER_ADDED, alice) if "roles_after" in e.detail]
    assert removed.detail["role"] == "analyst" and added.detail["role"] == "auditor"
    for event in (removed, added):
        assert event.detail["roles_before"] == ["analyst"]
        assert event.detail["roles_after"] == ["auditor"]
        assert event.actor_id == carol.pk and event.channel == "web"
    # Saving the same roles again changes and records nothing.
    before = AuditEvent.objects.count()
    admin.post(f"/manage/users/{alice.pk}/roles/", {"roles": ["auditor"]})
    assert AuditEvent.objects.count() == before


def test_other_groups_a_person_is_in_are_left_alone(carol: Any, alice: Any) -> None:
    from django.contrib.auth.models import Group

    finance = Group.objects.create(name="finance")
    alice.groups.add(finance)
    _client(carol).post(f"/manage/users/{alice.pk}/roles/", {"roles": ["approver"]})
    assert _roles(alice) == ["approver", "finance"]


def test_an_admin_cannot_remove_their_own_admin_role_or_deactivate_themselves(
    carol: Any, groups: Any
) -> None:
    User.objects.create_user("grace").groups.add(groups["admin"])  # not the last admin
    admin = _client(carol)
    page = admin.post(f"/manage/users/{carol.pk}/roles/", {"roles": ["analyst"]})
    assert page.status_code == 400 and "your own admin role" in page.content.decode()
    assert _roles(carol) == ["admin"]
    # Adding a role to oneself is fine; keeping admin is the rule.
    admin.post(f"/manage/users/{carol.pk}/roles/", {"roles": ["admin", "analyst"]})
    assert _roles(carol) == ["admin", "analyst"]
    refused = admin.post(f"/manage/users/{carol.pk}/deactivate/", follow=True)
    assert "cannot deactivate your own account" in refused.content.decode()
    assert User.objects.get(pk=carol.pk).is_active
    assert "Deactivate</button>" not in admin.get(f"/manage/users/{carol.pk}/").content.decode()


def test_the_last_active_admin_keeps_the_role_and_the_account(carol: Any, groups: Any) -> None:
    # Another route than the web pages (a shell, a script) has no "self" to protect.
    system = Caller(user=None, channel="cli", name="manage.py shell")
    with pytest.raises(AccountError, match="last active admin"):
        account_roles_set(caller=system, user=carol, roles=["analyst"])
    with pytest.raises(AccountError, match="last active admin"):
        account_deactivate(caller=system, user=carol)
    assert _roles(carol) == ["admin"] and User.objects.get(pk=carol.pk).is_active
    # A deactivated admin does not count; an agent with the admin role does not count.
    grace = User.objects.create_user("grace", is_active=False)
    grace.groups.add(groups["admin"])
    agent_create(caller=system, name="admin-bot", owner=carol, groups=["admin"])
    with pytest.raises(AccountError, match="last active admin"):
        account_deactivate(caller=system, user=carol)
    # Once someone else is an admin, either may go.
    grace.is_active = True
    grace.save()
    account_roles_set(caller=system, user=carol, roles=["analyst"])
    assert _roles(carol) == ["analyst"]


def test_one_admin_removing_another_works_while_one_remains(carol: Any, groups: Any) -> None:
    grace = User.objects.create_user("grace")
    grace.groups.add(groups["admin"])
    admin = _client(carol)
    admin.post(f"/manage/users/{grace.pk}/roles/", {"roles": ["auditor"]})
    assert _roles(grace) == ["auditor"]


# ---------------------------------------------------------------- deactivating


def test_deactivating_ends_sessions_revokes_tokens_and_stops_owned_agents(
    carol: Any, alice: Any, groups: Any, sqlite_conn: Any
) -> None:
    analyst = _client(alice)
    assert analyst.get("/editor/").status_code == 200
    _, personal = token_create(caller=Caller(user=alice), user=alice, name="laptop")
    _, bots = agent_create(
        caller=Caller(user=carol), name="alices-bot", owner=alice, groups=["analyst"]
    )
    assert (
        Client(HTTP_AUTHORIZATION=f"Bearer {personal}").get("/api/v1/connections").status_code
        == 200
    )
    admin = _client(carol)
    page = admin.post(f"/manage/users/{alice.pk}/deactivate/", follow=True).content.decode()
    assert (
        "alice is deactivated: 1 session(s) ended, 1 token(s) revoked, agents stopped: alices-bot."
        in page
    )
    assert not User.objects.get(pk=alice.pk).is_active
    # Her open session is gone, not merely refused, so reactivating cannot revive it.
    response = analyst.get("/editor/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert ApiToken.objects.get(user=alice).revoked_at is not None
    assert (
        Client(HTTP_AUTHORIZATION=f"Bearer {personal}").get("/api/v1/connections").status_code
        == 401
    )
    assert Client(HTTP_AUTHORIZATION=f"Bearer {bots}").get("/api/v1/connections").status_code == 401
    assert not Client().login(username="alice", password="alice-pass-123!")
    (event,) = _events(EventKind.USER_DEACTIVATED, alice)
    assert event.actor_id == carol.pk
    assert event.detail["sessions_ended"] == 1 and event.detail["agents_stopped"] == ["alices-bot"]
    assert len(event.detail["tokens_revoked"]) == 1
    assert len(_events(EventKind.TOKEN_REVOKED, alice)) == 1
    # Nothing was deleted.
    assert User.objects.filter(pk=alice.pk).exists()
    # Reactivated: she signs in again, her old session and personal token stay dead, the
    # agent she owns works again.
    page = admin.post(f"/manage/users/{alice.pk}/reactivate/", follow=True).content.decode()
    assert "alice can sign in again" in page
    assert analyst.get("/editor/").status_code == 302
    assert Client().login(username="alice", password="alice-pass-123!")
    assert (
        Client(HTTP_AUTHORIZATION=f"Bearer {personal}").get("/api/v1/connections").status_code
        == 401
    )
    assert Client(HTTP_AUTHORIZATION=f"Bearer {bots}").get("/api/v1/connections").status_code == 200
    assert len(_events(EventKind.USER_REACTIVATED, alice)) == 1


def test_an_inactive_persons_token_fails_even_when_not_revoked(alice: Any) -> None:
    """However the account was deactivated (Django admin, a shell, plain SQL), its tokens
    stop at the next call: the token check reads the account's flag every time."""
    _, text = token_create(caller=Caller(user=alice), user=alice)
    assert token_bearer(text).user.pk == alice.pk
    User.objects.filter(pk=alice.pk).update(is_active=False)
    with pytest.raises(TokenRefused, match="disabled"):
        token_bearer(text)
    assert ApiToken.objects.get(user=alice).revoked_at is None


def test_deactivating_twice_or_reactivating_an_active_person_changes_nothing(
    carol: Any, alice: Any
) -> None:
    admin = _client(carol)
    admin.post(f"/manage/users/{alice.pk}/deactivate/")
    again = admin.post(f"/manage/users/{alice.pk}/deactivate/", follow=True)
    assert "already deactivated" in again.content.decode()
    admin.post(f"/manage/users/{alice.pk}/reactivate/")
    again = admin.post(f"/manage/users/{alice.pk}/reactivate/", follow=True)
    assert "already active" in again.content.decode()
    assert len(_events(EventKind.USER_DEACTIVATED, alice)) == 1
    assert len(_events(EventKind.USER_REACTIVATED, alice)) == 1


def test_nothing_here_deletes_an_account(carol: Any, alice: Any) -> None:
    admin = _client(carol)
    for method in ("delete", "post"):
        response = getattr(admin, method)(f"/manage/users/{alice.pk}/delete/")
        assert response.status_code == 404
    assert admin.delete(f"/manage/users/{alice.pk}/").status_code == 405
    assert User.objects.filter(pk=alice.pk).exists()


# ---------------------------------------------------------------- the identity watch


def test_the_identity_watch_finds_every_change_made_here_explained(
    carol: Any, alice: Any, bob: Any, groups: Any
) -> None:
    assert watch(settle_s=0).baseline
    token_create(caller=Caller(user=bob), user=bob, name="bobs")
    admin = _client(carol)
    admin.post("/manage/users/new/", NEW)
    frank = User.objects.get(username="frank")
    admin.post(f"/manage/users/{alice.pk}/roles/", {"roles": ["approver", "auditor"]})
    admin.post(f"/manage/users/{bob.pk}/deactivate/")
    admin.post(f"/manage/users/{frank.pk}/roles/", {"roles": ["admin"]})
    result = watch(settle_s=0)
    assert result.changed and not result.unexplained, [c.as_detail() for c in result.unexplained]
    admin.post(f"/manage/users/{bob.pk}/reactivate/")
    result = watch(settle_s=0)
    assert result.changed and not result.unexplained, [c.as_detail() for c in result.unexplained]
    assert not AuditEvent.objects.filter(kind=EventKind.IDENTITY_UNRECORDED).exists()


@pytest.mark.parametrize("kind", ["superuser", "staff", "signed-in", "token"])
def test_no_link_for_an_account_in_use_or_above_the_admin_role(
    carol: Any, groups: Any, kind: str
) -> None:
    """An account without a password that is a superuser (createsuperuser --noinput), staff,
    or already used is never given a link an admin holds: it would be a takeover."""
    from django.utils import timezone

    person = User.objects.create_user("breakglass", password=None)
    if kind == "superuser":
        person.is_superuser = True
    elif kind == "staff":
        person.is_staff = True
    elif kind == "signed-in":
        person.last_login = timezone.now()
    person.save()
    if kind == "token":
        token_create(caller=Caller(user=person), user=person, name="laptop")
    response = _client(carol).post(f"/manage/users/{person.pk}/password-link/", follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert "/accounts/password/reset/key/" not in page
    assert not _events(EventKind.USER_PASSWORD_LINK_ISSUED, person)


def test_deactivating_spends_a_set_password_link_still_out(carol: Any, groups: Any) -> None:
    admin = _client(carol)
    link = _link_on(admin.post("/manage/users/new/", NEW).content.decode())
    frank = User.objects.get(username="frank")
    assert watch(settle_s=0).baseline
    account_deactivate(caller=Caller(user=carol), user=frank)
    assert "invalid" in Client().get(link, follow=True).content.decode().lower()
    frank.refresh_from_db()
    assert not frank.has_usable_password()
    result = watch(settle_s=0)  # the new marker is explained by the deactivation
    assert not result.unexplained, [c.as_detail() for c in result.unexplained]

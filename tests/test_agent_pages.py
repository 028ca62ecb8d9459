"""Agent and token pages: admins create and revoke agents and tokens (each token shown once,
never cached), auditors and owners see, others are refused; everyone manages their own
personal tokens and no one else's."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from governance.models import Agent, ApiToken
from governance.services.agents import agent_create, token_create
from governance.services.caller import Caller

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _token_on(page: str) -> str:
    match = re.search(r'value="(wdn_[0-9a-f]{12}_[A-Za-z0-9_-]{43})"', page)
    assert match, page
    return match.group(1)


def test_an_admin_creates_an_agent_and_sees_its_token_once(
    carol: Any, alice: Any, groups: Any, sqlite_conn: Any
) -> None:
    admin = _client(carol)
    assert admin.get("/agents/new/").status_code == 200
    response = admin.post(
        "/agents/new/",
        {
            "name": "nightly",
            "owner": alice.pk,
            "roles": [groups["analyst"].pk],
            "connections": [sqlite_conn.pk],
            "description": "nightly report",
        },
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = _token_on(response.content.decode())
    agent = Agent.objects.get(user__username="nightly")
    assert agent.owner == alice and agent.connections_restricted
    assert ApiToken.objects.get(user=agent.user).matches(token.split("_", 2)[2])
    page = admin.get("/agents/nightly/").content.decode()
    assert token not in page and token.split("_", 2)[2] not in page
    assert "wdn_" in page and "Revoke the agent" in page
    # Another token, then the agent revoked.
    another = admin.post("/agents/nightly/token/", {"name": "backup"})
    assert _token_on(another.content.decode()) != token
    admin.post("/agents/nightly/revoke/")
    agent.user.refresh_from_db()
    assert not agent.user.is_active
    assert not ApiToken.objects.filter(user=agent.user, revoked_at__isnull=True).exists()
    assert AuditEvent.objects.filter(kind="agent.created", actor_name="carol").exists()


def test_the_form_says_what_is_wrong(carol: Any, alice: Any) -> None:
    admin = _client(carol)
    taken = admin.post("/agents/new/", {"name": "alice", "owner": alice.pk})
    assert taken.status_code == 400 and "taken" in taken.content.decode()
    bad = admin.post("/agents/new/", {"name": "bad name!", "owner": alice.pk})
    assert bad.status_code == 400 and "letters, digits" in bad.content.decode()


def test_who_sees_agents_and_who_may_change_them(
    carol: Any, alice: Any, bob: Any, dave: Any
) -> None:
    agent_create(caller=Caller(user=carol), name="alices-bot", owner=alice)
    agent_create(caller=Caller(user=carol), name="bobs-bot", owner=bob)
    owner = _client(alice)
    listed = owner.get("/agents/").content.decode()
    assert "alices-bot" in listed and "bobs-bot" not in listed
    assert owner.get("/agents/bobs-bot/").status_code == 404
    assert owner.get("/agents/alices-bot/").status_code == 200
    assert "Revoke the agent" not in owner.get("/agents/alices-bot/").content.decode()
    for url in ("/agents/new/",):
        assert owner.get(url).status_code == 403
    assert owner.post("/agents/alices-bot/token/").status_code == 403
    assert owner.post("/agents/alices-bot/revoke/").status_code == 403
    auditor = _client(dave).get("/agents/").content.decode()
    assert "alices-bot" in auditor and "bobs-bot" in auditor and "New agent" not in auditor
    assert Client().get("/agents/").status_code == 302


def test_people_manage_their_own_tokens_only(alice: Any, bob: Any) -> None:
    client = _client(alice)
    made = client.post("/tokens/", {"name": "laptop"})
    assert "no-store" in made["Cache-Control"]
    token = _token_on(made.content.decode())
    mine = ApiToken.objects.get(user=alice)
    page = client.get("/tokens/").content.decode()
    assert "laptop" in page and token not in page
    others, _ = token_create(caller=Caller(user=bob), user=bob)
    assert client.post(f"/agents/tokens/{others.pk}/revoke/").status_code == 404
    others.refresh_from_db()
    assert others.revoked_at is None
    client.post(f"/agents/tokens/{mine.pk}/revoke/")
    mine.refresh_from_db()
    assert mine.revoked_at is not None
    past = client.post("/tokens/", {"name": "old", "expires_at": "2001-01-01T00:00"})
    assert past.status_code == 400 and "in the future" in past.content.decode()

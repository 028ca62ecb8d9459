"""Sessions are stored under a digest of the cookie: the table alone signs no one in."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_session_table_holds_no_cookie_value(alice: Any, dave: Any) -> None:
    client = Client()
    assert client.login(username="dave", password="dave-pass-123!")
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    (row,) = Session.objects.all()
    assert row.session_key != cookie and cookie not in row.session_key
    assert client.get("/audit/").status_code == 200  # the cookie still signs dave in

    thief = Client()
    thief.cookies[settings.SESSION_COOKIE_NAME] = row.session_key  # read from the table
    response = thief.get("/audit/")
    assert response.status_code in (302, 403)

    client.logout()
    assert not Session.objects.exists()


def test_a_new_key_at_sign_in_replaces_the_old_row(alice: Any) -> None:
    client = Client()
    client.get("/accounts/login/")
    client.login(username="alice", password="alice-pass-123!")
    client.login(username="alice", password="alice-pass-123!")
    assert Session.objects.count() == 1

"""Error pages (403, 404, 500) say why and what to do; the sign-in page offers no closed sign-up;
a statement denied for a missing capability links to a pre-filled access request."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory, override_settings
from django.urls import get_resolver, reverse

from governance.roles import Refusal
from governance.services.caller import Caller
from governance.services.runs import run_submit

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_role_refusal_is_a_styled_403_that_names_the_role_to_ask_for(alice: Any) -> None:
    response = client_for(alice).get(reverse("audit_events"))
    assert response.status_code == 403
    page = response.content.decode()
    assert "css/warden.css" in page and 'class="topbar"' in page  # the site's page, not bare
    assert "You cannot open this page" in page
    assert "It needs the auditor or admin role: ask an admin for one." in page
    assert "signed in as <strong>alice</strong> with the role analyst" in page
    assert reverse("home") in page


def test_a_refusal_for_one_role_asks_for_that_role(alice: Any) -> None:
    response = client_for(alice).get(reverse("agent_new"))
    assert response.status_code == 403
    assert b"It needs the admin role: ask an admin for it." in response.content


def test_a_user_without_a_role_is_told_so(eve: Any) -> None:
    response = client_for(eve).get(reverse("approval_queue"))
    assert response.status_code == 403
    assert b"with no role yet" in response.content


def _request(user: Any, path: str = "/somewhere/") -> Any:
    request = RequestFactory().get(path)
    request.user = user
    return request


def test_a_403_shows_no_message_warden_did_not_write(alice: Any) -> None:
    handler: Any = get_resolver().resolve_error_handler(403)
    response = handler(_request(alice), PermissionDenied("row 7 of payroll belongs to bob"))
    assert response.status_code == 403
    assert b"payroll" not in response.content  # a library's words may say too much
    assert b"Warden refused this request for your account." in response.content
    shown = handler(_request(alice), Refusal("An agent's account cannot sign in."))
    assert b"An agent&#x27;s account cannot sign in." in shown.content


def test_a_403_asks_an_anonymous_visitor_to_sign_in(db: Any) -> None:
    handler: Any = get_resolver().resolve_error_handler(403)
    response = handler(_request(AnonymousUser(), "/audit/?run=3"), PermissionDenied())
    assert response.status_code == 403
    assert b"You are not signed in." in response.content
    assert b'href="/accounts/login/?next=/audit/%3Frun%3D3"' in response.content


def test_an_unknown_address_is_a_styled_404_naming_it(alice: Any) -> None:
    response = client_for(alice).get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "css/warden.css" in page and "Page not found" in page
    assert "<code>/no-such-page/</code>" in page
    assert reverse("home") in page
    anonymous = Client().get("/no-such-page/")
    assert anonymous.status_code == 404 and b"Sign in" in anonymous.content


def test_the_500_page_stands_alone_without_the_database(
    django_assert_num_queries: Any,
) -> None:
    handler: Any = get_resolver().resolve_error_handler(500)
    with django_assert_num_queries(0):  # the database may be what failed
        response = handler(RequestFactory().get("/editor/"))
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on Warden's side" in page
    assert "<style>" in page and "warden.css" not in page  # no static file to fail in turn
    assert 'href="/history/"' in page
    assert "{%" not in page and "{#" not in page


def test_the_sign_in_page_offers_no_sign_up_while_sign_up_is_closed(db: Any) -> None:
    page = Client().get(reverse("account_login")).content.decode()
    assert "Sign In" in page
    assert reverse("account_signup") not in page and "sign up" not in page.lower()
    # the link follows the adapter: open sign-up, and it is offered again
    with override_settings(ACCOUNT_ADAPTER="allauth.account.adapter.DefaultAccountAdapter"):
        opened = Client().get(reverse("account_login")).content.decode()
    assert reverse("account_signup") in opened


def test_a_statement_denied_for_a_missing_capability_links_to_a_prefilled_request(
    alice: Any, sqlite_conn: Any
) -> None:
    client = client_for(alice)
    run = run_submit(caller=Caller(user=alice), connection=sqlite_conn, sql="DROP TABLE orders")
    assert run.status == "denied" and run.missing_capabilities == ["ddl"]
    page = client.get(f"{reverse('editor')}?run={run.pk}").content.decode()
    link = f"{reverse('access_request')}?connection={sqlite_conn.pk}&amp;capabilities=ddl"
    assert f'<a href="{link}">Request ddl access to demo</a>' in page

    form = client.get(link.replace("&amp;", "&")).content.decode()
    assert f'<option value="{sqlite_conn.pk}" selected>' in form
    assert [c for c in ("read", "write", "ddl") if _checked(form, c)] == ["ddl"]


def _checked(form: str, capability: str) -> bool:
    """Whether the form's checkbox for this capability is ticked."""
    return "checked" in form.split(f'value="{capability}"')[1].split(">")[0]


def test_the_access_request_form_takes_several_capabilities_from_the_link(
    alice: Any, sqlite_conn: Any
) -> None:
    query = f"connection={sqlite_conn.pk}&capabilities=write&capabilities=ddl"
    url = f"{reverse('access_request')}?{query}"
    form = client_for(alice).get(url).content.decode()
    assert [c for c in ("read", "write", "ddl") if _checked(form, c)] == ["write", "ddl"]


def test_a_denial_by_a_rule_has_no_access_request_link(alice: Any, sqlite_conn: Any) -> None:
    run = run_submit(
        caller=Caller(user=alice), connection=sqlite_conn, sql="SELECT * FROM sqlite_user"
    )
    assert run.status == "denied" and run.missing_capabilities == []
    page = client_for(alice).get(f"{reverse('editor')}?run={run.pk}").content.decode()
    assert "Denied." in page and "data-request-access" not in page

"""The token API and agents: token lifecycle (shown once, hashed at rest, expiry, revocation,
an agent stopped with its owner), least privilege (an agent holds only its own grants), the
query endpoints' status codes and problem details, who may read a run, pagination,
idempotency, the schema with what is masked, segregation of duties (an owner never approves
its agent), and no 500 on generated input."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.models import IdempotencyKey
from api.v1 import QueryIn, _digest
from approvals.services import ReviewRefused, request_review
from audit.identity_watch import watch
from audit.models import AuditEvent
from governance.models import Agent, ApiToken, QueryRun
from governance.services.agents import agent_create, token_create
from governance.services.caller import Caller
from tests.conftest import grant

# Transactional: a run is handed to execution when its submission commits, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


def _agent(owner: Any, *groups: str, name: str = "reporter", **extra: Any) -> tuple[Agent, str]:
    return agent_create(
        caller=Caller(user=owner), name=name, owner=owner, groups=list(groups), **extra
    )


def _client(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def _post(client: Client, **body: Any) -> Any:
    headers = body.pop("headers", {})
    return client.post(
        "/api/v1/queries", json.dumps(body), content_type="application/json", headers=headers
    )


@pytest.fixture
def agent(sqlite_conn: Any, alice: Any) -> dict[str, Any]:
    """An analyst agent owned by alice, with its own read grant on the demo connection."""
    from governance.services.catalog import catalog_refresh

    catalog_refresh(connection=sqlite_conn)
    agent, token = _agent(alice, "analyst")
    grant(sqlite_conn, agent.user, "read")
    return {"agent": agent, "token": token, "client": _client(token)}


# ---------------------------------------------------------------- tokens


def test_an_agent_made_on_the_command_line_gets_a_token_shown_once_and_stored_hashed(
    alice: Any, groups: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command(
        "agents", "create", "nightly-report", "--owner", "alice", "--group", "analyst",
        "--expires", "2099-01-01", "--format", "json",
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["agent"] == "nightly-report" and out["owner"] == "alice"
    assert out["roles"] == ["analyst"] and out["token"].startswith("wdn_")
    token = ApiToken.objects.get()
    secret = out["token"].split("_", 2)[2]
    assert token.digest != secret and secret not in token.digest and len(token.digest) == 64
    # The text is nowhere in the database or the trail.
    assert not AuditEvent.objects.filter(detail__icontains=secret).exists()
    created = AuditEvent.objects.get(kind="token.created")
    assert created.detail["token"] == f"wdn_{token.key_id}_…"
    # The agent cannot sign in to the web pages: it has no password.
    user = User.objects.get(username="nightly-report")
    assert not user.has_usable_password()
    call_command("agents", "list", "--format", "json")
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["tokens"][0]["state"] == "active" and "token" not in listed["tokens"][0].get(
        "secret", ""
    )


def test_the_command_line_refuses_bad_input_with_a_clear_error(alice: Any, groups: Any) -> None:
    from django.core.management.base import CommandError

    for args, message in [
        (["--owner", "nobody"], "no account"),
        (["--owner", "alice", "--group", "root"], "No such role"),
        (["--owner", "alice", "--expires", "2001-01-01"], "in the future"),
        (["--owner", "alice", "--expires", "tomorrow"], "not a date"),
        (["--owner", "alice", "--connection", "nope"], "No such connection"),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("agents", "create", "bot", *args)
    with pytest.raises(CommandError, match="taken"):
        call_command("agents", "create", "ALICE", "--owner", "alice")
    call_command("agents", "create", "bot", "--owner", "alice")
    with pytest.raises(CommandError, match="owner must be a person"):
        call_command("agents", "create", "bot2", "--owner", "bot")


def test_a_token_stops_working_when_revoked_expired_or_its_agent_or_owner_stops(
    agent: dict[str, Any], alice: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client = agent["client"]
    assert client.get("/api/v1/connections").status_code == 200
    token = ApiToken.objects.get(user=agent["agent"].user)
    assert token.last_used_at is not None

    alice.is_active = False
    alice.save()
    refused = client.get("/api/v1/connections")
    assert refused.status_code == 401 and refused["Content-Type"] == "application/problem+json"
    assert "owner" in refused.json()["detail"]
    alice.is_active = True
    alice.save()

    Agent.objects.filter(pk=agent["agent"].pk).update(expires_at=timezone.now())
    assert client.get("/api/v1/connections").status_code == 401
    Agent.objects.filter(pk=agent["agent"].pk).update(expires_at=None)

    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
    assert "expired" in client.get("/api/v1/connections").json()["detail"]
    ApiToken.objects.filter(pk=token.pk).update(expires_at=None)
    assert client.get("/api/v1/connections").status_code == 200

    call_command("tokens", "revoke", token.shown)
    assert capsys.readouterr().out.strip() == f"{token.shown} revoked"
    assert "revoked" in client.get("/api/v1/connections").json()["detail"]
    # The holder of the real token is recorded, once a minute per token (a boundary may fall
    # between the calls above).
    refusals = AuditEvent.objects.filter(kind="token.refused")
    assert refusals.count() in (1, 2) and all(e.detail["token_id"] == token.pk for e in refusals)

    call_command("agents", "token", "reporter", "--format", "json")
    fresh = json.loads(capsys.readouterr().out)["token"]
    assert _client(fresh).get("/api/v1/connections").status_code == 200
    call_command("agents", "revoke", "reporter")
    assert _client(fresh).get("/api/v1/connections").status_code == 401


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer nope", "Basic YWxpY2U6cGFzcw==", "Bearer wdn_000000000000_" + "x" * 43],
)
def test_without_a_valid_token_every_endpoint_is_a_401_problem(
    agent: dict[str, Any], header: str
) -> None:
    client = Client(HTTP_AUTHORIZATION=header) if header else Client()
    for response in (
        client.get("/api/v1/connections"),
        client.get("/api/v1/connections/demo/schema"),
        client.get("/api/v1/queries/1"),
        _post(client, connection="demo", sql="SELECT 1"),
    ):
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert not QueryRun.objects.exists()


def test_personal_tokens_act_as_their_person(
    sqlite_conn: Any, alice: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("tokens", "create", "--user", "alice", "--name", "laptop", "--format", "json")
    text = json.loads(capsys.readouterr().out)["token"]
    response = _post(_client(text), connection="demo", sql="SELECT id FROM customers LIMIT 1")
    assert response.status_code == 200
    run = QueryRun.objects.get(pk=response.json()["run"])
    assert run.user == alice and run.channel == "api"
    call_command("tokens", "list", "--user", "alice", "--format", "json")
    assert json.loads(capsys.readouterr().out)[0]["name"] == "laptop"


# ---------------------------------------------------------------- queries


def test_a_read_comes_back_masked_with_200(agent: dict[str, Any]) -> None:
    response = _post(agent["client"], connection="demo", sql="SELECT full_name, ssn FROM customers")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "succeeded", body["error"]
    assert body["decision"] == "allow"
    assert body["columns"] == ["full_name", "ssn"] and body["rows"]
    assert "ssn" in " ".join(body["masked"]), body["rows"][:2]
    assert not any(re.fullmatch(r"\d{3}-\d{2}-\d{4}", str(row[1])) for row in body["rows"])
    submitted = AuditEvent.objects.get(kind="query.submitted", run_id=body["run"])
    assert submitted.channel == "api" and submitted.actor_name == "reporter"


def test_the_statements_every_call_runs_are_planned_once_per_connection(
    agent: dict[str, Any],
) -> None:
    """The token join, the connection with its grants and the run's intent are prepared on the
    server (Django's own cursors never are): the second call skips their parse and plan."""
    from django.db import connection as db

    from governance.models import ApiToken

    for _ in range(2):
        response = _post(agent["client"], connection="demo", sql="SELECT id FROM customers")
        assert response.status_code == 200, response.content
    if db.vendor != "postgresql":
        return
    with db.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [text for (text,) in cursor.fetchall()]
    assert any(ApiToken._meta.db_table in text for text in prepared), prepared
    assert any("governance_connection" in text for text in prepared), prepared
    assert any("synchronous_commit" in text for text in prepared), prepared


def test_a_held_write_is_202_with_its_approval_and_its_owner_cannot_approve_it(
    agent: dict[str, Any], sqlite_conn: Any, alice: Any, bob: Any, groups: Any
) -> None:
    grant(sqlite_conn, agent["agent"].user, "write")
    alice.groups.add(groups["approver"])  # the owner is an approver too
    response = _post(
        agent["client"],
        connection="demo",
        sql="UPDATE orders SET status = 'shipped' WHERE id = 1",
        purpose="nightly fix",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending_approval" and body["approval"]["id"]
    assert response["Retry-After"] == "30" and response["Location"] == body["status_url"]
    assert body["reasons"]
    request_id = body["approval"]["id"]
    with pytest.raises(ReviewRefused, match="agent you own"):
        request_review(
            caller=Caller(user=alice), request_id=request_id, approve=True,
            reauthenticated=True,
        )  # fmt: skip
    request_review(
        caller=Caller(user=bob), request_id=request_id, approve=True, reauthenticated=True
    )
    polled = agent["client"].get(body["status_url"])
    assert polled.status_code == 200 and polled.json()["status"] == "succeeded"
    # Every event of the request says which agent asked and whose it is, the reviews included.
    events = AuditEvent.objects.filter(kind__startswith="approval.", detail__request=request_id)
    assert {e.kind for e in events} >= {"approval.requested", "approval.approved"}
    for found in events:
        assert found.detail["for_agent"] == {"agent": "reporter", "owner": "alice"}, found.kind


def test_a_denied_statement_is_a_403_problem_with_its_reasons(agent: dict[str, Any]) -> None:
    response = _post(agent["client"], connection="demo", sql="DROP TABLE customers")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 403 and problem["reasons"] and problem["run"]


@pytest.mark.parametrize(
    "body, status",
    [
        ({"connection": "demo"}, 422),
        ({"sql": "SELECT 1"}, 422),
        ({"connection": "demo", "sql": "SELECT 1", "wait_seconds": 3600}, 422),
        ({"connection": "demo", "sql": "SELECT 1", "wait_seconds": "soon"}, 422),
        ({"connection": "demo", "sql": "SELECT \x00 1"}, 400),
        ({"connection": "nope", "sql": "SELECT 1"}, 404),
        ({"connection": "demo\x00", "sql": "SELECT 1"}, 400),  # no text with NUL is stored
    ],
)
def test_bad_bodies_are_problems_never_500(
    agent: dict[str, Any], body: dict[str, Any], status: int
) -> None:
    response = _post(agent["client"], **body)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"]


def test_not_json_at_all_is_a_problem(agent: dict[str, Any]) -> None:
    response = agent["client"].post("/api/v1/queries", "{not json", content_type="application/json")
    assert response.status_code in (400, 422)
    assert response["Content-Type"] == "application/problem+json"


def test_an_agent_holds_only_its_own_grants_never_its_owners(sqlite_conn: Any, alice: Any) -> None:
    agent, token = _agent(alice, name="ungranted")
    client = _client(token)
    assert client.get("/api/v1/connections").json() == []  # alice may use demo; it may not
    assert client.get("/api/v1/connections/demo/schema").status_code == 404
    # Given the analyst role, it holds what that role holds: still nothing of alice's own.
    grant(sqlite_conn, alice, "write")
    agent.user.groups.add(Group.objects.get(name="analyst"))
    assert client.get("/api/v1/connections").json()[0]["capabilities"] == ["export", "read"]
    assert not QueryRun.objects.exists()


def test_an_agent_limited_to_some_connections_sees_only_those(sqlite_conn: Any, alice: Any) -> None:
    from tests.conftest import make_connection

    other = make_connection(name="other", engine="sqlite", database=sqlite_conn.database)
    agent, token = _agent(alice, "analyst", name="scoped", connections=["other"])
    grant(sqlite_conn, agent.user, "read")
    grant(other, agent.user, "read")
    client = _client(token)
    assert [c["name"] for c in client.get("/api/v1/connections").json()] == ["other"]
    assert _post(client, connection="demo", sql="SELECT 1").status_code == 404
    assert _post(client, connection="other", sql="SELECT 1").status_code == 200


def test_an_agent_without_an_analyst_role_cannot_submit(sqlite_conn: Any, alice: Any) -> None:
    agent, token = _agent(alice, name="roleless")
    grant(sqlite_conn, agent.user, "read")
    response = _post(_client(token), connection="demo", sql="SELECT 1")
    assert response.status_code == 403 and "analyst" in response.json()["detail"]


def test_who_may_read_a_run_and_pages_of_rows(
    agent: dict[str, Any], alice: Any, bob: Any, dave: Any, sqlite_conn: Any, groups: Any
) -> None:
    run_id = _post(
        agent["client"], connection="demo", sql="SELECT id FROM customers LIMIT 7"
    ).json()["run"]
    url = f"/api/v1/queries/{run_id}"

    def reader(user: Any) -> Client:
        return _client(token_create(caller=Caller(user=user), user=user)[1])

    owner_view = reader(alice).get(url)  # the agent's owner
    assert owner_view.status_code == 200
    # ... sees the status and counts, never the rows: they may hold values unmasked by the
    # submitter's exemption.
    assert owner_view.json()["rows"] == [] and owner_view.json()["rows_withheld"] is True
    assert owner_view.json()["row_count"] == 7
    auditor_view = reader(dave).get(url)
    assert auditor_view.status_code == 200 and auditor_view.json()["rows"] == []
    assert reader(bob).get(url).status_code == 404  # an approver of nothing here
    other = User.objects.create_user("mallory", password="x-pass-123!")
    other.groups.add(groups["analyst"])
    grant(sqlite_conn, other, "read")
    hidden = reader(other).get(url)
    assert hidden.status_code == 404 and "No run" in hidden.json()["detail"]
    assert reader(other).get("/api/v1/queries/999999").json()["detail"] == hidden.json()[
        "detail"
    ].replace(str(run_id), "999999")

    whole = agent["client"].get(url).json()["rows"]
    assert len(whole) > 2
    seen, cursor = [], None
    while True:
        page = agent["client"].get(url, {"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200
        seen += page.json()["rows"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == whole
    assert agent["client"].get(url, {"cursor": "garbage!"}).status_code == 400
    assert agent["client"].get(url, {"limit": 0}).status_code == 400


def test_a_retried_post_with_the_same_idempotency_key_submits_once(
    agent: dict[str, Any],
) -> None:
    headers = {"Idempotency-Key": "job-42"}
    first = _post(agent["client"], connection="demo", sql="SELECT 1", headers=headers)
    again = _post(agent["client"], connection="demo", sql="SELECT 1", headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["run"] == again.json()["run"]
    assert QueryRun.objects.count() == 1
    changed = _post(agent["client"], connection="demo", sql="SELECT 2", headers=headers)
    assert changed.status_code == 422 and "different request" in changed.json()["detail"]
    # A key is per caller: someone else's "job-42" is theirs.
    assert IdempotencyKey.objects.count() == 1


def test_a_key_whose_submission_died_before_binding_it_still_finds_its_run(
    agent: dict[str, Any],
) -> None:
    """The process dies between the run's first write and binding the key (a killed worker
    mid-statement): a retry with the key gets that run, never a second execution, and a key
    whose request wrote no run at all is free again after a while."""
    headers = {"Idempotency-Key": "job-7"}
    first = _post(agent["client"], connection="demo", sql="SELECT 1", headers=headers)
    IdempotencyKey.objects.update(run=None)  # as left by the dead process
    again = _post(agent["client"], connection="demo", sql="SELECT 1", headers=headers)
    assert again.status_code == 200 and again.json()["run"] == first.json()["run"]
    assert QueryRun.objects.count() == 1
    assert IdempotencyKey.objects.get(key="job-7").run_id == first.json()["run"]

    # A key freed and taken again by another body never finds the first body's run.
    other = QueryIn.model_validate({"connection": "demo", "sql": "SELECT 3"})
    IdempotencyKey.objects.filter(key="job-7").update(run=None, digest=_digest(other))
    reused = _post(agent["client"], connection="demo", sql="SELECT 3", headers=headers)
    assert reused.status_code == 409, reused.content

    user = agent["agent"].user
    body = QueryIn.model_validate({"connection": "demo", "sql": "SELECT 2"})
    IdempotencyKey.objects.create(user=user, key="job-8", digest=_digest(body))  # no run
    headers = {"Idempotency-Key": "job-8"}
    busy = _post(agent["client"], connection="demo", sql="SELECT 2", headers=headers)
    assert busy.status_code == 409  # it may still be on its way
    IdempotencyKey.objects.filter(key="job-8").update(
        created_at=timezone.now() - dt.timedelta(minutes=5)
    )
    retried = _post(agent["client"], connection="demo", sql="SELECT 2", headers=headers)
    assert retried.status_code == 200, retried.content
    assert IdempotencyKey.objects.get(key="job-8").run_id == retried.json()["run"]


def test_the_schema_says_which_columns_are_masked(agent: dict[str, Any]) -> None:
    response = agent["client"].get("/api/v1/connections/demo/schema")
    assert response.status_code == 200
    tables = {t["name"]: t for t in response.json()["tables"]}
    columns = {c["name"]: c for c in tables["customers"]["columns"]}
    assert columns["ssn"]["masked"] and columns["ssn"]["masking"]
    assert not columns["id"]["masked"]
    assert agent["client"].get("/api/v1/connections/nope/schema").status_code == 404


def test_the_openapi_schema_and_docs_are_served(client: Client) -> None:
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/v1/queries",
        "/api/v1/queries/{run_id}",
        "/api/v1/connections",
        "/api/v1/connections/{name}/schema",
    } <= set(paths)
    assert client.get("/api/v1/docs").status_code == 200


def test_a_token_planted_in_the_table_is_found_by_the_identity_watch(
    agent: dict[str, Any], alice: Any
) -> None:
    watch(settle_s=0)
    ApiToken.objects.bulk_create(
        [ApiToken(user=alice, key_id="abcdefabcdef", digest=ApiToken.hash_secret("planted"))]
    )
    result = watch(settle_s=0)
    assert [(c.what, c.user_id) for c in result.unexplained] == [("API token added", alice.pk)]


def test_an_expiry_in_the_past_is_refused(alice: Any) -> None:
    from governance.services.agents import AgentError

    with pytest.raises(AgentError, match="future"):
        token_create(
            caller=Caller(user=alice), user=alice, expires_at=timezone.now() - dt.timedelta(1)
        )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.dictionaries(
        st.sampled_from(["connection", "sql", "purpose", "wait_seconds", "extra"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=True),
            st.text(max_size=40),
            st.lists(st.integers(), max_size=3),
        ),
    )
)
def test_generated_bodies_never_get_a_500(agent: dict[str, Any], body: dict[str, Any]) -> None:
    if "wait_seconds" in body and isinstance(body["wait_seconds"], int | float):
        body["wait_seconds"] = 0
    response = _post(agent["client"], **body)
    assert response.status_code in (200, 202, 400, 403, 404, 422), response.content


# ---------------------------------------------------------------- provenance and budgets


def test_a_run_records_the_agent_its_owner_and_what_it_said_of_itself(
    agent: dict[str, Any], alice: Any, bob: Any, sqlite_conn: Any, groups: Any
) -> None:
    grant(sqlite_conn, agent["agent"].user, "write")
    metadata = {"model": "claude-x", "trace_id": "t-123", "tool": "nightly", "step": 3}
    response = _post(
        agent["client"],
        connection="demo",
        sql="UPDATE orders SET status = 'shipped' WHERE id = 2",
        purpose="nightly fix",
        metadata=metadata,
    )
    assert response.status_code == 202
    run = QueryRun.objects.get(pk=response.json()["run"])
    assert run.provenance["agent"] == "reporter" and run.provenance["acting_for"] == "alice"
    assert run.provenance["metadata"] == metadata
    assert run.provenance["token"].startswith("wdn_") and run.provenance["token"].endswith("…")
    for kind in ("query.submitted", "approval.requested"):
        event = AuditEvent.objects.get(kind=kind, run_id=run.pk)
        assert event.detail["provenance"]["acting_for"] == "alice", kind
    # The approver sees that an agent asks, for whom, and what it says of itself.
    client = Client()
    client.force_login(bob)
    page = client.get(f"/approvals/{run.approval.pk}/").content.decode()
    assert "AI agent" in page and "Acting for" in page and "claude-x" in page
    queue = client.get("/approvals/").content.decode()
    assert "agent for alice" in queue
    # The outcome carries it too.
    request_review(
        caller=Caller(user=bob), request_id=run.approval.pk, approve=True, reauthenticated=True
    )
    done = AuditEvent.objects.get(kind="query.succeeded", run_id=run.pk)
    assert done.detail["provenance"]["agent"] == "reporter"


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": i for i in range(21)},
        {"k" * 65: 1},
        {"note": "x" * 501},
        {"nested": {"a": 1}},
        {"list": [1, 2]},
    ],
)
def test_metadata_is_small_and_flat(agent: dict[str, Any], metadata: dict[str, Any]) -> None:
    response = _post(agent["client"], connection="demo", sql="SELECT 1", metadata=metadata)
    assert response.status_code == 422
    assert not QueryRun.objects.exists()


def test_over_a_budget_is_a_429_with_retry_after_and_one_audit_event(
    agent: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("agents", "budget", "reporter", "--requests-per-minute", "3")
    assert "requests per minute 3" in capsys.readouterr().out
    client = agent["client"]
    statuses = [client.get("/api/v1/connections").status_code for _ in range(5)]
    if statuses[:3] != [200, 200, 200]:  # a minute boundary fell between the calls
        statuses = [client.get("/api/v1/connections").status_code for _ in range(5)]
    assert statuses[3:] == [429, 429]
    refused = client.get("/api/v1/connections")
    assert refused["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["budget"] == "requests per minute"
    assert AuditEvent.objects.filter(kind="agent.budget_exceeded").count() in (1, 2)
    updated = AuditEvent.objects.get(kind="agent.updated")
    assert updated.detail["after"]["requests_per_minute"] == 3


def test_rows_returned_per_hour_are_a_budget(agent: dict[str, Any]) -> None:
    from governance.services.agents import agent_budget_set

    agent_budget_set(caller=Caller(user=agent["agent"].owner), name="reporter", rows_per_hour=5)
    client = agent["client"]
    first = _post(client, connection="demo", sql="SELECT id FROM customers LIMIT 10")
    body = first.json()
    # The page stops where the budget does; the rest waits behind next_cursor.
    assert first.status_code == 200 and len(body["rows"]) == 5 and body["row_count"] == 10
    assert body["next_cursor"]
    again = _post(client, connection="demo", sql="SELECT id FROM customers LIMIT 1")
    assert again.status_code == 429 and again.json()["budget"] == "rows per hour"
    rest = client.get(f"{body['status_url']}?cursor={body['next_cursor']}")
    assert rest.status_code == 429


def test_a_statement_that_ran_but_whose_answer_is_over_budget_says_where_it_is(
    agent: dict[str, Any],
) -> None:
    from governance.services.agents import agent_budget_set

    # The bytes budget lets the submission in, not its answer: the run is still found.
    agent_budget_set(caller=Caller(user=agent["agent"].owner), name="reporter", bytes_per_hour=50)
    response = _post(agent["client"], connection="demo", sql="SELECT id FROM customers LIMIT 5")
    assert response.status_code == 429, response.content
    problem = response.json()
    assert problem["budget"] == "bytes per hour" and problem["run"]
    assert problem["status_url"].endswith(f"/queries/{problem['run']}")
    assert f"run {problem['run']}" in problem["detail"]
    assert QueryRun.objects.get(pk=problem["run"]).status == "succeeded"


def test_runs_at_once_are_a_budget(agent: dict[str, Any]) -> None:
    from api.auth import provenance_of
    from api.budgets import run_slot
    from governance.services.agents import agent_budget_set, token_bearer

    agent_budget_set(caller=Caller(user=agent["agent"].owner), name="reporter", concurrent_runs=1)
    bearer = token_bearer(agent["token"])
    caller = Caller(user=bearer.user, channel="api", provenance=provenance_of(bearer))
    with run_slot(bearer, caller, 60) as in_flight:  # a submission of the same agent
        response = _post(agent["client"], connection="demo", sql="SELECT 1")
        assert response.status_code == 429 and response.json()["budget"] == "runs at once"
        assert response["Retry-After"] == "1"
        refused = AuditEvent.objects.get(kind="agent.budget_exceeded")
        assert refused.detail["budget"] == "runs at once"
        in_flight.release()  # it ended
    # The next one runs, and a run that ended gives its own slot back, so one after it too.
    assert _post(agent["client"], connection="demo", sql="SELECT 1").status_code == 200
    assert _post(agent["client"], connection="demo", sql="SELECT 2").status_code == 200


def test_budget_commands_refuse_bad_input(agent: dict[str, Any]) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="at least one"):
        call_command("agents", "budget", "reporter")
    with pytest.raises(CommandError, match="No agent"):
        call_command("agents", "budget", "nobody", "--rows-per-hour", "5")
    with pytest.raises(CommandError, match="at least 1"):
        call_command("agents", "budget", "reporter", "--rows-per-hour", "-5")


# ---------------------------------------------------------------- access requests


def _ask(client: Client, **body: Any) -> Any:
    return client.post("/api/v1/access-requests", json.dumps(body), content_type="application/json")


def test_an_agent_asks_for_access_and_its_owner_cannot_approve_it(
    agent: dict[str, Any], alice: Any, bob: Any, groups: Any
) -> None:
    response = _ask(
        agent["client"], kind="access", connection="demo", capabilities=["write"], hours=2,
        reason="nightly fix needs writes",
    )  # fmt: skip
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["kind"] == "access" and body["status"] == "pending" and body["url"]
    alice.groups.add(groups["approver"])
    with pytest.raises(ReviewRefused, match="agent you own"):
        request_review(
            caller=Caller(user=alice), request_id=body["id"], approve=True, reauthenticated=True
        )
    event = AuditEvent.objects.get(kind="approval.requested", detail__request=body["id"])
    assert event.detail["provenance"]["agent"] == "reporter"


def test_approvers_see_an_agents_access_request_as_an_agents(
    agent: dict[str, Any], alice: Any, bob: Any
) -> None:
    asked = _ask(
        agent["client"], kind="unmask", connection="demo", table="customers", column="ssn",
        hours=1, reason="fraud case 42",
    )  # fmt: skip
    client = Client()
    client.force_login(bob)
    page = client.get(f"/approvals/{asked.json()['id']}/").content.decode()
    assert "data-agent" in page and "Acting for" in page and "alice" in page
    assert "agent for alice" in client.get("/approvals/").content.decode()


def test_a_persons_token_metadata_is_not_shown_as_an_agents(
    sqlite_conn: Any, alice: Any, bob: Any
) -> None:
    """A person with a personal token cannot dress a request up as an agent's."""
    from governance.services.agents import token_create

    grant(sqlite_conn, alice, "write")
    _, token = token_create(caller=Caller(user=alice), user=alice, name="laptop")
    response = _post(
        _client(token), connection="demo", sql="UPDATE orders SET status = 'x' WHERE id = 2",
        metadata={"model": "claude-x"},
    )  # fmt: skip
    client = Client()
    client.force_login(bob)
    page = client.get(response.json()["approval"]["url"]).content.decode()
    assert "claude-x" in page and "The client says" in page
    assert "The agent says" not in page and "data-agent" not in page


def test_an_agent_asks_to_see_one_masked_column(agent: dict[str, Any]) -> None:
    response = _ask(
        agent["client"], kind="unmask", connection="demo", table="customers", column="ssn",
        hours=1, reason="fraud case 42",
    )  # fmt: skip
    assert response.status_code == 202, response.content
    assert response.json()["kind"] == "unmask"


def test_an_exemptions_end_ends_the_raw_values_it_let_through(
    agent: dict[str, Any], bob: Any, carol: Any
) -> None:
    """Approved, the unmask takes effect at once (every process: the catalog version moves);
    revoked, the stored raw result is withheld on every way back to it (the status endpoint,
    an idempotent replay), and a new run is masked again."""
    from governance.models import UnmaskExemption
    from governance.services.catalog_admin import exemption_revoke

    client, ssn = agent["client"], re.compile(r"^\d{3}-\d{2}-\d{4}$")
    sql = "SELECT id, ssn FROM customers ORDER BY id LIMIT 2"
    before = _post(client, connection="demo", sql=sql)  # this process now knows the exemptions
    assert not any(ssn.match(row[1]) for row in before.json()["rows"])
    asked = _ask(
        client, kind="unmask", connection="demo", table="customers", column="ssn", hours=1,
        reason="fraud case 42",
    )  # fmt: skip
    request_review(
        caller=Caller(user=bob), request_id=asked.json()["id"], approve=True, reauthenticated=True
    )
    first = _post(client, connection="demo", sql=sql, headers={"Idempotency-Key": "case-42"})
    assert first.status_code == 200, first.content
    assert all(ssn.match(row[1]) for row in first.json()["rows"])  # raw, as approved
    run = first.json()["run"]
    exemption_revoke(caller=Caller(user=carol), exemption=UnmaskExemption.objects.get())
    again = client.get(f"/api/v1/queries/{run}")
    assert again.status_code == 200 and again.json()["rows"] == []
    assert again.json()["rows_withheld"] and "ended" in again.json()["rows_withheld_reason"]
    replay = _post(client, connection="demo", sql=sql, headers={"Idempotency-Key": "case-42"})
    assert replay.json()["run"] == run and replay.json()["rows"] == []
    fresh = _post(client, connection="demo", sql=sql)
    assert not any(ssn.match(row[1]) for row in fresh.json()["rows"])
    assert "ssn" in fresh.json()["masked"]


@pytest.mark.parametrize(
    "body, status",
    [
        ({"kind": "access", "connection": "demo", "capabilities": [], "hours": 1,
          "reason": "x"}, 400),
        ({"kind": "access", "connection": "demo", "capabilities": ["root"], "hours": 1,
          "reason": "x"}, 400),
        ({"kind": "access", "connection": "nope", "capabilities": ["read"], "hours": 1,
          "reason": "x"}, 404),
        ({"kind": "access", "connection": "demo", "capabilities": ["read"], "hours": 1000,
          "reason": "x"}, 422),
        ({"kind": "unmask", "connection": "demo", "table": "customers", "column": "id",
          "hours": 1, "reason": "x"}, 404),
        ({"kind": "unmask", "connection": "demo", "hours": 1, "reason": "x"}, 400),
        ({"kind": "root", "connection": "demo", "hours": 1, "reason": "x"}, 422),
        ({"kind": "access", "connection": "demo", "capabilities": ["read"], "hours": 1,
          "reason": ""}, 422),
    ],
)  # fmt: skip
def test_bad_access_requests_are_problems(
    agent: dict[str, Any], body: dict[str, Any], status: int
) -> None:
    response = _ask(agent["client"], **body)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"


# ---------------------------------------------------------------- callbacks


@pytest.fixture
def receiver() -> Any:
    """A real HTTP receiver on this host, recording what it is sent."""
    import http.server
    import threading

    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            received.append(
                {"headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": self.rfile.read(length), "path": self.path}
            )  # fmt: skip
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/hook?t=abc", "received": received}
    server.shutdown()


def test_a_held_statement_calls_back_signed_once_it_ran(
    agent: dict[str, Any], bob: Any, sqlite_conn: Any, receiver: dict[str, Any], settings: Any
) -> None:
    from approvals.callbacks import verify
    from approvals.models import Delivery

    settings.WARDEN_CALLBACK_ALLOW_PRIVATE = True
    grant(sqlite_conn, agent["agent"].user, "write")
    response = _post(
        agent["client"],
        connection="demo",
        sql="UPDATE orders SET status = 'shipped' WHERE id = 3",
        callback_url=receiver["url"],
    )
    assert response.status_code == 202
    secret = response.json()["callback"]["secret"]
    assert secret.startswith("whsec_")
    run_id = response.json()["run"]
    from governance.models import RunCallback

    stored = RunCallback.objects.get(run_id=run_id)
    assert "127.0.0.1" not in stored.url_encrypted and secret not in stored.secret_encrypted
    assert not receiver["received"]
    request_review(
        caller=Caller(user=bob),
        request_id=response.json()["approval"]["id"],
        approve=True,
        reauthenticated=True,
    )
    (sent,) = receiver["received"]
    assert sent["path"] == "/hook?t=abc"
    assert verify(secret, sent["headers"], sent["body"])
    assert not verify(secret, sent["headers"], sent["body"] + b" ")
    payload = json.loads(sent["body"])
    assert payload["type"] == "run.finished"
    assert payload["data"]["run"] == run_id and payload["data"]["status"] == "succeeded"
    assert "rows" not in payload["data"]
    delivery = Delivery.objects.get(channel="callback")
    assert delivery.status == "sent" and delivery.target == receiver["url"].split("?")[0]


def test_a_rejected_statement_calls_back_too(
    agent: dict[str, Any], bob: Any, sqlite_conn: Any, receiver: dict[str, Any], settings: Any
) -> None:
    settings.WARDEN_CALLBACK_ALLOW_PRIVATE = True
    grant(sqlite_conn, agent["agent"].user, "write")
    response = _post(
        agent["client"],
        connection="demo",
        sql="UPDATE orders SET status = 'lost' WHERE id = 4",
        callback_url=receiver["url"],
    )
    request_review(
        caller=Caller(user=bob),
        request_id=response.json()["approval"]["id"],
        approve=False,
        comment="no",
        reauthenticated=True,
    )
    (sent,) = receiver["received"]
    assert json.loads(sent["body"])["data"]["status"] == "rejected"


def test_a_callback_to_a_private_address_is_refused_when_sending(
    agent: dict[str, Any], sqlite_conn: Any, receiver: dict[str, Any], bob: Any
) -> None:
    from approvals.models import Delivery

    grant(sqlite_conn, agent["agent"].user, "write")
    response = _post(
        agent["client"],
        connection="demo",
        sql="UPDATE orders SET status = 'shipped' WHERE id = 5",
        callback_url=receiver["url"],
    )
    request_review(
        caller=Caller(user=bob),
        request_id=response.json()["approval"]["id"],
        approve=True,
        reauthenticated=True,
    )
    assert not receiver["received"]
    delivery = Delivery.objects.get(channel="callback")
    assert "private or reserved address" in delivery.last_error


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fd00::1", "::ffff:127.0.0.1",
        "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1", "2002:7f00:1::",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2", "::127.0.0.1", "ff02::1", "224.0.0.1",
        "::ffff:0:a9fe:a9fe", "fec0::1", "::5efe:a9fe:a9fe",
    ],
)  # fmt: skip
def test_no_callback_goes_to_an_address_that_is_or_embeds_a_private_one(address: str) -> None:
    import ipaddress

    from approvals.callbacks import address_public

    assert not address_public(ipaddress.ip_address(address))


def test_a_public_address_may_be_called_back() -> None:
    import ipaddress

    from approvals.callbacks import address_public

    assert address_public(ipaddress.ip_address("93.184.216.34"))
    assert address_public(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/x", "http://user:pw@example.com/", "not a url",
     "http://" + "a" * 2000, "http://[abc", "http://ex\u2100ample.com/a",
     "http://example.com:99999/"],
)  # fmt: skip
def test_a_callback_url_that_cannot_be_one_is_a_422(agent: dict[str, Any], url: str) -> None:
    response = _post(agent["client"], connection="demo", sql="SELECT 1", callback_url=url)
    assert response.status_code == 422
    assert not QueryRun.objects.exists()


def test_a_wrong_secret_for_a_real_token_records_nothing(agent: dict[str, Any]) -> None:
    """Thirteenth review: the key id is public; guessing with it must not write events in
    the token holder's name."""
    key_id = ApiToken.objects.get(user=agent["agent"].user).key_id
    forged = _client(f"wdn_{key_id}_" + "A" * 43)
    for _ in range(5):
        assert forged.get("/api/v1/connections").status_code == 401
    assert not AuditEvent.objects.filter(kind="token.refused").exists()


def test_an_idempotency_key_is_free_again_after_a_refused_submission(
    agent: dict[str, Any],
) -> None:
    headers = {"Idempotency-Key": "k404"}
    first = _post(agent["client"], connection="nope", sql="SELECT 1", headers=headers)
    assert first.status_code == 404
    again = _post(agent["client"], connection="demo", sql="SELECT 1", headers=headers)
    assert again.status_code == 200


def test_a_body_over_the_upload_limit_is_a_413_problem(
    agent: dict[str, Any], settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = _post(agent["client"], connection="demo", sql="SELECT '" + "x" * 2000 + "'")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"


def test_an_agent_that_stopped_cannot_have_its_held_statement_approved(
    agent: dict[str, Any], alice: Any, bob: Any, sqlite_conn: Any
) -> None:
    """Thirteenth review: the agent's expiry, its owner and its allowed connections are
    checked again at approval, as its token is at every call."""
    grant(sqlite_conn, agent["agent"].user, "write")

    def held() -> int:
        response = _post(
            agent["client"],
            connection="demo",
            sql="UPDATE orders SET status = 'shipped' WHERE id = 6",
        )
        assert response.status_code == 202
        return int(response.json()["approval"]["id"])

    first, second = held(), held()
    Agent.objects.filter(pk=agent["agent"].pk).update(expires_at=timezone.now())
    with pytest.raises(ReviewRefused, match="expired or been revoked"):
        request_review(
            caller=Caller(user=bob), request_id=first, approve=True, reauthenticated=True
        )
    Agent.objects.filter(pk=agent["agent"].pk).update(expires_at=None)
    from tests.conftest import make_connection

    other = make_connection(name="elsewhere", engine="sqlite", database=sqlite_conn.database)
    Agent.objects.filter(pk=agent["agent"].pk).update(connections_restricted=True)
    agent["agent"].allowed_connections.set([other])
    with pytest.raises(ReviewRefused, match="may no longer use this connection"):
        request_review(
            caller=Caller(user=bob), request_id=second, approve=True, reauthenticated=True
        )


def test_an_agent_limited_to_a_deleted_connection_may_use_none(
    sqlite_conn: Any, alice: Any
) -> None:
    from tests.conftest import make_connection

    scratch = make_connection(name="scratch", engine="sqlite", database=sqlite_conn.database)
    agent, token = _agent(alice, "analyst", name="scoped2", connections=["scratch"])
    grant(sqlite_conn, agent.user, "read")
    client = _client(token)
    assert client.get("/api/v1/connections").json() == []
    scratch.delete()
    assert client.get("/api/v1/connections").json() == []
    assert _post(client, connection="demo", sql="SELECT 1").status_code == 404


def test_an_agent_without_a_role_cannot_ask_for_access(sqlite_conn: Any, alice: Any) -> None:
    _, token = _agent(alice, name="roleless2")
    response = _ask(
        _client(token), kind="access", connection="demo", capabilities=["admin"], hours=168,
        reason="x",
    )  # fmt: skip
    assert response.status_code == 403 and "no role" in response.json()["detail"]


def test_a_refused_token_at_mcp_is_recorded_like_at_the_api(agent: dict[str, Any]) -> None:
    from django.utils import timezone as tz

    ApiToken.objects.filter(user=agent["agent"].user).update(revoked_at=tz.now())
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    response = Client().post(
        "/mcp", body, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {agent['token']}",
    )  # fmt: skip
    assert response.status_code == 401
    (event,) = AuditEvent.objects.filter(kind="token.refused")
    assert event.channel == "mcp"


def test_budgets_that_cannot_be_counted_refuse_the_call(agent: dict[str, Any]) -> None:
    """Fail closed: with the cache down, no call gets through uncounted (and nothing runs)."""
    import socket

    from django.test import override_settings

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends
    dead = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{port}/0",
    }
    down = {"default": dead, "budgets": dead}
    before = QueryRun.objects.count()
    with override_settings(CACHES=down):
        response = _post(agent["client"], connection="demo", sql="SELECT 1")
        listed = agent["client"].get("/api/v1/connections")
    assert response.status_code == 503 and response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5" and "nothing was submitted" in response.json()["detail"]
    assert listed.status_code == 503
    assert QueryRun.objects.count() == before


def test_an_agent_is_never_an_approver(sqlite_conn: Any, alice: Any, bob: Any, groups: Any) -> None:
    """People decide: no agent gets the approver role, and one given it by hand (the Django
    admin, a shell) is refused as a reviewer, so two agents of one owner cannot approve each
    other's requests, nor an agent its owner's."""
    from governance.services.agents import AgentError
    from governance.services.runs import run_submit

    with pytest.raises(AgentError, match="cannot be an approver"):
        _agent(bob, "approver", name="rubber-stamp")
    helper, _ = _agent(bob, "analyst", name="helper")
    helper.user.groups.add(groups["approver"])  # by hand
    grant(sqlite_conn, alice, "write")
    run = run_submit(
        caller=Caller(user=alice),
        connection=sqlite_conn,
        sql="UPDATE orders SET status = 'shipped' WHERE id = 5",
    )
    with pytest.raises(ReviewRefused, match="An agent cannot review"):
        request_review(
            caller=Caller(user=helper.user),
            request_id=run.approval.pk,
            approve=True,
            reauthenticated=True,
        )
    run.refresh_from_db()
    assert run.status == "pending_approval"


def test_an_agent_never_signs_in_to_the_web_pages(alice: Any) -> None:
    """Whatever password an administrator sets on its account, and a session it somehow
    holds ends at its next request."""
    agent, _ = _agent(alice, "analyst", name="scraper")
    agent.user.set_password("a-password-set-by-hand-1!")
    agent.user.save()
    client = Client()
    assert not client.login(username="scraper", password="a-password-set-by-hand-1!")
    page = client.post(
        "/accounts/login/", {"login": "scraper", "password": "a-password-set-by-hand-1!"}
    )
    assert "_auth_user_id" not in client.session and page.status_code != 302
    client.force_login(agent.user)  # a session made some other way
    assert client.get("/").status_code == 302  # sent to sign in: it is no one
    # People still sign in.
    assert Client().login(username="alice", password="alice-pass-123!")


def test_the_editor_withholds_a_result_whose_exemption_ended(
    sqlite_conn: Any, alice: Any, carol: Any
) -> None:
    from governance.models import CatalogColumn
    from governance.services.catalog import catalog_refresh
    from governance.services.catalog_admin import exemption_create, exemption_revoke
    from governance.services.runs import run_submit

    catalog_refresh(connection=sqlite_conn)
    grant(sqlite_conn, alice, "read")
    column = CatalogColumn.objects.get(table__name="customers", name="ssn")
    exemption = exemption_create(
        caller=Caller(user=carol), column=column, user=alice, group=None,
        expires_at=timezone.now() + dt.timedelta(hours=1), reason="case 7",
    )  # fmt: skip
    run = run_submit(
        caller=Caller(user=alice), connection=sqlite_conn, sql="SELECT ssn FROM customers LIMIT 1"
    )
    raw = run.rows[0][0]
    client = Client()
    client.force_login(alice)
    assert raw in client.get(f"/editor/?run={run.pk}").content.decode()
    exemption_revoke(caller=Caller(user=carol), exemption=exemption)
    page = client.get(f"/editor/?run={run.pk}").content.decode()
    fragment = client.get(f"/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert raw not in fragment and "data-rows-withheld" in fragment
    assert raw not in page and "data-rows-withheld" in page


def test_the_command_line_names_an_agents_owner(
    agent: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    asked = _ask(
        agent["client"], kind="access", connection="demo", capabilities=["write"], hours=1,
        reason="nightly fix",
    )  # fmt: skip
    call_command("approvals", "show", str(asked.json()["id"]))
    assert "an AI agent acting for alice, who cannot approve" in capsys.readouterr().out
    call_command("approvals", "list", "--format", "json")
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["agent_for"] == "alice"


def test_a_result_is_withheld_once_its_caller_leaves_the_group_its_exemption_came_from(
    sqlite_conn: Any, alice: Any, carol: Any, groups: Any
) -> None:
    from django.contrib.auth.models import Group

    from governance.models import CatalogColumn
    from governance.services.catalog import catalog_refresh
    from governance.services.catalog_admin import exemption_create
    from governance.services.masking import exemption_ended
    from governance.services.runs import run_submit

    catalog_refresh(connection=sqlite_conn)
    grant(sqlite_conn, alice, "read")
    fraud = Group.objects.create(name="fraud-team")
    alice.groups.add(fraud)
    exemption_create(
        caller=Caller(user=carol), column=CatalogColumn.objects.get(name="ssn"), user=None,
        group=fraud, expires_at=timezone.now() + dt.timedelta(hours=1), reason="case 9",
    )  # fmt: skip
    run = run_submit(
        caller=Caller(user=alice), connection=sqlite_conn, sql="SELECT ssn FROM customers LIMIT 1"
    )
    assert re.match(r"^\d{3}-\d{2}-\d{4}$", run.rows[0][0])
    assert not exemption_ended(QueryRun.objects.get(pk=run.pk))
    alice.groups.remove(fraud)
    assert exemption_ended(QueryRun.objects.get(pk=run.pk))


def test_an_id_no_connection_can_have_is_not_found(sqlite_conn: Any, alice: Any) -> None:
    from governance.services.access import UnknownConnection, connection_for

    for name in (10**20, -(10**20), 2**63):
        with pytest.raises(UnknownConnection):
            connection_for(user=alice, name=name)


def test_a_callback_connects_to_the_address_that_was_checked(receiver: dict[str, Any]) -> None:
    """No second lookup of the host (DNS rebinding): the sender goes to the checked address,
    and the Host header is still the URL's."""
    from urllib.parse import urlsplit

    from approvals.notifications import _post

    port = urlsplit(receiver["url"]).port
    status = _post(f"http://rebound.invalid:{port}/hook", b"{}", {}, address="127.0.0.1")
    assert 200 <= status < 300
    (sent,) = receiver["received"]
    assert sent["headers"]["host"] == f"rebound.invalid:{port}"


QUERY = '{"connection": "demo", "sql": "SELECT 1", "metadata": {%s}}'
ASK = (
    '{"kind": "access", "connection": "demo", "capabilities": ["write"], "hours": 1, "reason": %s}'
)


@pytest.mark.parametrize(
    "path, raw",
    [
        ("/api/v1/queries", QUERY % '"k": "\\ud800"'),
        ("/api/v1/queries", QUERY % '"\\ud800": 1'),
        ("/api/v1/queries", QUERY % '"f": NaN'),
        ("/api/v1/queries", QUERY % '"f": -Infinity'),
        ("/api/v1/access-requests", ASK % '"x\\u0000"'),
        ("/api/v1/access-requests", ASK % '"\\udfff"'),
    ],
)
def test_text_or_numbers_that_cannot_be_stored_are_a_400_on_every_endpoint(
    agent: dict[str, Any], path: str, raw: str
) -> None:
    """Refused at the door, not a 500 when an audit event or a row cannot take them."""
    before = AuditEvent.objects.count()
    response = agent["client"].post(path, raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert "Cannot parse the request body:" in response.json()["detail"]
    assert AuditEvent.objects.count() == before


def test_an_access_reason_with_nul_is_refused_on_every_channel(
    sqlite_conn: Any, alice: Any
) -> None:
    from approvals.services import InvalidRequest, access_request

    with pytest.raises(InvalidRequest, match="cannot be stored"):
        access_request(
            caller=Caller(user=alice), connection=sqlite_conn, capabilities=["write"], hours=1,
            reason="fix\x00it",
        )  # fmt: skip


def test_an_answer_whose_budgets_cannot_be_counted_still_names_its_run(
    agent: dict[str, Any],
) -> None:
    """The budgets' Redis stops while the statement runs: the 503 says the statement ran and
    where its result is (a client told "nothing was submitted" would run it twice)."""
    import shutil
    import socket
    import subprocess
    import threading
    import time

    import redis as redis_client
    from django.test import override_settings

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
         "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis_client.Redis(port=port).ping()
                break
            except redis_client.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        live = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
        slow = (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 8000000) "
            "SELECT count(*) AS n FROM c"
        )
        with override_settings(CACHES={"default": live, "budgets": live}):
            threading.Timer(0.4, server.kill).start()
            response = _post(agent["client"], connection="demo", sql=slow, wait_seconds=30)
    finally:
        server.kill()
        server.wait()
    assert response.status_code == 503, response.content
    problem = response.json()
    assert problem["run"] and problem["status_url"].endswith(f"/queries/{problem['run']}")
    assert "The statement ran" in problem["detail"]
    assert "nothing was submitted" not in problem["detail"]
    assert QueryRun.objects.get(pk=problem["run"]).status == "succeeded"

"""The MCP server, end to end: a real `manage.py mcp` subprocess over stdio and `/mcp` over
Streamable HTTP on a live server, driven by the official SDK's client, against real
PostgreSQL and MariaDB targets; masked rows, a held write with its approval, a denial, the
token checked on every call, and the HTTP endpoint's refusals."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from django.test import Client as DjangoClient
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from audit.models import AuditEvent
from governance.models import ApiToken, QueryRun
from governance.services.agents import agent_create
from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh
from tests.conftest import grant, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


def _agent(owner: Any, connection: Any, *capabilities: str) -> str:
    agent, token = agent_create(
        caller=Caller(user=owner), name="mcp-agent", owner=owner, groups=["analyst"]
    )
    grant(connection, agent.user, *capabilities)
    return token


def _result(called: Any) -> Any:
    """A tool's result: the structured content (a list comes wrapped as `result`)."""
    content = called.structured_content
    if isinstance(content, dict) and set(content) == {"result"}:
        return content["result"]
    return content


async def _session(client: Client, connection: str) -> dict[str, Any]:
    tools = {t.name for t in (await client.list_tools()).tools}
    listed = _result(await client.call_tool("list_connections", {}))
    schema = _result(await client.call_tool("describe_schema", {"connection": connection}))
    read = _result(
        await client.call_tool(
            "run_query",
            {
                "connection": connection,
                "sql": "SELECT full_name, ssn FROM customers ORDER BY id LIMIT 3",
                "purpose": "mcp test",
                "metadata": {"model": "test-model", "trace_id": "t-1"},
            },
        )
    )
    held = _result(
        await client.call_tool(
            "run_query",
            {"connection": connection, "sql": "UPDATE orders SET status = 'shipped' WHERE id = 1"},
        )
    )
    again = _result(await client.call_tool("get_query", {"run": held["run"]}))
    denied = _result(
        await client.call_tool("run_query", {"connection": connection, "sql": "DROP TABLE orders"})
    )
    missing = await client.call_tool("get_query", {"run": 999999})
    asked = _result(
        await client.call_tool(
            "request_access",
            {"kind": "access", "connection": connection, "capabilities": ["write"], "hours": 1,
             "reason": "fix orders"},
        )
    )  # fmt: skip
    return {
        "tools": tools,
        "listed": listed,
        "schema": schema,
        "read": read,
        "held": held,
        "again": again,
        "denied": denied,
        "missing": missing,
        "asked": asked,
    }


def _check(outcome: dict[str, Any], connection: str) -> None:
    assert outcome["tools"] == {
        "list_connections", "describe_schema", "run_query", "get_query", "request_access",
    }  # fmt: skip
    assert [c["name"] for c in outcome["listed"]] == [connection]
    columns = {
        c["name"]: c
        for t in outcome["schema"]["tables"]
        if t["name"] == "customers"
        for c in t["columns"]
    }
    assert columns["ssn"]["masked"]
    read = outcome["read"]
    assert read["status"] == "succeeded", read
    assert read["columns"] == ["full_name", "ssn"] and len(read["rows"]) == 3
    assert all("-" not in str(row[1]) or "*" in str(row[1]) for row in read["rows"])
    run = QueryRun.objects.get(pk=read["run"])
    assert run.channel == "mcp" and run.provenance["metadata"]["model"] == "test-model"
    assert run.provenance["acting_for"] == "alice"
    assert outcome["held"]["status"] == "pending_approval"
    assert outcome["held"]["approval"]["id"] and outcome["held"]["reasons"]
    assert outcome["again"]["status"] == "pending_approval"
    assert outcome["denied"]["status"] == "denied" and outcome["denied"]["reasons"]
    assert outcome["missing"].is_error
    assert "No run 999999" in outcome["missing"].content[0].text
    assert outcome["asked"]["kind"] == "access" and outcome["asked"]["status"] == "pending"
    submitted = AuditEvent.objects.get(kind="query.submitted", run_id=read["run"])
    assert submitted.channel == "mcp"


@pytest.fixture
def pg_agent(pg_conn: Any, alice: Any) -> dict[str, Any]:
    catalog_refresh(connection=pg_conn)
    return {"token": _agent(alice, pg_conn, "read", "write"), "connection": pg_conn.name}


@pytest.fixture
def mysql_agent(mysql_conn: Any, alice: Any) -> dict[str, Any]:
    catalog_refresh(connection=mysql_conn)
    return {"token": _agent(alice, mysql_conn, "read", "write"), "connection": mysql_conn.name}


def _stdio(token: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=[str(ROOT / "manage.py"), "mcp"],
        env=subprocess_env(WARDEN_TOKEN=token),
        cwd=str(ROOT),
    )


def test_a_round_trip_through_manage_py_mcp_over_stdio(pg_agent: dict[str, Any]) -> None:
    async def main() -> dict[str, Any]:
        async with Client(_stdio(pg_agent["token"])) as client:
            return await _session(client, pg_agent["connection"])

    _check(asyncio.run(main()), pg_agent["connection"])


def test_a_round_trip_through_mcp_over_http(live_server: Any, mysql_agent: dict[str, Any]) -> None:
    async def main() -> dict[str, Any]:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {mysql_agent['token']}"})
        async with Client(streamable_http_client(f"{live_server.url}/mcp", http_client=http)) as c:
            return await _session(c, mysql_agent["connection"])

    _check(asyncio.run(main()), mysql_agent["connection"])


def test_a_revoked_token_stops_the_next_tool_call(pg_agent: dict[str, Any]) -> None:
    from django.db import connection
    from django.utils import timezone

    def revoke_all() -> None:
        ApiToken.objects.update(revoked_at=timezone.now())
        connection.close()  # this thread's own connection

    async def main() -> tuple[Any, Any]:
        async with Client(_stdio(pg_agent["token"])) as client:
            first = await client.call_tool("list_connections", {})
            await asyncio.to_thread(lambda: ApiToken.objects.update(revoked_at=timezone.now()))
            second = await client.call_tool("list_connections", {})
            return first, second

    first, second = asyncio.run(main())
    assert not first.is_error
    assert second.is_error and "revoked" in second.content[0].text


def test_the_stdio_server_refuses_to_start_without_a_valid_token() -> None:
    import subprocess

    for token in ("", "wdn_000000000000_" + "x" * 43):
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "mcp"],
            env=subprocess_env(WARDEN_TOKEN=token),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert done.returncode != 0 and "WARDEN_TOKEN" in done.stderr
        assert done.stdout == ""


def test_the_http_endpoint_refuses_without_a_token_and_other_methods(
    pg_agent: dict[str, Any],
) -> None:
    client = DjangoClient()
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    refused = client.post("/mcp", body, content_type="application/json")
    assert refused.status_code == 401
    assert refused["Content-Type"] == "application/problem+json"
    bad = client.post(
        "/mcp", body, content_type="application/json", HTTP_AUTHORIZATION="Bearer wdn_x"
    )
    assert bad.status_code == 401
    assert client.get("/mcp", HTTP_AUTHORIZATION=f"Bearer {pg_agent['token']}").status_code == 405
    # A body past Django's upload limit is a 413 problem, as on /api/v1, not an HTML page.
    from django.conf import settings

    huge = b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    big = client.post(
        "/mcp", huge, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {pg_agent['token']}",
    )  # fmt: skip
    assert big.status_code == 413 and big["Content-Type"] == "application/problem+json"


def test_the_bytes_budget_counts_what_an_mcp_answer_sends(pg_agent: dict[str, Any]) -> None:
    """The SDK sends a tool's result twice (text and structured content): both are counted,
    so an MCP caller gets no more bytes for its budget than an API caller."""
    from api.budgets import _key, _store, _window
    from governance.models import Agent

    user_id = Agent.objects.get(user__username="mcp-agent").user_id
    key = _key("bytes per hour", user_id, _window(3600)[0])
    before = int(_store().get(key, 0))
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "run_query",
            "arguments": {
                "connection": pg_agent["connection"],
                "sql": "SELECT id, city, country FROM customers ORDER BY id LIMIT 200",
            },
        },
    }
    response = DjangoClient().post(
        "/mcp",
        json.dumps(call),
        content_type="application/json",
        HTTP_ACCEPT="application/json, text/event-stream",
        HTTP_AUTHORIZATION=f"Bearer {pg_agent['token']}",
    )
    assert response.status_code == 200, response.content
    result = json.loads(response.content)["result"]
    assert len(result["structuredContent"]["rows"]) == 200
    counted = int(_store().get(key, 0)) - before
    # All but the JSON-RPC envelope: a few hundred bytes of a 20 kB answer.
    assert 0.97 * len(response.content) <= counted <= len(response.content), (
        counted,
        len(response.content),
    )

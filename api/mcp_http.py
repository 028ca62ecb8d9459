"""`/mcp`: the MCP server over Streamable HTTP, inside Warden's own web process.

Each POST carries JSON-RPC messages and gets its answer as JSON in the same response (the
transport's stateless JSON mode: no session, no event stream), so it needs no ASGI server:
the view hands the request to the SDK's transport in a short-lived event loop. The bearer
token is checked here first (401 problem otherwise) and again by every tool call. Django
checks the Host header (ALLOWED_HOSTS); the SDK's own DNS-rebinding check is off.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from asgiref.sync import async_to_sync
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from api.auth import token_refused
from api.mcp_server import Presented, lowlevel, presented
from api.problems import problem
from governance.services.agents import TokenRefused, token_bearer
from governance.signals import client_ip

MAX_BODY = 4 * 1024 * 1024


async def _serve(
    scope: dict[str, Any], body: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    manager = StreamableHTTPSessionManager(
        app=lowlevel(),
        stateless=True,
        json_response=True,
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    status, headers, chunks = 500, [], []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    async with manager.run():
        await manager.handle_request(scope, receive, send)
    return status, headers, b"".join(chunks)


@csrf_exempt
def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        response = problem(
            request, 405, "POST JSON-RPC messages here; this server keeps no event stream."
        )
        response["Allow"] = "POST"
        return response
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return problem(request, 401, "Send a Warden token: Authorization: Bearer wdn_…")
    try:
        token_bearer(token.strip())
    except TokenRefused as exc:
        token_refused(token.strip(), str(exc), client_ip(request), channel="mcp")
        return problem(request, 401, str(exc))
    try:
        body = request.body
    except RequestDataTooBig:  # over DATA_UPLOAD_MAX_MEMORY_SIZE: Django refuses to read it
        body = None
    if body is None or len(body) > MAX_BODY:
        return problem(request, 413, "The request is larger than this server accepts.")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.path.encode(),
        "root_path": "",
        "query_string": request.META.get("QUERY_STRING", "").encode(),
        "headers": [
            (name.lower().encode(), value.encode("latin-1", "replace"))
            for name, value in request.headers.items()
            if name.lower() != "authorization"
        ],
        "client": (client_ip(request) or "", 0),
        "server": (request.get_host(), 0),
    }
    mark = presented.set(Presented(token=token.strip(), source_ip=client_ip(request)))
    try:
        status, headers, content = async_to_sync(_serve)(scope, body)
    finally:
        presented.reset(mark)
    response = HttpResponse(content, status=status)
    for name, value in headers:
        if name.lower() in (b"content-type", b"mcp-protocol-version", b"mcp-session-id"):
            response[name.decode()] = value.decode("latin-1")
    return response

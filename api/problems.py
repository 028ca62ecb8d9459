"""Errors as RFC 9457 problem details (`application/problem+json`)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse

PROBLEM = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(
    request: HttpRequest | None,
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> HttpResponse:
    body = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extensions,
    }
    if request is not None:
        body["instance"] = request.path
    response = HttpResponse(json.dumps(body, default=str), status=status, content_type=PROBLEM)
    for name, value in (headers or {}).items():
        response[name] = value
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="warden"'
    return response


#: What every problem carries (RFC 9457); refusals add their own members (reasons, budget, …).
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}

WHEN = {
    400: "The input is not usable (not SQL text, a bad cursor or limit, a bad key).",
    401: "No token, or one that is not valid (unknown, revoked, expired, its agent stopped).",
    403: "Your roles do not allow it, or the statement is denied (the reasons are in it).",
    404: "Nothing by that name or id that you may use or read.",
    405: "The path does not take this method.",
    409: "A request with this Idempotency-Key is still being submitted.",
    413: "The body is larger than the server accepts.",
    422: "The body or a parameter does not match the schema (`errors` lists the fields).",
    429: (
        "A budget is spent (`budget`, `limit`); ask again after `Retry-After` seconds. When "
        "the statement ran and only its answer waits, `run` and `status_url` say where."
    ),
    503: "Budgets cannot be counted right now (the cache is down): nothing was done.",
}


def documented(*codes: int) -> dict[str, Any]:
    """The `openapi_extra` of an operation that answers `codes` (and 401, 405, 429, 503,
    which every call can) with problem details."""
    return {
        "responses": {
            str(code): {
                "description": WHEN[code],
                "content": {PROBLEM: {"schema": SCHEMA}},
            }
            for code in sorted({*codes, 401, 405, 429, 503})
        }
    }

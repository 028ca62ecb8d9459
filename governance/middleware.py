"""Per-request context for the audit trail (audit/context.py)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit.context import acting_as


class AuditContextMiddleware:
    """Events recorded from model signals during a request name the signed-in person, the
    channel and the caller's address."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with acting_as(channel="web", request=request, via=""):
            return self.get_response(request)

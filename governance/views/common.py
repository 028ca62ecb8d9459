"""Helpers shared by the web views."""

from __future__ import annotations

from django.http import HttpRequest

from governance.services.caller import Caller
from governance.signals import client_ip


def web_caller(request: HttpRequest) -> Caller:
    return Caller(user=request.user, channel="web", source_ip=client_ip(request))

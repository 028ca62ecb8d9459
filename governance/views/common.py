"""Helpers shared by the web views."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from governance.roles import ADMIN, ANALYST, APPROVER, AUDITOR, has_role
from governance.services.caller import web_caller

__all__ = ["home", "web_caller"]


def home(request: HttpRequest) -> HttpResponse:
    """Each role lands where its work is: the editor, the approval queue, or the audit trail."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if has_role(request.user, ANALYST, ADMIN):
        return redirect("editor")
    if has_role(request.user, APPROVER):
        return redirect("approval_queue")
    if has_role(request.user, AUDITOR):
        return redirect("audit_events")
    return render(request, "home.html", status=200)

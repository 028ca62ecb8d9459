"""Error pages: Django's own handlers (django.views.defaults) with Warden's templates.

templates/404.html and templates/500.html need no code: Django's default handlers render them.
500.html stands alone (no base template, no context processors, no database), since it is
shown when something, perhaps the database, has failed."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.views import defaults

from governance.roles import Refusal


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 403 view (templates/403.html), given the refusal's message only when Warden
    wrote it for the person refused; any other message may say more than they should read."""
    if not isinstance(exception, Refusal):
        exception = PermissionDenied()
    return defaults.permission_denied(request, exception)

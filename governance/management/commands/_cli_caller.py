"""Who a management command acts as: the account named by `--as`, else the command line
itself ("manage.py agents (os user NAME)"), as the audit trail records it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.management.base import CommandError

from audit.context import acting
from governance.services.caller import Caller


def cli_caller(username: str = "") -> Caller:
    if username:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"--as: no active account {username!r}")
        return Caller(user=user, channel="cli")
    return Caller(user=AnonymousUser(), channel="cli", name=acting().via or "manage.py")

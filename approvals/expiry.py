"""The end of time-boxed access: expired grants and unmask exemptions enter the audit trail."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from audit.kinds import EventKind
from governance.models import AccessGrant, UnmaskExemption
from governance.services.caller import Caller, record


def grants_expire(*, now: dt.datetime | None = None) -> int:
    """Record the end of time-boxed grants and exemptions in the audit trail, once each."""
    now = now or timezone.now()
    ended = 0
    system = Caller(user=None, channel="system")
    for grant in AccessGrant.objects.select_related("connection", "user", "group").filter(
        expires_at__lte=now, expiry_recorded=False
    ):
        with transaction.atomic():
            if AccessGrant.objects.filter(pk=grant.pk, expiry_recorded=False).update(
                expiry_recorded=True
            ):
                record(
                    EventKind.ACCESS_EXPIRED,
                    system,
                    grant.connection,
                    detail={
                        "grant": grant.pk,
                        "grantee": grant.grantee,
                        "capabilities": grant.capabilities,
                        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
                    },
                )
                ended += 1
    for exemption in UnmaskExemption.objects.select_related(
        "column__table__connection", "user", "group"
    ).filter(expires_at__lte=now, expiry_recorded=False):
        with transaction.atomic():
            if UnmaskExemption.objects.filter(pk=exemption.pk, expiry_recorded=False).update(
                expiry_recorded=True
            ):
                record(
                    EventKind.UNMASK_EXPIRED,
                    system,
                    exemption.column.table.connection,
                    detail={
                        "exemption": exemption.pk,
                        "column": str(exemption.column),
                        "grantee": str(exemption.user or exemption.group),
                        "expires_at": exemption.expires_at.isoformat(),
                    },
                )
                ended += 1
    return ended

"""The audit trail to a SIEM: sealed events, as OCSF JSON Lines (audit/ocsf.py), posted to
`WARDEN_SIEM_WEBHOOK_URL` through the same delivery log as notifications, signed the same way
(`X-Warden-Timestamp`, `X-Warden-Signature: sha256=…` over "{timestamp}.{body}" with
`WARDEN_SIEM_WEBHOOK_SECRET`).

At least once: the beat task hands the next batch of sealed events to a `Delivery` and moves the
cursor in one transaction; the delivery is retried until the collector answers 2xx (it is never
given up, unlike a notification). A collector can drop a batch it saw twice by its
`X-Warden-Delivery` id, or each record by `metadata.uid` (the event id).
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import transaction

from approvals.models import Delivery, SiemCursor
from audit.models import AuditEvent
from audit.ocsf import to_ocsf

log = logging.getLogger(__name__)

BATCH = 500


def siem_forward() -> int:
    """Hand the next sealed events to the delivery log; how many. Runs on the beat schedule."""
    if not settings.WARDEN_SIEM_WEBHOOK_URL:
        return 0
    from approvals.notifications import redact_url

    handed = 0
    with transaction.atomic():
        cursor, _ = SiemCursor.objects.select_for_update().get_or_create(pk=1)
        ids = list(
            AuditEvent.objects.filter(id__gt=cursor.last_event_id)
            .exclude(hash="")  # sealed: committed, in id order, never to change
            .order_by("id")
            .values_list("id", flat=True)[:BATCH]
        )
        if not ids:
            return 0
        delivery = Delivery.objects.create(
            request=None,
            event="audit",
            channel=Delivery.Channel.SIEM,
            target=redact_url(settings.WARDEN_SIEM_WEBHOOK_URL),
            first_event_id=ids[0],
            last_event_id=ids[-1],
            next_attempt_at=Delivery._meta.get_field("created_at").get_default(),
        )
        cursor.last_event_id = ids[-1]
        cursor.save(update_fields=["last_event_id", "updated_at"])
        handed = len(ids)

        def send(delivery_id: int = delivery.pk) -> None:
            from approvals.tasks import deliver

            try:
                deliver.apply_async((delivery_id,), retry=False)
            except Exception as exc:  # the sweep retries it
                log.warning("could not queue SIEM delivery %s: %s", delivery_id, exc)

        transaction.on_commit(send)
    return handed


def siem_body(delivery: Delivery) -> bytes:
    """The batch a SIEM delivery carries, rebuilt from the trail at each attempt."""
    events = AuditEvent.objects.filter(
        id__gte=delivery.first_event_id, id__lte=delivery.last_event_id
    ).exclude(hash="")
    lines = [json.dumps(to_ocsf(e), default=str) for e in events.order_by("id").iterator()]
    return ("\n".join(lines) + "\n").encode("utf-8")

"""The audit trail to a SIEM: OCSF records downloaded for a period, and streamed to a local HTTP
collector, signed, at least once, through the delivery log."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from approvals.models import Delivery, SiemCursor
from approvals.notifications import delivery_attempt
from approvals.siem import siem_forward
from audit.models import AuditEvent
from audit.sealer import seal
from governance.services.caller import Caller
from governance.services.runs import run_submit

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "siem-secret-for-the-tests-0000"


def verified(headers: dict[str, str], body: bytes) -> bool:
    """The collector's check, from the README alone."""
    timestamp = headers.get("X-Warden-Timestamp", "")
    expected = (
        "sha256="
        + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= 300
    return fresh and hmac.compare_digest(expected, headers.get("X-Warden-Signature", ""))


class Collector:
    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []
        self.status = 200
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers.items())
                collector.batches.append(
                    {
                        "headers": headers,
                        "records": [json.loads(line) for line in body.splitlines() if line],
                        "verified": verified(headers, body),
                        "answered": collector.status,
                    }
                )
                self.send_response(collector.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/ocsf"


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    with override_settings(WARDEN_SIEM_WEBHOOK_URL=server.url, WARDEN_SIEM_WEBHOOK_SECRET=SECRET):
        yield server
    server.server.shutdown()
    server.server.server_close()


def _activity(alice: Any, connection: Any) -> None:
    for sql in ("SELECT id, city FROM customers LIMIT 2", "DROP TABLE orders"):
        run_submit(caller=Caller(user=alice), connection=connection, sql=sql)
    Client().post(reverse("account_login"), {"login": "alice", "password": "nope"})


def test_sealed_events_reach_the_collector_once_taken_signed_and_in_ocsf(
    collector: Collector, alice: Any, sqlite_conn: Any
) -> None:
    _activity(alice, sqlite_conn)
    assert siem_forward() == 0  # nothing is handed over before it is sealed
    seal(settle_s=0)
    collector.status = 503  # the collector is down: the batch waits, nothing is skipped
    handed = siem_forward()
    sealed = list(AuditEvent.objects.exclude(hash="").order_by("id").values_list("id", flat=True))
    assert handed == len(sealed) > 0
    delivery = Delivery.objects.get(channel="siem")
    assert delivery.status == "pending" and delivery.last_error.startswith("HTTP 503")
    assert (delivery.first_event_id, delivery.last_event_id) == (sealed[0], sealed[-1])
    assert SiemCursor.objects.get().last_event_id == sealed[-1]
    assert siem_forward() == 0  # handed over once

    collector.status = 200
    later = timezone.now() + dt.timedelta(hours=3)
    for _ in range(8):  # past a notification's last attempt: a SIEM batch is never given up
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        if delivery_attempt(delivery_id=delivery.pk, now=later) == "sent":
            break
        collector.status = 200
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.response_code == 200

    taken = [b for b in collector.batches if b["answered"] == 200]
    assert len(taken) == 1 and taken[0]["verified"]
    records = taken[0]["records"]
    assert [int(r["metadata"]["uid"]) for r in records] == sealed
    assert taken[0]["headers"]["X-Warden-Events"] == f"{sealed[0]}-{sealed[-1]}"
    by_kind = {r["unmapped"]["warden_kind"]: r for r in records}
    denied = next(
        r for r in records if r["class_uid"] == 6005 and r["unmapped"]["decision"] == "deny"
    )
    assert denied["type_uid"] == 600504 and denied["action"] == "Denied"
    assert denied["database"]["name"] == sqlite_conn.name
    assert denied["query_info"]["query_string"] == "DROP TABLE orders"
    assert denied["metadata"]["correlation_uid"].startswith("run-")
    failed = by_kind["auth.login_failed"]
    assert failed["class_uid"] == 3002 and failed["status"] == "Failure"
    assert by_kind["role.member_added"]["class_uid"] == 3006


def test_the_ocsf_download_follows_the_filters_and_is_audited(
    alice: Any, dave: Any, sqlite_conn: Any
) -> None:
    _activity(alice, sqlite_conn)
    client = Client()
    client.force_login(dave)
    response = client.get(reverse("audit_export", args=["ocsf"]), {"decision": "deny"})
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = b"".join(response.streaming_content).decode().splitlines()  # type: ignore[attr-defined]
    records = [json.loads(line) for line in lines]
    assert [r["unmapped"]["decision"] for r in records] == ["deny"]
    assert records[0]["class_name"] == "Datastore Activity"
    exported = AuditEvent.objects.get(kind="audit.exported")
    assert exported.detail["format"] == "ocsf" and exported.detail["events"] == 1


def test_without_a_collector_nothing_is_handed_over(alice: Any, sqlite_conn: Any) -> None:
    _activity(alice, sqlite_conn)
    seal(settle_s=0)
    with override_settings(WARDEN_SIEM_WEBHOOK_URL=""):
        assert siem_forward() == 0
    assert not Delivery.objects.filter(channel="siem").exists()

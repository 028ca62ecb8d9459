"""Notifications against a real HTTP receiver on localhost: signed, retried, logged, redacted."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.test import override_settings
from django.utils import timezone

from approvals.models import ApprovalRequest, Delivery
from approvals.notifications import (
    MAX_ATTEMPTS,
    deliveries_send_due,
    redact_url,
    sign,
    verify_signature,
)
from approvals.services import request_review
from governance.services.caller import Caller
from governance.services.runs import run_submit
from tests.conftest import _user

pytestmark = pytest.mark.django_db(transaction=True)

UPDATE = "UPDATE accounts SET balance = balance + 1 WHERE id <= 2"
SECRET = "receiver-shared-secret-0123456789"
SLACK_PATH = "/services/T000/B000/slack-token-do-not-leak"
SITE = "https://warden.example.com"


def third_party_verify(headers: dict[str, str], body: bytes) -> bool:
    """A receiver's check, written from the README alone (no Warden code)."""
    timestamp = headers.get("X-Warden-Timestamp", "")
    signed = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= 300
    return fresh and hmac.compare_digest(expected, headers.get("X-Warden-Signature", ""))


class Receiver:
    """A real HTTP server in a thread; records every POST and answers with `status`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers.items())
                receiver.received.append(
                    {
                        "path": self.path,
                        "headers": headers,
                        "body": body,
                        "json": json.loads(body),
                        "verified": third_party_verify(headers, body),
                    }
                )
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["path"] == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def hooks(receiver: Receiver) -> Iterator[Receiver]:
    with override_settings(
        SITE_URL=SITE,
        WARDEN_WEBHOOK_URL=receiver.url("/warden"),
        WARDEN_WEBHOOK_SECRET=SECRET,
        WARDEN_SLACK_WEBHOOK_URL=receiver.url(SLACK_PATH),
    ):
        yield receiver


def _mailed(user: Any) -> Any:
    user.email = f"{user.username}@example.com"
    user.save(update_fields=["email"])
    return user


@pytest.fixture
def frank(groups: dict[str, Any]) -> Any:
    return _mailed(_user("frank", groups["approver"]))


def hold(user: Any, connection: Any, purpose: str = "fix the December balances") -> Any:
    run = run_submit(caller=Caller(user=user), connection=connection, sql=UPDATE, purpose=purpose)
    return ApprovalRequest.objects.get(run=run)


def test_a_new_request_mails_the_approvers_and_posts_to_both_webhooks(
    alice: Any, bob: Any, frank: Any, carol: Any, ledger: Any, hooks: Receiver, mailoutbox: Any
) -> None:
    _mailed(alice), _mailed(bob), _mailed(carol)  # carol is an admin, not an approver
    request = hold(alice, ledger, purpose="fix <December> & <!channel>")
    link = f"{SITE}/approvals/{request.pk}/"

    assert sorted(m.to[0] for m in mailoutbox) == ["bob@example.com", "frank@example.com"]
    mail = mailoutbox[0]
    assert mail.subject == f"[Warden] Request #{request.pk} needs your review: {request.title}"
    assert link in mail.body and "fix <December> & <!channel>" in mail.body

    (webhook,) = hooks.at("/warden")
    assert webhook["verified"]
    assert webhook["headers"]["X-Warden-Event"] == "requested"
    assert webhook["json"]["event"] == "requested" and webhook["json"]["url"] == link
    assert webhook["json"]["request"]["id"] == request.pk
    assert webhook["json"]["request"]["sql"] == UPDATE
    delivery = Delivery.objects.get(channel="webhook")
    assert webhook["headers"]["X-Warden-Delivery"] == str(delivery.pk)

    (slack,) = hooks.at(SLACK_PATH)
    text = slack["json"]["text"]
    assert set(slack["json"]) == {"text"} and f"<{link}|Request #{request.pk}>" in text
    assert "fix &lt;December&gt; &amp; &lt;!channel&gt;" in text  # no mention, no fake link

    log = Delivery.objects.filter(request=request)
    assert sorted(log.values_list("channel", "status", "attempts")) == [
        ("email", "sent", 1),
        ("email", "sent", 1),
        ("slack", "sent", 1),
        ("webhook", "sent", 1),
    ]
    slack_log = log.get(channel="slack")
    assert slack_log.response_code == 200 and slack_log.target == redact_url(hooks.url(SLACK_PATH))
    assert "slack-token" not in slack_log.target


def test_the_requester_hears_the_decision_with_the_run_status(
    alice: Any, bob: Any, ledger: Any, hooks: Receiver, mailoutbox: Any
) -> None:
    _mailed(alice)
    request = hold(alice, ledger)
    mailoutbox.clear()
    request_review(
        caller=Caller(user=bob), request_id=request.pk, approve=True, reauthenticated=True
    )

    (mail,) = mailoutbox
    assert mail.to == ["alice@example.com"]
    assert mail.subject.startswith(f"[Warden] Request #{request.pk} was approved")
    assert f"Run:          #{request.run_id} succeeded" in mail.body
    assert f"{SITE}/approvals/{request.pk}/" in mail.body
    approved = [r for r in hooks.at("/warden") if r["json"]["event"] == "approved"]
    assert len(approved) == 1 and approved[0]["verified"]


def test_a_failing_receiver_is_retried_by_the_sweep_on_a_controlled_clock(
    alice: Any, bob: Any, ledger: Any, hooks: Receiver
) -> None:
    hooks.status = 500
    before = timezone.now()
    request = hold(alice, ledger)
    delivery = Delivery.objects.get(request=request, channel="webhook")
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.response_code == 500 and delivery.last_error.startswith("HTTP 500")
    assert delivery.next_attempt_at is not None
    assert dt.timedelta(minutes=1) <= delivery.next_attempt_at - before < dt.timedelta(minutes=2)

    assert deliveries_send_due() == 0  # not due yet: nothing is resent
    hooks.status = 200
    assert deliveries_send_due(now=timezone.now() + dt.timedelta(minutes=2)) == 2  # and Slack

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("sent", 2, 200)
    assert delivery.last_error == "" and delivery.sent_at is not None
    first, second = hooks.at("/warden")
    assert first["headers"]["X-Warden-Delivery"] == second["headers"]["X-Warden-Delivery"]
    assert second["verified"]


def test_a_delivery_gives_up_after_the_last_attempt(
    alice: Any, ledger: Any, hooks: Receiver
) -> None:
    hooks.status = 503
    request = hold(alice, ledger)
    clock = timezone.now()
    for _ in range(MAX_ATTEMPTS - 1):
        clock += dt.timedelta(hours=3)
        deliveries_send_due(now=clock)
    delivery = Delivery.objects.get(request=request, channel="webhook")
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert delivery.next_attempt_at is None
    assert deliveries_send_due(now=clock + dt.timedelta(days=1)) == 0
    assert len(hooks.at("/warden")) == MAX_ATTEMPTS


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_receiver_that_is_down_is_logged_without_the_secret_url(
    alice: Any, ledger: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}{SLACK_PATH}?token=also-secret"
    with override_settings(WARDEN_SLACK_WEBHOOK_URL=url):
        request = hold(alice, ledger)  # the held statement is unaffected
    assert request.status == "pending" and request.run.status == "pending_approval"
    delivery = Delivery.objects.get(request=request)
    assert delivery.channel == "slack" and delivery.status == "pending"
    assert delivery.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert "notification" in caplog.text and delivery.last_error in caplog.text
    for text in (caplog.text, delivery.last_error, delivery.target):
        assert "slack-token" not in text and "also-secret" not in text


class BrokenMailServer(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        import smtplib

        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


@override_settings(EMAIL_BACKEND="tests.test_notifications.BrokenMailServer")
def test_a_broken_mail_server_is_logged_and_never_breaks_the_request(
    alice: Any, bob: Any, ledger: Any
) -> None:
    _mailed(bob)
    request = hold(alice, ledger)
    (delivery,) = Delivery.objects.filter(request=request)
    assert (delivery.channel, delivery.target) == ("email", "bob@example.com")
    assert delivery.status == "pending"
    assert delivery.last_error == "SMTPServerDisconnected: Connection unexpectedly closed"


def test_without_webhooks_configured_only_email_is_sent(
    alice: Any, bob: Any, ledger: Any, receiver: Receiver, mailoutbox: Any
) -> None:
    _mailed(bob)
    request = hold(alice, ledger)
    assert list(Delivery.objects.filter(request=request).values_list("channel", flat=True)) == [
        "email"
    ]
    assert receiver.received == [] and len(mailoutbox) == 1


def test_the_signature_helper_refuses_tampering_other_keys_and_replays() -> None:
    body = b'{"event":"approved"}'
    header = sign(SECRET, "1764086400", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature(SECRET, "1764086400", body, header, now=1764086400 + 299)
    assert not verify_signature(
        SECRET, "1764086400", b'{"event":"rejected"}', header, now=1764086400
    )
    assert not verify_signature("another-secret", "1764086400", body, header, now=1764086400)
    assert not verify_signature(SECRET, "1764086401", body, header, now=1764086400)
    assert not verify_signature(SECRET, "1764086400", body, header, now=1764086400 + 301)
    assert not verify_signature(SECRET, "1764086400", body, header, now=1764086400 - 301)
    assert not verify_signature(SECRET, "soon", body, header, now=1764086400)
    assert not verify_signature(SECRET, "1764086400", body, "", now=1764086400)


def test_the_delivery_log_is_on_the_request_page_for_approvers_only(
    alice: Any, bob: Any, ledger: Any, hooks: Receiver, client: Any
) -> None:
    request = hold(alice, ledger)
    client.force_login(bob)
    page = client.get(f"/approvals/{request.pk}/").content.decode()
    assert "Notifications" in page and "data-delivery" in page
    assert "127.0.0.1" in page and "slack-token" not in page
    client.force_login(alice)
    page = client.get(f"/approvals/{request.pk}/").content.decode()
    assert "data-delivery" not in page


def test_a_receiver_that_answers_a_byte_at_a_time_is_cut_off_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """r11d review: every read under the timeout, the whole answer never: one attempt must
    not hold a worker longer than the deadline."""
    import socket
    import threading
    import time

    from approvals import notifications

    monkeypatch.setattr(notifications, "DEADLINE", 1.5)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()

    def trickle() -> None:
        client, _ = server.accept()
        client.recv(65536)
        client.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not stop.is_set():
            try:
                client.sendall(b"a")
            except OSError:
                break
            time.sleep(0.3)
        client.close()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    started = time.monotonic()
    with pytest.raises(notifications.DeliveryFailed, match="no complete answer within 2 s"):
        notifications._post(f"http://127.0.0.1:{server.getsockname()[1]}/hook", b"{}", {})
    assert time.monotonic() - started < 5
    stop.set()
    server.close()

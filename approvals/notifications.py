"""Notifications of approval events: email, a Slack incoming webhook, a signed JSON webhook.

`notify` hangs on the workflow's after-commit hooks. It records one `Delivery` per recipient
(the delivery log) and queues an immediate attempt; a failed attempt is retried by the
`approvals.deliver_due` sweep after growing delays, so a lost broker message costs a minute,
not a notification. Nothing here raises into the approval that caused it.

The generic webhook is signed, so a receiver can tell that a message comes from Warden and is
fresh (see `verify_signature`, the receiver's side, and README: Notifications):

    X-Warden-Timestamp: 1764086400
    X-Warden-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import socket
import ssl
import threading
import time
from typing import Any, TypedDict
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, Delivery, Review
from approvals.summary import request_summary
from governance import metrics

log = logging.getLogger(__name__)

Channel = Delivery.Channel
Status = Delivery.Status

# The first attempt is immediate; after failed attempt n the next waits RETRY_DELAYS[n - 1].
RETRY_DELAYS = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
TIMEOUT = 5.0
REPLAY_WINDOW = 300  # seconds a receiver should accept a signed message for
SWEEP_BATCH = 100

HEADLINES = {
    "requested": "needs review",
    "reviewed": "has a new approval",
    "approved": "was approved",
    "rejected": "was rejected",
    "expired": "expired",
    "withdrawn": "was withdrawn",
}
# Who is mailed: approvers when a request arrives, the requester when it is decided.
REQUESTER_EVENTS = ("approved", "rejected", "expired")


class WebhookBody(TypedDict):
    event: str
    request: dict[str, Any]
    url: str
    sent_at: str


class DeliveryFailed(Exception):
    """An attempt that did not get through; the message is short and holds no secret."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------ configuration


def request_link(request_id: int) -> str:
    return settings.SITE_URL + reverse("approval_detail", args=[request_id])


def redact_url(url: str) -> str:
    """Scheme and host only: a webhook's path and query often are its secret.

    >>> redact_url("https://hooks.slack.com/services/T00/B00/XXXX?x=1")
    'https://hooks.slack.com/…'
    """
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def _webhook_urls() -> dict[str, str]:
    """The configured webhooks by channel; read at send time, never stored."""
    urls = {
        Channel.SLACK: getattr(settings, "WARDEN_SLACK_WEBHOOK_URL", ""),
        Channel.WEBHOOK: getattr(settings, "WARDEN_WEBHOOK_URL", ""),
        Channel.SIEM: getattr(settings, "WARDEN_SIEM_WEBHOOK_URL", ""),
    }
    return {channel: url for channel, url in urls.items() if url}


def _scrub(text: str) -> str:
    for url in _webhook_urls().values():
        text = text.replace(url, redact_url(url))
    password = getattr(settings, "EMAIL_HOST_PASSWORD", "")
    return text.replace(password, "…") if password else text


# ------------------------------------------------------------------ recording deliveries


def _email_recipients(event: str, request: ApprovalRequest) -> list[str]:
    if event == "requested":
        approvers = (
            get_user_model()
            .objects.filter(is_active=True, groups__name__in=request.approver_groups)
            .exclude(pk=request.requester_id)
            .exclude(email="")
        )
        return sorted(set(approvers.values_list("email", flat=True)))
    if event in REQUESTER_EVENTS and request.requester.email:
        return [request.requester.email]
    return []


def deliveries_create(
    *, event: str, request_id: int, now: dt.datetime | None = None
) -> list[Delivery]:
    """Log one pending delivery per recipient of `event`, each due at once."""
    request = ApprovalRequest.objects.select_related("requester").filter(pk=request_id).first()
    if request is None:
        return []
    now = now or timezone.now()
    targets: list[tuple[str, str]] = [
        (Channel.EMAIL, address) for address in _email_recipients(event, request)
    ]
    targets += [(channel, redact_url(url)) for channel, url in _webhook_urls().items()]
    return Delivery.objects.bulk_create(
        Delivery(
            request=request,
            event=event,
            channel=channel,
            target=target,
            created_at=now,
            next_attempt_at=now,
        )
        for channel, target in targets
    )


def notify(event: str, request_id: int) -> None:
    """After-commit hook of the workflow: log the deliveries, attempt each now. Never raises."""
    from approvals.tasks import deliver

    try:
        deliveries = deliveries_create(event=event, request_id=request_id)
    except Exception:
        log.exception("could not record the %s notifications of request %s", event, request_id)
        return
    for delivery in deliveries:
        try:
            # No publish retries: with the broker down, the sweep sends it within a minute.
            deliver.apply_async((delivery.pk,), retry=False)
        except Exception as exc:
            log.warning("notification %s not queued (%s); the sweep will send it", delivery.pk, exc)


# ------------------------------------------------------------------ messages


def _mrkdwn(text: Any) -> str:
    """Slack's escaping of user text: &, < and > only (they would open links and mentions)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(event: str, summary: dict[str, Any], link: str) -> str:
    lines = [
        f"<{link}|Request #{summary['id']}> {HEADLINES.get(event, event)}: "
        f"{_mrkdwn(summary['title'])}",
        f"{_mrkdwn(summary['requester'])} · risk {_mrkdwn(summary['risk'])} · "
        f"{_mrkdwn(summary['connection'])} ({_mrkdwn(summary['environment'])}) · "
        f"{summary['approvals']} of {summary['required']} approvals",
    ]
    if summary.get("purpose"):
        lines.append(f"> {_mrkdwn(' '.join(summary['purpose'].split()))}")
    return "\n".join(lines)


def email_message(event: str, summary: dict[str, Any], link: str, to: str) -> EmailMessage:
    headline = "needs your review" if event == "requested" else HEADLINES.get(event, event)
    subject = " ".join(f"[Warden] Request #{summary['id']} {headline}: {summary['title']}".split())
    lines = [
        f"Request #{summary['id']} {headline}: {summary['title']}",
        "",
        f"Requested by: {summary['requester']}",
        f"Connection:   {summary['connection']} ({summary['environment']})",
        f"Risk:         {summary['risk']}",
        f"Approvals:    {summary['approvals']} of {summary['required']} "
        f"from {', '.join(summary['approver_groups'])}",
    ]
    if summary.get("purpose"):
        lines.append(f"Purpose:      {summary['purpose']}")
    if summary.get("run_status") and event == "approved":
        lines.append(f"Run:          #{summary['run']} {summary['run_status']}")
    for review in summary.get("reviews") or []:
        comment = f": {review['comment']}" if review["comment"] else ""
        lines.append(f"  {review['reviewer']} {Review.Verdict.said(review['verdict'])}{comment}")
    lines += ["", f"Open the request: {link}", ""]
    return EmailMessage(subject[:200], "\n".join(lines), settings.DEFAULT_FROM_EMAIL, [to])


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Warden-Signature value of a body sent at `timestamp` (Unix seconds, as sent)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    window: int = REPLAY_WINDOW,
) -> bool:
    """What a receiver checks: the signature over the raw body, and a fresh timestamp.

    >>> verify_signature("s3cret", "100", b"{}", sign("s3cret", "100", b"{}"), now=160)
    True
    >>> verify_signature("s3cret", "100", b"{ }", sign("s3cret", "100", b"{}"), now=160)
    False
    >>> verify_signature("s3cret", "100", b"{}", sign("s3cret", "100", b"{}"), now=1000)
    False
    """
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - sent) > window:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header or "")


# ------------------------------------------------------------------ sending


#: However slowly a receiver answers (a byte at a time keeps every read under TIMEOUT), one
#: attempt never holds its worker longer than this.
DEADLINE = 15.0


def _cut(conn: http.client.HTTPConnection, cut: threading.Event) -> None:
    """The deadline passed: unblock the attempt by shutting its socket."""
    cut.set()
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _post(url: str, body: bytes, headers: dict[str, str], *, address: str | None = None) -> int:
    """POST once: no redirect followed (a redirected POST would arrive elsewhere as a GET),
    at most TIMEOUT per read and DEADLINE in all. With `address`, the connection goes to that
    address (the one a check approved), never to a second lookup of the host, which a DNS
    answer changed in between (rebinding) could point inside the network; the Host header and
    the TLS server name and certificate check stay the URL's host."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise DeliveryFailed(f"not a usable URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise DeliveryFailed("not an http(s) URL")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            host, port, timeout=TIMEOUT, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    if address is not None:
        pinned = address

        def connect_pinned(where: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
            return socket.create_connection((pinned, where[1]), *args, **kwargs)

        conn._create_connection = connect_pinned  # type: ignore[attr-defined]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    cut = threading.Event()
    watchdog = threading.Timer(DEADLINE, _cut, args=(conn, cut))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": "Warden", **headers},
        )
        response = conn.getresponse()
        response.read(65536)
        status, reason = int(response.status), str(response.reason)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if cut.is_set():
            raise DeliveryFailed(f"no complete answer within {DEADLINE:.0f} s") from None
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        watchdog.cancel()
        conn.close()
    if cut.is_set():  # cut short: whatever was read is not an answer
        raise DeliveryFailed(f"no complete answer within {DEADLINE:.0f} s")
    if 300 <= status < 400:
        raise DeliveryFailed(f"HTTP {status} {reason} (a redirect is not followed)"[:100], status)
    if status >= 400:
        raise DeliveryFailed(f"HTTP {status} {reason}"[:100], status)
    return status


def _send_siem(delivery: Delivery, url: str) -> int:
    from approvals.siem import siem_body

    timestamp = str(int(time.time()))
    body = siem_body(delivery)
    headers = {
        "Content-Type": "application/x-ndjson",
        "X-Warden-Event": "audit",
        "X-Warden-Delivery": str(delivery.pk),
        "X-Warden-Events": f"{delivery.first_event_id}-{delivery.last_event_id}",
        "X-Warden-Timestamp": timestamp,
        "X-Warden-Signature": sign(settings.WARDEN_SIEM_WEBHOOK_SECRET, timestamp, body),
    }
    return _post(url, body, headers)


def _send(delivery: Delivery, request: ApprovalRequest | None) -> int | None:
    """One attempt over the delivery's channel; the response code, or None for email."""
    if delivery.channel == Channel.CALLBACK:
        from approvals.callbacks import CallbackRefused, callback_send

        try:
            return callback_send(delivery, _post)
        except CallbackRefused as exc:
            raise DeliveryFailed(str(exc)) from None
    if delivery.channel == Channel.SIEM:
        url = _webhook_urls().get(Channel.SIEM)
        if url is None:
            raise DeliveryFailed("the SIEM webhook is no longer configured")
        return _send_siem(delivery, url)
    if request is None:
        raise DeliveryFailed("the request of this notification is gone")
    summary = request_summary(request, full=True)
    link = request_link(request.pk)
    if delivery.channel == Channel.EMAIL:
        try:
            email_message(delivery.event, summary, link, delivery.target).send()
        except smtplib.SMTPResponseException as exc:  # the server's reply: code and text
            reply = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise DeliveryFailed(
                f"{type(exc).__name__} {exc.smtp_code}: {reply}", exc.smtp_code
            ) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, TLS, timeouts, disconnects
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
        return None
    url = _webhook_urls().get(delivery.channel)
    if url is None:
        raise DeliveryFailed(f"the {delivery.channel} webhook is no longer configured")
    if delivery.channel == Channel.SLACK:
        return _post(
            url, json.dumps({"text": slack_text(delivery.event, summary, link)}).encode(), {}
        )
    timestamp = str(int(time.time()))
    payload: WebhookBody = {
        "event": delivery.event,
        "request": summary,
        "url": link,
        "sent_at": dt.datetime.fromtimestamp(int(timestamp), dt.UTC).isoformat(),
    }
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    headers = {
        "X-Warden-Event": delivery.event,
        "X-Warden-Delivery": str(delivery.pk),
        "X-Warden-Timestamp": timestamp,
        "X-Warden-Signature": sign(settings.WARDEN_WEBHOOK_SECRET, timestamp, body),
    }
    return _post(url, body, headers)


def delivery_attempt(*, delivery_id: int, now: dt.datetime | None = None) -> str | None:
    """Attempt one due delivery once; its new status, or None when it was not due.

    The claim is a conditional UPDATE that counts the attempt and books the next one first,
    so two workers never make the same attempt, and an attempt cut short by a dying worker
    is retried when the booked time comes. Never raises.
    """
    now = now or timezone.now()
    delivery = (
        Delivery.objects.select_related("request__requester", "request__connection", "request__run")
        .filter(pk=delivery_id, status=Status.PENDING, next_attempt_at__lte=now)
        .first()
    )
    if delivery is None:
        return None
    siem = delivery.channel == Channel.SIEM  # audit events: retried until taken, never given up
    if delivery.attempts >= MAX_ATTEMPTS and not siem:  # the last attempt never reported back
        Delivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).update(
            status=Status.FAILED, next_attempt_at=None
        )
        metrics.deliveries_finished.labels(delivery.channel, Status.FAILED).inc()
        return Status.FAILED
    attempt = delivery.attempts + 1
    retry_at = now + RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
    claimed = Delivery.objects.filter(
        pk=delivery.pk, status=Status.PENDING, attempts=delivery.attempts
    ).update(attempts=attempt, next_attempt_at=retry_at)
    if not claimed:
        return None
    try:
        code = _send(delivery, delivery.request)
    except Exception as exc:
        code = exc.code if isinstance(exc, DeliveryFailed) else None
        error = _scrub(str(exc) if isinstance(exc, DeliveryFailed) else type(exc).__name__)
        status = Status.FAILED if attempt >= MAX_ATTEMPTS and not siem else Status.PENDING
        Delivery.objects.filter(pk=delivery.pk, attempts=attempt).update(
            status=status,
            last_error=error[:200],
            response_code=code,
            next_attempt_at=retry_at if status == Status.PENDING else None,
        )
        metrics.deliveries_finished.labels(
            delivery.channel, "retry" if status == Status.PENDING else status
        ).inc()
        log.warning(
            "notification %s (%s of %s to %s) attempt %s of %s failed: %s",
            delivery.pk,
            delivery.event,
            delivery.channel,
            delivery.target,
            attempt,
            MAX_ATTEMPTS,
            error,
        )
        return status
    Delivery.objects.filter(pk=delivery.pk, attempts=attempt).update(
        status=Status.SENT,
        sent_at=timezone.now(),
        last_error="",
        response_code=code,
        next_attempt_at=None,
    )
    metrics.deliveries_finished.labels(delivery.channel, Status.SENT).inc()
    return Status.SENT


def deliveries_send_due(*, now: dt.datetime | None = None) -> int:
    """The beat sweep: attempt every pending delivery that is due; how many were attempted."""
    now = now or timezone.now()
    due = Delivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now).order_by(
        "next_attempt_at", "pk"
    )
    pks = list(due.values_list("pk", flat=True)[:SWEEP_BATCH])
    return sum(1 for pk in pks if delivery_attempt(delivery_id=pk, now=now) is not None)

"""API callbacks: when a run submitted with a `callback_url` ends, POST its outcome there.

Signed in the Standard Webhooks format (https://www.standardwebhooks.com): headers
`webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>` over
`{id}.{timestamp}.{body}`, with the `whsec_…` secret the API returned for that run. Sent
through the same delivery log and retries as notifications (at least once). The body names
the outcome, never rows: the client reads them with its token.

A callback URL comes from an API client, so it is checked at send time: http(s) only, no
credentials in it, and by default no host that resolves to a private, loopback, link-local or
otherwise reserved address (WARDEN_CALLBACK_ALLOW_PRIVATE=1 lifts that, e.g. for a receiver
on the same host); WARDEN_CALLBACK_HOSTS, when set, is the only hosts allowed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from approvals.models import Delivery
from governance.models import QueryRun, RunCallback

log = logging.getLogger(__name__)

MAX_URL = 2000


class CallbackRefused(ValueError):
    """The URL cannot be a callback; the message says why."""


def callback_url_check(url: str) -> str:
    """The URL as given, when it could be a callback (its address is checked when sending)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or not url.isprintable():
        raise CallbackRefused(f"The callback URL must be printable text of at most {MAX_URL}.")
    try:
        parts = urlsplit(url)  # raises for an unclosed IPv6 bracket, a host NFKC would change
    except ValueError:
        raise CallbackRefused("The callback URL is not a well-formed URL.") from None
    try:
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError:
        raise CallbackRefused("The callback URL's port is not a port number.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("The callback URL must be an http or https URL with a host.")
    if parts.username or parts.password:
        raise CallbackRefused("The callback URL must not carry a user name or password.")
    allowed = settings.WARDEN_CALLBACK_HOSTS
    if allowed and parts.hostname.lower() not in allowed:
        raise CallbackRefused("The callback URL's host is not one this Warden calls back.")
    return url


def _address_check(url: str) -> str | None:
    """Refuse a host that resolves to an address inside the network (SSRF); the address to
    connect to (every answer checked), which the sender then uses as is (no second lookup)."""
    if settings.WARDEN_CALLBACK_ALLOW_PRIVATE:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise CallbackRefused(f"cannot resolve the callback host: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if not address_public(ipaddress.ip_address(address.split("%", 1)[0])):
            raise CallbackRefused("the callback host resolves to a private or reserved address")
    if not addresses:
        raise CallbackRefused("cannot resolve the callback host")
    return addresses[0]


#: IPv6 ranges that carry an IPv4 address a gateway may deliver to (NAT64, 6to4, Teredo, and
#: all of ::/8: IPv4-compatible, -mapped, SIIT, ISATAP-style) or are long deprecated
#: (site-local): `is_global` calls some of them public, whatever IPv4 address is inside.
_EMBEDDING = [
    ipaddress.ip_network(n)
    for n in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32", "::/8", "fec0::/10")
]


def address_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a callback may go to `address`: global, not multicast, and no IPv6 form that
    embeds an IPv4 address (refused outright: the gateway decides where those go)."""
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in _EMBEDDING):
            return False
        if address.ipv4_mapped is not None:
            return False
    return bool(address.is_global) and not address.is_multicast


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def callback_register(run: QueryRun, url: str) -> str:
    """Keep where to call back for `run`, and return the secret its message is signed with.
    A run that already ended is called back at once."""
    secret = new_secret()
    callback = RunCallback(run=run)
    callback.seal(url, secret)
    callback.save()
    run.refresh_from_db(fields=["status"])
    if run.status in QueryRun.FINISHED:
        transaction.on_commit(lambda: callback_fire(run))
    return secret


def callback_fire(run: Any) -> None:
    """The finished-run hook: log the callback delivery once and attempt it now."""
    from approvals.tasks import deliver

    if not (getattr(run, "provenance", None) or {}).get("callback"):
        return  # submitted without a callback URL: no query for it
    now = timezone.now()
    claimed = RunCallback.objects.filter(run_id=run.pk, fired_at__isnull=True).update(fired_at=now)
    if not claimed:
        return
    callback = RunCallback.objects.get(run_id=run.pk)
    try:
        url, _ = callback.opened()
        target = _redacted(url)
    except Exception:
        target = "(unreadable)"
    delivery = Delivery.objects.create(
        run_id=run.pk,
        event="run.finished",
        channel=Delivery.Channel.CALLBACK,
        target=target,
        created_at=now,
        next_attempt_at=now,
    )
    try:
        deliver.apply_async((delivery.pk,), retry=False)
    except Exception as exc:
        log.warning("callback %s not queued (%s); the sweep will send it", delivery.pk, exc)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:254]


def sign(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """The `webhook-signature` value (Standard Webhooks, v1)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, *, window: int = 300) -> bool:
    """What a receiver checks (and the tests): the signature, and a fresh timestamp."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    try:
        if abs(time.time() - int(timestamp)) > window:
            return False
    except ValueError:
        return False
    expected = sign(secret, message_id, timestamp, body)
    offered = headers.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


def callback_body(run: QueryRun) -> dict[str, Any]:
    approval = getattr(run, "approval", None)
    return {
        "type": "run.finished",
        "timestamp": timezone.now().isoformat(),
        "data": {
            "run": run.pk,
            "status": run.status,
            "decision": run.decision,
            "risk": run.risk,
            "row_count": run.row_count,
            "truncated": bool(run.truncated),
            "error": run.error or None,
            "approval": approval.pk if approval is not None else None,
            "status_url": settings.SITE_URL + reverse("api-v1:query_get", args=[run.pk]),
        },
    }


def callback_send(delivery: Delivery, post: Any) -> int:
    """One attempt: `post(url, body, headers)` is the notifications' sender."""
    run = QueryRun.objects.select_related("approval").filter(pk=delivery.run_id or 0).first()
    if run is None:
        raise CallbackRefused("the run of this callback is gone")
    url, secret = RunCallback.objects.get(run_id=run.pk).opened()
    callback_url_check(url)
    address = _address_check(url)
    body = json.dumps(callback_body(run), separators=(",", ":"), default=str).encode()
    message_id = f"msg_warden_run_{run.pk}"
    timestamp = str(int(time.time()))
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }
    return int(post(url, body, headers, address=address))

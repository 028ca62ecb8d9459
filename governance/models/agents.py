"""Agents and API tokens.

An agent is an identity of its own: a user account that cannot sign in to the web pages (no
usable password), owned by a named person, holding only the roles and grants given to it,
never its owner's. Its tokens, and the personal tokens people make for themselves, are shown
once and stored as SHA-256 digests of their secret part.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from governance.models.connections import Connection

#: Every token starts with this, so secret scanners (and people) recognise a leaked one.
TOKEN_PREFIX = "wdn_"  # noqa: S105  (a prefix, not a secret)
_TOKEN = re.compile(r"^wdn_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class Agent(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_agents"
    )
    description = models.CharField(max_length=500, blank=True)
    # Unrestricted: any connection the agent holds a grant on; restricted: only these (none
    # at all once the last of them is deleted: it never falls back to "any").
    allowed_connections = models.ManyToManyField(Connection, blank=True, related_name="+")
    connections_restricted = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Budgets (api/budgets.py); unset: the WARDEN_API_* defaults.
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    rows_per_hour = models.PositiveBigIntegerField(null=True, blank=True)
    bytes_per_hour = models.PositiveBigIntegerField(null=True, blank=True)
    concurrent_runs = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    BUDGETS = ("requests_per_minute", "rows_per_hour", "bytes_per_hour", "concurrent_runs")

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return str(self.user.get_username())

    def allows(self, connection: Connection) -> bool:
        """Whether this agent may use `connection` at all (its grants decide the rest)."""
        if not self.connections_restricted:
            return True
        return self.allowed_connections.filter(pk=connection.pk).exists()

    def usable(self, now: Any = None) -> bool:
        """Active, not expired, and owned by an active person: an agent whose owner left
        stops with them."""
        now = now or timezone.now()
        return (
            self.user.is_active
            and self.owner.is_active
            and (self.expires_at is None or self.expires_at > now)
        )


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def live(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    key_id = models.CharField(max_length=12, unique=True)  # the public part, to find it
    digest = models.CharField(max_length=64)  # SHA-256 of the secret part, hex
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}{self.key_id}_… ({self.name or 'token'})"

    @property
    def shown(self) -> str:
        """How the token is named on pages and in events: its prefix and public part only."""
        return f"{TOKEN_PREFIX}{self.key_id}_…"

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @classmethod
    def issue(cls, **fields: Any) -> tuple[ApiToken, str]:
        """A new token and its text, which is never stored and cannot be shown again."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        token = cls.objects.create(key_id=key_id, digest=cls.hash_secret(secret), **fields)
        return token, f"{TOKEN_PREFIX}{key_id}_{secret}"

    @classmethod
    def parse(cls, text: str) -> tuple[str, str] | None:
        match = _TOKEN.match(text or "")
        return (match.group(1), match.group(2)) if match else None

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.digest, self.hash_secret(secret))

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class RunCallback(models.Model):
    """Where to tell an API client that its run ended (a held statement decided and run, a
    long one done), and the secret its message is signed with. Both encrypted: a callback URL
    can carry a credential of its own."""

    run = models.OneToOneField(
        "governance.QueryRun", on_delete=models.CASCADE, related_name="callback"
    )
    url_encrypted = models.TextField()
    secret_encrypted = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    fired_at = models.DateTimeField(null=True, blank=True)  # the delivery was logged

    def __str__(self) -> str:
        return f"callback of run {self.run_id}"

    def _bound(self, what: str) -> str:
        return f"run-callback:{self.run_id}:{what}"

    def seal(self, url: str, secret: str) -> None:
        from governance import crypto

        self.url_encrypted = crypto.encrypt(url, bound_to=self._bound("url"))
        self.secret_encrypted = crypto.encrypt(secret, bound_to=self._bound("secret"))

    def opened(self) -> tuple[str, str]:
        from governance import crypto

        return (
            crypto.decrypt(self.url_encrypted, bound_to=self._bound("url")),
            crypto.decrypt(self.secret_encrypted, bound_to=self._bound("secret")),
        )

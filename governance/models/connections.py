"""Target connections and who may use them."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from governance import crypto
from governance.targets import TargetConfig, tls


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    DEVELOPMENT = "development", "Development"


class Capability(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    DDL = "ddl", "DDL"
    ADMIN = "admin", "Admin"
    EXPORT = "export", "Export"


class Connection(models.Model):
    class Engine(models.TextChoices):
        POSTGRESQL = "postgresql", "PostgreSQL"
        MYSQL = "mysql", "MySQL / MariaDB"
        SQLITE = "sqlite", "SQLite"

    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-z0-9][a-z0-9_-]*$",
                "Use lower-case letters, digits, '-' and '_' (start with a letter or digit).",
            )
        ],
    )
    engine = models.CharField(max_length=16, choices=Engine.choices)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    database = models.CharField(max_length=500, help_text="Database name (SQLite: file path).")
    username = models.CharField(max_length=128, blank=True)
    # Sealed with governance.crypto, bound to `key`; never shown back in any form.
    password_encrypted = models.TextField(blank=True, editable=False)
    key = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    environment = models.CharField(
        max_length=16, choices=Environment.choices, default=Environment.PRODUCTION
    )
    statement_timeout_ms = models.PositiveIntegerField(
        default=30_000, validators=[MinValueValidator(100), MaxValueValidator(3_600_000)]
    )
    row_cap = models.PositiveIntegerField(
        "interactive row cap",
        default=1_000,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
    )
    export_row_limit = models.PositiveIntegerField(
        default=1_000_000, validators=[MinValueValidator(1), MaxValueValidator(100_000_000)]
    )
    tls_mode = models.CharField(
        "TLS mode",
        max_length=16,
        choices=[(mode, mode) for mode in tls.MODES],
        default=tls.DEFAULT_MODE,
        help_text="PostgreSQL's sslmode names (MySQL / MariaDB: all but allow). prefer: TLS "
        "when the server offers it; require: always TLS; verify-ca / verify-full: also check "
        "the server's certificate (and its host name).",
    )
    tls_ca_pem = models.TextField(
        "CA certificate",
        blank=True,
        help_text="PEM text of the CA that signs the server's certificate (verify-ca needs "
        "one; verify-full without one trusts the system's CAs). Public: shown back here.",
    )
    scan_free_text = models.BooleanField(
        "scan free text",
        default=True,
        help_text="Replace emails, phones, card numbers, SSNs and secrets found inside "
        "free-text results (the masking safety net).",
    )
    # The last discovery that failed (cleared by one that succeeds): what the catalog shows
    # instead of an empty list of tables.
    discovery_error_kind = models.CharField(max_length=16, blank=True, editable=False)
    discovery_error = models.CharField(max_length=2000, blank=True, editable=False)
    discovery_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Bumped whenever the catalog or masking rules change, so cached masking plans are dropped.
    catalog_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # What an admin edits (the password aside); forms and audit snapshots use this list.
    SETTINGS = (
        "name", "engine", "environment", "host", "port", "database", "username",
        "tls_mode", "tls_ca_pem", "statement_timeout_ms", "row_cap", "export_row_limit",
        "scan_free_text",
    )  # fmt: skip

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def dialect(self) -> str:
        return {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite"}[self.engine]

    DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}  # SQLite has none

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    def set_password(self, password: str) -> None:
        self.password_encrypted = (
            crypto.encrypt(password, bound_to=f"connection:{self.key}") if password else ""
        )

    def get_password(self) -> str:
        if not self.password_encrypted:
            return ""
        return crypto.decrypt(self.password_encrypted, bound_to=f"connection:{self.key}")

    def target_config(self) -> TargetConfig:
        return TargetConfig(
            engine=self.engine,
            host=self.host,
            port=self.port,
            database=self.database,
            user=self.username,
            password=self.get_password(),
            statement_timeout_ms=self.statement_timeout_ms,
            tls_mode=self.tls_mode,
            tls_ca_pem=self.tls_ca_pem,
            max_cell_bytes=settings.WARDEN_MAX_CELL_BYTES,
            max_run_bytes=settings.WARDEN_MAX_RUN_BYTES,
        )


class AccessGrantQuerySet(models.QuerySet["AccessGrant"]):
    def active(self) -> AccessGrantQuerySet:
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))

    def for_user(self, user: Any) -> AccessGrantQuerySet:
        return self.filter(Q(user=user) | Q(group__in=user.groups.all()))


class AccessGrant(models.Model):
    """Who may use a connection, with which capabilities, optionally until a time."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_grants",
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="access_grants"
    )
    capabilities = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    expiry_recorded = models.BooleanField(default=False)  # the expiry is in the audit trail
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AccessGrantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False, group__isnull=True))
                | (Q(user__isnull=True, group__isnull=False)),
                name="grant_has_user_xor_group",
            )
        ]

    def __str__(self) -> str:
        who = self.user or self.group
        return f"{who} → {self.connection}: {', '.join(self.capabilities)}"

    @property
    def grantee(self) -> str:
        if self.user is not None:
            return self.user.get_username()
        return f"group {self.group}"

    def is_active(self) -> bool:
        return self.expires_at is None or self.expires_at > timezone.now()

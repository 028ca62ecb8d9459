"""The catalog: every connection's tables and columns, and what is sensitive in them.

Discovery proposes a classification (semantic type + sensitivity) for each column from its name
and sampled values; it takes effect at once. Admins confirm, change or clear it; their choices
(source "confirmed") survive re-discovery.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from governance.models.connections import Connection


class Sensitivity(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


class SemanticType(models.TextChoices):
    EMAIL = "email", "Email address"
    PHONE = "phone", "Phone number"
    NATIONAL_ID = "national_id", "National id (SSN)"
    CREDIT_CARD = "credit_card", "Credit card number"
    IBAN = "iban", "IBAN"
    PERSON_NAME = "person_name", "Person name"
    STREET_ADDRESS = "street_address", "Street address"
    DATE_OF_BIRTH = "date_of_birth", "Date of birth"
    IP_ADDRESS = "ip_address", "IP address"
    SECRET = "secret", "Secret (key, token, password)"
    FINANCIAL = "financial", "Financial (salary…)"


class Strategy(models.TextChoices):
    REDACT = "redact", "Full redaction"
    PARTIAL = "partial", "Partial (keep last 4 / first letter and domain)"
    PSEUDONYM = "pseudonym", "Deterministic pseudonym"
    NULL = "null", "Null"
    GENERALIZE = "generalize", "Generalise (year / range)"


class Source(models.TextChoices):
    DISCOVERED = "discovered", "Discovered"
    CONFIRMED = "confirmed", "Confirmed by an admin"


class CatalogTable(models.Model):
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="tables")
    schema = models.CharField(max_length=128, blank=True)
    name = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, default="table")
    label = models.CharField(
        max_length=16, choices=Sensitivity.choices, default=Sensitivity.INTERNAL
    )
    label_source = models.CharField(
        max_length=16, choices=Source.choices, default=Source.DISCOVERED
    )
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connection", "schema", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "schema", "name"], name="catalog_table_unique"
            )
        ]

    def __str__(self) -> str:
        return self.qualified_name

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


class CatalogColumn(models.Model):
    table = models.ForeignKey(CatalogTable, on_delete=models.CASCADE, related_name="columns")
    name = models.CharField(max_length=128)
    type = models.CharField(max_length=128, blank=True)
    position = models.PositiveIntegerField(default=0)
    semantic_type = models.CharField(max_length=32, choices=SemanticType.choices, blank=True)
    sensitivity = models.CharField(
        max_length=16, choices=Sensitivity.choices, default=Sensitivity.INTERNAL
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.DISCOVERED)
    confidence = models.FloatField(default=0)
    evidence = models.CharField(max_length=500, blank=True)
    free_text = models.BooleanField(default=False)
    strategy = models.CharField(
        max_length=16,
        choices=Strategy.choices,
        blank=True,
        help_text="Overrides the semantic type's masking rule for this column.",
    )
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["table", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["table", "name"], name="catalog_column_unique")
        ]

    def __str__(self) -> str:
        return f"{self.table}.{self.name}"

    @property
    def is_sensitive(self) -> bool:
        return bool(self.semantic_type) and not self.free_text


class MaskingRule(models.Model):
    """The masking strategy for a semantic type (overridable per column)."""

    semantic_type = models.CharField(max_length=32, choices=SemanticType.choices, unique=True)
    strategy = models.CharField(max_length=16, choices=Strategy.choices)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["semantic_type"]

    def __str__(self) -> str:
        return f"{self.semantic_type}: {self.strategy}"


class UnmaskExemption(models.Model):
    """A user or group may see chosen columns unmasked until a time, for a stated reason."""

    column = models.ForeignKey(CatalogColumn, on_delete=models.CASCADE, related_name="exemptions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    expires_at = models.DateTimeField()
    reason = models.CharField(max_length=500)
    expiry_recorded = models.BooleanField(default=False)  # the expiry is in the audit trail
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, group__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=False)
                ),
                name="exemption_has_user_xor_group",
            )
        ]

    def __str__(self) -> str:
        return f"unmask {self.column} for {self.user or self.group} until {self.expires_at}"

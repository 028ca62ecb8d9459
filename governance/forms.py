"""Admin forms. Target passwords are write-only: never rendered back, blank keeps the old one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from allauth.account import forms as allauth_forms
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from governance import engine
from governance.models import (
    AccessGrant,
    Capability,
    Connection,
    Environment,
    Guardrail,
    SemanticType,
    Sensitivity,
    Strategy,
)
from governance.roles import APPROVER, ROLES
from governance.targets import tls

# Later instants may not survive the trip to UTC and back (year 10000): refused, never stored.
_LAST_EXPIRY = datetime(9999, 1, 1, tzinfo=UTC)
_TOO_FAR = "That is too far in the future."


_PORT_HELP = (
    "Blank: the engine's default, stored on save (PostgreSQL 5432, MySQL / MariaDB 3306; "
    "SQLite has no port)."
)


class ConnectionForm(forms.ModelForm):
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave blank to keep the current password.",
    )
    clear_password = forms.BooleanField(required=False, label="Remove the stored password")

    class Meta:
        model = Connection
        fields = list(Connection.SETTINGS)
        widgets = {"tls_ca_pem": forms.Textarea(attrs={"rows": 4, "class": "mono"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tls_mode"].required = False
        port = self.fields["port"]
        port.help_text = _PORT_HELP
        # The page's script follows the engine choice; without it the blank is kept and the
        # engine's default is stored on save (`clean`).
        port.widget.attrs["data-default-ports"] = json.dumps(Connection.DEFAULT_PORTS)
        default = Connection.DEFAULT_PORTS.get(self["engine"].value() or "")
        if default is not None:
            port.widget.attrs["placeholder"] = str(default)
        # A PositiveIntegerField's form field says "≥ 0" first, and only then would the
        # model's own bounds be checked (a timeout of -5 was told 0, of 50 then 100): give
        # each number field the model's bounds, in the message and in the input.
        for name, field in self.fields.items():
            if not isinstance(field, forms.IntegerField):
                continue
            model_field = Connection._meta.get_field(name)
            bounds = model_field.validators if isinstance(model_field, models.Field) else []
            field.validators = [
                v
                for v in field.validators
                if not isinstance(v, MinValueValidator | MaxValueValidator)
            ] + [v for v in bounds if isinstance(v, MinValueValidator | MaxValueValidator)]
            for validator in bounds:
                if isinstance(validator, MinValueValidator):
                    field.widget.attrs["min"] = validator.limit_value
                elif isinstance(validator, MaxValueValidator):
                    field.widget.attrs["max"] = validator.limit_value

    def clean_tls_mode(self) -> str:
        # Not sent (a form of before TLS modes): the connection keeps the one it has.
        return str(self.cleaned_data.get("tls_mode") or self.instance.tls_mode or tls.DEFAULT_MODE)

    def clean_tls_ca_pem(self) -> str:
        pem = str(self.cleaned_data.get("tls_ca_pem") or "").strip()
        if not pem:
            return ""
        problem = tls.ca_problem(pem)
        if problem is not None:
            raise forms.ValidationError(problem)
        return pem + "\n"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        engine = data.get("engine")
        if engine in ("postgresql", "mysql") and not data.get("host"):
            self.add_error("host", "A host is required for this engine.")
        if engine == "sqlite" and _is_warden_database(data.get("database") or ""):
            # Warden's own records (sessions, tokens, the trail) are never a target.
            self.add_error("database", "That is Warden's own database: choose a target's file.")
        if engine == "sqlite":
            data["port"] = None  # a file has no port, nor TLS
            data["tls_mode"], data["tls_ca_pem"] = tls.DEFAULT_MODE, ""
        elif engine in Connection.DEFAULT_PORTS and data.get("port") is None and "port" in data:
            data["port"] = Connection.DEFAULT_PORTS[engine]
        mode = data.get("tls_mode")
        if engine and mode and engine != "sqlite" and mode not in tls.modes_for(engine):
            name = Connection.Engine(engine).label
            self.add_error("tls_mode", f"{name} does not offer {mode}: choose another mode.")
        if mode == "verify-ca" and "tls_ca_pem" in data and not data["tls_ca_pem"]:
            self.add_error("tls_ca_pem", "verify-ca checks the server against this CA: paste it.")
        self._stored_password_stays_where_it_was_sent(data)
        return data

    # Where a stored password goes: a blank password keeps it only while it would be sent
    # to the same place, as safely as before. The database too: a server names the database
    # it cannot find in its error, after the password was accepted, so a database name of
    # guesses would learn which one the password is from how the error comes back.
    _DESTINATION = ("engine", "host", "port", "database", "username", "tls_mode", "tls_ca_pem")

    def _stored_password_stays_where_it_was_sent(self, data: dict[str, Any]) -> None:
        """An admin who may edit a connection may not read its password: testing or saving
        it with another host (or user, or weaker TLS) and the stored password would send the
        password to a server of their choosing. Such a change needs the password typed."""
        instance = self.instance
        if not instance.pk or not instance.password_encrypted:
            return
        if data.get("password") or data.get("clear_password"):
            return
        changed = [
            name
            for name in self._DESTINATION
            if name in data and (data[name] or None) != (getattr(instance, name) or None)
        ]
        if changed:
            labels = ", ".join(str(self.fields[n].label or n).lower() for n in changed)
            self.add_error(
                "password",
                f"Type the password again: the stored one is only ever sent where it was "
                f"sent before, and the {labels} changed.",
            )


def _is_warden_database(path: str) -> bool:
    """Whether `path` is the embedded SQLite app database (the demo's, or any SQLite one)."""
    from django.conf import settings

    app = settings.DATABASES["default"]
    if not str(app["ENGINE"]).endswith("sqlite3") or not path.strip():
        return False
    try:
        return Path(path.strip()).expanduser().resolve() == Path(str(app["NAME"])).resolve()
    except (OSError, ValueError):
        return False


def triable(form: forms.BaseForm) -> bool:
    """Whether a form's values can be tried before saving: valid but for the name, which only
    matters to the save (a connection or rule is tried before it has one, or a free one)."""
    return form.is_valid() or all(field == "name" for field in form.errors)


class GrantForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.order_by("username"), required=False
    )
    group = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), required=False)
    capabilities = forms.MultipleChoiceField(
        choices=Capability.choices, widget=forms.CheckboxSelectMultiple
    )
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional. The grant stops working at this time.",
    )
    reason = forms.CharField(max_length=500, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("user")) == bool(data.get("group")):
            raise forms.ValidationError("Choose either a user or a group.")
        expires = data.get("expires_at")
        if expires is not None and expires <= timezone.now():
            self.add_error("expires_at", "The grant must end in the future.")
        elif expires is not None and expires >= _LAST_EXPIRY:
            self.add_error("expires_at", f"{_TOO_FAR} Leave it empty for a grant that never ends.")
        return data


_CATEGORY_CHOICES = [(c.value, c.value) for c in engine.Category]


class GuardrailForm(forms.ModelForm):
    environments = forms.MultipleChoiceField(
        choices=Environment.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    categories = forms.MultipleChoiceField(
        choices=_CATEGORY_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Guardrail
        fields = [
            "name",
            "action",
            "priority",
            "enabled",
            "message",
            "environments",
            "connections",
            "groups",
            "exempt_groups",
            "categories",
            "min_risk",
            "table_pattern",
            "function_name",
            "unfiltered_write",
            "sensitive_to_public",
            "restricted_predicate",
        ]
        widgets = {
            "connections": forms.CheckboxSelectMultiple,
            "groups": forms.CheckboxSelectMultiple,
            "exempt_groups": forms.CheckboxSelectMultiple,
        }

        help_texts = {
            "table_pattern": "Matches when any table the statement reads or writes fits, "
            "e.g. payments, billing.*, audit_* (the syntax is explained below).",
        }

    # The names of Warden's own reasons, which no guardrail may take: the trail's rule
    # filter, the dashboard and "Try this rule" tell a guardrail's decisions by its name.
    RESERVED_NAMES = frozenset(
        {
            "capability", "credentials", "default-allow", "export-single-read", "masking",
            "parse-error", "reserved", "server-files", "syntax-error", "transaction-control",
            "unknown-statement",
        }
    )  # fmt: skip

    def clean_name(self) -> str:
        name = str(self.cleaned_data.get("name") or "")
        if name.strip().lower() in self.RESERVED_NAMES:
            raise forms.ValidationError(
                f"“{name}” names one of Warden's own reasons: choose another name."
            )
        return name


class GuardrailTryForm(forms.Form):
    """The "Try this rule" box of the guardrail form (its fields are prefixed "try-")."""

    sql = forms.CharField(
        label="Statement",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    connection = forms.ModelChoiceField(queryset=Connection.objects.order_by("name"))
    as_user = forms.ModelChoiceField(
        label="As",
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label="anyone holding every capability, in no role",
        help_text="A person: their own grants and roles decide, as when they run it.",
    )

    prefix = "try"
    use_required_attribute = False  # in the page: the rule's Save must not ask for a statement

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["as_user"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = get_user_model().objects.filter(is_active=True).order_by("username")


def grant_choices_label(grant: AccessGrant) -> str:
    return f"{grant.grantee}: {', '.join(grant.capabilities)}"


class ColumnReviewForm(forms.Form):
    semantic_type = forms.ChoiceField(
        choices=[("", "Not sensitive"), *SemanticType.choices], required=False
    )
    sensitivity = forms.ChoiceField(choices=Sensitivity.choices)
    strategy = forms.ChoiceField(
        choices=[("", "Default for the type"), *Strategy.choices], required=False
    )
    free_text = forms.BooleanField(
        required=False, label="Free text that contains PII (scan it instead of masking it)"
    )


class ExemptionForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.order_by("username"), required=False
    )
    group = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), required=False)
    expires_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    reason = forms.CharField(max_length=500)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("user")) == bool(data.get("group")):
            raise forms.ValidationError("Choose either a user or a group.")
        expires = data.get("expires_at")
        if expires is not None and expires <= timezone.now():
            self.add_error("expires_at", "The exemption must end in the future.")
        elif expires is not None and expires >= _LAST_EXPIRY:
            self.add_error("expires_at", _TOO_FAR)
        return data


class TableLabelForm(forms.Form):
    label = forms.ChoiceField(choices=Sensitivity.choices)


class MaskingRuleForm(forms.Form):
    semantic_type = forms.ChoiceField(choices=SemanticType.choices)
    strategy = forms.ChoiceField(choices=Strategy.choices)


def _autofocus(form: forms.Form, name: str) -> None:
    form.fields[name].widget.attrs["autofocus"] = True


class LoginForm(allauth_forms.LoginForm):
    """Sign-in with the cursor in the username field, so typing starts at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _autofocus(self, "login")


class ReauthenticateForm(allauth_forms.ReauthenticateForm):
    """The password asked again (approving a critical statement) with the cursor in it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _autofocus(self, "password")


class AgentForm(forms.Form):
    name = forms.CharField(
        max_length=150, help_text="Letters, digits and @/./+/-/_; it signs its statements."
    )
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        help_text="The person accountable for it; they cannot approve its requests.",
    )
    roles = forms.ModelMultipleChoiceField(
        queryset=Group.objects.exclude(name=APPROVER).order_by("name"),  # people decide
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Usually analyst. It holds only what its roles and its own grants give it.",
    )
    connections = forms.ModelMultipleChoiceField(
        queryset=Connection.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Optional: only these connections (its grants still decide what it may do).",
    )
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional. The agent and its tokens stop working at this time.",
    )
    description = forms.CharField(max_length=500, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["owner"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = (
            get_user_model().objects.filter(is_active=True, agent__isnull=True).order_by("username")
        )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What it is for.")
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional. The token stops working at this time.",
    )

    def clean_expires_at(self) -> Any:
        expires = self.cleaned_data.get("expires_at")
        if expires is not None and expires <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return expires


def _role_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in ROLES]


class PersonForm(forms.Form):
    """A new person. The rules that need the database (a free username and e-mail) are the
    service's (`account_create`); its refusals come back as errors on these fields."""

    username = forms.CharField(
        max_length=150,
        help_text="What they sign in with: letters, digits and @/./+/-/_.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
    )
    email = forms.EmailField(max_length=254, help_text="Where approvals and notices reach them.")
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    roles = forms.MultipleChoiceField(
        choices=_role_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None at all is allowed: they can sign in and see nothing until given one.",
    )


class RolesForm(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=_role_choices, required=False, widget=forms.CheckboxSelectMultiple
    )

"""Forms for just-in-time requests: capabilities on a connection, or one column unmasked."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from approvals.models import ApprovalPolicy
from governance.models import AccessGrant, Capability, CatalogColumn, Connection, Environment

HOURS_HELP = "From 5 minutes (0.1) up to 7 days (168). The access ends on its own."


class AccessRequestForm(forms.Form):
    connection = forms.ModelChoiceField(
        queryset=Connection.objects.order_by("name"), empty_label=None
    )
    capabilities = forms.MultipleChoiceField(
        choices=Capability.choices, widget=forms.CheckboxSelectMultiple
    )
    hours = forms.FloatField(min_value=0.1, max_value=168, initial=2, help_text=HOURS_HELP)
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="Approvers see it."
    )


class UnmaskRequestForm(forms.Form):
    column = forms.ModelChoiceField(
        queryset=CatalogColumn.objects.none(),
        empty_label=None,
        help_text="Sensitive columns of connections you can use.",
    )
    hours = forms.FloatField(min_value=0.1, max_value=168, initial=1, help_text=HOURS_HELP)
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="Approvers see it."
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        usable = AccessGrant.objects.active().for_user(user).values("connection_id")
        field = self.fields["column"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = (
            CatalogColumn.objects.filter(table__connection_id__in=usable)
            .exclude(semantic_type="")
            .select_related("table__connection")
            .order_by("table__connection__name", "table__schema", "table__name", "name")
        )
        field.label_from_instance = _column_label  # type: ignore[method-assign,assignment]


def _column_label(column: CatalogColumn) -> str:
    return f"{column.table.connection.name}: {column}"


class PolicyForm(forms.ModelForm):  # type: ignore[type-arg]
    """An approval policy; the durations are edited in hours."""

    request_hours = forms.FloatField(
        min_value=0.1,
        max_value=24 * 30,
        initial=24,
        label="Unanswered requests expire after (hours)",
    )
    approval_hours = forms.FloatField(
        min_value=0.1,
        max_value=24 * 7,
        initial=4,
        label="Approvals lapse if not run within (hours)",
    )
    environments = forms.MultipleChoiceField(
        choices=Environment.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every environment.",
    )

    class Meta:
        model = ApprovalPolicy
        fields = [
            "name",
            "risk",
            "required_approvals",
            "approver_groups",
            "connections",
            "environments",
            "priority",
        ]
        widgets = {
            "approver_groups": forms.CheckboxSelectMultiple,
            "connections": forms.CheckboxSelectMultiple,
        }
        help_texts = {
            "connections": "None ticked: every connection.",
            "priority": "Lower wins when several policies match.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["request_hours"].initial = _hours(self.instance.request_ttl)
            self.fields["approval_hours"].initial = _hours(self.instance.approval_ttl)

    def clean_required_approvals(self) -> int:
        value = int(self.cleaned_data["required_approvals"])
        if not 1 <= value <= 10:
            raise forms.ValidationError("Between 1 and 10 approvers.")
        return value

    def save(self, commit: bool = True) -> ApprovalPolicy:
        policy: ApprovalPolicy = super().save(commit=False)
        policy.request_ttl = dt.timedelta(hours=self.cleaned_data["request_hours"])
        policy.approval_ttl = dt.timedelta(hours=self.cleaned_data["approval_hours"])
        if commit:
            policy.save()
            self.save_m2m()
        return policy


def _hours(duration: dt.timedelta) -> float | int:
    """Whole hours as an integer ("24", not "24.0"); anything else as a float."""
    hours = duration.total_seconds() / 3600
    return int(hours) if hours.is_integer() else hours

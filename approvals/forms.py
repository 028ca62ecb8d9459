"""Forms for just-in-time requests: capabilities on a connection, or one column unmasked."""

from __future__ import annotations

from typing import Any

from django import forms

from governance.models import AccessGrant, Capability, CatalogColumn, Connection

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

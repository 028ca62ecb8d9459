"""Evidence reports from the UI: ask for a period, watch it being generated, download it.
Auditors and admins only; every request, generation and download is in the audit trail."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from audit.kinds import EventKind
from evidence.models import EvidenceReport
from evidence.services import PeriodError, directory, period_validate
from governance.roles import ADMIN, AUDITOR, role_required
from governance.services.caller import record, web_caller


class PeriodForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if not self.errors:
            try:
                period_validate(data.get("start"), data.get("end"))  # type: ignore[arg-type]
            except PeriodError as exc:
                raise forms.ValidationError(str(exc)) from None
        return data


@role_required(AUDITOR, ADMIN)
@require_http_methods(["GET", "POST"])
def evidence_list(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    initial = {"start": today.replace(day=1), "end": today}
    form = PeriodForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        from evidence.tasks import generate

        report = EvidenceReport.objects.create(
            requested_by_id=request.user.pk,
            requested_by_name=request.user.get_username(),
            start=form.cleaned_data["start"],
            end=form.cleaned_data["end"],
        )
        record(
            EventKind.EVIDENCE_REQUESTED,
            web_caller(request),
            detail={"report": report.pk, "start": str(report.start), "end": str(report.end)},
        )
        transaction.on_commit(lambda: generate.delay(report.pk))
        messages.success(request, f"Evidence report {report.pk} is being generated.")
        return redirect("evidence_list")
    reports = EvidenceReport.objects.all()[:50]
    return render(request, "evidence/list.html", {"form": form, "reports": reports})


@role_required(AUDITOR, ADMIN)
@require_GET
def evidence_status(request: HttpRequest, pk: int) -> HttpResponse:
    """One report's row, polled by htmx while it is generated."""
    report = get_object_or_404(EvidenceReport, pk=pk)
    return render(request, "evidence/row.html", {"r": report})


@role_required(AUDITOR, ADMIN)
@require_GET
def evidence_download(request: HttpRequest, pk: int) -> FileResponse:
    report = get_object_or_404(EvidenceReport, pk=pk, status=EvidenceReport.Status.DONE)
    path = directory() / report.file_name
    if not report.file_name or "/" in report.file_name or not path.is_file():
        raise Http404("The file of this report is no longer kept.")
    record(
        EventKind.EVIDENCE_DOWNLOADED,
        web_caller(request),
        detail={"report": report.pk, "sha256": report.sha256, "file": report.file_name},
    )
    return FileResponse(path.open("rb"), as_attachment=True, filename=report.file_name)

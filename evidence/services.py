"""Generating an evidence bundle: from the CLI into a file, or for the UI into the evidence
directory with visible progress. Either way the generation is an audit event, with the bundle's
SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from audit.kinds import EventKind
from audit.services import event_record
from evidence.bundle import build
from evidence.models import EvidenceReport
from evidence.sections import collect

log = logging.getLogger(__name__)

MAX_DAYS = 3660  # ten years: a longer period is a typo


class PeriodError(ValueError):
    pass


def period_validate(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    if start is None or end is None:
        raise PeriodError("Give both a start and an end date.")
    if end < start:
        raise PeriodError("The end date is before the start date.")
    if start < dt.date(1970, 1, 1) or end > dt.date(9998, 12, 31):
        raise PeriodError("Choose dates between 1970 and 9998.")
    if (end - start).days > MAX_DAYS:
        raise PeriodError("A report covers at most ten years.")
    if start > timezone.localdate():
        raise PeriodError("The period starts in the future.")
    return start, end


def bundle_bytes(start: dt.date, end: dt.date, *, generated_by: str, progress: Any = None) -> bytes:
    evidence = collect(start, end, generated_by=generated_by, progress=progress)
    if progress:
        progress(95, "Writing the PDF, the CSVs and the signed manifest")
    return build(evidence)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".evidence-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def record_generated(
    *, start: dt.date, end: dt.date, data: bytes, where: str, channel: str, **who: Any
) -> str:
    digest = hashlib.sha256(data).hexdigest()
    event_record(
        kind=EventKind.EVIDENCE_GENERATED,
        channel=channel,
        detail={
            "start": start.isoformat(),
            "end": end.isoformat(),
            "sha256": digest,
            "bytes": len(data),
            "file": where,
        },
        **who,
    )
    return digest


def directory() -> Path:
    return Path(settings.WARDEN_EVIDENCE_DIR)


def report_generate(report_id: int) -> None:
    """The UI's generation (a Celery task): progress on the row, the file in the evidence
    directory, an `evidence.generated` event. Never raises: a failure is shown on the row."""
    claimed = EvidenceReport.objects.filter(
        pk=report_id, status=EvidenceReport.Status.QUEUED
    ).update(status=EvidenceReport.Status.RUNNING, step="Starting")
    if not claimed:
        return
    report = EvidenceReport.objects.get(pk=report_id)

    def progress(percent: int, step: str) -> None:
        EvidenceReport.objects.filter(pk=report_id).update(progress=percent, step=step[:200])

    try:
        data = bundle_bytes(
            report.start, report.end, generated_by=report.requested_by_name, progress=progress
        )
        name = f"warden-evidence-{report.pk}-{report.start}-{report.end}.zip"
        write_atomically(directory() / name, data)
        digest = record_generated(
            start=report.start,
            end=report.end,
            data=data,
            where=name,
            channel="web",
            actor_name=report.requested_by_name,
        )
    except Exception as exc:
        log.exception("evidence report %s failed", report_id)
        EvidenceReport.objects.filter(pk=report_id).update(
            status=EvidenceReport.Status.FAILED,
            error=f"{type(exc).__name__}: the report could not be generated; see the logs.",
            finished_at=timezone.now(),
        )
        return
    EvidenceReport.objects.filter(pk=report_id).update(
        status=EvidenceReport.Status.DONE,
        progress=100,
        step="Ready",
        file_name=name,
        sha256=digest,
        size=len(data),
        finished_at=timezone.now(),
    )

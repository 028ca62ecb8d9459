from __future__ import annotations

from approvals.models import ApprovalRequest
from governance.models import QueryRun


def request_create_for_run(run: QueryRun) -> ApprovalRequest:
    return ApprovalRequest.objects.create(run=run, sql_sha256=ApprovalRequest.digest(run.sql))


def request_withdraw_for_run(run: QueryRun) -> None:
    ApprovalRequest.objects.filter(run=run, status=ApprovalRequest.Status.PENDING).update(
        status=ApprovalRequest.Status.WITHDRAWN
    )

from __future__ import annotations

from approvals.models import ApprovalRequest
from governance.models import QueryRun


def request_create_for_run(run: QueryRun) -> ApprovalRequest:
    return ApprovalRequest.objects.create(run=run, sql_sha256=ApprovalRequest.digest(run.sql))

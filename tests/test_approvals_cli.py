"""`manage.py approvals`: list, show, review, with its exit codes and reasons."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.models import ApprovalRequest
from governance.models import QueryRun
from tests.conftest import balances
from tests.test_approvals import UPDATE, submit

pytestmark = pytest.mark.django_db(transaction=True)


def approvals(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("approvals", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_list_show_and_approve_from_the_shell(alice: Any, bob: Any, ledger: Any) -> None:
    run = submit(alice, ledger, UPDATE, purpose="month end")
    request = run.approval
    code, out, _ = approvals("list", "--pending")
    assert code == 0 and f"{request.pk:>6}  pending" in out and "alice" in out
    code, out, _ = approvals("list", "--format", "json")
    assert json.loads(out)[0]["id"] == request.pk
    code, out, _ = approvals("show", str(request.pk))
    assert code == 0 and UPDATE in out and "month end" in out and "0 of 1" in out
    code, out, _ = approvals("show", str(request.pk), "--format", "json")
    assert json.loads(out)["sql"] == UPDATE
    code, out, _ = approvals(
        "review", str(request.pk), "--as", "bob", "--approve", "--comment", "ok"
    )
    assert code == 0 and "approved request" in out
    assert QueryRun.objects.get(pk=run.pk).status == "succeeded"
    assert balances(ledger) == [101, 101, 100, 100, 100]
    code, out, _ = approvals("list", "--pending")
    assert code == 0 and "Nothing pending." in out


def test_refusals_exit_non_zero_with_a_reason(
    alice: Any, bob: Any, carol: Any, ledger: Any
) -> None:
    request = submit(alice, ledger, UPDATE).approval
    cases = [
        (["--as", "alice", "--approve"], 1, "your own request"),
        (["--as", "carol", "--approve"], 1, "Only members of approver"),
        (["--as", "nobody", "--approve"], 2, "no active user"),
    ]
    for args, expected, reason in cases:
        code, _, err = approvals("review", str(request.pk), *args)
        assert code == expected and reason in err, (args, err)
    code, _, err = approvals("review", "999999", "--as", "bob", "--reject")
    assert code == 1 and "No approval request #999999" in err
    assert approvals("review", str(request.pk), "--as", "bob", "--reject")[0] == 0
    code, _, err = approvals("review", str(request.pk), "--as", "bob", "--approve")
    assert code == 1 and "already rejected" in err
    assert ApprovalRequest.objects.get(pk=request.pk).status == "rejected"
    code, _, err = approvals("show", "424242")
    assert code == 2 and "no approval request" in err


def test_a_comment_that_is_not_plain_text_is_refused(alice: Any, bob: Any, ledger: Any) -> None:
    request = submit(alice, ledger, UPDATE).approval
    # a NUL byte, and what argv holds for bytes that are not UTF-8 ($'\xff' in a shell)
    for comment in ("no\x00pe", "\udcff"):
        code, _, err = approvals(
            "review", str(request.pk), "--as", "bob", "--reject", "--comment", comment
        )
        assert code == 1 and "plain text" in err, err
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"


def test_a_username_that_is_not_plain_text_is_no_active_user(alice: Any, ledger: Any) -> None:
    request = submit(alice, ledger, UPDATE).approval
    for username in ("b\x00ob", "\udcff"):  # NUL, and argv's form of bytes that are not UTF-8
        code, _, err = approvals("review", str(request.pk), "--as", username, "--reject")
        assert code == 2 and "no active user" in err, err


def test_a_limit_below_one_is_a_usage_error(alice: Any, ledger: Any) -> None:
    first = submit(alice, ledger, UPDATE).approval
    second = submit(alice, ledger, UPDATE).approval
    for limit in ("0", "-5", "x"):  # not silently one row
        with pytest.raises(CommandError, match="limit"):
            approvals("list", "--limit", limit)
    code, out, _ = approvals("list", "--limit", "1", "--format", "json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [second.pk]
    code, out, _ = approvals("list", "--format", "json")
    assert [r["id"] for r in json.loads(out)] == [second.pk, first.pk]


def test_show_escapes_terminal_control_characters(alice: Any, bob: Any, ledger: Any) -> None:
    # A requester must not be able to rewrite what an approver reads in their terminal:
    # an escape sequence or a carriage return could hide or overwrite the real statement.
    sneaky = "UPDATE accounts SET balance = 0 /* \x1b[2K\r\x9bSELECT 1 */"
    request = submit(alice, ledger, sneaky, purpose="month end\x1b]0;owned\x07").approval
    approvals("review", str(request.pk), "--as", "bob", "--reject", "--comment", "no\rok")
    code, out, _ = approvals("show", str(request.pk))
    assert code == 0
    assert not any(c in out for c in "\x1b\r\x07\x9b"), repr(out)
    # A carriage return is shown, and breaks the line (it ends a line comment on PostgreSQL).
    assert "/* \\x1b[2K\\r\n\\x9bSELECT 1 */" in out and "month end\\x1b]0;owned\\x07" in out
    assert "no\\r\nok" in out
    code, out, _ = approvals("show", str(request.pk), "--format", "json")
    assert json.loads(out)["sql"] == sneaky  # JSON carries the text exactly, escaped

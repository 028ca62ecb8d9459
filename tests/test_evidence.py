"""Evidence reports: real flows through the one path, a bundle from the CLI and from the UI, its
PDF read back with a real PDF library and compared with the CSVs and the JSON, the signed
manifest checked and tampered with, the exceptions counted from tampered rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from approvals.services import request_review
from audit.models import AuditEvent
from evidence.bundle import verify
from evidence.models import EvidenceReport
from governance.csv_cells import safe_cell
from governance.models import QueryRun
from governance.services.caller import Caller
from governance.services.catalog import catalog_refresh
from governance.services.runs import run_submit
from tests.conftest import grant

pytestmark = pytest.mark.django_db(transaction=True)

CONTROLS = (
    *("CC6.1", "CC6.2", "CC6.3", "CC7.2", "CC8.1", "AC-2", "AC-3", "AC-6", "AU-2", "AU-3"),
    *("AU-6", "AU-9", "AU-10", "AU-12", "CM-3", "IA-2"),
)


@pytest.fixture
def activity(sqlite_conn: Any, alice: Any, bob: Any, carol: Any, dave: Any) -> dict[str, Any]:
    """A day of real activity: masked reads, a write held, approved and run, a denial, sign-ins
    good and bad, a role change."""
    catalog_refresh(connection=sqlite_conn)
    sqlite_conn.refresh_from_db()
    read = run_submit(
        caller=Caller(user=alice), connection=sqlite_conn, sql="SELECT ssn FROM customers LIMIT 2"
    )
    grant(sqlite_conn, alice, "write")
    held = run_submit(
        caller=Caller(user=alice),
        connection=sqlite_conn,
        sql="UPDATE orders SET status = 'shipped' WHERE id = 1",
    )
    held.refresh_from_db()
    assert held.status == "pending_approval"
    request_review(
        caller=Caller(user=bob),
        request_id=held.approval.pk,
        approve=True,
        comment="checked",
        reauthenticated=True,
    )
    denied = run_submit(caller=Caller(user=alice), connection=sqlite_conn, sql="DROP TABLE orders")
    client = Client()
    client.post(reverse("account_login"), {"login": "alice", "password": "wrong"})
    client.post(reverse("account_login"), {"login": "alice", "password": "alice-pass-123!"})
    return {"read": read, "held": held, "denied": denied}


def _bundle(tmp_path: Path, **options: Any) -> Path:
    today = timezone.localdate()
    output = tmp_path / "evidence.zip"
    call_command(
        "evidence_report",
        "--start",
        str(today - dt.timedelta(days=1)),
        "--end",
        str(today),
        "--output",
        str(output),
        "--as",
        "auditor1",
    )
    return output


def test_a_bundle_holds_the_pdf_the_csvs_the_json_and_a_signed_manifest(
    activity: dict[str, Any], tmp_path: Path
) -> None:
    path = _bundle(tmp_path)
    assert verify(path) == []
    with zipfile.ZipFile(path) as bundle:
        names = set(bundle.namelist())
        data = json.loads(bundle.read("report.json"))
        pdf = PdfReader(io.BytesIO(bundle.read("report.pdf")))
        csvs = {
            name: list(csv.reader(io.StringIO(bundle.read(name).decode())))
            for name in names
            if name.endswith(".csv")
        }
    sections = {s["key"]: s for s in data["sections"]}
    assert set(sections) == {
        "summary", "access_review", "access_changes", "privileged", "denied_held", "changes",
        "masking_coverage", "exemptions", "authentication", "integrity", "exceptions",
    }  # fmt: skip
    assert names == {"report.pdf", "report.json", "manifest.json"} | {f"{k}.csv" for k in sections}

    # the CSVs and the JSON say the same, row for row
    for key, section in sections.items():
        header, *rows = csvs[f"{key}.csv"]
        assert header == section["columns"]
        assert rows == [[safe_cell(r.get(c)) for c in section["columns"]] for r in section["rows"]]

    # the PDF: a cover, a summary, a page per section, numbered, naming every control
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert len(pdf.pages) >= len(sections) + 2
    assert "Warden evidence report" in pdf.pages[0].extract_text()
    assert f"Page 1 of {len(pdf.pages)}" in pdf.pages[0].extract_text()
    for control in CONTROLS:
        assert control in text, control
    for section in sections.values():
        assert section["title"] in text, section["title"]
    for row in sections["access_review"]["rows"]:
        assert row["user"] in text

    # what happened is in it
    held = activity["held"]
    privileged = {r["run"]: r for r in sections["privileged"]["rows"]}
    assert privileged[held.pk]["approvers"].startswith("bob ")
    assert privileged[held.pk]["status"] == "succeeded"
    assert {r["decision"] for r in sections["denied_held"]["rows"]} == {"deny", "require_approval"}
    alice_auth = next(r for r in sections["authentication"]["rows"] if r["user"] == "alice")
    assert alice_auth["sign_ins"] == 1 and alice_auth["failures"] == 1
    assert ("customers", "ssn") in {
        (r["table"].rsplit(".", 1)[-1], r["column"]) for r in sections["masking_coverage"]["rows"]
    }
    assert sections["integrity"]["notes"][0].startswith("Intact")
    assert all(r["count"] == 0 for r in sections["exceptions"]["rows"])
    assert data["audit_public_key"] in text.replace("\n", "")

    (generated,) = AuditEvent.objects.filter(kind="evidence.generated")
    assert generated.actor_name == "auditor1" and generated.channel == "cli"
    assert generated.detail["sha256"] and generated.detail["start"]


def _rewrite(path: Path, change: dict[str, bytes]) -> Path:
    out = path.with_name("tampered.zip")
    with (
        zipfile.ZipFile(path) as src,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst,
    ):
        for name in src.namelist():
            dst.writestr(name, change.get(name, src.read(name)))
        for name, data in change.items():
            if name not in src.namelist():
                dst.writestr(name, data)
    return out


def test_verify_finds_every_change_to_the_bundle(
    activity: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _bundle(tmp_path)
    call_command("evidence_report", "verify", str(path))
    assert "verified" in capsys.readouterr().out

    with zipfile.ZipFile(path) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
        exceptions = bundle.read("exceptions.csv")
    edited = _rewrite(path, {"exceptions.csv": exceptions.replace(b",0,0,", b",0,0,", 1) + b"x"})
    assert verify(edited) == ["exceptions.csv does not match its SHA-256 in the manifest"]
    with pytest.raises(SystemExit) as exit_info:
        call_command("evidence_report", "verify", str(edited))
    assert exit_info.value.code == 1

    manifest["files"]["exceptions.csv"]["sha256"] = "0" * 64
    forged = _rewrite(path, {"manifest.json": json.dumps(manifest).encode()})
    assert any("signature is not valid" in p for p in verify(forged))
    extra = _rewrite(path, {"note.txt": b"trust me"})
    assert verify(extra) == ["note.txt is in the bundle but not in the manifest"]
    other_key = "b3RoZXItYXVkaXQtc2lnbmluZy1rZXktMzItYnl0ZXM"
    assert any("not a trusted one" in p for p in verify(path, public_key=other_key))
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    assert verify(tmp_path / "junk.zip")[0].startswith("not a readable zip")


def test_exceptions_name_the_runs_behind_a_count(activity: dict[str, Any], tmp_path: Path) -> None:
    held = activity["held"]
    # as a DBA could: the executed statement changed after approval, and run after expiry
    QueryRun.objects.filter(pk=held.pk).update(
        sql="UPDATE orders SET status = 'lost'",
        run_before=timezone.now() - dt.timedelta(days=1),
    )
    path = _bundle(tmp_path)
    with zipfile.ZipFile(path) as bundle:
        data = json.loads(bundle.read("report.json"))
    exceptions = next(s for s in data["sections"] if s["key"] == "exceptions")
    counts = {r["check"]: (r["count"], r["evidence"]) for r in exceptions["rows"]}
    assert counts["executed statement differs from the approved one"] == (1, f"run {held.pk}")
    assert counts["approvals used after they expired"] == (1, f"run {held.pk}")
    assert counts["self-approvals"] == (0, "")
    assert exceptions["notes"][0].startswith("NOT ZERO")


def test_the_access_review_is_as_of_the_period_end(
    activity: dict[str, Any], tmp_path: Path, alice: Any, groups: Any
) -> None:
    from django.db import connection, transaction

    from evidence.sections import collect

    # alice joined as an analyst three days ago (moved back in time as a DBA would) ...
    earlier = timezone.now() - dt.timedelta(days=3)
    type(alice).objects.filter(pk=alice.pk).update(date_joined=earlier)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE audit_auditevent SET created_at = %s WHERE kind = 'role.member_added'",
            [earlier],
        )
    alice.groups.add(groups["approver"])  # ... and became an approver today
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    then = next(s for s in collect(yesterday, yesterday).sections if s.key == "access_review")
    assert {r["roles"] for r in then.rows if r["user"] == "alice"} == {"analyst"}
    now = next(
        s for s in collect(yesterday, timezone.localdate()).sections if s.key == "access_review"
    )
    assert {r["roles"] for r in now.rows if r["user"] == "alice"} == {"analyst, approver"}


def test_auditors_generate_and_download_from_the_ui_and_analysts_cannot(
    activity: dict[str, Any], tmp_path: Path, dave: Any, alice: Any
) -> None:
    with override_settings(WARDEN_EVIDENCE_DIR=str(tmp_path)):
        auditor = Client()
        auditor.force_login(dave)
        today = timezone.localdate()
        page = auditor.post(
            reverse("evidence_list"), {"start": str(today), "end": str(today)}, follow=True
        )
        assert page.status_code == 200
        report = EvidenceReport.objects.get()
        assert report.status == "done" and report.progress == 100, report.error
        assert f"/audit/evidence/{report.pk}/download/" in page.content.decode()
        download = auditor.get(reverse("evidence_download", args=[report.pk]))
        body = b"".join(download.streaming_content)  # type: ignore[attr-defined]
        (tmp_path / "got.zip").write_bytes(body)
        assert verify(tmp_path / "got.zip") == []
        kinds = list(
            AuditEvent.objects.filter(kind__startswith="evidence.").values_list("kind", flat=True)
        )
        assert sorted(kinds) == ["evidence.downloaded", "evidence.generated", "evidence.requested"]
        bad = auditor.post(reverse("evidence_list"), {"start": str(today), "end": "2020-01-01"})
        assert b"The end date is before the start date" in bad.content
        assert EvidenceReport.objects.count() == 1

        analyst = Client()
        analyst.force_login(alice)
        for url in (
            reverse("evidence_list"),
            reverse("evidence_status", args=[report.pk]),
            reverse("evidence_download", args=[report.pk]),
        ):
            assert analyst.get(url).status_code == 403, url
        assert analyst.post(reverse("evidence_list"), {"start": "2026-01-01"}).status_code == 403


def _spliced(path: Path, data: bytes) -> Path:
    out = path.with_name("spliced.zip")
    out.write_bytes(data)
    return out


def test_verify_refuses_any_bundle_that_is_not_exactly_what_warden_wrote(
    activity: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Duplicate members, bytes before or after the archive, duplicate manifest keys, a
    member far larger than listed (read in chunks, never whole), an empty trusted key, and
    a signature made without the manifest's domain prefix."""
    path = _bundle(tmp_path)
    data = path.read_bytes()
    assert verify(path) == []

    doubled = path.with_name("doubled.zip")
    doubled.write_bytes(data)
    with zipfile.ZipFile(doubled, "a") as bundle, pytest.warns(UserWarning):
        bundle.writestr("report.json", b"{}")
    assert verify(doubled) == ["report.json appear(s) more than once in the bundle"]

    prepended = _spliced(path, b"MZ" + b"\0" * 62 + data)
    assert verify(prepended) == ["the bundle holds bytes that are not part of any file in it"]
    appended = _spliced(path, data + b"PK\x05\x06trailing")
    assert verify(appended)  # not verified, whatever the zip reader makes of it

    with zipfile.ZipFile(path) as bundle:
        manifest_text = bundle.read("manifest.json").decode()
    twice = manifest_text.replace('"format":', '"format": "warden-evidence/1", "format":', 1)
    duplicated = _rewrite(path, {"manifest.json": twice.encode()})
    assert verify(duplicated) == ["manifest.json cannot be trusted: the key 'format' appears twice"]

    bomb = _rewrite(path, {"report.json": b"\0" * (64 * 1024 * 1024)})
    assert bomb.stat().st_size < 1024 * 1024
    assert verify(bomb) == ["report.json does not match its SHA-256 in the manifest"]

    assert verify(path, public_key="") == [
        "the public key given is not an Ed25519 public key (urlsafe base64)"
    ]
    with pytest.raises(CommandError, match="--public-key is empty"):
        call_command("evidence_report", "verify", str(path), "--public-key", "")


def test_a_manifest_signature_is_bound_to_its_own_domain(activity: dict[str, Any]) -> None:
    """The key that signs checkpoints and journal lines signs manifests too; each message
    starts with its own prefix, so one kind's signature is never valid for another."""
    from audit.chain import CHECKPOINT_DOMAIN, JOURNAL_DOMAIN, MANIFEST_DOMAIN, checkpoint_message
    from evidence.bundle import _canonical

    prefixes = {CHECKPOINT_DOMAIN, JOURNAL_DOMAIN, MANIFEST_DOMAIN}
    assert len(prefixes) == 3
    assert checkpoint_message(1, "h", 1, "t", "p").startswith(CHECKPOINT_DOMAIN)
    assert _canonical({"files": {}}).startswith(MANIFEST_DOMAIN)
    assert not any(p.startswith(q) for p in prefixes for q in prefixes if p != q)


def test_a_held_run_flipped_to_queued_by_hand_does_not_run_and_the_trail_still_tells(
    activity: dict[str, Any], sqlite_conn: Any, alice: Any, tmp_path: Path
) -> None:
    """As a DBA could: mark a held write queued (and approved) in the tables. The worker
    finds no genuine release in the trail and refuses; flipping its decision to `allow` as
    well gets it run, and the evidence report counts it from the trail's own events."""
    from approvals.models import ApprovalRequest
    from governance.services.held import NOT_RELEASED
    from governance.services.runs import run_execute

    def held_write() -> Any:
        run = run_submit(
            caller=Caller(user=alice),
            connection=sqlite_conn,
            sql="UPDATE orders SET status = 'shipped' WHERE id = 2",
        )
        assert run.status == "pending_approval"
        ApprovalRequest.objects.filter(run=run).update(status="approved")
        return run

    first = held_write()
    QueryRun.objects.filter(pk=first.pk).update(
        status="queued", decision_detail={**first.decision_detail, "approval": {"request": 1}}
    )
    run_execute(run_id=first.pk)
    first.refresh_from_db()
    assert (first.status, first.error) == ("failed", NOT_RELEASED)

    second = held_write()
    QueryRun.objects.filter(pk=second.pk).update(status="queued", decision="allow")
    run_execute(run_id=second.pk)
    second.refresh_from_db()
    assert second.status == "succeeded", second.error
    path = _bundle(tmp_path)
    with zipfile.ZipFile(path) as bundle:
        data = json.loads(bundle.read("report.json"))
    exceptions = next(s for s in data["sections"] if s["key"] == "exceptions")
    counts = {r["check"]: (r["count"], r["evidence"]) for r in exceptions["rows"]}
    assert counts["executions without the required approvals"] == (1, f"run {second.pk}")


@pytest.mark.parametrize(
    "swap",
    [
        "NEW.sql := 'DELETE FROM orders'; NEW.statements := '[\"DELETE FROM orders\"]'::jsonb;",
        "NEW.connection_id := {other};",
        "NEW.user_id := {carol};",
    ],
)
def test_a_statement_swapped_in_the_table_after_approval_does_not_run(
    activity: dict[str, Any],
    sqlite_conn: Any,
    alice: Any,
    bob: Any,
    carol: Any,
    monkeypatch: pytest.MonkeyPatch,
    swap: str,
) -> None:
    """Thirteenth review: a trigger (or a hand holding a row lock through the approval)
    rewrites the held run's SQL and statements as it is released. The worker compares them
    with what the trail's MAC'd submission and release name, and refuses."""
    from django.db import connection as db

    from governance.services.held import CHANGED_SINCE_RELEASE
    from governance.services.runs import run_execute
    from tests.conftest import grant, make_connection

    other = make_connection(name="other", engine="sqlite", database=sqlite_conn.database)
    grant(other, alice, "read", "write")

    run = run_submit(
        caller=Caller(user=alice),
        connection=sqlite_conn,
        sql="UPDATE orders SET status = 'shipped' WHERE id = 7",
    )
    assert run.status == "pending_approval"
    with db.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION warden_test_swap() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF OLD.status = 'pending_approval' AND NEW.status = 'queued' THEN
                """
            + swap.format(other=other.pk, carol=carol.pk)
            + """
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER warden_test_swap BEFORE UPDATE ON governance_queryrun
              FOR EACH ROW EXECUTE FUNCTION warden_test_swap();
            """
        )
    # As with workers: the release hands over the run's id, and the worker loads the row.
    monkeypatch.setattr("governance.services.held._dispatch", lambda queued: None)
    try:
        request_review(
            caller=Caller(user=bob), request_id=run.approval.pk, approve=True,
            reauthenticated=True,
        )  # fmt: skip
    finally:
        with db.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER warden_test_swap ON governance_queryrun;"
                "DROP FUNCTION warden_test_swap();"
            )
    swapped = QueryRun.objects.get(pk=run.pk)
    assert swapped.status == "queued"
    run_execute(run_id=run.pk)
    swapped.refresh_from_db()
    assert (swapped.status, swapped.error) == ("failed", CHANGED_SINCE_RELEASE)
    import sqlite3

    with sqlite3.connect(sqlite_conn.database) as target:
        assert target.execute("SELECT count(*) FROM orders").fetchone()[0] > 0

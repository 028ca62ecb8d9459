"""The evidence bundle: a zip of the PDF, one CSV per section, the same data as JSON, and a
`manifest.json` that lists the SHA-256 of every file, signed with the audit trail's Ed25519
checkpoint key, so anyone with the public key can tell the bundle is whole and Warden's."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from audit.keys import (
    key_id,
    public_key_from_text,
    public_key_text,
    signing_key,
    trusted_public_keys,
)
from evidence.pdf import render
from evidence.sections import Evidence, Section
from governance.csv_cells import safe_cell

FORMAT = "warden-evidence/1"
MANIFEST = "manifest.json"
MAX_MEMBER_BYTES = 512 * 1024 * 1024  # a member larger than this is refused when verifying


def _csv(section: Section) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(section.columns)
    for row in section.rows:
        writer.writerow([safe_cell(row.get(column)) for column in section.columns])
    return text.getvalue().encode("utf-8")


def _canonical(manifest: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def build(evidence: Evidence) -> bytes:
    """The zip's bytes."""
    files: dict[str, bytes] = {"report.pdf": render(evidence)}
    files["report.json"] = json.dumps(
        evidence.as_dict(), indent=2, sort_keys=True, default=str, ensure_ascii=False
    ).encode("utf-8")
    for section in evidence.sections:
        files[f"{section.key}.csv"] = _csv(section)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "period": {"start": evidence.start.isoformat(), "end": evidence.end.isoformat()},
        "generated_at": evidence.generated_at.isoformat(timespec="seconds"),
        "generated_by": evidence.generated_by,
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in sorted(files.items())
        },
        "public_key": public_key_text(),
        "key_id": key_id(public_key_text()),
    }
    manifest["signature"] = base64.b64encode(signing_key().sign(_canonical(manifest))).decode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
        bundle.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
    return out.getvalue()


def verify(path: Path, *, public_key: str | None = None) -> list[str]:
    """Why the bundle is not whole or not Warden's; empty when it is. With `public_key`, that
    key is the one trusted (a verifier outside Warden); else Warden's current and retired."""
    problems: list[str] = []
    try:
        bundle = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"not a readable zip file: {exc}"]
    with bundle:
        names = set(bundle.namelist())
        if MANIFEST not in names:
            return ["no manifest.json in the bundle"]
        try:
            manifest = json.loads(bundle.read(MANIFEST))
            listed: dict[str, Any] = manifest["files"]
            signature = base64.b64decode(manifest["signature"])
            signer = str(manifest["public_key"])
        except (ValueError, KeyError, TypeError) as exc:
            return [f"manifest.json cannot be read: {exc}"]
        trusted = {public_key} if public_key else trusted_public_keys()
        if signer not in trusted:
            problems.append(f"the manifest is signed by key {key_id(signer)}, not a trusted one")
        try:
            public_key_from_text(signer).verify(signature, _canonical(manifest))
        except (InvalidSignature, ValueError):
            problems.append("the manifest's signature is not valid: it was changed")
        for name in sorted(names - set(listed) - {MANIFEST}):
            problems.append(f"{name} is in the bundle but not in the manifest")
        for name, expected in sorted(listed.items()):
            if name not in names:
                problems.append(f"{name} is listed in the manifest but missing")
                continue
            info = bundle.getinfo(name)
            if info.file_size > MAX_MEMBER_BYTES:
                problems.append(f"{name} is larger than any report file would be")
                continue
            digest = hashlib.sha256(bundle.read(name)).hexdigest()
            if not isinstance(expected, dict) or digest != expected.get("sha256"):
                problems.append(f"{name} does not match its SHA-256 in the manifest")
    return problems

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
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from audit.chain import MANIFEST_DOMAIN
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
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_MEMBERS = 1000  # a report has one file per section and three more


def _csv(section: Section) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(section.columns)
    for row in section.rows:
        writer.writerow([safe_cell(row.get(column)) for column in section.columns])
    return text.getvalue().encode("utf-8")


def _canonical(manifest: dict[str, Any]) -> bytes:
    """What the signature covers: every field but the signature, after the manifest's own
    prefix (audit/chain.py), so no checkpoint or journal signature can stand for it."""
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    return MANIFEST_DOMAIN + json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


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


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(f"the key {key!r} appears twice")
        seen[key] = value
    return seen


def _layout_problems(path: Path, bundle: zipfile.ZipFile) -> list[str]:
    """A bundle is exactly what `build` writes: members back to back from the first byte, then
    the central directory, then its end record, with nothing before, between or after (bytes
    prepended or appended, a second archive glued on, a comment) and no name twice."""
    names = bundle.namelist()
    if len(names) > MAX_MEMBERS:
        return [f"the bundle holds {len(names)} files; a report has a few dozen"]
    if len(names) != len(set(names)):
        twice = sorted(name for name, n in Counter(names).items() if n > 1)
        return [f"{', '.join(twice)} appear(s) more than once in the bundle"]
    expected = 0
    with path.open("rb") as raw:
        for info in sorted(bundle.infolist(), key=lambda i: i.header_offset):
            if info.header_offset != expected:
                return ["the bundle holds bytes that are not part of any file in it"]
            raw.seek(info.header_offset)
            header = raw.read(30)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                return [f"{info.filename} has no valid local header"]
            name_len = int.from_bytes(header[26:28], "little")
            extra_len = int.from_bytes(header[28:30], "little")
            if info.flag_bits & 0x08:
                return [f"{info.filename} uses a data descriptor, which Warden never writes"]
            expected = info.header_offset + 30 + name_len + extra_len + info.compress_size
        size = raw.seek(0, 2)
    start_dir = getattr(bundle, "start_dir", None)
    if start_dir != expected:
        return ["the bundle holds bytes that are not part of any file in it"]
    if bundle.comment:
        return ["the bundle carries a comment, which Warden never writes"]
    # The central directory, then a 22-byte end record with no comment, ends the file.
    with path.open("rb") as raw:
        raw.seek(max(size - 22, 0))
        if raw.read(4) != b"PK\x05\x06":
            return ["the bundle does not end where its directory says it does"]
    return []


def _digest(bundle: zipfile.ZipFile, name: str, limit: int) -> tuple[str, int] | str:
    """SHA-256 and size of a member, read in chunks and never more than `limit` bytes: a
    member whose header lies about its size cannot exhaust memory. A string is a problem."""
    digest, size = hashlib.sha256(), 0
    try:
        with bundle.open(name) as member:
            while chunk := member.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    return f"{name} is larger than {limit} bytes"
                digest.update(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        return f"{name} cannot be read: {exc}"
    return digest.hexdigest(), size


def _manifest(bundle: zipfile.ZipFile) -> dict[str, Any] | str:
    read = _digest(bundle, MANIFEST, MAX_MANIFEST_BYTES)
    if isinstance(read, str):
        return read
    try:
        with bundle.open(MANIFEST) as member:
            text = member.read(MAX_MANIFEST_BYTES + 1)
        manifest = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        return f"manifest.json cannot be trusted: {exc}"
    except (ValueError, zipfile.BadZipFile, OSError) as exc:
        return f"manifest.json cannot be read: {exc}"
    if not isinstance(manifest, dict):
        return "manifest.json cannot be read: not an object"
    files, signature, signer = (manifest.get(k) for k in ("files", "signature", "public_key"))
    if not (isinstance(files, dict) and isinstance(signature, str) and isinstance(signer, str)):
        return "manifest.json cannot be read: files, signature or public_key is missing"
    if manifest.get("format") != FORMAT:
        return f"manifest.json is not a {FORMAT} manifest"
    for name, entry in files.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and type(entry.get("bytes")) is int
            and 0 <= entry["bytes"] <= MAX_MEMBER_BYTES
        ):
            return f"manifest.json cannot be read: the entry for {name!r} is malformed"
    return manifest


def verify(path: Path, *, public_key: str | None = None) -> list[str]:
    """Why the bundle is not whole or not Warden's; empty when it is. With `public_key`, that
    key is the one trusted (a verifier outside Warden); else Warden's current and retired."""
    if public_key is not None:
        try:
            public_key_from_text(public_key)
        except (ValueError, TypeError):
            return ["the public key given is not an Ed25519 public key (urlsafe base64)"]
    try:
        bundle = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        return [f"not a readable zip file: {exc}"]
    with bundle:
        problems = _layout_problems(path, bundle)
        if problems:
            return problems
        names = set(bundle.namelist())
        if MANIFEST not in names:
            return ["no manifest.json in the bundle"]
        manifest = _manifest(bundle)
        if isinstance(manifest, str):
            return [manifest]
        listed: dict[str, Any] = manifest["files"]
        signer = manifest["public_key"]
        trusted = {public_key} if public_key is not None else trusted_public_keys()
        if signer not in trusted:
            problems.append(f"the manifest is signed by key {key_id(signer)}, not a trusted one")
        try:
            signature = base64.b64decode(manifest["signature"], validate=True)
            public_key_from_text(signer).verify(signature, _canonical(manifest))
        except (InvalidSignature, ValueError, TypeError):
            problems.append("the manifest's signature is not valid: it was changed")
        for name in sorted(names - set(listed) - {MANIFEST}):
            problems.append(f"{name} is in the bundle but not in the manifest")
        for name, expected in sorted(listed.items()):
            if name not in names:
                problems.append(f"{name} is listed in the manifest but missing")
                continue
            read = _digest(bundle, name, expected["bytes"])
            if isinstance(read, str) and not read.endswith(" bytes"):
                problems.append(read)
            elif read != (expected["sha256"], expected["bytes"]):
                problems.append(f"{name} does not match its SHA-256 in the manifest")
    return problems

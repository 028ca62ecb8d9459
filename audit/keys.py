"""The audit trail's keys: one Ed25519 key signs checkpoints (its public half is shown to
auditors and printed in reports), and a MAC key derived from it tags every event as Warden
wrote it, so a row forged into the table by someone without the key is told apart.

``WARDEN_AUDIT_SIGNING_KEY`` holds the 32-byte Ed25519 seed (urlsafe base64; `manage.py
generate_key` makes one). Without it (the demo and debug only: settings refuse to start
otherwise) the seed is derived from the secret key.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def decode_seed(text: str) -> bytes:
    """A 32-byte seed from urlsafe base64 (padding optional); ValueError otherwise."""
    try:
        seed = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("WARDEN_AUDIT_SIGNING_KEY is not base64") from exc
    if len(seed) != 32:
        raise ValueError("WARDEN_AUDIT_SIGNING_KEY must decode to 32 bytes")
    return seed


@lru_cache(maxsize=4)
def _seed(configured: str, secret_key: str) -> bytes:
    if configured:
        return decode_seed(configured)
    return _hkdf(secret_key.encode(), b"warden audit signing key (derived)")


def _hkdf(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


def seed() -> bytes:
    return _seed(settings.WARDEN_AUDIT_SIGNING_KEY, settings.SECRET_KEY)


def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed())


def public_key_text() -> str:
    """The public key as urlsafe base64 of its 32 raw bytes (what reports and the UI show)."""
    return _public_text(seed())


@lru_cache(maxsize=16)
def _public_text(raw_seed: bytes) -> str:
    raw = (
        Ed25519PrivateKey.from_private_bytes(raw_seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def retired_keys() -> dict[str, bytes]:
    """Keys used before a rotation (WARDEN_AUDIT_RETIRED_SIGNING_KEYS): public key -> MAC key."""
    result: dict[str, bytes] = {}
    for text in getattr(settings, "WARDEN_AUDIT_RETIRED_SIGNING_KEYS", []):
        raw = decode_seed(text)
        if raw != seed():
            result[_public_text(raw)] = _mac_key(raw)
    return result


def public_key_from_text(text: str) -> Ed25519PublicKey:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(public_text: str) -> str:
    """A short fingerprint of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_text.encode()).hexdigest()[:16]


@lru_cache(maxsize=4)
def _mac_key(raw_seed: bytes) -> bytes:
    return _hkdf(raw_seed, b"warden audit event mac")


def mac_key() -> bytes:
    return _mac_key(seed())


def trusted_public_keys() -> set[str]:
    """Keys whose signatures Warden accepts: the current one and the retired ones."""
    return {public_key_text(), *retired_keys()}

"""Encryption of target secrets at rest: AES-256-GCM with the owning row's key as associated data.

A ciphertext reads ``v1:<key id>:<base64(nonce + ciphertext)>``. The key id is the first 8 hex
digits of SHA-256 of the key, so rotation (``manage.py rotate_keys``) can tell which key
sealed a value. The associated data binds a ciphertext to one connection: copied onto another
row it no longer decrypts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "v1"


class DecryptionError(Exception):
    """A stored secret could not be decrypted (wrong key, tampered, or moved to another row)."""


@dataclass(frozen=True)
class Key:
    kid: str
    aead: AESGCM


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _load(raw: str) -> Key:
    try:
        material = base64.urlsafe_b64decode(raw.encode())
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(
            "WARDEN_ENCRYPTION_KEYS holds a key that is not base64"
        ) from None
    if len(material) != 32:
        raise ImproperlyConfigured("WARDEN_ENCRYPTION_KEYS keys must be 32 bytes (urlsafe base64)")
    return Key(kid=hashlib.sha256(material).hexdigest()[:8], aead=AESGCM(material))


@lru_cache(maxsize=4)
def _keyring(raw_keys: tuple[str, ...], secret_key: str) -> tuple[Key, ...]:
    if raw_keys:
        return tuple(_load(raw) for raw in raw_keys)
    # Embedded (demo/test) mode only: settings refuse to start with DATABASE_URL and no keys.
    derived = hashlib.sha256(b"warden-encryption:" + secret_key.encode()).digest()
    return (_load(base64.urlsafe_b64encode(derived).decode()),)


def keyring() -> tuple[Key, ...]:
    return _keyring(tuple(settings.WARDEN_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plaintext: str, *, bound_to: str) -> str:
    key = keyring()[0]
    nonce = os.urandom(12)
    sealed = key.aead.encrypt(nonce, plaintext.encode(), bound_to.encode())
    return f"{PREFIX}:{key.kid}:{base64.b64encode(nonce + sealed).decode()}"


def is_encrypted(text: str) -> bool:
    """Whether `text` is a ciphertext of this module (not a value stored in clear)."""
    parts = text.split(":") if isinstance(text, str) else []
    return len(parts) == 3 and parts[0] == PREFIX


def key_id(ciphertext: str) -> str:
    parts = ciphertext.split(":")
    return parts[1] if len(parts) == 3 else ""


def decrypt(ciphertext: str, *, bound_to: str) -> str:
    try:
        prefix, kid, payload = ciphertext.split(":")
        blob = base64.b64decode(payload)
    except (ValueError, binascii.Error):
        raise DecryptionError("stored secret is malformed") from None
    if prefix != PREFIX:
        raise DecryptionError("stored secret has an unknown format")
    for key in keyring():
        if key.kid != kid:
            continue
        try:
            return key.aead.decrypt(blob[:12], blob[12:], bound_to.encode()).decode()
        except InvalidTag:
            raise DecryptionError("stored secret does not belong to this connection") from None
    raise DecryptionError("stored secret was sealed with a key that is no longer configured")

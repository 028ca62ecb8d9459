from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from governance import crypto
from governance.models import Connection
from tests.conftest import make_connection

OLD = "b2xkLWtleS1vbGQta2V5LW9sZC1rZXktb2xkLWtleSE="
NEW = "bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleSE="


def test_a_password_round_trips_and_is_not_stored_in_clear(db: Any) -> None:
    connection = make_connection(name="c1", engine="sqlite", database="/tmp/x", password="s3cret")
    stored = Connection.objects.get(pk=connection.pk)
    assert "s3cret" not in stored.password_encrypted
    assert stored.password_encrypted.startswith("v1:")
    assert stored.get_password() == "s3cret"
    assert "s3cret" not in repr(stored.target_config())


def test_a_ciphertext_moved_to_another_connection_does_not_decrypt(db: Any) -> None:
    one = make_connection(name="one", engine="sqlite", database="/tmp/x", password="pw-one")
    two = make_connection(name="two", engine="sqlite", database="/tmp/y", password="pw-two")
    two.password_encrypted = one.password_encrypted
    with pytest.raises(crypto.DecryptionError, match="does not belong"):
        two.get_password()


def test_tampered_ciphertext_is_refused(db: Any) -> None:
    one = make_connection(name="one", engine="sqlite", database="/tmp/x", password="pw")
    prefix, kid, payload = one.password_encrypted.split(":")
    one.password_encrypted = f"{prefix}:{kid}:{payload[:-4]}AAAA"
    with pytest.raises(crypto.DecryptionError):
        one.get_password()


def test_rotate_keys_reencrypts_with_the_new_primary_key(db: Any) -> None:
    with override_settings(WARDEN_ENCRYPTION_KEYS=[OLD]):
        connection = make_connection(name="c", engine="sqlite", database="/tmp/x", password="pw")
        old_kid = crypto.key_id(connection.password_encrypted)
    with override_settings(WARDEN_ENCRYPTION_KEYS=[NEW, OLD]):
        call_command("rotate_keys")
        connection.refresh_from_db()
        assert crypto.key_id(connection.password_encrypted) != old_kid
        assert connection.get_password() == "pw"
    with override_settings(WARDEN_ENCRYPTION_KEYS=[NEW]):
        assert connection.get_password() == "pw"
    with override_settings(WARDEN_ENCRYPTION_KEYS=[OLD]), pytest.raises(crypto.DecryptionError):
        connection.get_password()

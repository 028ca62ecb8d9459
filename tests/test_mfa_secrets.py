"""Second-factor secrets are encrypted at rest (thirteenth review: allauth keeps them in
clear), still verify codes, survive a key rotation, and mean the same to the identity watch
before and after it."""

from __future__ import annotations

from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import (
    TOTP,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.core.management import call_command
from django.test import override_settings

from audit.identity_watch import watch
from governance import crypto
from tests.test_crypto import NEW, OLD

pytestmark = pytest.mark.django_db


def _code(secret: str) -> str:
    counter = next(iter(yield_hotp_counters_from_time()))
    return f"{hotp_value(secret, counter):06d}"


def test_totp_secrets_and_recovery_seeds_are_encrypted_and_still_work(alice: Any) -> None:
    secret = generate_totp_secret()
    totp = TOTP.activate(alice, secret)
    codes = RecoveryCodes.activate(alice)
    stored = Authenticator.objects.get(pk=totp.instance.pk).data["secret"]
    assert crypto.is_encrypted(stored) and secret not in stored
    seed = Authenticator.objects.get(pk=codes.instance.pk).data["seed"]
    assert crypto.is_encrypted(seed)
    assert TOTP(Authenticator.objects.get(pk=totp.instance.pk)).validate_code(_code(secret))
    assert RecoveryCodes(Authenticator.objects.get(pk=codes.instance.pk)).validate_code(
        codes.get_unused_codes()[0]
    )


def test_rotate_keys_re_encrypts_second_factors_and_the_watch_sees_no_change(
    alice: Any,
) -> None:
    with override_settings(WARDEN_ENCRYPTION_KEYS=[OLD]):
        secret = generate_totp_secret()
        totp = TOTP.activate(alice, secret)
        watch(settle_s=0)
        before = Authenticator.objects.get(pk=totp.instance.pk).data["secret"]
    with override_settings(WARDEN_ENCRYPTION_KEYS=[NEW, OLD]):
        call_command("rotate_keys")
        after = Authenticator.objects.get(pk=totp.instance.pk).data["secret"]
        assert after != before and crypto.key_id(after) != crypto.key_id(before)
        result = watch(settle_s=0)
        assert not result.unexplained, [c.as_detail() for c in result.unexplained]
    with override_settings(WARDEN_ENCRYPTION_KEYS=[NEW]):
        assert TOTP(Authenticator.objects.get(pk=totp.instance.pk)).validate_code(_code(secret))

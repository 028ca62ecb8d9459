"""Re-encrypt every stored secret with the first key of WARDEN_ENCRYPTION_KEYS.

Rotation: put the new key first, keep the old one after it, run this, then drop the old key.
"""

from __future__ import annotations

from typing import Any

from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.models import Authenticator
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.kinds import EventKind
from audit.services import event_record
from governance import crypto
from governance.models import Connection


def _rotate_second_factors(primary: str) -> int:
    """TOTP keys and recovery-code seeds (governance.auth.MFAAdapter), under the new key."""
    adapter = get_mfa_adapter()
    rotated = 0
    for authenticator in Authenticator.objects.select_for_update():
        data = dict(authenticator.data or {})
        changed = False
        for field in ("secret", "seed"):
            value = data.get(field)
            if isinstance(value, str) and crypto.key_id(value) != primary:
                try:
                    data[field] = adapter.encrypt(adapter.decrypt(value))
                except crypto.DecryptionError as exc:
                    raise CommandError(f"second factor {authenticator.pk}: {exc}") from None
                changed = True
        if changed:
            Authenticator.objects.filter(pk=authenticator.pk).update(data=data)
            rotated += 1
    return rotated


class Command(BaseCommand):
    help = "Re-encrypt stored target passwords and second-factor secrets with the primary key."

    def handle(self, *args: Any, **options: Any) -> None:
        primary = crypto.keyring()[0].kid
        rotated = 0
        with transaction.atomic():
            for connection in Connection.objects.select_for_update().exclude(password_encrypted=""):
                if crypto.key_id(connection.password_encrypted) == primary:
                    continue
                try:
                    password = connection.get_password()
                except crypto.DecryptionError as exc:
                    raise CommandError(f"connection {connection.name}: {exc}") from None
                connection.set_password(password)
                Connection.objects.filter(pk=connection.pk).update(
                    password_encrypted=connection.password_encrypted
                )
                rotated += 1
            rotated += _rotate_second_factors(primary)
            event_record(
                kind=EventKind.KEYS_ROTATED,
                channel="cli",
                detail={"rotated": rotated, "key": primary},
            )
        self.stdout.write(f"re-encrypted {rotated} secret(s) with key {primary}")

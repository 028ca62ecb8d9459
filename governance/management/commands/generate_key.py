from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from governance.crypto import generate_key


class Command(BaseCommand):
    help = (
        "Print a new random key (for WARDEN_ENCRYPTION_KEYS, WARDEN_PSEUDONYM_KEY or "
        "WARDEN_AUDIT_SIGNING_KEY)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(generate_key())

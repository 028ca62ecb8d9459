#!/usr/bin/env python
"""Django's command-line utility for Warden."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    from django.core.management import execute_from_command_line

    _name_the_operator(sys.argv)

    execute_from_command_line(sys.argv)


def _name_the_operator(argv: list[str]) -> None:
    """Changes made from a shell (createsuperuser, changepassword, shell) are audited as the
    command line, with the command and the operating-system account that ran it."""
    import getpass

    from audit.context import set_default

    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    command = argv[1] if len(argv) > 1 else ""
    set_default(channel="cli", via=f"manage.py {command} (os user {os_user})".replace("  ", " "))


if __name__ == "__main__":
    main()

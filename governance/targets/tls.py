"""TLS to the targets: the modes a connection may ask for, the CA certificate it may pin, and
how each driver is told (no I/O beyond a short-lived file libpq reads the CA from).

The modes are libpq's ``sslmode`` values; MySQL/MariaDB (PyMySQL) takes the ones it can honour:

=============  ==============================================  =================================
mode           PostgreSQL (libpq ``sslmode``)                  MySQL / MariaDB (PyMySQL)
=============  ==============================================  =================================
disable        no TLS                                          ``ssl_disabled``
allow          plain first, TLS if the server insists          (not offered)
prefer         TLS when the server offers it (the default)     the driver's default (the same)
require        TLS, certificate not checked                    TLS, certificate not checked
verify-ca      TLS, certificate signed by the CA given         … by the CA given
verify-full    … and issued for the host name                  … and issued for the host name
=============  ==============================================  =================================

``verify-ca`` needs a CA certificate; ``verify-full`` without one trusts the system's CAs.
A mode that requires TLS fails, before any password is sent, when the server offers none.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator

from cryptography import x509

from .base import own_error

DEFAULT_MODE = "prefer"
MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
MYSQL_MODES = ("disable", "prefer", "require", "verify-ca", "verify-full")
VERIFYING = frozenset({"verify-ca", "verify-full"})
REQUIRING = frozenset({"require", "verify-ca", "verify-full"})
# A CA bundle of a few certificates; more is a paste gone wrong.
MAX_CA_BYTES = 64 * 1024
_BEGIN_CERT = "-----BEGIN CERTIFICATE-----"


def modes_for(engine: str) -> tuple[str, ...]:
    """The modes `engine` ("postgresql" | "mysql" | "sqlite") supports; none for SQLite."""
    return {"postgresql": MODES, "mysql": MYSQL_MODES}.get(engine, ())


def ca_problem(pem: str) -> str | None:
    """Why `pem` is not a usable CA certificate (bundle), or None when it is.

    Only certificates: a pasted private key would be stored and shown back in the clear.
    """
    text = pem.strip()
    if len(text.encode("utf-8")) > MAX_CA_BYTES:
        return f"That is more than {MAX_CA_BYTES // 1024} KB: paste the CA certificate only."
    if "PRIVATE KEY" in text:
        return "That is a private key: paste the CA's certificate, never a key."
    if not text.startswith(_BEGIN_CERT):
        return f"Paste PEM text starting with {_BEGIN_CERT}."
    try:
        x509.load_pem_x509_certificates(text.encode("ascii"))
        ssl.create_default_context(cadata=text)  # what the drivers will load, loaded once
    except (ValueError, UnicodeEncodeError, ssl.SSLError):
        return "That is not a valid PEM certificate."
    return None


def mysql_options(mode: str, ca_pem: str) -> tuple[ssl.SSLContext | None, bool]:
    """PyMySQL's `ssl` and `ssl_disabled` for `mode` ((None, False) keeps the driver's
    default: prefer)."""
    if mode not in REQUIRING:
        return None, mode == "disable"
    # An SSLContext, not ssl_* file arguments: the CA comes from memory, and PyMySQL treats
    # a context as TLS required (it refuses a server without TLS before sending the password).
    try:
        context = ssl.create_default_context(cadata=ca_pem.strip() or None)
    except ssl.SSLError:
        raise own_error("connect", "the connection's CA certificate cannot be loaded") from None
    context.check_hostname = mode == "verify-full"
    context.verify_mode = ssl.CERT_REQUIRED if mode in VERIFYING else ssl.CERT_NONE
    return context, False


@contextlib.contextmanager
def postgres_options(mode: str, ca_pem: str) -> Iterator[dict[str, str]]:
    """libpq keywords for `mode`, valid while the block runs (libpq reads the CA from a file,
    only while it connects: the file is removed when the block ends)."""
    params = {"sslmode": mode}
    if mode not in REQUIRING:
        yield params
        return
    if not ca_pem.strip():
        # verify-full with no CA of its own trusts the system's; other modes read no CA
        params["sslrootcert"] = "system" if mode == "verify-full" else ""
        yield params
        return
    handle, path = tempfile.mkstemp(prefix="warden-ca-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(handle, "w", encoding="ascii") as file:
            file.write(ca_pem.strip() + "\n")
        params["sslrootcert"] = path
        yield params
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

"""PostgreSQL connection parameters and error classification (no I/O)."""

from __future__ import annotations

import os

from psycopg import pq

from .base import TargetConfig, TargetError

DEFAULT_PORT = 5432
APPLICATION_NAME = "warden"

# Explicit values for every libpq parameter that would otherwise be read from the environment
# (PGSSLMODE, PGOPTIONS, PGTARGETSESSIONATTRS...). Anything not listed here falls back to the
# compiled-in default, or "" (= unset) when there is none.
_EXPLICIT_DEFAULTS: dict[str, str] = {
    "passfile": os.path.join(os.devnull, "warden-no-passfile"),  # ENOTDIR: silently unused
    "hostaddr": "",
    "client_encoding": "UTF8",
    "options": "",
    "application_name": APPLICATION_NAME,
    "sslmode": "prefer",
    "sslcertmode": "allow",
    "requirepeer": "",
    # Every method Warden can answer but a cleartext password (which a server, or whoever
    # pretends to be it, could ask for to read the password): SCRAM, MD5, or none asked.
    "require_auth": "scram-sha-256,md5,none",
    "min_protocol_version": "3.0",
    "max_protocol_version": "3.0",
}
_NEVER_SET = frozenset({"service"})  # "" is an error for service; see module docs / gaps


def connection_params(config: TargetConfig, tls: dict[str, str] | None = None) -> dict[str, str]:
    """Every libpq keyword spelled out, so no PG* environment variable or file can leak in.

    `tls`: the sslmode (and CA file) keywords of ``tls.postgres_options``; without them the
    connection prefers TLS, as libpq does."""
    if not config.host:
        raise TargetError("connect", "no host configured for the PostgreSQL connection")
    if not config.user:
        raise TargetError("connect", "no user configured for the PostgreSQL connection")
    explicit: dict[str, str] = {
        "host": config.host,
        "port": str(config.port or DEFAULT_PORT),
        "dbname": config.database or config.user,
        "user": config.user,
        "password": config.password,
        "connect_timeout": str(max(1, int(config.connect_timeout_s))),
        **(tls or {}),
    }
    params = dict(explicit)
    for option in pq.Conninfo.get_defaults():
        keyword = option.keyword.decode()
        if option.envvar is None or keyword in params or keyword in _NEVER_SET:
            continue
        if keyword in _EXPLICIT_DEFAULTS:
            params[keyword] = _EXPLICIT_DEFAULTS[keyword]
        else:
            params[keyword] = option.compiled.decode() if option.compiled is not None else ""
    return params


def is_auth_failure(sqlstate: str | None, message: str) -> bool:
    if sqlstate in {"28P01", "28000"}:
        return True
    lowered = message.lower()
    if 'role "' in lowered and "does not exist" in lowered:
        return True
    markers = ("authentication failed", "no password supplied", "no pg_hba.conf entry")
    return any(marker in lowered for marker in markers)

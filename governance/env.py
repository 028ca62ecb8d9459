"""Tiny typed readers for settings that come from the environment.

Each raises ImproperlyConfigured with the variable's name on a bad value, so a
misconfigured deployment fails at start-up with a message, not later with a 500.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


_SIZE = re.compile(r"([0-9]+)\s*(?:([kmg])(?:i?b)?|b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def env_bytes(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    """A size in bytes: ``1048576``, ``512KiB``, ``64 MiB`` or ``1G`` (binary units).

    >>> import os; os.environ["X_SIZE"] = "64 MiB"; env_bytes("X_SIZE", 0)
    67108864
    """
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    match = _SIZE.fullmatch(raw.strip())
    if match is None:
        raise ImproperlyConfigured(
            f"{name} must be a size in bytes (e.g. 1048576, 512KiB, 64MiB), got {raw!r}"
        )
    value = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum:,} bytes, got {raw!r}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum:,} bytes, got {raw!r}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


@dataclass(frozen=True)
class DatabaseURL:
    engine: str
    name: str
    user: str
    password: str
    host: str
    port: int | None
    options: dict[str, str]


_DB_SCHEMES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "sqlite": "django.db.backends.sqlite3",
}


def parse_database_url(name: str, raw: str) -> dict[str, object]:
    """Turn DATABASE_URL into a Django DATABASES entry.

    >>> parse_database_url("X", "postgresql://u:p@db:5433/app")["PORT"]
    5433
    """
    parts = urlsplit(raw)
    engine = _DB_SCHEMES.get(parts.scheme)
    if engine is None:
        raise ImproperlyConfigured(
            f"{name} must start with postgresql:// or sqlite:///, got scheme {parts.scheme!r}"
        )
    if engine.endswith("sqlite3"):
        path = unquote(parts.path)
        if not path:
            raise ImproperlyConfigured(f"{name}: sqlite URL needs a path, e.g. sqlite:///app.db")
        return {"ENGINE": engine, "NAME": path}
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ImproperlyConfigured(f"{name} names no database, e.g. postgresql://host/warden")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has an invalid port") from None
    return {
        "ENGINE": engine,
        "NAME": database,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": port or "",
        "OPTIONS": dict(parse_qsl(parts.query)),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def check_redis_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"{name} must be a redis:// URL, got {raw!r}")
    return raw

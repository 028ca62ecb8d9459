"""Tiny typed readers for settings that come from the environment.

Each raises ImproperlyConfigured with the variable's name on a bad value, so a
misconfigured deployment fails at start-up with a message, not later with a 500.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

# The key `make demo` runs on. It is in the source, so anyone can forge sessions and derive the
# encryption and pseudonym keys made from it: settings accept it only in demo or debug mode.
PUBLIC_DEMO_SECRET_KEY = "warden-insecure-development-key-do-not-use-in-production-0123456789"  # noqa: S105

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

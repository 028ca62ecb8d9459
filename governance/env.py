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


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}")
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


def _prepare_threshold(name: str, raw: object) -> int | None:
    """psycopg's `prepare_threshold` from the URL: the server prepares Warden's hot
    statements (`rowload.hot_cursor`; Django's own cursors never prepare) on their first run
    by default; `?prepare_threshold=off` for a pooler that cannot keep prepared statements
    (PgBouncer before 1.21, or without `max_prepared_statements`).

    >>> _prepare_threshold("X", "off") is None, _prepare_threshold("X", "2")
    (True, 2)
    """
    text = str(raw).strip().lower()
    if text in ("off", "none", ""):
        return None
    if not text.isdigit():
        raise ImproperlyConfigured(f"{name}: prepare_threshold must be a number or off")
    return int(text)


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
    options: dict[str, object] = dict(parse_qsl(parts.query))
    options["prepare_threshold"] = _prepare_threshold(name, options.get("prepare_threshold", "0"))
    return {
        "ENGINE": engine,
        "NAME": database,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": port or "",
        "OPTIONS": options,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def check_redis_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        # the scheme only: the rest of the URL may hold a password
        raise ImproperlyConfigured(f"{name} must be a redis:// URL, got scheme {parts.scheme!r}")
    return raw


@dataclass(frozen=True)
class SMTP:
    """Where notifications are mailed: Django's EMAIL_* settings, from either form of config."""

    host: str
    port: int
    user: str
    password: str
    use_tls: bool  # STARTTLS (usually port 587)
    use_ssl: bool  # implicit TLS (usually port 465)


def smtp_default_port(*, use_tls: bool, use_ssl: bool) -> int:
    return 465 if use_ssl else 587 if use_tls else 25


_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_URL_FLAGS = {"1": True, "true": True, "0": False, "false": False}


def check_smtp(name: str, smtp: SMTP) -> SMTP:
    """Refuse what cannot work or would leak the password; messages never quote it.

    `name` is where the values came from: EMAIL_URL, or EMAIL_HOST for the separate variables.
    """
    url = name == "EMAIL_URL"
    if not smtp.host or any(c in smtp.host for c in "/@ \t"):
        raise ImproperlyConfigured(f"{name} must name a mail server host, e.g. mail.example.com")
    if smtp.use_tls and smtp.use_ssl:
        raise ImproperlyConfigured(
            "EMAIL_URL asks for both STARTTLS (tls=1) and implicit TLS (smtps:// or ssl=1)"
            if url
            else "EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on: TLS is STARTTLS "
            "(port 587), SSL is implicit TLS (port 465)"
        )
    if bool(smtp.user) != bool(smtp.password):
        what = "a user and a password" if url else "EMAIL_HOST_USER and EMAIL_HOST_PASSWORD"
        raise ImproperlyConfigured(f"{name}: give {what} together, or neither")
    if smtp.password and not (smtp.use_tls or smtp.use_ssl) and smtp.host not in _LOOPBACK:
        # smtplib would send the password in clear text to a server across the network.
        hint = "use smtps:// or add ?tls=1" if url else "set EMAIL_USE_TLS=1 or EMAIL_USE_SSL=1"
        raise ImproperlyConfigured(f"{name}: a mail server password is only sent over TLS ({hint})")
    return smtp


def parse_email_url(name: str, raw: str) -> SMTP:
    """One URL for the mail server, e.g. smtp://user:pass@host:587?tls=1 or smtps://host.

    The user and password are percent-decoded. Errors name the variable, never its value,
    which holds a password.

    >>> parse_email_url("X", "smtps://warden:p%40ss@mail.example.com").port
    465
    """
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ImproperlyConfigured(f"{name} must start with smtp:// or smtps://")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has an invalid port") from None
    flags = {"tls": False, "ssl": parts.scheme == "smtps"}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in flags:
            raise ImproperlyConfigured(f"{name}: unknown option {key[:20]!r} (tls, ssl)")
        if value.lower() not in _URL_FLAGS:
            raise ImproperlyConfigured(f"{name}: {key} must be 1 or 0")
        flags[key] = flags[key] or _URL_FLAGS[value.lower()]
    if parts.path not in ("", "/") or parts.fragment:
        raise ImproperlyConfigured(f"{name} takes no path: smtp://user:password@host:port?tls=1")
    smtp = SMTP(
        host=parts.hostname or "",
        port=port or smtp_default_port(use_tls=flags["tls"], use_ssl=flags["ssl"]),
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_tls=flags["tls"],
        use_ssl=flags["ssl"],
    )
    return check_smtp(name, smtp)


def smtp_from_env() -> SMTP | None:
    """The mail server from EMAIL_URL, or from EMAIL_HOST and the variables beside it; None
    without either. Setting both forms, or parts without EMAIL_HOST, is an error."""
    url = env_str("EMAIL_URL")
    host = env_str("EMAIL_HOST")
    use_tls = env_bool("EMAIL_USE_TLS", default=False)
    use_ssl = env_bool("EMAIL_USE_SSL", default=False)
    user, password = env_str("EMAIL_HOST_USER"), env_str("EMAIL_HOST_PASSWORD")
    parts = {
        "EMAIL_HOST": bool(host),
        "EMAIL_PORT": bool(env_str("EMAIL_PORT")),
        "EMAIL_HOST_USER": bool(user),
        "EMAIL_HOST_PASSWORD": bool(password),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
    }
    given = ", ".join(name for name, value in parts.items() if value)
    if url:
        if given:
            raise ImproperlyConfigured(f"EMAIL_URL is set: leave {given} unset (one or the other)")
        return parse_email_url("EMAIL_URL", url)
    if not host:
        if given:
            raise ImproperlyConfigured(f"{given} set without EMAIL_HOST: name the mail server")
        return None
    port = env_int(
        "EMAIL_PORT",
        smtp_default_port(use_tls=use_tls, use_ssl=use_ssl),
        minimum=1,
        maximum=65535,
    )
    return check_smtp(
        "EMAIL_HOST",
        SMTP(
            host=host,
            port=port,
            user=user,
            password=password,
            use_tls=use_tls,
            use_ssl=use_ssl,
        ),
    )

"""Warden settings. Every value can come from the environment (see README: Configuration).

With no environment at all Warden runs on embedded defaults: a SQLite app database and
queries executed in-process (Celery eager), so `make demo` works on a bare machine.
DATABASE_URL and REDIS_URL switch to the production shape.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from governance.env import (
    PUBLIC_DEMO_SECRET_KEY,
    check_redis_url,
    env_bool,
    env_bytes,
    env_int,
    env_list,
    env_str,
    parse_database_url,
    smtp_from_env,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", default=False)
# `make demo` sets WARDEN_DEMO=1: only the demo (or debug mode) may run on the public key.
_demo = env_bool("WARDEN_DEMO", default=False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if SECRET_KEY in ("", PUBLIC_DEMO_SECRET_KEY):
    # The secret key signs sessions and derives the encryption and pseudonym keys when those
    # are not set: the public one protects nothing.
    if env_str("DATABASE_URL"):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DATABASE_URL is set")
    if not (_demo or DEBUG):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set (50 or more random characters) unless DJANGO_DEBUG "
            "is on. To run the demo on its public built-in key, set WARDEN_DEMO=1 "
            "(make demo does)."
        )
    SECRET_KEY = PUBLIC_DEMO_SECRET_KEY
    sys.stderr.write(
        "\n*** DEMO: Warden runs on its public built-in secret key. Anyone can forge its "
        "sessions and\n*** read the secrets it stores. Never use it for real data: set "
        "DJANGO_SECRET_KEY.\n\n"
    )
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 32 characters long")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("WARDEN_SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # before staticfiles: runserver leaves static files to WhiteNoise too, as gunicorn does
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "audit",
    "evidence",
    "governance",
    "approvals",
    "api",
    "ninja",
    "ops",
]

MIDDLEWARE = [
    "ops.health.HealthMiddleware",  # probes: before host checks, redirects and sessions
    "ops.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files, right after security headers
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "governance.middleware.AuditContextMiddleware",  # who acts, for events from model signals
]

ROOT_URLCONF = "governance.urls"
WSGI_APPLICATION = "governance.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "governance.context_processors.roles",
                "governance.context_processors.demo",
                "approvals.context_processors.waiting",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": parse_database_url("DATABASE_URL", _database_url)}
else:
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("WARDEN_SQLITE_PATH", str(BASE_DIR / "var" / "warden.sqlite3")),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            # A file, not :memory:, so a test can share its database with a subprocess.
            "TEST": {"NAME": str(BASE_DIR / "var" / "test.sqlite3")},
        }
    }
if sys.argv[1:2] == ["runserver"]:
    # runserver serves each request on a thread of its own; a connection kept for reuse
    # would outlive its thread, and a burst of requests would exhaust the server's slots.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [  # Django's and allauth's, refusing agents' accounts
    "governance.backends.PeopleModelBackend",
    "governance.backends.PeopleAuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"

# --- allauth: local accounts, TOTP MFA, login rate limits, OpenID Connect from env ---------
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = False
# Self sign-up is off: admins create accounts or the identity provider does.
ACCOUNT_ADAPTER = "governance.auth.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "governance.forms.LoginForm",
    "reauthenticate": "governance.forms.ReauthenticateForm",
}
SOCIALACCOUNT_ADAPTER = "governance.auth.SocialAccountAdapter"
ACCOUNT_RATE_LIMITS = {
    "login_failed": env_str("WARDEN_LOGIN_RATE_LIMIT", "5/5m/ip,5/5m/key"),
    "login": "30/m/ip",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_ADAPTER = "governance.auth.MFAAdapter"  # second-factor secrets encrypted at rest
MFA_TOTP_ISSUER = "Warden"

OIDC_ISSUER_URL = env_str("OIDC_ISSUER_URL")
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "Single sign-on")
SOCIALACCOUNT_PROVIDERS: dict[str, object] = {}
if OIDC_ISSUER_URL:
    if not OIDC_CLIENT_ID or not OIDC_CLIENT_SECRET:
        raise ImproperlyConfigured(
            "OIDC_ISSUER_URL is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET must be set too"
        )
    if not OIDC_ISSUER_URL.startswith("https://") and not DEBUG:
        raise ImproperlyConfigured("OIDC_ISSUER_URL must be an https:// URL")
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": "oidc",
                "name": OIDC_PROVIDER_NAME,
                "client_id": OIDC_CLIENT_ID,
                "secret": OIDC_CLIENT_SECRET,
                "settings": {"server_url": OIDC_ISSUER_URL},
            }
        ]
    }
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_LOGIN_ON_GET = False
# Groups granted to a user created by the identity provider on first login.
OIDC_DEFAULT_GROUPS = env_list("OIDC_DEFAULT_GROUPS", "analyst")

# --- Celery: eager (in-process) by default, Redis + real workers with REDIS_URL -------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    check_redis_url("REDIS_URL", REDIS_URL)
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND: str | None = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CELERY_BROKER_URL = "memory://localhost/"  # a host keeps kombu from warning on each task
    CELERY_RESULT_BACKEND = None
    CELERY_TASK_ALWAYS_EAGER = True
# Login rate limits and cached schemas must be shared by every web process: Redis when present.
# API budgets have a cache of their own (api/budgets.py): without Redis, a process-local store
# that only counters of signed-in callers fill, so no flood of other keys (failed sign-ins) can
# push them out. In production both are Redis, which must not evict keys (`noeviction`).
CACHES: dict[str, dict[str, Any]] = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    ),
    "budgets": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "warden-budgets",
            "OPTIONS": {"MAX_ENTRIES": 1_000_000},
        }
    ),
}
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Outbound deliveries (notifications, SIEM webhooks, API callbacks) wait on other people's
# servers: they have a queue of their own, so a slow receiver's backlog never sits in front of
# the statements people wait for. A worker started without -Q takes both queues (in turn);
# `-Q celery` and `-Q deliveries` split them between dedicated workers.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [
    Queue("celery", routing_key="celery"),
    Queue("deliveries", routing_key="deliveries"),
]
CELERY_TASK_ROUTES = {
    "approvals.deliver": {"queue": "deliveries"},
    "approvals.deliver_due": {"queue": "deliveries"},
    "approvals.siem_forward": {"queue": "deliveries"},
}
CELERY_BEAT_SCHEDULE = {
    "reap-lost-runs": {"task": "governance.reap_runs", "schedule": 60.0},
    "expire-approvals-and-grants": {"task": "approvals.expire", "schedule": 60.0},
    # Retries notifications that are due, even those whose queued attempt a lost broker dropped.
    "deliver-notifications": {"task": "approvals.deliver_due", "schedule": 60.0},
    # Chains committed audit events and writes checkpoints when they are due.
    "seal-audit-trail": {
        "task": "audit.seal",
        "schedule": float(env_int("WARDEN_AUDIT_SEAL_SECONDS", 5, minimum=1)),
    },
    # Records account, role, second-factor and login changes that no event explains.
    "watch-identity": {
        "task": "audit.watch_identity",
        "schedule": float(env_int("WARDEN_IDENTITY_WATCH_SECONDS", 10, minimum=1)),
    },
    # Sends sealed audit events to the SIEM collector, when WARDEN_SIEM_WEBHOOK_URL is set.
    "forward-audit-to-siem": {"task": "approvals.siem_forward", "schedule": 10.0},
    "refresh-catalogs": {
        "task": "governance.refresh_catalogs",
        "schedule": float(env_int("WARDEN_CATALOG_REFRESH_SECONDS", 6 * 3600, minimum=60)),
    },
}

# --- Warden ------------------------------------------------------------------------------
# Bearer token of the Prometheus endpoint `/metrics`; the endpoint is off (404) without one.
WARDEN_METRICS_TOKEN = env_str("WARDEN_METRICS_TOKEN")
if WARDEN_METRICS_TOKEN and len(WARDEN_METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("WARDEN_METRICS_TOKEN must be at least 32 characters long")
# Budgets of API callers without limits of their own (an agent's are set per agent).
WARDEN_API_REQUESTS_PER_MINUTE = env_int("WARDEN_API_REQUESTS_PER_MINUTE", 120, minimum=1)
WARDEN_API_ROWS_PER_HOUR = env_int("WARDEN_API_ROWS_PER_HOUR", 1_000_000, minimum=1)
WARDEN_API_BYTES_PER_HOUR = env_int("WARDEN_API_BYTES_PER_HOUR", 512 * 1024 * 1024, minimum=1)
WARDEN_API_CONCURRENT_RUNS = env_int("WARDEN_API_CONCURRENT_RUNS", 4, minimum=1)
# API and MCP calls that may wait for a result at once, across every web process (each holds
# a worker while it waits); keep it below the number of web workers.
WARDEN_API_LONG_POLLS = env_int("WARDEN_API_LONG_POLLS", 2, minimum=0)
# `make bench` only: the framework floor of the API benchmark (api/bench_floor.py) is routed
# when this names the benchmark's target database.
WARDEN_BENCH_FLOOR_DSN = env_str("WARDEN_BENCH_FLOOR_DSN")
# API callbacks (approvals/callbacks.py): only these hosts, when set; private addresses only
# when allowed (a receiver on the same network).
WARDEN_CALLBACK_HOSTS = [h.lower() for h in env_list("WARDEN_CALLBACK_HOSTS")]
WARDEN_CALLBACK_ALLOW_PRIVATE = env_bool("WARDEN_CALLBACK_ALLOW_PRIVATE", default=False)
# Comma-separated AES-256-GCM keys (urlsafe base64, 32 bytes); the first encrypts, all decrypt.
WARDEN_ENCRYPTION_KEYS = env_list("WARDEN_ENCRYPTION_KEYS")
if not WARDEN_ENCRYPTION_KEYS and _database_url:
    raise ImproperlyConfigured(
        "WARDEN_ENCRYPTION_KEYS must be set when DATABASE_URL is set "
        "(generate one with: python manage.py generate_key)"
    )
# Keys the deterministic pseudonyms of masked values: each connection gets its own key from it
# (HKDF). Without it (the demo only) the secret key stands in.
WARDEN_PSEUDONYM_KEY = env_str("WARDEN_PSEUDONYM_KEY")
if _database_url and len(WARDEN_PSEUDONYM_KEY) < 32:
    raise ImproperlyConfigured(
        "WARDEN_PSEUDONYM_KEY must be set (at least 32 characters) when DATABASE_URL is set "
        "(generate one with: python manage.py generate_key)"
    )
# Signs the audit trail's checkpoints (Ed25519 seed, urlsafe base64 of 32 bytes) and keys the
# MAC of every event. Without it (the demo only) one is derived from the secret key.
WARDEN_AUDIT_SIGNING_KEY = env_str("WARDEN_AUDIT_SIGNING_KEY")
if WARDEN_AUDIT_SIGNING_KEY or _database_url:
    from audit.keys import decode_seed

    try:
        decode_seed(WARDEN_AUDIT_SIGNING_KEY or "")
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{exc}: WARDEN_AUDIT_SIGNING_KEY must be set when DATABASE_URL is set "
            "(generate one with: python manage.py generate_key)"
        ) from None
# Rotation: the keys used before, comma-separated, so events and checkpoints they signed still
# verify (an event tagged with a retired key only up to the checkpoint that took over from it).
WARDEN_AUDIT_RETIRED_SIGNING_KEYS = env_list("WARDEN_AUDIT_RETIRED_SIGNING_KEYS")
for _retired in WARDEN_AUDIT_RETIRED_SIGNING_KEYS:
    from audit.keys import decode_seed

    try:
        decode_seed(_retired)
    except ValueError as exc:
        raise ImproperlyConfigured(f"WARDEN_AUDIT_RETIRED_SIGNING_KEYS: {exc}") from None
# Checkpoints: every N sealed events or M seconds, whichever comes first (also when nothing
# happened); each is also written as a file in this directory when it is set.
WARDEN_AUDIT_CHECKPOINT_EVENTS = env_int("WARDEN_AUDIT_CHECKPOINT_EVENTS", 1000, minimum=1)
WARDEN_AUDIT_CHECKPOINT_SECONDS = env_int("WARDEN_AUDIT_CHECKPOINT_SECONDS", 3600, minimum=10)
WARDEN_AUDIT_CHECKPOINT_DIR = env_str("WARDEN_AUDIT_CHECKPOINT_DIR")
# Evidence bundles generated from the UI are kept here for download.
WARDEN_EVIDENCE_DIR = env_str("WARDEN_EVIDENCE_DIR") or str(BASE_DIR / "var" / "evidence")
WARDEN_AUDIT_SEAL_SECONDS = env_int("WARDEN_AUDIT_SEAL_SECONDS", 5, minimum=1)
WARDEN_QUERY_MAX_BYTES = env_int("WARDEN_QUERY_MAX_BYTES", 256 * 1024, minimum=1024)
# Reverse proxies in front of Warden that append to X-Forwarded-For (0: use REMOTE_ADDR).
WARDEN_TRUSTED_PROXIES = env_int("WARDEN_TRUSTED_PROXIES", 0, minimum=0)
WARDEN_RESULT_PAGE_SIZE = env_int("WARDEN_RESULT_PAGE_SIZE", 100, minimum=10)
# What one run may fetch from a target: each value, and all the rows of an interactive result.
WARDEN_MAX_CELL_BYTES = env_bytes("WARDEN_MAX_CELL_BYTES", 1 << 20, minimum=1024, maximum=1 << 30)
WARDEN_MAX_RUN_BYTES = env_bytes("WARDEN_MAX_RUN_BYTES", 64 << 20, minimum=1024, maximum=1 << 40)
if WARDEN_MAX_RUN_BYTES < WARDEN_MAX_CELL_BYTES:
    raise ImproperlyConfigured(
        f"WARDEN_MAX_RUN_BYTES ({WARDEN_MAX_RUN_BYTES:,}) must be at least "
        f"WARDEN_MAX_CELL_BYTES ({WARDEN_MAX_CELL_BYTES:,}): a run holds at least one value"
    )

# --- Security -----------------------------------------------------------------------------
# Sessions are stored under a digest of the cookie's value (governance/session_store.py).
SESSION_ENGINE = "governance.session_store"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
_HTTPS = env_bool("WARDEN_HTTPS", default=False)
# HSTS covers Warden's own host name, and its subdomains unless WARDEN_HSTS_INCLUDE_SUBDOMAINS=0.
# Preloading puts the whole registrable domain into browsers' built-in list, which takes months
# to undo: only the domain's owner can decide that, so it is opt-in (README: Configuration).
_HSTS_SECONDS = env_int("WARDEN_HSTS_SECONDS", 31536000, minimum=0)
_HSTS_SUBDOMAINS = env_bool("WARDEN_HSTS_INCLUDE_SUBDOMAINS", default=True)
_HSTS_PRELOAD = env_bool("WARDEN_HSTS_PRELOAD", default=False)
if _HSTS_PRELOAD:
    # What the preload list itself requires of a domain; anything less it refuses.
    if not _HTTPS:
        raise ImproperlyConfigured("WARDEN_HSTS_PRELOAD needs WARDEN_HTTPS=1")
    if not _HSTS_SUBDOMAINS:
        raise ImproperlyConfigured("WARDEN_HSTS_PRELOAD needs WARDEN_HSTS_INCLUDE_SUBDOMAINS=1")
    if _HSTS_SECONDS < 31536000:
        raise ImproperlyConfigured(
            "WARDEN_HSTS_PRELOAD needs WARDEN_HSTS_SECONDS of at least 31536000 (one year)"
        )
SILENCED_SYSTEM_CHECKS: list[str] = []
if _HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("WARDEN_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = _HSTS_SECONDS
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _HSTS_SUBDOMAINS
    SECURE_HSTS_PRELOAD = _HSTS_PRELOAD
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Leaving these off is a documented choice (above), not an oversight `check --deploy`
    # should keep reporting.
    if not _HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS.append("security.W021")
    if not _HSTS_SUBDOMAINS:
        SILENCED_SYSTEM_CHECKS.append("security.W005")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("WARDEN_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The editor's sources and node_modules (static/editor/) are not served; only built files are.
STATICFILES_DIRS = [
    (name, BASE_DIR / "static" / name) for name in ("css", "js", "img")
]  # not static/editor: the editor's sources
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "var" / "static"))
# WhiteNoise serves what collectstatic put in STATIC_ROOT, from every web process: names carry
# a hash of the content, so browsers may cache them for a year, and gzip and brotli copies are
# made once at collectstatic. With DEBUG on, it serves the sources unhashed instead.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Email: an SMTP server from EMAIL_URL or the separate EMAIL_* variables; else the console --
# (governance/env.py: smtp_from_env). The URL itself stays out of the settings, since Django's
# error pages hide only settings named like PASS or KEY.
_smtp = smtp_from_env()
if _smtp is not None:
    EMAIL_HOST, EMAIL_PORT = _smtp.host, _smtp.port
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _smtp.user, _smtp.password
    EMAIL_USE_TLS, EMAIL_USE_SSL = _smtp.use_tls, _smtp.use_ssl
# Seconds to wait on the mail server (Django's default waits for ever, holding a worker).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
EMAIL_BACKEND = env_str(
    "DJANGO_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if _smtp is not None
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "warden@localhost")

# --- Notifications (approvals/notifications.py): email above, plus two optional webhooks ------
# A Slack incoming-webhook URL is itself the credential: it is never logged or shown in full.
WARDEN_SLACK_WEBHOOK_URL = env_str("WARDEN_SLACK_WEBHOOK_URL")
WARDEN_WEBHOOK_URL = env_str("WARDEN_WEBHOOK_URL")
WARDEN_WEBHOOK_SECRET = env_str("WARDEN_WEBHOOK_SECRET")
# The audit trail, as OCSF JSON Lines, to a SIEM's HTTP collector (signed like the webhook).
WARDEN_SIEM_WEBHOOK_URL = env_str("WARDEN_SIEM_WEBHOOK_URL")
WARDEN_SIEM_WEBHOOK_SECRET = env_str("WARDEN_SIEM_WEBHOOK_SECRET")
if WARDEN_SIEM_WEBHOOK_URL and len(WARDEN_SIEM_WEBHOOK_SECRET) < 16:
    raise ImproperlyConfigured(
        "WARDEN_SIEM_WEBHOOK_URL is set: WARDEN_SIEM_WEBHOOK_SECRET must be set too (at least 16 "
        "characters)"
    )
for _name, _url in (
    ("WARDEN_SLACK_WEBHOOK_URL", WARDEN_SLACK_WEBHOOK_URL),
    ("WARDEN_WEBHOOK_URL", WARDEN_WEBHOOK_URL),
    ("WARDEN_SIEM_WEBHOOK_URL", WARDEN_SIEM_WEBHOOK_URL),
):
    if _url and not _url.startswith(("https://", "http://")):
        raise ImproperlyConfigured(f"{_name} must be an http(s):// URL")
if WARDEN_WEBHOOK_URL and len(WARDEN_WEBHOOK_SECRET) < 16:
    # An unsigned webhook would let anyone who can reach the receiver forge Warden's events.
    raise ImproperlyConfigured(
        "WARDEN_WEBHOOK_URL is set: WARDEN_WEBHOOK_SECRET must be set too (at least 16 characters)"
    )

# `WARDEN_LOG_FORMAT=json`: one JSON object per line (time, level, logger, message and the
# run id of the statement the line is about), for a log pipeline; `text` (the default) for people.
WARDEN_LOG_FORMAT = env_str("WARDEN_LOG_FORMAT", "text")
if WARDEN_LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("WARDEN_LOG_FORMAT must be text or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"run_id": {"()": "governance.logcontext.RunIdFilter"}},
    "formatters": {
        "text": {"format": "%(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "governance.logcontext.json_formatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(run_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["run_id"],
            "formatter": WARDEN_LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env_str("WARDEN_LOG_LEVEL", "INFO")},
    "loggers": {
        # sqlglot logs a warning for every statement it falls back to an opaque Command on;
        # the engine already classifies those as unknown, so the warning is noise.
        "sqlglot": {"level": "ERROR"},
    },
}

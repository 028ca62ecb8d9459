from __future__ import annotations

import ast
import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from governance.env import (
    PUBLIC_DEMO_SECRET_KEY,
    env_bool,
    env_bytes,
    env_int,
    parse_database_url,
)

ROOT = Path(__file__).resolve().parent.parent
PROD_ENV = {
    "DJANGO_SECRET_KEY": "a-production-secret-key-with-enough-length-and-entropy-1234567",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/warden",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "WARDEN_ENCRYPTION_KEYS": "d2FyZGVuLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmchISE=",
    "WARDEN_PSEUDONYM_KEY": "a-production-pseudonym-key-of-enough-length-0123456789",
    "WARDEN_AUDIT_SIGNING_KEY": "cHJvZHVjdGlvbi1hdWRpdC1zaWduaW5nLWtleS0zMmI=",
    "DJANGO_ALLOWED_HOSTS": "warden.example.com",
    "WARDEN_HTTPS": "1",
}


def _env_names() -> set[str]:
    """Every variable the settings read through governance.env helpers or os.environ."""
    names: set[str] = set()
    for path in (ROOT / "governance" / "settings.py", ROOT / "governance" / "env.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id.startswith("env_")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(str(node.args[0].value))
    return names


def test_every_setting_env_variable_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    names = _env_names() | {"REQUIRE_SERVICES"}
    assert len(names) > 15
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert not missing, f"undocumented in README: {missing}"


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WARDEN_"))}
    clean.pop("DATABASE_URL", None)
    clean.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_env() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PROD_ENV)
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL must start with postgresql://"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL must be a redis:// URL"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG must be a boolean"),
        ({"WARDEN_ENCRYPTION_KEYS": ""}, "WARDEN_ENCRYPTION_KEYS must be set"),
        ({"WARDEN_PSEUDONYM_KEY": ""}, "WARDEN_PSEUDONYM_KEY must be set"),
        ({"WARDEN_PSEUDONYM_KEY": "short"}, "WARDEN_PSEUDONYM_KEY must be set (at least 32"),
        ({"WARDEN_AUDIT_SIGNING_KEY": ""}, "WARDEN_AUDIT_SIGNING_KEY must be set"),
        ({"WARDEN_AUDIT_SIGNING_KEY": "c2hvcnQ="}, "must decode to 32 bytes"),
        ({"WARDEN_QUERY_MAX_BYTES": "lots"}, "WARDEN_QUERY_MAX_BYTES must be an integer"),
        ({"WARDEN_MAX_CELL_BYTES": "1.5 MiB"}, "WARDEN_MAX_CELL_BYTES must be a size in bytes"),
        ({"WARDEN_MAX_CELL_BYTES": "12"}, "WARDEN_MAX_CELL_BYTES must be at least 1,024 bytes"),
        ({"WARDEN_MAX_RUN_BYTES": "512KiB"}, "must be at least WARDEN_MAX_CELL_BYTES"),
        ({"DJANGO_SECRET_KEY": "short"}, "at least 32 characters"),
        ({"OIDC_ISSUER_URL": "https://idp.example.com"}, "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET"),
        ({"WARDEN_WEBHOOK_URL": "https://hooks.example.com/w"}, "WARDEN_WEBHOOK_SECRET must"),
        ({"WARDEN_SLACK_WEBHOOK_URL": "hooks.slack.com/x"}, "must be an http(s):// URL"),
    ],
)
def test_bad_environment_fails_at_start_up_with_a_clear_message(
    override: dict[str, str], message: str
) -> None:
    result = _manage("check", env={**PROD_ENV, **override})
    assert result.returncode != 0
    assert message in result.stderr


def test_sizes_read_binary_units(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, size in [("1048576", 1 << 20), ("512KiB", 512 << 10), ("64 MiB", 64 << 20),
                      ("2g", 2 << 30), ("100 B", 100), ("1 MB", 1 << 20)]:  # fmt: skip
        monkeypatch.setenv("X_SIZE", raw)
        assert env_bytes("X_SIZE", 0) == size, raw
    for raw in ("-1", "1.5M", "1T", "MiB", "lots"):
        monkeypatch.setenv("X_SIZE", raw)
        with pytest.raises(ImproperlyConfigured, match="must be a size in bytes"):
            env_bytes("X_SIZE", 0)
    monkeypatch.setenv("X_SIZE", "2 GiB")
    with pytest.raises(ImproperlyConfigured, match="at most"):
        env_bytes("X_SIZE", 0, maximum=1 << 30)


def test_env_helpers_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_INT", "-3")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env_int("X_INT", 1, minimum=0)
    monkeypatch.setenv("X_BOOL", "yes")
    assert env_bool("X_BOOL") is True
    with pytest.raises(ImproperlyConfigured, match="invalid port"):
        parse_database_url("DATABASE_URL", "postgresql://h:99999/db")
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        parse_database_url("DATABASE_URL", "postgresql://h:5432/")


def _settings_of(env: dict[str, str], *names: str) -> dict[str, Any]:
    """The values of `names` in settings imported under `env` (a fresh process)."""
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}))"
    )
    result = _manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_hsts_preload_is_opt_in_and_subdomains_stay_covered() -> None:
    hsts = ("SECURE_HSTS_PRELOAD", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_SECONDS")
    assert _settings_of(PROD_ENV, *hsts) == {
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_SECONDS": 31536000,
    }
    preload = {**PROD_ENV, "WARDEN_HSTS_PRELOAD": "1"}
    assert _settings_of(preload, *hsts)["SECURE_HSTS_PRELOAD"] is True
    own_host_only = {**PROD_ENV, "WARDEN_HSTS_INCLUDE_SUBDOMAINS": "0"}
    assert _settings_of(own_host_only, *hsts)["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False


@pytest.mark.parametrize(
    "override",
    [{}, {"WARDEN_HSTS_PRELOAD": "1"}, {"WARDEN_HSTS_INCLUDE_SUBDOMAINS": "0"}],
)
def test_check_deploy_is_clean_with_every_hsts_choice(override: dict[str, str]) -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env={**PROD_ENV, **override})
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"WARDEN_HSTS_PRELOAD": "1", "WARDEN_HSTS_INCLUDE_SUBDOMAINS": "0"},
            "WARDEN_HSTS_PRELOAD needs WARDEN_HSTS_INCLUDE_SUBDOMAINS",
        ),
        (
            {"WARDEN_HSTS_PRELOAD": "1", "WARDEN_HSTS_SECONDS": "3600"},
            "WARDEN_HSTS_PRELOAD needs WARDEN_HSTS_SECONDS of at least 31536000",
        ),
        (
            {"WARDEN_HSTS_PRELOAD": "1", "WARDEN_HTTPS": "0"},
            "WARDEN_HSTS_PRELOAD needs WARDEN_HTTPS",
        ),
    ],
)
def test_a_preload_the_list_would_refuse_stops_start_up(
    override: dict[str, str], message: str
) -> None:
    result = _manage("check", env={**PROD_ENV, **override})
    assert result.returncode != 0
    assert message in result.stderr


def _import_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WARDEN_"))}
    for name in ("DATABASE_URL", "REDIS_URL"):
        clean.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", "import governance.settings"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env",
    [
        {},  # debug off, embedded database, no key: the public key would sign sessions
        {"DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "warden.example.com"},
        {"DJANGO_SECRET_KEY": PUBLIC_DEMO_SECRET_KEY},  # the public key, spelled out
        {"WARDEN_DEMO": "1", "DATABASE_URL": "postgresql://postgres@127.0.0.1/warden"},
    ],
)
def test_settings_refuse_the_public_key_outside_the_demo(env: dict[str, str]) -> None:
    result = _import_settings(env)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: DJANGO_SECRET_KEY must")


def test_the_error_without_a_key_says_how_to_run_the_demo() -> None:
    assert "WARDEN_DEMO=1" in _import_settings({}).stderr


@pytest.mark.parametrize("env", [{"WARDEN_DEMO": "1"}, {"DJANGO_DEBUG": "1"}])
def test_the_demo_runs_on_the_public_key_and_says_so_on_the_console(env: dict[str, str]) -> None:
    result = _import_settings(env)
    assert result.returncode == 0, result.stderr
    assert "public built-in secret key" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_a_real_key_runs_quietly() -> None:
    result = _import_settings({"DJANGO_SECRET_KEY": PROD_ENV["DJANGO_SECRET_KEY"]})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_make_demo_runs_every_command_in_demo_mode() -> None:
    dry = subprocess.run(
        ["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    commands = [line for line in dry.stdout.splitlines() if "manage.py" in line]
    assert commands and all("WARDEN_DEMO=1" in line for line in commands), dry.stdout


def test_the_production_recipe_generates_its_key_before_naming_the_database() -> None:
    # README: DJANGO_SECRET_KEY first, then WARDEN_ENCRYPTION_KEYS=$(manage.py generate_key),
    # then DATABASE_URL; with DATABASE_URL already set, settings would refuse to start.
    readme = (ROOT / "README.md").read_text()
    recipe = readme[readme.index("## Production deployment") :]
    assert recipe.index("generate_key") < recipe.index("DATABASE_URL=")
    assert recipe.index("DJANGO_SECRET_KEY=") < recipe.index("generate_key")
    result = _manage("generate_key", env={"DJANGO_SECRET_KEY": PROD_ENV["DJANGO_SECRET_KEY"]})
    assert result.returncode == 0, result.stderr
    assert len(base64.urlsafe_b64decode(result.stdout.strip())) == 32


EMAIL = (
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "EMAIL_TIMEOUT",
)
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
PASSWORD = "hunter2-very-secret"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"EMAIL_URL": f"smtp://warden%40acme:{PASSWORD}%2F@mail.example.com:2525?tls=1"},
            ("mail.example.com", 2525, "warden@acme", f"{PASSWORD}/", True, False),
        ),
        (
            {"EMAIL_URL": f"smtps://warden:{PASSWORD}@mail.example.com"},
            ("mail.example.com", 465, "warden", PASSWORD, False, True),
        ),
        ({"EMAIL_URL": "smtp://relay.internal"}, ("relay.internal", 25, "", "", False, False)),
        (
            {
                "EMAIL_HOST": "mail.example.com",
                "EMAIL_HOST_USER": "warden",
                "EMAIL_HOST_PASSWORD": PASSWORD,
                "EMAIL_USE_TLS": "1",
                "EMAIL_TIMEOUT": "3",
            },
            ("mail.example.com", 587, "warden", PASSWORD, True, False),
        ),
        (
            {"EMAIL_HOST": "localhost", "EMAIL_PORT": "1025"},
            ("localhost", 1025, "", "", False, False),
        ),
    ],
)
def test_an_smtp_server_from_email_url_or_email_host_is_the_default_backend(
    env: dict[str, str], expected: tuple[Any, ...]
) -> None:
    got = _settings_of({**PROD_ENV, **env}, *EMAIL)
    assert got["EMAIL_BACKEND"] == SMTP_BACKEND
    names = ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD")
    assert tuple(got[n] for n in (*names, "EMAIL_USE_TLS", "EMAIL_USE_SSL")) == expected
    assert got["EMAIL_TIMEOUT"] == int(env.get("EMAIL_TIMEOUT", 10))


def test_without_a_mail_server_mail_goes_to_the_console_and_a_chosen_backend_wins() -> None:
    assert _settings_of(PROD_ENV, "EMAIL_BACKEND")["EMAIL_BACKEND"].endswith("console.EmailBackend")
    chosen = {"EMAIL_HOST": "localhost", "DJANGO_EMAIL_BACKEND": "x.Backend"}
    assert _settings_of({**PROD_ENV, **chosen}, "EMAIL_BACKEND")["EMAIL_BACKEND"] == "x.Backend"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"EMAIL_HOST": "mail.example.com", "EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"},
            "EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on",
        ),
        ({"EMAIL_URL": f"smtps://u:{PASSWORD}@h?tls=1"}, "EMAIL_URL asks for both STARTTLS"),
        ({"EMAIL_URL": f"http://u:{PASSWORD}@h"}, "EMAIL_URL must start with smtp://"),
        ({"EMAIL_URL": f"smtp://u:{PASSWORD}@h:99999?tls=1"}, "EMAIL_URL has an invalid port"),
        ({"EMAIL_URL": f"smtp://u:{PASSWORD}@h?tls=maybe"}, "EMAIL_URL: tls must be 1 or 0"),
        ({"EMAIL_URL": f"smtp://u:{PASSWORD}@h?starttls=1"}, "EMAIL_URL: unknown option"),
        ({"EMAIL_URL": f"smtp://u:{PASSWORD}@:25?tls=1"}, "EMAIL_URL must name a mail server"),
        ({"EMAIL_URL": f"smtp://u:{PASSWORD}@mail.example.com"}, "only sent over TLS"),
        ({"EMAIL_URL": f"smtps://:{PASSWORD}@h"}, "a user and a password together"),
        (
            {"EMAIL_URL": "smtp://h", "EMAIL_HOST_PASSWORD": PASSWORD},
            "EMAIL_URL is set: leave EMAIL_HOST_PASSWORD unset",
        ),
        ({"EMAIL_HOST": "smtp://h"}, "EMAIL_HOST must name a mail server host"),
        ({"EMAIL_HOST": "h", "EMAIL_PORT": "smtp"}, "EMAIL_PORT must be an integer"),
        ({"EMAIL_HOST": "h", "EMAIL_PORT": "70000"}, "EMAIL_PORT must be at most 65535"),
        ({"EMAIL_HOST": "h", "EMAIL_TIMEOUT": "0"}, "EMAIL_TIMEOUT must be at least 1"),
        ({"EMAIL_HOST": "h", "EMAIL_USE_TLS": "sometimes"}, "EMAIL_USE_TLS must be a boolean"),
        (
            {"EMAIL_HOST": "h", "EMAIL_HOST_PASSWORD": PASSWORD, "EMAIL_USE_TLS": "1"},
            "EMAIL_HOST: give EMAIL_HOST_USER and EMAIL_HOST_PASSWORD together",
        ),
        (
            {
                "EMAIL_HOST": "mail.example.com",
                "EMAIL_HOST_USER": "u",
                "EMAIL_HOST_PASSWORD": PASSWORD,
            },
            "EMAIL_HOST: a mail server password is only sent over TLS",
        ),
        ({"EMAIL_HOST_USER": "u", "EMAIL_HOST_PASSWORD": PASSWORD}, "set without EMAIL_HOST"),
    ],
)
def test_a_bad_mail_server_setting_stops_start_up_naming_it_and_never_the_password(
    override: dict[str, str], message: str
) -> None:
    result = _manage("check", env={**PROD_ENV, **override})
    assert result.returncode != 0
    assert message in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


def test_a_bad_url_is_refused_without_echoing_its_password() -> None:
    result = _manage("check", env={**PROD_ENV, "REDIS_URL": f"http://:{PASSWORD}@redis:6379/0"})
    assert "REDIS_URL must be a redis:// URL" in result.stderr
    assert PASSWORD not in result.stderr

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from governance.env import env_bool, env_bytes, env_int, parse_database_url

ROOT = Path(__file__).resolve().parent.parent
PROD_ENV = {
    "DJANGO_SECRET_KEY": "a-production-secret-key-with-enough-length-and-entropy-1234567",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/warden",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "WARDEN_ENCRYPTION_KEYS": "d2FyZGVuLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmchISE=",
    "DJANGO_ALLOWED_HOSTS": "warden.example.com",
    "WARDEN_HTTPS": "1",
}


def _env_names() -> set[str]:
    """Every variable the settings read through governance.env helpers or os.environ."""
    names: set[str] = set()
    for path in (ROOT / "governance" / "settings.py",):
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

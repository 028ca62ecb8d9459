"""A fixed cast and real targets.

alice the analyst, bob the approver, carol the admin, dave the auditor, eve with no access.
Target databases are real: a SQLite file, a throwaway PostgreSQL database and a throwaway
MariaDB database, seeded with the demo data. Without a service its tests skip, unless
REQUIRE_SERVICES=1 (CI), where a missing service fails the run.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from governance import demo_data

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
# Roles are server-wide: a name of its own per test session, so parallel sessions never clash.
READER = f"warden_reader_{uuid.uuid4().hex[:8]}"


def service_missing(name: str, exc: Exception) -> None:
    message = f"{name} is not reachable: {exc}"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


# ---------------------------------------------------------------- target databases (session)


@pytest.fixture(scope="session")
def sqlite_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("targets") / "demo.sqlite3"
    demo_data.seed(demo_data.parse_dsn(f"sqlite:///{path}"), customers=1000)
    return path


@pytest.fixture(scope="session")
def pg_target() -> Iterator[str]:
    name = f"warden_t_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=3, **PG)
    except psycopg.Error as exc:
        service_missing("PostgreSQL", exc)
    demo_data.seed(demo_data.parse_dsn(f"postgresql://postgres@127.0.0.1:5432/{name}"))
    admin.execute(f"DROP ROLE IF EXISTS {READER}")
    admin.execute(f"CREATE ROLE {READER} LOGIN PASSWORD 'reader-secret'")
    with psycopg.connect(dbname=name, autocommit=True, **PG) as conn:
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER}")
    yield name
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f"DROP ROLE IF EXISTS {READER}")
    admin.close()


@pytest.fixture(scope="session")
def mysql_target() -> Iterator[str]:
    name = f"warden_t_{uuid.uuid4().hex[:10]}"
    try:
        admin = pymysql.connect(connect_timeout=3, autocommit=True, **MY)  # type: ignore[arg-type]
    except pymysql.Error as exc:
        service_missing("MariaDB", exc)
    demo_data.seed(demo_data.parse_dsn(f"mysql://root@127.0.0.1:3306/{name}"))
    with admin.cursor() as cur:
        cur.execute(f"CREATE USER IF NOT EXISTS '{READER}'@'%' IDENTIFIED BY 'reader-secret'")
        cur.execute(f"GRANT SELECT ON `{name}`.* TO '{READER}'@'%'")
    yield name
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"DROP USER IF EXISTS '{READER}'@'%'")
    admin.close()


# ---------------------------------------------------------------- the cast

# Data migrations whose rows a transactional test's flush removes.
SEEDING_MIGRATIONS = (
    "governance.migrations.0002_default_guardrails_and_roles",
    "governance.migrations.0004_default_masking_rules",
    "governance.migrations.0006_hold_restricted_predicates",
    "governance.migrations.0009_probe_guardrail_message",
    "approvals.migrations.0002_workflow",
)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing() -> Iterator[None]:
    """The cast's passwords are hashed with a fast hasher: PBKDF2's million rounds (about a
    third of a second a user) would cost minutes over the suite and prove nothing here.
    Production keeps Django's list; the slow hashers stay listed, so hashes a child process
    makes (a CLI, `changepassword`) still verify."""
    from django.conf import settings
    from django.test import override_settings

    fast = override_settings(
        PASSWORD_HASHERS=[
            "django.contrib.auth.hashers.MD5PasswordHasher",
            *settings.PASSWORD_HASHERS,
        ]
    )
    fast.enable()
    yield
    fast.disable()


@pytest.fixture(scope="session", autouse=True)
def _flush_past_the_audit_trigger() -> Iterator[None]:
    """Transactional tests end with Django's flush, a TRUNCATE of every table, which the audit
    trail's trigger refuses on PostgreSQL (migration audit 0002). The test database's owner is a
    superuser, who may switch triggers off for one transaction, as a DBA could: the flush does
    so (and only the flush). Tamper tests do the same on purpose, and `audit verify` finds it."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush

    def sql_flush(self: Any, *args: Any, **kwargs: Any) -> list[str]:
        statements = original(self, *args, **kwargs)
        if not statements:
            return statements
        return ["SET LOCAL session_replication_role = replica", *statements]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        yield


@pytest.fixture(scope="session", autouse=True)
def _static_files_from_the_sources(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Plain static names, served from the sources: the test server's static handler (and a
    page rendered in a test) cannot use the hashed names that collectstatic's manifest gives.
    tests/test_static.py fetches the hashed, compressed files from gunicorn instead.

    Set on the settings themselves, not through override_settings, whose wrapper lists
    attributes it then refuses to give (Celery reads every setting, see test_worker)."""
    from django.conf import settings

    if not settings.configured:  # engine and driver tests may run without Django
        return
    from django.test.signals import setting_changed

    for name, value in {
        "STORAGES": {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        "STATIC_ROOT": str(tmp_path_factory.mktemp("static")),  # nothing collected
        "WHITENOISE_USE_FINDERS": True,
    }.items():
        setattr(settings, name, value)
        setting_changed.send(sender=type(settings), setting=name, value=value, enter=True)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Login rate limits live in the cache: one test's lockout must not leak into another."""
    yield
    from django.conf import settings

    if settings.configured:  # engine and driver tests may run without Django
        from django.core.cache import caches

        for alias in settings.CACHES:
            caches[alias].clear()


@pytest.fixture
def groups(db: Any) -> dict[str, Any]:
    """The four roles and the default guardrails, as the data migration seeds them.

    Re-seeded here because a transactional test's flush empties every table.
    """
    from importlib import import_module

    from django.apps import apps
    from django.contrib.auth.models import Group

    for migration in SEEDING_MIGRATIONS:
        import_module(migration).seed(apps, None)
    return {
        name: Group.objects.get(name=name) for name in ("analyst", "approver", "admin", "auditor")
    }


def _user(username: str, group: Any | None) -> Any:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username, password=f"{username}-pass-123!")
    if group is not None:
        user.groups.add(group)
    return user


@pytest.fixture
def alice(groups: dict[str, Any]) -> Any:
    return _user("alice", groups["analyst"])


@pytest.fixture
def bob(groups: dict[str, Any]) -> Any:
    return _user("bob", groups["approver"])


@pytest.fixture
def carol(groups: dict[str, Any]) -> Any:
    return _user("carol", groups["admin"])


@pytest.fixture
def dave(groups: dict[str, Any]) -> Any:
    return _user("dave", groups["auditor"])


@pytest.fixture
def eve(db: Any) -> Any:
    return _user("eve", None)


# ---------------------------------------------------------------- connections


def make_connection(
    *,
    name: str,
    engine: str,
    database: str,
    environment: str = "production",
    host: str = "",
    port: int | None = None,
    username: str = "",
    password: str = "",
    **extra: Any,
) -> Any:
    from governance.models import Connection

    connection = Connection(
        name=name,
        engine=engine,
        database=database,
        environment=environment,
        host=host,
        port=port,
        username=username,
        **extra,
    )
    connection.set_password(password)
    connection.save()
    return connection


def grant(connection: Any, who: Any, *capabilities: str, **extra: Any) -> Any:
    from django.contrib.auth.models import Group

    from governance.models import AccessGrant

    field = "group" if isinstance(who, Group) else "user"
    return AccessGrant.objects.create(
        connection=connection, capabilities=list(capabilities), **{field: who}, **extra
    )


@pytest.fixture
def sqlite_conn(db: Any, sqlite_target: Path, groups: dict[str, Any]) -> Any:
    connection = make_connection(name="demo", engine="sqlite", database=str(sqlite_target))
    grant(connection, groups["analyst"], "read", "export")
    grant(connection, groups["admin"], "read", "write", "ddl", "admin", "export")
    return connection


@pytest.fixture
def pg_conn(db: Any, pg_target: str, groups: dict[str, Any]) -> Any:
    connection = make_connection(
        name="demo-postgres",
        engine="postgresql",
        database=pg_target,
        host="127.0.0.1",
        port=5432,
        username="postgres",
    )
    grant(connection, groups["analyst"], "read", "export")
    grant(connection, groups["admin"], "read", "write", "ddl", "admin", "export")
    return connection


@pytest.fixture
def mysql_conn(db: Any, mysql_target: str, groups: dict[str, Any]) -> Any:
    connection = make_connection(
        name="demo-mysql",
        engine="mysql",
        database=mysql_target,
        host="127.0.0.1",
        port=3306,
        username="root",
    )
    grant(connection, groups["analyst"], "read", "export")
    grant(connection, groups["admin"], "read", "write", "ddl", "admin", "export")
    return connection


@pytest.fixture
def ledger(tmp_path: Path, groups: dict[str, Any]) -> Any:
    """A production SQLite target of its own, so writes here touch no other test."""
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT, balance INTEGER)")
        db.executemany(
            "INSERT INTO accounts VALUES (?, ?, ?)", [(i, f"owner {i}", 100) for i in range(1, 6)]
        )
    connection = make_connection(name="ledger", engine="sqlite", database=str(path))
    grant(connection, groups["analyst"], "read", "write", "ddl")
    return connection


def balances(connection: Any) -> list[int]:
    with sqlite3.connect(connection.database) as db:
        return [b for (b,) in db.execute("SELECT balance FROM accounts ORDER BY id")]


# ---------------------------------------------------------------- subprocesses


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child process (CLI, celery worker) sharing the test app database."""
    from django.db import connection

    env = dict(os.environ)
    settings_dict = connection.settings_dict
    if settings_dict["ENGINE"].endswith("postgresql"):
        env["DATABASE_URL"] = (
            f"postgresql://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:"
            f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
        )
    else:
        env["WARDEN_SQLITE_PATH"] = str(settings_dict["NAME"])
        env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(extra)
    return env


@pytest.fixture(scope="session", autouse=True)
def _celery_reads_the_real_settings() -> None:
    """Celery reads Django's settings once, when its configuration is first used: make that
    happen here, never inside a test's `override_settings` (it would keep the override's
    settings object, and `dict(app.conf)` would fail ever after)."""
    from governance.celery import app

    assert app.conf.task_default_queue == "celery"

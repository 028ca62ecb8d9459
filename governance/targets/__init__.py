"""Target-database drivers: connect, introspect, execute (read-only / write), stream, cancel.

Pure Python + drivers; no Django. See ``base`` for the types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .base import (
    CancelCheck,
    Column,
    Preview,
    Result,
    TableInfo,
    TargetConfig,
    TargetError,
    TargetSession,
    session_tag,
)

ENGINES = ("postgresql", "mysql", "sqlite")

__all__ = [
    "ENGINES",
    "CancelCheck",
    "Column",
    "Preview",
    "Result",
    "TableInfo",
    "TargetConfig",
    "TargetError",
    "TargetSession",
    "cancel",
    "connect",
    "session_tag",
    "test_connection",
]


def _engine(config: TargetConfig) -> str:
    engine = config.engine.lower()
    if engine in ("postgres", "postgresql"):
        return "postgresql"
    if engine in ("mysql", "mariadb"):
        return "mysql"
    if engine in ("sqlite", "sqlite3"):
        return "sqlite"
    raise TargetError("connect", f"unsupported database engine {config.engine!r}")


def connect(
    config: TargetConfig,
    *,
    should_cancel: CancelCheck | None = None,
    sqlite_functions: Mapping[str, tuple[int, Callable[..., str | int | float | None]]]
    | None = None,
    pseudonym_key: bytes | None = None,
) -> TargetSession:
    """Open a session; raises TargetError(kind="connect" | "auth").

    `sqlite_functions` are registered on SQLite connections (masking needs a keyed hash).
    `pseudonym_key` is bound, as its HMAC pads, to the statements an execute names as keyed
    (PostgreSQL: parameters $1/$2; MySQL: session variables set just before).
    """
    engine = _engine(config)
    if engine == "postgresql":
        from . import postgres

        return postgres.connect(config, pseudonym_key)
    if engine == "mysql":
        from . import mysql

        return mysql.connect(config, pseudonym_key)
    from . import sqlite

    return sqlite.connect(config, should_cancel, sqlite_functions)


def cancel(config: TargetConfig, backend_id: str) -> bool:
    """Cancel the statement running on ``backend_id`` (from another thread or process)."""
    engine = _engine(config)
    if engine == "postgresql":
        from . import postgres

        return postgres.cancel(config, backend_id)
    if engine == "mysql":
        from . import mysql

        return mysql.cancel(config, backend_id)
    return False  # sqlite: cancellation goes through should_cancel


def test_connection(config: TargetConfig) -> str:
    """Connect, run a trivial read and return the server version string."""
    session = connect(config)
    try:
        result = session.execute(["SELECT 1"], read_only=True, max_rows=1)
        if result.rows != [(1,)]:
            raise TargetError("execution", "unexpected answer to SELECT 1")
        return session.server_version()
    finally:
        session.close()


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test

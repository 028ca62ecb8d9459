"""PostgreSQL targets that ask for a password, on servers of the test's own (the shared one
trusts local connections, so it never asks)."""

from __future__ import annotations

import pytest

from governance import targets
from governance.targets.base import TargetConfig, TargetError
from tests.pgserver import private_postgres

PASSWORD = "s3cret-target-pw"


def _config(port: int, password: str) -> TargetConfig:
    return TargetConfig(
        engine="postgresql", host="127.0.0.1", port=port, user="postgres",
        password=password, database="postgres",
    )  # fmt: skip


def test_a_target_that_asks_for_a_password_is_reached_with_the_right_one() -> None:
    with private_postgres(auth="scram-sha-256", password=PASSWORD) as (port, _):
        assert "PostgreSQL" in targets.test_connection(_config(port, PASSWORD))
        with pytest.raises(TargetError) as refused:
            targets.test_connection(_config(port, "not-the-password"))
        assert refused.value.kind == "auth" or "password authentication failed" in str(
            refused.value
        )


def test_a_server_asking_for_the_password_in_clear_is_never_sent_it() -> None:
    """A server, or whoever stands in for it, asking for a cleartext password would read it:
    Warden answers SCRAM and MD5 only."""
    with private_postgres(auth="password", password=PASSWORD) as (port, _):
        with pytest.raises(TargetError) as refused:
            targets.test_connection(_config(port, PASSWORD))
        assert "cleartext password" in str(refused.value)

"""A PostgreSQL server of a test's own, run as the postgres account: one the test may restart,
or whose authentication it chooses (the shared server trusts every local connection)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def private_postgres(
    *, auth: str = "trust", password: str = ""
) -> Iterator[tuple[int, Callable[..., None]]]:
    """(port, pg_ctl): a fresh cluster whose user `postgres` signs in by `auth`."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        account = None
    if not binaries or account is None or not shutil.which("runuser"):
        if REQUIRE_SERVICES:
            pytest.fail("PostgreSQL server binaries or the postgres account are missing")
        pytest.skip("PostgreSQL server binaries or the postgres account are missing")
    bin_dir = binaries[-1]
    # Not under pytest's own temporary directory: the postgres account cannot enter it.
    home = Path(tempfile.mkdtemp(prefix="warden-pg-"))
    os.chown(home, account.pw_uid, account.pw_gid)
    port = free_port()

    def as_postgres(*args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip

    init = [str(bin_dir / "initdb"), "-D", str(home / "data"), "-A", auth, "-U", "postgres"]
    if password:
        (home / "pw").write_text(password + "\n")
        os.chown(home / "pw", account.pw_uid, account.pw_gid)
        init += [f"--pwfile={home / 'pw'}"]
    as_postgres(*init)
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1"

    def pg_ctl(*args: str) -> None:
        as_postgres(str(bin_dir / "pg_ctl"), "-D", str(home / "data"), "-o", options,
                    "-l", str(home / "log"), "-w", *args)  # fmt: skip

    pg_ctl("start")
    try:
        yield port, pg_ctl
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(home, ignore_errors=True)

"""Static files as production serves them: collectstatic, then gunicorn with DEBUG off.

The rest of the suite serves static files from the finders under their plain names (see
conftest: the test server's handler cannot serve hashed names), so this is the one place the
hashed, compressed files are fetched over HTTP, from real gunicorn and the demo's server.
"""

from __future__ import annotations

import gzip
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brotli
import pytest

from tests.conftest import subprocess_env

ROOT = Path(__file__).resolve().parent.parent
ONE_YEAR = 365 * 24 * 3600
ASSET = re.compile(r'<(?:link|script)\b[^>]*?\b(?:href|src)="(/static/[^"]+)"')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def _get(port: int, path: str, encoding: str = "identity") -> Fetched:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": encoding})
        response = conn.getresponse()
        return Fetched(response.status, response.headers, response.read())
    finally:
        conn.close()


def _wait_until_serving(process: subprocess.Popen[str], port: int, path: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited ({process.returncode}): {process.communicate()[0]}")
        try:
            if _get(port, path).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"nothing served {path} on port {port}")


@contextmanager
def _serving(args: list[str], env: dict[str, str], port: int) -> Iterator[None]:
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_until_serving(process, port, "/accounts/login/")
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def _manage(*args: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def _source(url: str) -> bytes:
    """The committed file a hashed URL was collected from (/static/css/warden.<hash>.css)."""
    name = re.sub(r"\.[0-9a-f]{12}(\.\w+)$", r"\1", url.removeprefix("/static/"))
    return (ROOT / "static" / name).read_bytes()


def _check_assets(port: int) -> list[str]:
    page = _get(port, "/accounts/login/")
    assert page.status == 200
    urls = ASSET.findall(page.body.decode())
    assert any(u.endswith(".css") for u in urls) and any(u.endswith(".js") for u in urls), urls
    for url in urls:
        # hashed names: a new release is a new URL, so browsers may keep each for a year
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", url), url
        plain = _get(port, url)
        assert plain.status == 200, url
        cache = plain.headers.get("Cache-Control", "")
        max_age = int(re.search(r"max-age=(\d+)", cache).group(1))  # type: ignore[union-attr]
        assert max_age >= ONE_YEAR and "immutable" in cache, (url, cache)
        assert plain.body == _source(url), url
        if url.endswith((".css", ".js", ".svg")):  # text: sent compressed to who accepts it
            assert "Accept-Encoding" in plain.headers.get("Vary", ""), url
            zipped = _get(port, url, "gzip")
            assert zipped.headers.get("Content-Encoding") == "gzip", url
            assert gzip.decompress(zipped.body) == plain.body
            squeezed = _get(port, url, "br, gzip")
            assert squeezed.headers.get("Content-Encoding") == "br", url
            assert brotli.decompress(squeezed.body) == plain.body
    assert _get(port, "/static/css/missing.css").status == 404
    return urls


def test_gunicorn_serves_hashed_compressed_static_files_with_debug_off(
    db: Any, tmp_path: Path
) -> None:
    env = subprocess_env(DJANGO_DEBUG="0", DJANGO_STATIC_ROOT=str(tmp_path / "static"))
    _manage("collectstatic", "--noinput", "-v0", env=env)
    assert (tmp_path / "static" / "staticfiles.json").exists()
    port = _free_port()
    gunicorn = ["-m", "gunicorn", "governance.wsgi", "--bind", f"127.0.0.1:{port}"]
    with _serving([*gunicorn, "--workers", "1"], env, port):
        _check_assets(port)


def test_make_demo_serves_its_static_files_too(tmp_path: Path) -> None:
    # `make demo`: migrate, then the demo command, which collects and serves like production.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "WARDEN_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        WARDEN_DEMO="1",
        WARDEN_SQLITE_PATH=str(tmp_path / "app.sqlite3"),
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
    )
    _manage("migrate", "--noinput", "-v0", env=env)
    port = _free_port()
    demo = ["manage.py", "demo", "--customers", "50", "--addr", f"127.0.0.1:{port}"]
    with _serving(demo, env, port):
        _check_assets(port)
        assert b"public built-in secret key" in _get(port, "/accounts/login/").body

"""The connection form: default ports, TLS options that reach the drivers, a test before
saving, and what the catalog says when discovery fails. Real PostgreSQL and MariaDB targets
(both run here without TLS, so a mode that requires it must fail and the others connect)."""

from __future__ import annotations

import datetime as dt
import glob
import os
import tempfile
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from governance import targets
from governance.models import Connection
from governance.services.catalog import catalog_refresh
from governance.targets import tls
from governance.targets.base import SECRET_REPEATED
from governance.targets.pg_support import connection_params
from tests.conftest import READER, make_connection

pytestmark = pytest.mark.django_db
NOT_A_CERT = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _ca() -> tuple[str, str]:
    """A self-signed CA certificate and its private key, as PEM text."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Warden test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def _form(**values: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "new-target",
        "engine": "postgresql",
        "environment": "staging",
        "host": "127.0.0.1",
        "port": "",
        "database": "",
        "username": "postgres",
        "tls_mode": "prefer",
        "tls_ca_pem": "",
        "statement_timeout_ms": "30000",
        "row_cap": "1000",
        "export_row_limit": "1000000",
        "scan_free_text": "on",
        "password": "",
    }
    data.update(values)
    return data


def _tested(response: Any) -> str:
    assert response.status_code == 200
    return str(response.content.decode())


# ------------------------------------------------------------------ default ports


@pytest.mark.parametrize(
    ("engine", "port", "stored"),
    [
        ("postgresql", "", 5432),
        ("mysql", "", 3306),
        ("mysql", "3307", 3307),
        ("sqlite", "5432", None),
    ],
)
def test_a_blank_port_is_stored_as_the_engine_s_default(
    carol: Any, engine: str, port: str, stored: int | None
) -> None:
    host = "" if engine == "sqlite" else "127.0.0.1"
    response = _client(carol).post(
        reverse("connection_create"),
        _form(engine=engine, port=port, host=host, database="/tmp/x.sqlite3"),
    )
    assert response.status_code == 302, response.content
    assert Connection.objects.get(name="new-target").port == stored


def test_the_form_tells_the_page_s_script_each_engine_s_default_port(carol: Any) -> None:
    page = _client(carol).get(reverse("connection_create"))
    assert b'data-default-ports="{&quot;postgresql&quot;: 5432, &quot;mysql&quot;: 3306}"' in (
        page.content
    )
    assert b"js/connection-form.js" in page.content
    assert b"Blank: the engine&#x27;s default" in page.content


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"port": "0"}, "port", "greater than or equal to 1"),
        ({"port": "70000"}, "port", "less than or equal to 65535"),
        ({"port": "five"}, "port", "Enter a whole number"),
        ({"tls_mode": "bogus"}, "tls_mode", "Select a valid choice"),
        ({"engine": "mysql", "tls_mode": "allow"}, "tls_mode", "does not offer allow"),
        ({"tls_mode": "verify-ca"}, "tls_ca_pem", "verify-ca checks the server against this CA"),
        ({"tls_ca_pem": "hello"}, "tls_ca_pem", "Paste PEM text starting with"),
        (
            {"tls_ca_pem": NOT_A_CERT},
            "tls_ca_pem",
            "not a valid PEM certificate",
        ),
        ({"tls_ca_pem": "x" * 70_000}, "tls_ca_pem", "more than 64 KB"),
    ],
)
@pytest.mark.parametrize("action", ["connection_create", "connection_try"])
def test_bad_input_is_a_form_error_never_a_server_error(
    carol: Any, values: dict[str, str], field: str, words: str, action: str
) -> None:
    response = _client(carol).post(reverse(action), _form(**values))
    assert response.status_code == 200
    form = response.context["form"]
    assert any(words in error for error in form.errors[field]), form.errors
    assert not Connection.objects.filter(name="new-target").exists()


def test_a_pasted_private_key_is_refused_so_it_is_never_stored_or_shown(carol: Any) -> None:
    cert, key = _ca()
    response = _client(carol).post(reverse("connection_create"), _form(tls_ca_pem=cert + key))
    assert "That is a private key" in response.context["form"].errors["tls_ca_pem"][0]
    assert not Connection.objects.filter(name="new-target").exists()


def test_a_ca_certificate_is_stored_shown_back_and_audited_by_fingerprint(
    carol: Any, pg_conn: Any
) -> None:
    cert, _ = _ca()
    client = _client(carol)
    response = client.post(
        reverse("connection_edit", args=[pg_conn.pk]),
        _form(name=pg_conn.name, database=pg_conn.database, tls_mode="prefer", tls_ca_pem=cert),
    )
    assert response.status_code == 302
    pg_conn.refresh_from_db()
    assert pg_conn.tls_ca_pem == cert.strip() + "\n"
    page = client.get(reverse("connection_edit", args=[pg_conn.pk]))
    assert cert.splitlines()[1].encode() in page.content  # public: shown back
    changed = AuditEvent.objects.filter(kind="connection.updated").latest("id")
    before, after = changed.detail["changes"]["tls_ca_pem"]
    assert before == "" and after.startswith("sha256:") and len(after) == 23


# ------------------------------------------------------------------ TLS reaches the drivers


def test_the_tls_mode_and_ca_reach_libpq_and_the_ca_file_is_removed_after_connecting() -> None:
    cert, _ = _ca()
    with tls.postgres_options("verify-full", cert) as params:
        assert params["sslmode"] == "verify-full"
        with open(params["sslrootcert"]) as file:
            assert file.read().strip() == cert.strip()
        assert oct(os.stat(params["sslrootcert"]).st_mode & 0o777) == "0o600"
        config = targets.TargetConfig("postgresql", host="h", user="u")
        assert connection_params(config, params)["sslrootcert"] == params["sslrootcert"]
    assert not os.path.exists(params["sslrootcert"])
    with tls.postgres_options("verify-full", "") as params:
        assert params["sslrootcert"] == "system"  # no CA of its own: the system's
    # without a mode, libpq prefers TLS, as before this option existed
    assert connection_params(targets.TargetConfig("postgresql", host="h", user="u"))["sslmode"] == (
        "prefer"
    )


def test_existing_connections_keep_preferring_tls(pg_conn: Any, mysql_conn: Any) -> None:
    assert pg_conn.tls_mode == mysql_conn.tls_mode == "prefer"
    assert pg_conn.target_config().tls_mode == "prefer"
    assert tls.mysql_options("prefer", "") == (None, False)  # PyMySQL's own default
    assert tls.mysql_options("disable", "") == (None, True)


@pytest.mark.parametrize(
    ("mode", "ok", "words"),
    [
        ("disable", True, "Connected: PostgreSQL"),
        ("allow", True, "Connected: PostgreSQL"),
        ("prefer", True, "Connected: PostgreSQL"),
        ("require", False, "server does not support SSL, but SSL was required"),
        ("verify-full", False, "server does not support SSL, but SSL was required"),
    ],
)
def test_postgres_tls_modes_on_a_server_without_tls(
    carol: Any, pg_conn: Any, mode: str, ok: bool, words: str
) -> None:
    response = _client(carol).post(
        reverse("connection_try"), _form(database=pg_conn.database, tls_mode=mode)
    )
    text = _tested(response)
    assert response.context["test"]["ok"] is ok and words in text, text


def test_postgres_verify_ca_with_a_pasted_ca_fails_on_a_server_without_tls(
    carol: Any, pg_conn: Any
) -> None:
    cert, _ = _ca()
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "warden-ca-*")))
    response = _client(carol).post(
        reverse("connection_try"),
        _form(database=pg_conn.database, tls_mode="verify-ca", tls_ca_pem=cert),
    )
    assert "server does not support SSL, but SSL was required" in _tested(response)
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "warden-ca-*"))) == before


@pytest.mark.parametrize(
    ("mode", "ok", "words"),
    [
        ("disable", True, "MariaDB"),
        ("prefer", True, "MariaDB"),
        ("require", False, "SSL is required but the server doesn&#x27;t support it"),
        ("verify-full", False, "SSL is required but the server doesn&#x27;t support it"),
    ],
)
def test_mysql_tls_modes_on_a_server_without_tls(
    carol: Any, mysql_conn: Any, mode: str, ok: bool, words: str
) -> None:
    values = _form(engine="mysql", database=mysql_conn.database, username="root", tls_mode=mode)
    response = _client(carol).post(reverse("connection_try"), values)
    text = _tested(response)
    assert response.context["test"]["ok"] is ok and words in text, text


def test_a_saved_connection_that_requires_tls_fails_its_test_and_its_runs(
    carol: Any, pg_conn: Any
) -> None:
    Connection.objects.filter(pk=pg_conn.pk).update(tls_mode="require")
    page = _client(carol).post(reverse("connection_test", args=[pg_conn.pk]), follow=True)
    assert b"server does not support SSL, but SSL was required" in page.content
    pg_conn.refresh_from_db()
    with pytest.raises(targets.TargetError, match="SSL was required"):
        targets.connect(pg_conn.target_config())


# ------------------------------------------------------------------ test before saving


def test_an_edit_is_tested_with_the_stored_password_and_nothing_is_saved(
    carol: Any, mysql_target: str
) -> None:
    connection = make_connection(
        name="reader",
        engine="mysql",
        database=mysql_target,
        host="127.0.0.1",
        port=3306,
        username=READER,
        password="reader-secret",
    )
    client = _client(carol)
    url = reverse("connection_edit_try", args=[connection.pk])
    values = _form(
        name="reader", engine="mysql", database=mysql_target, username=READER, tls_mode="prefer"
    )
    ok = client.post(url, values, HTTP_HX_REQUEST="true")
    assert ok.status_code == 200 and b'data-test-ok="true"' in ok.content
    assert b"<html" not in ok.content  # htmx: the result alone
    wrong = client.post(url, {**values, "password": "not-the-reader-secret"})
    assert wrong.context["test"]["ok"] is False
    assert "auth: " in wrong.context["test"]["message"]
    assert b"not-the-reader-secret" not in wrong.content
    none = client.post(url, {**values, "clear_password": "on"})
    assert none.context["test"]["ok"] is False  # tried without any password
    connection.refresh_from_db()
    assert connection.tls_mode == "prefer" and connection.get_password() == "reader-secret"
    events = list(AuditEvent.objects.filter(kind="connection.tested").order_by("id"))
    assert [e.detail["ok"] for e in events] == [True, False, False]
    assert events[0].detail["unsaved"]["tls_mode"] == "prefer"
    assert events[1].detail["unsaved"]["has_password"] is True
    assert events[2].detail["unsaved"]["has_password"] is False
    assert all("not-the-reader-secret" not in str(e.detail) for e in events)


def test_a_new_connection_is_tested_without_a_name_and_not_created(
    carol: Any, pg_conn: Any
) -> None:
    response = _client(carol).post(
        reverse("connection_try"), _form(name="", database=pg_conn.database)
    )
    assert response.context["test"]["ok"] is True
    assert not Connection.objects.exclude(pk=pg_conn.pk).exists()
    event = AuditEvent.objects.filter(kind="connection.tested").latest("id")
    assert event.connection_id is None and event.detail["unsaved"]["host"] == "127.0.0.1"


def test_a_driver_error_never_repeats_the_password(carol: Any, pg_conn: Any) -> None:
    # The server names the database it cannot find: here the name holds the password.
    secret = "hunter2-correct-horse"
    response = _client(carol).post(
        reverse("connection_try"),
        _form(database=f"no-such-{secret}", password=secret, tls_mode="disable"),
    )
    message = response.context["test"]["message"]
    assert secret not in message and message == SECRET_REPEATED
    event = AuditEvent.objects.filter(kind="connection.tested").latest("id")
    assert secret not in event.detail["message"]  # (the database name tried is a setting)


def test_a_form_with_other_errors_is_not_tested(carol: Any, pg_conn: Any) -> None:
    response = _client(carol).post(
        reverse("connection_try"), _form(host="", database=pg_conn.database), HTTP_HX_REQUEST="1"
    )
    assert b"Correct the fields marked below" in response.content
    assert b"Host: A host is required" in response.content
    assert not AuditEvent.objects.filter(kind="connection.tested").exists()


@pytest.mark.parametrize("who", ["alice", "bob", "dave", "eve"])
def test_only_admins_test_connections_from_the_form(
    who: str, request: pytest.FixtureRequest, pg_conn: Any
) -> None:
    client = _client(request.getfixturevalue(who))
    for url in (reverse("connection_try"), reverse("connection_edit_try", args=[pg_conn.pk])):
        assert client.post(url, _form(database=pg_conn.database)).status_code == 403
    assert not AuditEvent.objects.filter(kind="connection.tested").exists()


def test_the_form_test_needs_a_post_a_csrf_token_and_a_sign_in(carol: Any, pg_conn: Any) -> None:
    url = reverse("connection_try")
    anonymous = Client().post(url, _form(database=pg_conn.database))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert _client(carol).get(url).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(carol)
    assert strict.post(url, _form(database=pg_conn.database)).status_code == 403
    assert not AuditEvent.objects.filter(kind="connection.tested").exists()


# ------------------------------------------------------------------ discovery errors


def test_a_failed_discovery_is_shown_on_the_catalog_instead_of_no_tables(
    carol: Any, dave: Any, pg_target: str
) -> None:
    secret = "hunter2-discovery-secret"
    connection = make_connection(
        name="broken",
        engine="postgresql",
        database="gone-away",
        host="127.0.0.1",
        port=5432,
        username="postgres",
        password=secret,
        tls_mode="disable",
    )
    with pytest.raises(targets.TargetError):
        catalog_refresh(connection=connection)
    connection.refresh_from_db()
    assert connection.discovery_error_kind == "connect"
    assert "does not exist" in connection.discovery_error
    assert secret not in connection.discovery_error
    assert connection.discovery_error_at is not None
    for user in (carol, dave):  # admins and auditors see why
        overview = _client(user).get(reverse("catalog_overview")).content.decode()
        row = overview[overview.index("broken") :]
        row = row[: row.index("</tr>")]
        assert "Discovery failed" in row and "does not exist" in row and "<td>0</td>" not in row
        page = _client(user).get(reverse("catalog_connection", args=[connection.pk])).content
        assert b"data-discovery-error" in page and b"No tables: discovery failed" in page
    detail = _client(carol).get(reverse("connection_detail", args=[connection.pk]))
    assert b"Discovery failed" in detail.content
    # fixed: the next discovery clears it
    Connection.objects.filter(pk=connection.pk).update(database=pg_target)
    connection.refresh_from_db()
    assert catalog_refresh(connection=connection).tables > 0
    connection.refresh_from_db()
    assert connection.discovery_error_kind == "" and connection.discovery_error_at is None
    assert b"Discovery failed" not in _client(carol).get(reverse("catalog_overview")).content


def test_run_discovery_from_the_catalog_keeps_the_error(carol: Any) -> None:
    connection = make_connection(
        name="nowhere", engine="mysql", database="x", host="127.0.0.1", port=1, username="root"
    )
    page = (
        _client(carol).post(reverse("catalog_discover", args=[connection.pk]), follow=True).content
    )
    assert b"Discovery failed: connect:" in page  # the message, and the kept error
    assert b"data-discovery-error" in page
    connection.refresh_from_db()
    assert connection.discovery_error_kind == "connect"


@pytest.mark.parametrize(
    "change",
    [
        {"host": "127.0.0.2"},
        {"port": "3307"},
        {"username": "root"},
        {"tls_mode": "disable"},
        {"database": "Winter2026 Spring2026 reader-secret"},  # an oracle of guesses
    ],
)
def test_the_stored_password_is_never_sent_anywhere_new_without_being_typed(
    carol: Any, mysql_target: str, change: dict[str, str]
) -> None:
    """Editing a connection lets an admin point it elsewhere, never carry its stored password
    there: a server of their own, another account, or weaker TLS needs the password typed."""
    connection = make_connection(
        name="reader", engine="mysql", database=mysql_target, host="127.0.0.1", port=3306,
        username=READER, password="reader-secret",
    )  # fmt: skip
    client = _client(carol)
    values = {
        **_form(name="reader", engine="mysql", database=mysql_target, username=READER),
        "tls_mode": "prefer",
        **change,
    }
    tried = client.post(reverse("connection_edit_try", args=[connection.pk]), values)
    assert "Type the password again" in tried.content.decode()
    assert not AuditEvent.objects.filter(kind="connection.tested").exists()  # nothing tried
    saved = client.post(reverse("connection_edit", args=[connection.pk]), values)
    assert saved.status_code == 200 and "Type the password again" in saved.content.decode()
    connection.refresh_from_db()
    assert connection.host == "127.0.0.1" and connection.port == 3306
    assert connection.username == READER and connection.tls_mode == "prefer"
    # Typed again, it may go there.
    retyped = client.post(
        reverse("connection_edit", args=[connection.pk]), {**values, "password": "reader-secret"}
    )
    assert retyped.status_code == 302


def test_wardens_own_sqlite_database_is_never_a_target(carol: Any, settings: Any) -> None:
    from django.db import connection

    if connection.vendor != "sqlite":
        settings.DATABASES = {
            **settings.DATABASES,
            "default": {**settings.DATABASES["default"], "ENGINE": "django.db.backends.sqlite3",
                        "NAME": "/tmp/warden-app.sqlite3"},
        }  # fmt: skip
    from governance.forms import _is_warden_database

    app = settings.DATABASES["default"]["NAME"]
    assert _is_warden_database(str(app)) and _is_warden_database(f" {app} ")
    assert not _is_warden_database("/tmp/some-target.sqlite3")

"""Mail through a real SMTP server on localhost (aiosmtpd): STARTTLS or implicit TLS, AUTH.

Warden runs in a subprocess configured only by the environment, as a deployment is: the
`govern` CLI holds a write for approval, and the approvers' notification goes out by SMTP.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from approvals.models import ApprovalRequest, Delivery
from tests.conftest import subprocess_env

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # implicit TLS: the connection is encrypted before AUTH, which aiosmtpd cannot tell
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

ROOT = Path(__file__).resolve().parent.parent
UPDATE = "UPDATE accounts SET balance = 0 WHERE id = 1"
USER, PASSWORD = "warden@acme", "p@ss:w/rd-not-in-any-log"


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: the receiver's, and the client's only CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class MailServer:
    port: int
    ca: Path
    mode: str  # "starttls" or "smtps"
    messages: list[Envelope] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, accepted)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        login = data.login.decode() if isinstance(data, LoginPassword) else "?"
        self.logins.append((login, ok))
        return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=["starttls", "smtps"])
def mail_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MailServer]:
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = MailServer(port=_free_port(), ca=cert, mode=request.param)
    tls: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True}  # AUTH only after STARTTLS
        if request.param == "starttls"
        else {"ssl_context": context, "auth_require_tls": False}  # TLS from the first byte
    )
    controller = Controller(
        server,
        hostname="127.0.0.1",
        port=server.port,
        authenticator=server.authenticate,
        auth_required=True,
        server_hostname="127.0.0.1",
        **tls,
    )
    controller.start()
    yield server
    controller.stop()


def _hold_by_cli(mail: MailServer, **env: str) -> subprocess.CompletedProcess[str]:
    """`govern` a write that needs approval, in a process configured by `env` alone."""
    return subprocess.run(
        [sys.executable, "manage.py", "govern", "--as", "alice", "--connection", "ledger", UPDATE],
        cwd=ROOT,
        env=subprocess_env(SSL_CERT_FILE=str(mail.ca), **env),  # the receiver's CA only
        capture_output=True,
        text=True,
        timeout=120,
    )


def _url(mail: MailServer, password: str = PASSWORD) -> str:
    scheme, query = ("smtp", "?tls=1") if mail.mode == "starttls" else ("smtps", "")
    login = f"{quote(USER, safe='')}:{quote(password, safe='')}"
    return f"{scheme}://{login}@127.0.0.1:{mail.port}{query}"


def _mail_approvers(bob: Any) -> None:
    bob.email = "bob@example.com"
    bob.save(update_fields=["email"])


def test_approvers_are_mailed_through_the_smtp_server_of_email_url(
    alice: Any, bob: Any, ledger: Any, mail_server: MailServer
) -> None:
    _mail_approvers(bob)
    result = _hold_by_cli(mail_server, EMAIL_URL=_url(mail_server))
    assert result.returncode == 3, result.stderr  # waiting for approval
    request = ApprovalRequest.objects.get(requester=alice)

    assert mail_server.logins == [(USER, True)]
    (envelope,) = mail_server.messages
    assert envelope.rcpt_tos == ["bob@example.com"]
    message = message_from_bytes(envelope.original_content or b"")
    assert message["Subject"].startswith(f"[Warden] Request #{request.pk} needs your review")
    assert f"/approvals/{request.pk}/" in message.get_payload()
    delivery = Delivery.objects.get(request=request)
    assert (delivery.channel, delivery.status, delivery.attempts) == ("email", "sent", 1)
    assert PASSWORD not in result.stdout + result.stderr


def test_the_separate_email_variables_reach_the_same_server(
    alice: Any, bob: Any, ledger: Any, mail_server: MailServer
) -> None:
    _mail_approvers(bob)
    tls = "EMAIL_USE_TLS" if mail_server.mode == "starttls" else "EMAIL_USE_SSL"
    result = _hold_by_cli(
        mail_server,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(mail_server.port),
        EMAIL_HOST_USER=USER,
        EMAIL_HOST_PASSWORD=PASSWORD,
        **{tls: "1"},
    )
    assert result.returncode == 3, result.stderr
    assert mail_server.logins == [(USER, True)] and len(mail_server.messages) == 1
    assert Delivery.objects.get().status == "sent"


def test_a_refused_login_is_logged_with_the_servers_reply_and_never_the_password(
    alice: Any, bob: Any, ledger: Any, mail_server: MailServer
) -> None:
    _mail_approvers(bob)
    result = _hold_by_cli(mail_server, EMAIL_URL=_url(mail_server, password=PASSWORD + "-wrong"))
    assert result.returncode == 3, result.stderr  # the request stands; only the mail failed
    # smtplib tries each mechanism the server offers (PLAIN, then LOGIN): all refused
    assert mail_server.logins and set(mail_server.logins) == {(USER, False)}
    assert mail_server.messages == []
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.response_code) == ("pending", 535)  # retried later
    assert delivery.last_error.startswith("SMTPAuthenticationError 535")
    for text in (delivery.last_error, result.stdout, result.stderr):
        assert PASSWORD not in text


def test_a_server_whose_certificate_is_not_trusted_gets_no_password(
    alice: Any, bob: Any, ledger: Any, mail_server: MailServer
) -> None:
    _mail_approvers(bob)
    env = subprocess_env(EMAIL_URL=_url(mail_server))  # the system's CAs, not the receiver's
    result = subprocess.run(
        [sys.executable, "manage.py", "govern", "--as", "alice", "--connection", "ledger", UPDATE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    assert mail_server.logins == [] and mail_server.messages == []
    delivery = Delivery.objects.get()
    assert delivery.status == "pending"
    assert "CERTIFICATE_VERIFY_FAILED" in delivery.last_error

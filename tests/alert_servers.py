"""Real local servers the alert channels deliver to (issue 20), as pytest fixtures.

- :class:`AlertReceiver`: a threaded HTTP server on 127.0.0.1 that validates PagerDuty
  Events API v2 bodies (``POST /v2/enqueue``) and Slack incoming-webhook bodies (``POST
  /slack/...``), answers 202/200 to a valid one and 400 (with the reason) to an invalid
  one, records both, and can be told to answer 500.
- :func:`closed_port`: a port nothing listens on (connection refused).
- :class:`SilentServer`: accepts connections and never answers.
- :class:`SmtpServer`: aiosmtpd on 127.0.0.1, recording each message, optionally with
  STARTTLS (a self-signed certificate for 127.0.0.1) and a login it records.

Fixtures: ``alert_receiver``, ``silent_server``, ``smtp_server``, ``smtp_tls_server``.
A test module or conftest uses them with ``from tests.alert_servers import *``-free
imports of the fixture names (``tests/alerts/conftest.py``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")


def pagerduty_problems(body: Any) -> list[str]:
    """What is wrong with a PagerDuty Events API v2 event (empty when valid)."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems = [f"missing {k}" for k in ("routing_key", "event_action") if not body.get(k)]
    if body.get("event_action") not in ACTIONS:
        problems.append(f"event_action {body.get('event_action')!r} not in {ACTIONS}")
    dedup = body.get("dedup_key")
    if body.get("event_action") != "trigger" and not dedup:
        problems.append("a resolve or acknowledge needs a dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        problems.append("dedup_key must be a string of at most 255 characters")
    if body.get("event_action") == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*problems, "a trigger needs a payload object"]
        problems += [f"missing payload.{k}" for k in ("summary", "source") if not payload.get(k)]
        if payload.get("severity") not in SEVERITIES:
            problems.append(f"payload.severity {payload.get('severity')!r} not in {SEVERITIES}")
        details = payload.get("custom_details")
        if details is not None and not isinstance(details, dict):
            problems.append("payload.custom_details must be an object")
    return problems


def slack_problems(body: Any) -> list[str]:
    """What is wrong with a Slack incoming-webhook body (empty when valid)."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    text = body.get("text")
    return [] if isinstance(text, str) and text.strip() else ["missing text string"]


@dataclass
class Received:
    path: str
    raw: bytes
    body: Any
    problems: list[str]


@dataclass
class AlertReceiver:
    """The HTTP receiver; ``status`` set to 500 makes every answer a 500."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    status: int | None = None

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def events_url(self) -> str:
        return self.base + "/v2/enqueue"

    @property
    def slack_url(self) -> str:
        return self.base + "/slack/T000/B000/secret-webhook-path"

    def valid(self, path_prefix: str) -> list[Any]:
        """The valid bodies received at paths starting with ``path_prefix``."""
        return [r.body for r in self.received if r.path.startswith(path_prefix) and not r.problems]


def _handler(receiver: AlertReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = None
            if self.path.startswith("/v2/enqueue"):
                problems = pagerduty_problems(body)
            elif self.path.startswith("/slack/"):
                problems = slack_problems(body)
            else:
                problems = [f"no endpoint {self.path}"]
            receiver.received.append(Received(self.path, raw, body, problems))
            status = receiver.status or (400 if problems else 202)
            reply = json.dumps({"status": "invalid event", "errors": problems} if problems else {})
            data = reply.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    return Handler


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    """``server`` answering on a thread of its own for the block, then shut and closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def alert_receiver() -> Iterator[AlertReceiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    receiver = AlertReceiver(server)
    server.RequestHandlerClass = _handler(receiver)
    with serving(server):
        yield receiver


def closed_port() -> int:
    """A port on 127.0.0.1 that refuses connections (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class SilentServer:
    """Accepts every connection and never sends a byte (a hung endpoint)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.sock.settimeout(0.05)
        self.accepted: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1; ``messages`` holds (envelope recipients, parsed message)."""

    port: int
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    tls: bool = False
    cafile: Path | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.content
        raw = data if isinstance(data, bytes) else (data or "").encode()
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(raw)))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.logins.append((data.login.decode(), data.password.decode()))
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (the client trusts it via SSL_CERT_FILE)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

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
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _start_smtp(record: SmtpServer, **smtp_kwargs: Any) -> Controller:
    controller = Controller(record, hostname="127.0.0.1", port=record.port, **smtp_kwargs)
    controller.start()
    return controller


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Plain SMTP, no login."""
    record = SmtpServer(closed_port())
    controller = _start_smtp(record)
    try:
        yield record
    finally:
        controller.stop()


@pytest.fixture
def smtp_tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """SMTP that requires STARTTLS before AUTH and records each login; the client trusts
    its self-signed certificate through ``SSL_CERT_FILE``."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    record = SmtpServer(closed_port(), tls=True, cafile=cert)
    controller = _start_smtp(
        record,
        tls_context=context,
        require_starttls=True,
        authenticator=record.authenticate,
        auth_require_tls=True,
    )
    try:
        yield record
    finally:
        controller.stop()

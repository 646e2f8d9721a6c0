"""The dashboard's HTTP server: the standard library's ``ThreadingHTTPServer``.

Routes (GET and HEAD only; anything else is 405, so the server cannot change a thing):

- ``/``: the overview page; ``/main``: its ``<main>`` alone, which the page's script
  fetches every ``refresh`` seconds;
- ``/exports/{export_id}``: one export (its manifests, files, checks);
- ``/api/status`` and ``/api/exports/{export_id}``: the same data as JSON;
- ``/static/{name}``: the stylesheet, the script and the icon shipped in the package.

Bound to a loopback address, it answers only requests whose ``Host`` is a loopback
name (a page elsewhere cannot reach it through DNS rebinding). Bound to any other
address, or given a token, every request must carry the token: ``Authorization: Bearer
T``, the cookie the server sets, or ``?token=T`` (which sets that cookie and redirects
to the same page without it, so the token leaves the address bar). Tokens are compared
in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from dpexport.dashboard import data
from dpexport.dashboard.detail import export_page
from dpexport.dashboard.page import main, overview
from dpexport.errors import DpexportError
from dpexport.workspace import Workspace

log = logging.getLogger(__name__)

COOKIE = "dpexport_dashboard"
STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine only."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Dashboard:
    """What the handler serves: the workspace, the clock, the token and a snapshot
    kept for ``refresh / 2`` seconds, so many open pages read the logs once."""

    def __init__(
        self,
        ws: Workspace,
        *,
        now: Callable[[], datetime],
        refresh: int,
        token: str | None,
    ) -> None:
        self.ws, self.now, self.refresh, self.token = ws, now, refresh, token
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.refresh / 2:
                return self._cached[1]
            snap = data.snapshot(self.ws, self.now())
            self._cached = (time.monotonic(), snap)
            return snap

    def export(self, export_id: str) -> dict[str, Any] | None:
        return data.export_detail(self.ws, export_id, self.now())

    def token_matches(self, given: str | None) -> bool:
        """``given`` is the token (constant time; anything goes without a token)."""
        if self.token is None:
            return True
        return given is not None and hmac.compare_digest(
            given.encode("utf-8"), self.token.encode("utf-8")
        )

    @property
    def cookie(self) -> str:
        """The cookie's value: a digest of the token (any token's characters fit in a
        cookie, and the browser never holds the token itself)."""
        return hashlib.sha256(f"dpexport-dashboard:{self.token}".encode()).hexdigest()

    def cookie_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.cookie.encode())


class DashboardServer(ThreadingHTTPServer):
    """A threading server holding its :class:`Dashboard`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.loopback = is_loopback(address[0])
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    """One request: checked (host, token), routed, answered."""

    server: DashboardServer
    server_version = "dpexport-dashboard"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _refuse_method(self) -> None:
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED, b"read-only\n", "text/plain", {"Allow": "GET, HEAD"}
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse_method

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # -- checks ------------------------------------------------------------------------
    def _answer(self, body: bool) -> None:
        self._with_body = body
        url = urlsplit(self.path)
        if not self._allowed(url.path, parse_qs(url.query).get("token", [None])[0]):
            return
        try:
            self._route(url.path)
        except DpexportError as exc:  # a bucket that cannot be read: say which
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, f"error: {exc}\n".encode(), "text/plain")
        except Exception:
            log.exception("dashboard request %s failed", url.path)
            self._send(
                HTTPStatus.INTERNAL_SERVER_ERROR, b"error: see the server's log\n", "text/plain"
            )

    def _allowed(self, path: str, query_token: str | None) -> bool:
        """Whether the request may be answered; when not, the refusal is sent."""
        dash = self.server.dashboard
        if dash.token is None:
            if self.server.loopback and not self._loopback_host():
                self._send(HTTPStatus.MISDIRECTED_REQUEST, b"unknown host\n", "text/plain")
                return False
            return True
        if query_token is not None and dash.token_matches(query_token):
            self._login(path)
            return False
        if dash.token_matches(self._bearer()) or dash.cookie_matches(self._cookie()):
            return True
        self._send(
            HTTPStatus.UNAUTHORIZED,
            b"token required: open the URL dpexport dashboard printed\n",
            "text/plain",
            {"WWW-Authenticate": 'Bearer realm="dpexport"'},
        )
        return False

    def _loopback_host(self) -> bool:
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.strip("[]").lower() in LOOPBACK_NAMES or is_loopback(name)

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _cookie(self) -> str | None:
        try:
            cookies = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return None
        morsel = cookies.get(COOKIE)
        return morsel.value if morsel else None

    def _login(self, path: str) -> None:
        """Trade ``?token=`` for the cookie, back to the same page of this server."""
        cookie = f"{COOKIE}={self.server.dashboard.cookie}; Path=/; HttpOnly; SameSite=Strict"
        where = "/" + path.lstrip("/")  # never //host: a redirect stays on this server
        self._send(
            HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": where, "Set-Cookie": cookie}
        )

    # -- routes ------------------------------------------------------------------------
    def _route(self, path: str) -> None:
        dash = self.server.dashboard
        config = dash.ws.config
        if path == "/":
            page = overview(dash.snapshot(), config.project, config.environment, dash.refresh)
            self._html(page)
        elif path == "/main":
            self._html(main(dash.snapshot()))
        elif path == "/api/status":
            self._json(dash.snapshot())
        elif path.startswith(("/exports/", "/api/exports/")):
            detail = dash.export(unquote(path.rsplit("/", 1)[1]))
            if detail is None:
                self._send(HTTPStatus.NOT_FOUND, b"no export with that id\n", "text/plain")
            elif path.startswith("/api/"):
                self._json(detail)
            else:
                self._html(export_page(detail, config.project))
        elif path.startswith("/static/"):
            self._static(path.removeprefix("/static/"))
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def _static(self, name: str) -> None:
        suffix = name[name.rfind(".") :] if "." in name else ""
        if "/" in name or name.startswith(".") or suffix not in STATIC_TYPES:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        asset = resources.files("dpexport.dashboard").joinpath("static", name)
        if not asset.is_file():
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        self._send(HTTPStatus.OK, asset.read_bytes(), STATIC_TYPES[suffix])

    def _html(self, page: str) -> None:
        self._send(HTTPStatus.OK, page.encode("utf-8"), "text/html; charset=utf-8")

    def _json(self, doc: object) -> None:
        body = (json.dumps(doc, indent=2, default=str) + "\n").encode("utf-8")
        self._send(HTTPStatus.OK, body, "application/json")

    def _send(
        self, code: HTTPStatus, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        for name, value in {**HEADERS, "Content-Type": ctype, **(extra or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if getattr(self, "_with_body", True):
            self.wfile.write(body)

"""A tiny HTTP proxy on 127.0.0.1 in front of a real emulator that fails requests
instead of forwarding them, for as many requests as told: an injected error reply
(503, throttling, 403), a connection closed without a reply, a reply whose body is
cut short, or no reply at all until the client times out.

The emulators cannot be told to fail, so this is how the tests see these faults
travel through the SDK to our error mapping and the spec 7.1 retry policy; the proxy
counts every request, so a test can say how many attempts the server saw.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


@dataclass
class Fault:
    """What the proxy does to a request instead of forwarding it. ``reply``: answer
    ``status``, ``headers`` and ``body``; ``reset``: close the connection without a
    reply; ``truncate``: forward it, then send the server's reply with only half its
    body (the full Content-Length announced) and close; ``stall``: send nothing until
    the proxy closes (the client's read timeout fires first)."""

    status: int = 503
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1_000_000  # how many requests get it; then requests are forwarded
    skip: int = 0  # how many requests are forwarded before the first one gets it
    kind: Literal["reply", "reset", "truncate", "stall"] = "reply"


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.fault: Fault | None = None
        #: requests (method, path) that are none of the caller's own (an SDK's
        #: background lookups): always forwarded, never counted in requests or failed
        self.ignore: Callable[[str, str], bool] = lambda _method, _path: False
        self.requests = 0
        self.seen: list[tuple[str, str]] = []  # (method, path with query) of every request
        self.failed = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()  # ends stalls, so close() does not wait them out
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy.seen.append((self.command, self.path))
                    ignored = proxy.ignore(self.command, self.path)
                    proxy.requests += 0 if ignored else 1
                    fault = None if ignored else proxy.fault
                    if fault is not None and fault.skip > 0:
                        fault.skip -= 1
                        fault = None
                    elif fault is not None and fault.times > 0:
                        fault.times -= 1
                        proxy.failed += 1
                    else:
                        fault = None
                if fault is not None and fault.kind in ("reset", "stall"):
                    if fault.kind == "stall":
                        proxy._closing.wait()
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "reply":
                    self.send_response(fault.status)
                    for name, value in fault.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(fault.body)))
                    self.send_header("Connection", "close")
                    self.close_connection = True
                    self.end_headers()
                    self.wfile.write(fault.body)
                    return
                conn = http.client.HTTPConnection(
                    proxy.upstream_host, proxy.upstream_port, timeout=60
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                # the server's links to itself (a resumable upload's session URL, an
                # object's mediaLink) point at the proxy, so their requests come here too
                upstream, here = f"{proxy.upstream_host}:{proxy.upstream_port}", proxy.address
                if (resp.getheader("Content-Type") or "").startswith("application/json"):
                    data = data.replace(upstream.encode(), here.encode())
                self.send_response(resp.status)
                for name, value in resp.getheaders():
                    if name.lower() == "location":
                        value = value.replace(upstream, here)
                    if name.lower() not in _HOP:
                        self.send_header(name, value)
                # a HEAD reply announces the object's length, not that of its empty body
                announced = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", announced or str(len(data)))
                self.send_header("Connection", "close")  # no idle sockets left at close()
                self.close_connection = True
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if fault is not None else data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.address}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.close()

"""An HTTP front for the BigQuery emulator that holds every query request for a while
and records when each was in flight.

The emulator answers a query in milliseconds, where BigQuery takes seconds to start and
run a job; what ``run --parallel`` gains on BigQuery is those seconds spent waiting side
by side. A latency cannot be provoked on the emulator itself, so this front adds it:
each POST whose body holds a query (``jobs.insert``, ``jobs.query``) is forwarded after
``delay`` seconds, and its span (received, answered) is kept with the SQL it carried.
Everything else passes through untouched.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from tests.alert_servers import serving

#: hop-by-hop headers, which a proxy does not pass on
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class Span:
    sql: str
    start: float
    end: float


@dataclass
class LatencyFront:
    url: str
    delay: float
    spans: list[Span] = field(default_factory=list)

    def spans_of(self, needle: str) -> list[Span]:
        """The held requests whose SQL contains ``needle``."""
        return [s for s in self.spans if needle in s.sql]


def _query_of(body: bytes) -> str | None:
    """The SQL of a ``jobs.insert`` or ``jobs.query`` body, or None."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    query = doc.get("query")  # jobs.query
    if isinstance(query, str):
        return query
    configured = doc.get("configuration", {}).get("query", {})  # jobs.insert
    query = configured.get("query") if isinstance(configured, dict) else None
    return query if isinstance(query, str) else None


def _handler(front: LatencyFront, target: tuple[str, int], lock: threading.Lock) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _forward(self) -> None:
            start = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            sql = _query_of(body) if self.command == "POST" and body else None
            if sql is not None:
                time.sleep(front.delay)
            upstream = http.client.HTTPConnection(*target, timeout=120)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in _HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            finally:
                upstream.close()
            if sql is not None:
                with lock:
                    front.spans.append(Span(sql, start, time.monotonic()))

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    return Handler


@contextmanager
def latency_front(upstream_url: str, delay: float) -> Iterator[LatencyFront]:
    """``http://127.0.0.1:PORT`` in front of ``upstream_url``, holding queries ``delay``
    seconds each."""
    parsed = urlparse(upstream_url)
    target = (parsed.hostname or "127.0.0.1", parsed.port or 80)
    front = LatencyFront("", delay)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(front, target, threading.Lock()))
    server.daemon_threads = True
    front.url = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server):
        yield front

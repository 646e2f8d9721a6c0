"""A TLS front for a local emulator: ``https://127.0.0.1:PORT`` with a self-signed
certificate, speaking at most the TLS version it is given, forwarding the decrypted
bytes to the emulator's plain HTTP port. The emulators speak only HTTP; this lets the
in-transit tests (spec 6.3) hold the real store clients to a TLS floor against a real
handshake."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from tests.alert_servers import self_signed


@dataclass(frozen=True)
class TlsFront:
    url: str
    #: the self-signed certificate, which is also its own CA
    ca: Path


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        src.close()  # the other direction's thread closes dst


def _serve(listener: socket.socket, context: ssl.SSLContext, target: tuple[str, int]) -> None:
    while True:
        try:
            raw, _ = listener.accept()
        except OSError:  # closed: the front is done
            return
        try:
            client = context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):  # a refused handshake: what the tests provoke
            raw.close()
            continue
        upstream = socket.create_connection(target)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


@contextmanager
def tls_front(
    upstream_url: str, folder: Path, maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
) -> Iterator[TlsFront]:
    """Serve TLS (at most ``maximum``) on a free port in front of ``upstream_url``."""
    cert, key = self_signed(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = maximum
    context.load_cert_chain(cert, key)
    up = urlparse(upstream_url)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(32)
    port = listener.getsockname()[1]
    thread = threading.Thread(
        target=_serve, args=(listener, context, (up.hostname, up.port)), daemon=True
    )
    thread.start()
    try:
        yield TlsFront(f"https://127.0.0.1:{port}", cert)
    finally:
        listener.close()
        thread.join(timeout=5)

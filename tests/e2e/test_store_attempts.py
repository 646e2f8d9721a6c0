"""A GCS or Azure endpoint that drops every connection is tried exactly as often as spec
7.1's ``retry_configuration`` says (issue 18, case 12): the SDKs' own retries are off, so
``max_attempts: 3`` is three connections, not the minutes of SDK retries it once was.

The endpoint is a real TCP listener that reads each request's first line and closes the
connection without a reply; the test counts the requests for the object it reads. Those are
all the requests, and the closed store leaves no thread behind: the GCS SDK's background
fetch of bucket metadata, which once retried the dead endpoint for minutes after the test
(drawing on the global random stream under other tests), is off."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dpexport.errors import TransientError
from dpexport.reliability.retry import Retrier, RetryingStore, RetryPolicy

#: Azurite's published development account (not a secret)
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class Dropper:
    """Accepts connections on 127.0.0.1, keeps each request line, and closes each
    connection without replying."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self._open = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if not self._open:  # close()'s wake-up call
                conn.close()
                return
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                self.requests.append(conn.recv(4096).split(b"\r\n", 1)[0].decode())
            conn.close()

    def asked_for(self, name: str) -> list[str]:
        return [line for line in self.requests if name in line]

    def close(self) -> None:
        self._open = False
        socket.create_connection(("127.0.0.1", self.port)).close()  # accept() returns
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def dropper() -> Iterator[Dropper]:
    server = Dropper()
    yield server
    server.close()


def _gcs(port: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    from dpexport.storage.gcs import GCSStore

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    return GCSStore("bucket", timeout=5)


def _azure(port: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    from dpexport.storage.azure import AzureStore

    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
    )
    return AzureStore("container", timeout=5)


STORES = {"gs": _gcs, "az": _azure}


@pytest.mark.parametrize("scheme", sorted(STORES))
@pytest.mark.parametrize("max_attempts", [1, 3])
def test_a_dropping_endpoint_is_tried_max_attempts_times(
    scheme: str, max_attempts: int, dropper: Dropper, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = set(threading.enumerate())
    store = STORES[scheme](dropper.port, monkeypatch)
    policy = RetryPolicy(
        max_attempts=max_attempts, initial_delay_seconds=0.01, max_delay_seconds=0.02, jitter=False
    )
    retrier = Retrier(policy)
    retrying = RetryingStore(store, retrier)
    with pytest.raises(TransientError):
        retrying.get("k/object.json")
    assert len(dropper.asked_for("object.json")) == max_attempts, dropper.requests
    assert dropper.requests == dropper.asked_for("object.json")
    assert len(retrier.history) == max_attempts
    store.close()
    left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == [], left

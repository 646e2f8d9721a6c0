"""AzureStore against Azurite: the shared suite, staged blocks, encryption scope on
the requests (Azurite accepts a scope but does not store it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from typing import Any

import pytest

from dpexport.storage.azure import AzureStore
from dpexport.storage.cloud import ServerSideEncryption
from tests.conformance.faults import Fault, FaultProxy, fault_proxy
from tests.conformance.servers import server_env, unique_bucket
from tests.conformance.store_suite import CloudStoreSuite

SERVER_BUSY = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
    b"<Message>Ingress is over the account limit.</Message></Error>"
)
DENIED = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch'
    b"</Code><Message>This request is not authorized to perform this operation using this "
    b"permission.</Message></Error>"
)


def _service(conn: str | None = None, **kwargs: Any) -> Any:
    from azure.storage.blob import BlobServiceClient

    conn = conn or server_env("AZURE_STORAGE_CONNECTION_STRING", "the Azure server (Azurite)")
    return BlobServiceClient.from_connection_string(conn, **kwargs)


@pytest.fixture
def az_container() -> Iterator[str]:
    service = _service()
    name = unique_bucket()
    service.create_container(name)
    yield name
    service.delete_container(name)
    service.close()


class TestAzureStore(CloudStoreSuite):
    @pytest.fixture
    def store(self, az_container: str) -> Iterator[AzureStore]:
        with closing(AzureStore(az_container)) as store:
            yield store

    @pytest.fixture
    def missing_bucket_store(self) -> Iterator[AzureStore]:
        server_env("AZURE_STORAGE_CONNECTION_STRING", "the Azure server (Azurite)")
        with closing(AzureStore(unique_bucket("missing"))) as store:
            yield store

    #: azure-storage-blob's downloader re-requests a body cut short by itself, 3 times
    #: in all (a fixed loop no setting turns off), before the error reaches the store
    body_rereads = 3

    @pytest.fixture
    def proxied_store(
        self, az_container: str, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[Callable[[float], tuple[AzureStore, FaultProxy]]]:
        conn = server_env("AZURE_STORAGE_CONNECTION_STRING", "Azurite")
        endpoint = conn.split("BlobEndpoint=")[1].split(";")[0]
        with fault_proxy(endpoint.rsplit("/", 1)[0]) as proxy, ExitStack() as stack:
            monkeypatch.setenv(
                "AZURE_STORAGE_CONNECTION_STRING",
                conn.replace(endpoint, f"{proxy.url}/devstoreaccount1"),
            )

            def make(timeout: float) -> tuple[AzureStore, FaultProxy]:
                store = stack.enter_context(closing(AzureStore(az_container, timeout=timeout)))
                return store, proxy

            yield make

    def reply(self, fault: str) -> tuple[Fault, str]:
        if fault == "throttled":
            headers = {"x-ms-error-code": "ServerBusy", "Content-Type": "application/xml"}
            return Fault(503, SERVER_BUSY, headers), "RATE_LIMIT_EXCEEDED"
        if fault == "unavailable":
            return Fault(503, b"", {}), "SERVICE_UNAVAILABLE"
        headers = {
            "x-ms-error-code": "AuthorizationPermissionMismatch",
            "Content-Type": "application/xml",
        }
        return Fault(403, DENIED, headers), "PERMISSION_DENIED"

    def assert_uploaded_in_parts(self, store: Any, key: str) -> None:
        blocks = store._client(key).get_block_list("committed")[0]
        assert len(blocks) == 6  # 20 MB + in 4 MB blocks
        assert all(b.size == 4 * 1024 * 1024 for b in blocks[:-1])


def test_encryption_scope_sent_on_every_write(az_container: str) -> None:
    sent: list[tuple[str, str | None]] = []

    def hook(request: Any) -> None:
        headers = request.http_request.headers
        sent.append((request.http_request.method, headers.get("x-ms-encryption-scope")))

    service = _service(raw_request_hook=hook)
    store = AzureStore(az_container, service=service).with_encryption(
        ServerSideEncryption(scope="diagnosticpro-exports")
    )
    store.put_bytes("enc/doc", b"rows")
    store.put_if_absent("enc/token", b"t")
    assert store.get("enc/doc") == b"rows"
    puts = [scope for method, scope in sent if method == "PUT"]
    assert puts == ["diagnosticpro-exports", "diagnosticpro-exports"]
    assert store.encryption_info() == {
        "mode": "CMEK",
        "client_side": False,
        "server_side": "az",
        "encryption_scope": "diagnosticpro-exports",
    }
    service.close()

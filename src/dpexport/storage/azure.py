"""Azure Blob Storage through azure-storage-blob (``az://CONTAINER/key``).

The account comes from the credentials: ``AZURE_STORAGE_CONNECTION_STRING`` (Azurite's
well-known ``devstoreaccount1`` in tests), else ``AZURE_STORAGE_ACCOUNT_URL`` (or
``AZURE_STORAGE_ACCOUNT``) with azure-identity's DefaultAzureCredential. A spec 1.3 URL
(``https://ACCOUNT.blob.core.windows.net/C/...``) names the account itself: credentials
that name another account are refused (:func:`account_problem`), and without any the
account's own endpoint is used with DefaultAzureCredential (or, for a principal with an
``azure_client_id``, that client's credential: :mod:`dpexport.security.identity`). Versions are
ETags; conditional writes use ``If-None-Match: *`` and ``If-Match: ETAG``. Files past
the threshold go up as staged blocks committed by one block list.

The client makes one attempt per request (``retry_total=0``): spec 7.1's policy
(:mod:`dpexport.reliability.retry`) is the only layer that retries, so its attempts and
waits are what happens. One SDK retry cannot be turned off: a download whose reply
body is cut short is re-requested by azure-storage-blob itself, up to 3 requests in
all (a fixed loop in its downloader), before the error reaches us; status errors
(503, ServerBusy) and failed connections are not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

from dpexport.errors import NotFound, TransientError, UsageError
from dpexport.security import transit
from dpexport.security.identity import Identity, azure_credential
from dpexport.storage.base import ObjectInfo
from dpexport.storage.cloud import (
    CONCURRENCY,
    MULTIPART_THRESHOLD,
    TIMEOUT,
    ServerSideEncryption,
    error_for_status,
    require,
    stream,
    widen_pool,
)

T = TypeVar("T")
EXTRA = "azure"
BLOCK_SIZE = 4 * 1024 * 1024
#: threads of one upload or download of a large blob (its blocks)
TRANSFER_THREADS = 2

_SPEC_CODES = {
    "ServerBusy": "RATE_LIMIT_EXCEEDED",
    "OperationTimedOut": "TIMEOUT",
    "InternalError": "INTERNAL_ERROR",
}


def credentials_account() -> tuple[str, str] | None:
    """The storage account the environment's Azure settings name, and which setting
    names it; None when none does. Read as :meth:`AzureStore._default_service` reads
    them (the connection string first)."""
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if conn:
        fields: dict[str, str] = {}
        for part in conn.split(";"):
            name, eq, value = part.partition("=")  # an AccountKey ends in '='
            if eq:
                fields[name.strip()] = value.strip()
        if fields.get("UseDevelopmentStorage", "").lower() == "true":
            fields.setdefault("AccountName", "devstoreaccount1")  # Azurite's account
        account = fields.get("AccountName") or _account_of_url(fields.get("BlobEndpoint", ""))
        return (account, "AZURE_STORAGE_CONNECTION_STRING") if account else None
    url = os.environ.get("AZURE_STORAGE_ACCOUNT_URL")
    if url:
        account = _account_of_url(url)
        return (account, "AZURE_STORAGE_ACCOUNT_URL") if account else None
    account = os.environ.get("AZURE_STORAGE_ACCOUNT")
    return (account, "AZURE_STORAGE_ACCOUNT") if account else None


def _account_of_url(url: str) -> str | None:
    """``https://ACCOUNT.blob.core.windows.net`` -> ACCOUNT; an emulator's
    ``http://HOST:PORT/ACCOUNT`` -> ACCOUNT."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.endswith(".blob.core.windows.net"):
        return host.split(".", 1)[0]
    return parts.path.strip("/").split("/", 1)[0] or None


def account_problem(account: str) -> str | None:
    """Why the credentials at hand cannot be used for a URL naming ``account`` (they
    name another account), or None. dpexport never guesses a second credential."""
    named = credentials_account()
    if named is None or named[0] == account:
        return None
    return (
        f"the URL names Azure storage account {account!r}, but {named[1]} is for account "
        f"{named[0]!r}; use that account's URL (or az://CONTAINER/...), or credentials "
        f"for {account!r}"
    )


class AzureStore:
    """One Blob container. ``encryption`` (an encryption scope) applies to every write."""

    scheme = "az"

    def __init__(
        self,
        container: str,
        *,
        service: Any = None,
        encryption: ServerSideEncryption | None = None,
        timeout: float = TIMEOUT,
        account: str | None = None,
        identity: Identity | None = None,
    ) -> None:
        self._blob = require("azure.storage.blob", EXTRA)
        self._aexc = require("azure.core.exceptions", EXTRA)
        self._match = require("azure.core", EXTRA).MatchConditions
        self.bucket_name = container
        self.url = f"az://{container}"
        self.timeout = timeout
        #: the account a spec 1.3 URL names (None: the credentials' account)
        self.account = account
        self.identity = identity
        self._owns_client = service is None
        self.service = service if service is not None else self._default_service()
        self.container = self.service.get_container_client(container)
        self.encryption = encryption

    def _default_service(self) -> Any:
        options: dict[str, Any] = {
            "connection_timeout": self.timeout,
            "read_timeout": self.timeout,
            "retry_total": 0,  # one attempt: spec 7.1 retries
            "max_single_put_size": MULTIPART_THRESHOLD,
            "max_block_size": BLOCK_SIZE,
        }
        if transit.current().ca_bundle:  # the transport passes it with every request
            options["connection_verify"] = transit.current().ca_bundle
        if self.account is not None and (problem := account_problem(self.account)):
            raise UsageError(f"az://{self.bucket_name}: {problem}")
        conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if conn:
            return self._blob.BlobServiceClient.from_connection_string(
                conn, session=self._session(), **options
            )
        account_url = os.environ.get("AZURE_STORAGE_ACCOUNT_URL")
        account = os.environ.get("AZURE_STORAGE_ACCOUNT") or self.account
        if not account_url and account:
            account_url = f"https://{account}.blob.core.windows.net"
        if not account_url:
            raise UsageError(
                f"az://{self.bucket_name}: no Azure storage account; set "
                "AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL, or use "
                "https://ACCOUNT.blob.core.windows.net/CONTAINER/..."
            )
        if self.identity is not None and self.identity.azure_client_id:
            credential = azure_credential(self.identity)  # the principal's (CONTRACT §11)
        else:
            credential = require("azure.identity", EXTRA).DefaultAzureCredential()
        return self._blob.BlobServiceClient(
            account_url, credential=credential, session=self._session(), **options
        )

    def _session(self) -> Any:
        """An HTTP session set up as the SDK sets up its own (opened by a transport of
        its), with a pool for CONCURRENCY calls of TRANSFER_THREADS requests each; the
        client's transport owns it and closes it. Made here, before any thread calls
        the store, as the transport would otherwise make it lazily on first use."""
        transport = require("azure.core.pipeline.transport", EXTRA).RequestsTransport()
        transport.open()
        session = transport.session
        widen_pool(session, CONCURRENCY * TRANSFER_THREADS)
        return transit.harden_session(session)  # spec 6.3 in_transit

    def with_encryption(self, encryption: ServerSideEncryption | None) -> AzureStore:
        """The same container and client, writing with ``encryption``."""
        return AzureStore(
            self.bucket_name,
            service=self.service,
            encryption=encryption,
            timeout=self.timeout,
            account=self.account,
        )

    def encryption_info(self) -> dict[str, Any] | None:
        return self.encryption.describe("az") if self.encryption else None

    @property
    def principal(self) -> str | None:
        account = getattr(self.service, "account_name", None)
        cred = getattr(self.service, "credential", None)
        kind = type(cred).__name__ if cred is not None else None
        if account and kind:
            return f"{kind} of account {account}"
        return account

    def uri(self, key: str) -> str:
        return f"{self.url}/{key}" if key else self.url

    def _scope(self) -> dict[str, str]:
        enc = self.encryption
        return {"encryption_scope": enc.scope} if enc is not None and enc.scope else {}

    # -- errors ------------------------------------------------------------------------
    @contextmanager
    def _errors(self, key: str, *, create: bool = False, cas: bool = False) -> Iterator[None]:
        aexc, uri = self._aexc, self.uri(key)
        try:
            yield
        except aexc.HttpResponseError as exc:
            status = exc.status_code
            if status is None:  # no complete reply: its body was cut short
                raise TransientError(
                    f"{type(exc).__name__}: {exc}", uri=uri, code="SERVICE_UNAVAILABLE"
                ) from exc
            error_code = getattr(exc, "error_code", None) or ""
            code = str(getattr(error_code, "value", error_code))  # StorageErrorCode enum
            spec = _SPEC_CODES.get(code)
            if status == 503 and spec is None:
                spec = "SERVICE_UNAVAILABLE"
            principal = self.principal if status in (401, 403) else None
            message = (exc.reason or code or type(exc).__name__).strip()
            raise error_for_status(
                status,
                f"{code or status}: {message}",
                uri=uri,
                bucket=self.bucket_name,
                principal=principal,
                create=create,
                cas=cas,
                code=spec,
            ) from exc
        except (aexc.ServiceResponseTimeoutError, aexc.ServiceRequestTimeoutError) as exc:
            raise TransientError(str(exc), uri=uri, code="TIMEOUT") from exc
        except aexc.ServiceResponseError as exc:  # closed or reset before a whole reply
            raise TransientError(str(exc), uri=uri, code="SERVICE_UNAVAILABLE") from exc
        except aexc.ServiceRequestError as exc:  # could not connect or send
            raise TransientError(str(exc), uri=uri, code="SERVICE_UNAVAILABLE") from exc

    def _call(self, key: str, fn: Callable[[], T], **flags: bool) -> T:
        with self._errors(key, **flags):
            return fn()

    def _client(self, key: str) -> Any:
        return self.container.get_blob_client(key)

    # -- writes ------------------------------------------------------------------------
    def put_file(self, key: str, source: Path) -> ObjectInfo:
        """Staged blocks past the threshold. A failed block fails the upload; spec 7.1
        retries it from the file (uncommitted blocks are dropped by the service)."""
        size = source.stat().st_size
        client = self._client(key)
        with open(source, "rb") as fh:
            resp = self._call(
                key,
                lambda: client.upload_blob(
                    fh,
                    length=size,
                    overwrite=True,
                    max_concurrency=TRANSFER_THREADS,
                    **self._scope(),
                ),
            )
        return ObjectInfo(key=key, size=size, version=resp.get("etag"))

    def _upload(self, key: str, data: bytes, conditions: dict[str, Any], **flags: bool) -> Any:
        client = self._client(key)
        resp = self._call(
            key,
            lambda: client.upload_blob(data, overwrite=True, **conditions, **self._scope()),
            **flags,
        )
        return ObjectInfo(key=key, size=len(data), version=resp.get("etag"))

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        info: ObjectInfo = self._upload(key, data, {})
        return info

    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        info: ObjectInfo = self._upload(
            key, data, {"match_condition": self._match.IfMissing}, create=True
        )
        return info

    def replace_if_match(self, key: str, data: bytes, version: str | None) -> ObjectInfo:
        if version is None:
            cond: dict[str, Any] = {"match_condition": self._match.IfMissing}
        else:
            cond = {"match_condition": self._match.IfNotModified, "etag": version}
        info: ObjectInfo = self._upload(key, data, cond, cas=True)
        return info

    # -- reads -------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        client = self._client(key)
        data: bytes = self._call(
            key,
            lambda: client.download_blob(
                timeout=self.timeout, max_concurrency=TRANSFER_THREADS
            ).readall(),
        )
        return data

    def open_read(self, key: str) -> BinaryIO:
        client = self._client(key)
        downloader = self._call(key, lambda: client.download_blob(timeout=self.timeout))
        return stream(lambda n: self._call(key, lambda: downloader.read(n)), lambda: None)

    def head(self, key: str) -> ObjectInfo | None:
        client = self._client(key)
        try:
            props = self._call(key, lambda: client.get_blob_properties(timeout=self.timeout))
        except NotFound:
            return None
        return ObjectInfo(
            key=key, size=int(props.size), version=props.etag, updated=props.last_modified
        )

    def properties(self, key: str) -> Any:
        """The server's blob properties (tests read the encryption scope it reports)."""
        client = self._client(key)
        return self._call(key, lambda: client.get_blob_properties(timeout=self.timeout))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Blob listings come in lexicographic (key) order."""
        pages = self.container.list_blobs(name_starts_with=prefix or None, timeout=self.timeout)
        with self._errors(prefix):
            for blob in pages:
                yield ObjectInfo(
                    key=blob.name,
                    size=int(blob.size),
                    version=blob.etag,
                    updated=blob.last_modified,
                )

    # -- removal and copies ------------------------------------------------------------
    def delete(self, key: str) -> None:
        client = self._client(key)
        try:
            self._call(key, lambda: client.delete_blob(timeout=self.timeout))
        except NotFound:
            return

    def copy(self, source_key: str, dest_key: str) -> ObjectInfo:
        """Server-side Copy Blob within the account; waits for a pending copy to finish."""
        source_url = self._client(source_key).url
        dest = self._client(dest_key)
        self._call(source_key, lambda: dest.start_copy_from_url(source_url, timeout=self.timeout))
        deadline = time.monotonic() + 30 * self.timeout
        while True:
            props = self._call(dest_key, lambda: dest.get_blob_properties(timeout=self.timeout))
            status = props.copy.status if props.copy else "success"
            if status in (None, "success"):
                return ObjectInfo(
                    key=dest_key,
                    size=int(props.size),
                    version=props.etag,
                    updated=props.last_modified,
                )
            if status != "pending" or time.monotonic() > deadline:
                raise TransientError(
                    f"server-side copy ended {status}: {props.copy.status_description}",
                    uri=self.uri(dest_key),
                    code="INTERNAL_ERROR" if status != "pending" else "TIMEOUT",
                )
            time.sleep(0.5)

    def move(self, source_key: str, dest_key: str) -> ObjectInfo:
        info = self.copy(source_key, dest_key)
        self.delete(source_key)
        return info

    # -- access tiers (lifecycle sweep; not part of the Store protocol) -------------------
    def list_tiers(self, prefix: str) -> Iterator[tuple[ObjectInfo, str | None]]:
        """Every blob under ``prefix`` with its access tier (Hot, Cool, Cold, Archive)."""
        pages = self.container.list_blobs(name_starts_with=prefix or None, timeout=self.timeout)
        with self._errors(prefix):
            for blob in pages:
                info = ObjectInfo(
                    key=blob.name,
                    size=int(blob.size),
                    version=blob.etag,
                    updated=blob.last_modified,
                )
                yield info, (str(blob.blob_tier) if blob.blob_tier else None)

    def set_tier(self, key: str, tier: str) -> None:
        """Move one blob to an access tier (per blob: account lifecycle is management-plane)."""
        client = self._client(key)
        self._call(key, lambda: client.set_standard_blob_tier(tier, timeout=self.timeout))

    def staging_dir(self) -> Path | None:
        return None

    def close(self) -> None:
        """Close the connection pool of a client this store made (not a shared one)."""
        if self._owns_client:
            self.service.close()

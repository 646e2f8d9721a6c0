"""What the cloud stores share: lazy SDK imports, timeouts, server-side encryption
options, the spec 7.1 classification of HTTP failures, and a stream adapter.

Each backend translates its SDK's exceptions at its own boundary (``_mapped``) and
uses :func:`error_for_status` here, so one table decides which status is retryable.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, BinaryIO, cast

from dpexport.errors import (
    AlreadyExists,
    ExportError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    TransientError,
    UsageError,
)

#: seconds for one HTTP request (connect and read) of any cloud call
TIMEOUT = 60.0
#: files above this go up in parts (S3 multipart, GCS resumable, Azure staged blocks)
MULTIPART_THRESHOLD = 8 * 1024 * 1024
#: the part size of multipart / resumable / block uploads
PART_SIZE = 8 * 1024 * 1024
#: calls one store has in flight at once: a commit's moves and an export's staging
#: uploads run on this many threads (each call waits tens of ms on the network, not on
#: this process), and every SDK's connection pool keeps this many connections per
#: transfer thread, so none is opened only to be thrown away
CONCURRENCY = 16


def require(module: str, extra: str) -> ModuleType:
    """Import a cloud SDK module, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(
            f"{module} is not installed; install it with: pip install 'dpexport[{extra}]'"
        ) from exc


@dataclass(frozen=True)
class ServerSideEncryption:
    """Encryption at rest done by the store's server (spec 6.3, CONTRACT §8).

    ``kms_key`` names the customer-managed key: GCS ``kms_key_name``, S3 ``SSEKMSKeyId``;
    ``algorithm`` is S3's ``ServerSideEncryption`` (``aws:kms`` or ``AES256``);
    ``scope`` is Azure's encryption scope. Key *names* only: no key material ever
    passes through dpexport, so :meth:`describe` is safe for manifests and logs.
    """

    kms_key: str | None = None
    algorithm: str | None = None
    scope: str | None = None

    def describe(self, scheme: str) -> dict[str, Any]:
        """The manifest's ``encryption`` block for a CMEK export on this store."""
        block: dict[str, Any] = {"mode": "CMEK", "client_side": False, "server_side": scheme}
        if scheme == "gs":
            block["kms_key"] = self.kms_key
        elif scheme == "s3":
            block["sse"] = self.algorithm
            if self.algorithm == "aws:kms":
                block["kms_key"] = self.kms_key
        elif scheme == "az":
            block["encryption_scope"] = self.scope
        return block


def server_side_encryption(
    scheme: str,
    kms_key: str | None,
    *,
    s3_sse: str | None = None,
    s3_kms_key: str | None = None,
    azure_scope: str | None = None,
) -> ServerSideEncryption | None:
    """The server-side encryption a CMEK table gets on a ``scheme`` store.

    ``kms_key`` is the table's key (spec 6.3 ``sensitive_data.kms_key``); the other
    arguments are spec 6.3's ``cross_cloud`` block. GCS uses ``kms_key`` when it is a
    Cloud KMS name. S3 uses ``aws:kms`` with ``kms_key`` when that is an AWS key
    (``arn:aws:kms:``, ``alias/``), else with ``s3_kms_key``, else ``s3_sse`` (AES256).
    Azure uses ``azure_scope``. ``None``: the store has nothing to apply.
    """
    if scheme == "gs":
        return ServerSideEncryption(kms_key=kms_key) if kms_key else None
    if scheme == "s3":
        aws_key = kms_key if kms_key and _is_aws_key(kms_key) else s3_kms_key
        if aws_key and _is_aws_key(aws_key):
            return ServerSideEncryption(kms_key=aws_key, algorithm="aws:kms")
        if s3_sse:
            return ServerSideEncryption(algorithm=s3_sse)
        return ServerSideEncryption(algorithm="AES256")
    if scheme == "az":
        return ServerSideEncryption(scope=azure_scope) if azure_scope else None
    return None


def _is_aws_key(name: str) -> bool:
    if name.startswith("alias/"):
        return True
    # a placeholder such as the spec's "arn:aws:kms:us-east-1:..." names no key
    return name.startswith("arn:aws:kms:") and "..." not in name


def widen_pool(session: Any, size: int) -> None:
    """Let a ``requests`` session keep ``size`` connections per host.

    requests keeps 10: past that, urllib3 opens a connection per extra thread, closes it
    after one request and logs "Connection pool is full" each time. Adapters of a plain
    ``HTTPAdapter`` type are replaced by the same type and retry setting with a wider
    pool; any other adapter (mutual TLS, a caller's own) is left as it is."""
    adapters = importlib.import_module("requests.adapters")  # the session's own library
    plain = adapters.HTTPAdapter.__init__
    wider: dict[int, Any] = {}
    for prefix in ("https://", "http://"):
        adapter = session.get_adapter(prefix)
        if type(adapter).__init__ is not plain or adapter._pool_maxsize >= size:
            continue
        if id(adapter) not in wider:  # one adapter mounted twice stays one
            wider[id(adapter)] = type(adapter)(
                pool_connections=adapter._pool_connections,
                pool_maxsize=size,
                max_retries=adapter.max_retries,
                pool_block=adapter._pool_block,
            )
        session.mount(prefix, wider[id(adapter)])


# -- errors ------------------------------------------------------------------------------
_TRANSIENT_STATUS = {
    408: "TIMEOUT",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    502: "SERVICE_UNAVAILABLE",
    503: "SERVICE_UNAVAILABLE",
    504: "TIMEOUT",
}


def error_for_status(
    status: int | None,
    detail: str,
    *,
    uri: str,
    bucket: str,
    principal: str | None = None,
    create: bool = False,
    cas: bool = False,
    code: str | None = None,
) -> ExportError:
    """Our error for an HTTP status. ``create``: the call was a conditional create
    (409/412 mean it already exists); ``cas``: a compare-and-swap (412 means stale)."""
    if code in ("RATE_LIMIT_EXCEEDED", "QUOTA_EXCEEDED", "TIMEOUT", "SERVICE_UNAVAILABLE"):
        return TransientError(detail, uri=uri, code=code)
    if status in (409, 412) and create:
        return AlreadyExists(f"object already exists: {detail}", uri=uri)
    if status in (409, 412) and cas:
        return PreconditionFailed(f"object changed since it was read: {detail}", uri=uri)
    if status == 404:
        return NotFound(detail, uri=uri)
    if status in (401, 403):
        who = f" for {principal}" if principal else ""
        return PermissionDenied(f"permission denied on bucket {bucket}{who}: {detail}", uri=uri)
    if status == 412:
        return PreconditionFailed(detail, uri=uri)
    if status in _TRANSIENT_STATUS:
        return TransientError(detail, uri=uri, code=code or _TRANSIENT_STATUS[status])
    if status is not None and status >= 500:
        return TransientError(detail, uri=uri, code=code or "INTERNAL_ERROR")
    if status in (400, 409, 411, 413, 416):
        return InvalidArgument(detail, uri=uri)
    return ExportError(detail, uri=uri, code=code or "INTERNAL_ERROR")


# -- streams -----------------------------------------------------------------------------
class _ChunkReader(io.RawIOBase):
    """A raw stream over ``read(n) -> bytes`` (an SDK's streaming body)."""

    def __init__(self, read: Callable[[int], bytes], close: Callable[[], None]) -> None:
        self._read = read
        self._close = close
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not self._pending:
            self._pending = self._read(max(len(view), 64 * 1024))
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._close()
        super().close()


def stream(read: Callable[[int], bytes], close: Callable[[], None]) -> BinaryIO:
    """A buffered binary stream over an SDK's chunked reader."""
    return cast(BinaryIO, io.BufferedReader(_ChunkReader(read, close), buffer_size=1 << 20))

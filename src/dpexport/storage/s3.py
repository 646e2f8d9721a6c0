"""Amazon S3 through boto3 (``s3://BUCKET/key``).

Endpoint and credentials come from the AWS chain (``AWS_ENDPOINT_URL``, keys, profile or
role, ``AWS_DEFAULT_REGION``), so moto in tests needs no code. Versions are ETags;
conditional writes use ``If-None-Match: *`` and ``If-Match: ETAG``. Large files go up
by the SDK's managed multipart transfer.

A table with retention (spec 4.1, CONTRACT §12) writes through :meth:`S3Store.
with_retention`: its data files, sidecars and manifests (never markers, staging or state,
which exports replace and delete) are put under S3 Object Lock in GOVERNANCE mode until
now + retention, when the bucket has Object Lock enabled (``lifecycle apply`` says when
it has not). A delete of a locked object is sent for its version (a plain delete would
only hide it), so the server refuses it: :class:`ObjectLocked`, naming the date.

The client makes one attempt per request (``total_max_attempts=1``): spec 7.1's policy
(:mod:`dpexport.reliability.retry`) is the only layer that retries, and every error
reaches :meth:`S3Store._map`, which classifies it.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from dpexport.errors import (
    ExportError,
    InvalidArgument,
    PermissionDenied,
    TerminalError,
    TransientError,
)
from dpexport.security import transit
from dpexport.security.identity import Identity, aws_session
from dpexport.storage import layout
from dpexport.storage.base import ObjectInfo
from dpexport.storage.cloud import (
    CONCURRENCY,
    MULTIPART_THRESHOLD,
    PART_SIZE,
    TIMEOUT,
    ServerSideEncryption,
    error_for_status,
    require,
    stream,
)

T = TypeVar("T")
EXTRA = "s3"

#: S3 error codes of spec 7.1's transient classes: every code botocore's standard mode
#: retried (its throttling and transient lists), so none became terminal when its
#: retries were turned off, and S3's own
_SPEC_CODES = {
    "SlowDown": "RATE_LIMIT_EXCEEDED",
    "Throttling": "RATE_LIMIT_EXCEEDED",
    "ThrottlingException": "RATE_LIMIT_EXCEEDED",
    "ThrottledException": "RATE_LIMIT_EXCEEDED",
    "RequestThrottledException": "RATE_LIMIT_EXCEEDED",
    "RequestLimitExceeded": "RATE_LIMIT_EXCEEDED",
    "TooManyRequestsException": "RATE_LIMIT_EXCEEDED",
    "RequestThrottled": "RATE_LIMIT_EXCEEDED",
    "ProvisionedThroughputExceededException": "RATE_LIMIT_EXCEEDED",
    "TransactionInProgressException": "RATE_LIMIT_EXCEEDED",
    "BandwidthLimitExceeded": "RATE_LIMIT_EXCEEDED",
    "LimitExceededException": "RATE_LIMIT_EXCEEDED",
    "EC2ThrottledException": "RATE_LIMIT_EXCEEDED",
    "PriorRequestNotComplete": "SERVICE_UNAVAILABLE",
    "RequestTimeout": "TIMEOUT",
    "RequestTimeoutException": "TIMEOUT",
    "ServiceUnavailable": "SERVICE_UNAVAILABLE",
    "InternalError": "INTERNAL_ERROR",
}
_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}
#: threads of one managed transfer (the parts of a multipart upload or copy)
TRANSFER_THREADS = 4
log = logging.getLogger(__name__)


class ObjectLocked(TerminalError):
    """The server refused to delete an object its Object Lock retention still holds
    (never retried: only time ends it)."""

    code = "FAILED_PRECONDITION"

    def __init__(self, uri: str, until: datetime | None) -> None:
        self.until = until
        date = f"{until:%Y-%m-%d}" if until is not None else "a date the server did not say"
        super().__init__(
            f"{uri} is kept until {date} (S3 Object Lock, governance mode); not deleted. "
            "It can be deleted once that date has passed",
            uri=uri,
        )


class S3Store:
    """One S3 bucket. ``encryption`` (SSE-S3 or SSE-KMS) applies to every write."""

    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        client: Any = None,
        encryption: ServerSideEncryption | None = None,
        timeout: float = TIMEOUT,
        retention: tuple[timedelta, tuple[str, ...]] | None = None,
        identity: Identity | None = None,
    ) -> None:
        self._boto3 = require("boto3", EXTRA)
        self._bexc = require("botocore.exceptions", EXTRA)
        transfer = require("boto3.s3.transfer", EXTRA)
        self.bucket_name = bucket
        self.url = f"s3://{bucket}"
        self.timeout = timeout
        self.identity = identity if identity is not None and identity.aws_role_arn else None
        self._owns_client = client is None
        self.client = client if client is not None else self._default_client()
        self.encryption = encryption
        self._transfer = transfer.TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=PART_SIZE,
            max_concurrency=TRANSFER_THREADS,
        )
        self._principal: str | None = None
        #: (how long, key prefixes): what a table with retention locks (with_retention)
        self.retention = retention
        self._lock_enabled: bool | None = None

    def _default_client(self) -> Any:
        config = require("botocore.config", EXTRA).Config(
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            # one attempt: spec 7.1 retries (botocore's "max_attempts" would count
            # retries, and AWS_MAX_ATTEMPTS would apply unless this is explicit)
            retries={"mode": "standard", "total_max_attempts": 1},
            # CONCURRENCY calls at once (a commit's moves), each a managed transfer of
            # up to TRANSFER_THREADS requests; botocore keeps 10 connections by default
            max_pool_connections=CONCURRENCY * TRANSFER_THREADS,
        )
        session = aws_session(self.identity) if self.identity else self._boto3.session.Session()
        client = session.client("s3", config=config, verify=transit.boto_verify())
        return transit.harden_boto(client)  # spec 6.3 in_transit

    def with_encryption(self, encryption: ServerSideEncryption | None) -> S3Store:
        """The same bucket and client, writing with ``encryption``."""
        return self._like(encryption, self.retention)

    def with_retention(self, keep: timedelta, prefixes: tuple[str, ...]) -> S3Store:
        """The same bucket and client (and encryption), putting the data files, sidecars
        and manifests under ``prefixes`` with a governance-mode Object Lock of ``keep``."""
        return self._like(self.encryption, (keep, prefixes))

    def _like(
        self,
        encryption: ServerSideEncryption | None,
        retention: tuple[timedelta, tuple[str, ...]] | None,
    ) -> S3Store:
        return S3Store(
            self.bucket_name,
            client=self.client,
            encryption=encryption,
            timeout=self.timeout,
            retention=retention,
            identity=self.identity,
        )

    def object_lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock enabled (asked once)."""
        if self._lock_enabled is None:
            try:
                resp = self._call(
                    "",
                    lambda: self.client.get_object_lock_configuration(Bucket=self.bucket_name),
                )
                conf = resp.get("ObjectLockConfiguration", {})
                self._lock_enabled = conf.get("ObjectLockEnabled") == "Enabled"
            except ExportError as exc:
                if "ObjectLockConfigurationNotFound" not in str(exc):
                    log.warning("%s: Object Lock state unknown (%s)", self.url, exc)
                self._lock_enabled = False
        return self._lock_enabled

    def _lock(self, key: str) -> dict[str, Any]:
        """The Object Lock arguments of a write of ``key`` ({} when nothing locks it)."""
        if self.retention is None or layout.is_marker(layout.key_name(key)):
            return {}
        keep, prefixes = self.retention
        if not key.startswith(prefixes) or not self.object_lock_enabled():
            return {}
        until = datetime.now(UTC) + keep
        return {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": until}

    def encryption_info(self) -> dict[str, Any] | None:
        return self.encryption.describe("s3") if self.encryption else None

    @property
    def principal(self) -> str | None:
        """The principal and its role, else the caller's ARN (STS) looked up once."""
        if self.identity is not None:
            return f"{self.identity.principal} (role {self.identity.aws_role_arn})"
        if self._principal is None:
            try:
                sts = self._boto3.session.Session().client(
                    "sts", endpoint_url=self.client.meta.endpoint_url
                )
                try:
                    self._principal = str(sts.get_caller_identity()["Arn"])
                finally:
                    sts.close()
            except Exception:  # best effort: the error is about the bucket, not STS
                return None
        return self._principal

    def uri(self, key: str) -> str:
        return f"{self.url}/{key}" if key else self.url

    def _sse(self) -> dict[str, str]:
        enc = self.encryption
        if enc is None or not enc.algorithm:
            return {}
        args = {"ServerSideEncryption": enc.algorithm}
        if enc.algorithm == "aws:kms" and enc.kms_key:
            args["SSEKMSKeyId"] = enc.kms_key
        return args

    # -- errors ------------------------------------------------------------------------
    @contextmanager
    def _errors(self, key: str, *, create: bool = False, cas: bool = False) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            mapped = self._map(exc, key, create=create, cas=cas)
            if mapped is None:
                raise
            raise mapped from exc

    def _map(self, exc: BaseException, key: str, *, create: bool, cas: bool) -> ExportError | None:
        bexc, uri = self._bexc, self.uri(key)
        client_error = _find(exc, bexc.ClientError)
        if client_error is not None:
            err = client_error.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = client_error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _NOT_FOUND:
                status = 404
            principal = self.principal if status == 403 else None
            return error_for_status(
                status,
                f"{code}: {err.get('Message') or client_error}",
                uri=uri,
                bucket=self.bucket_name,
                principal=principal,
                create=create,
                cas=cas,
                code=_SPEC_CODES.get(code),
            )
        if isinstance(exc, bexc.NoCredentialsError):
            return PermissionDenied(
                f"no AWS credentials found for bucket {self.bucket_name}", uri=uri
            )
        if isinstance(exc, bexc.ParamValidationError):
            return InvalidArgument(str(exc), uri=uri)
        if isinstance(exc, (bexc.ReadTimeoutError, bexc.ConnectTimeoutError)):
            return TransientError(str(exc), uri=uri, code="TIMEOUT")
        # refused, reset, closed without a reply, or a body cut short of its length
        if isinstance(exc, (bexc.HTTPClientError, bexc.ConnectionError, bexc.IncompleteReadError)):
            return TransientError(str(exc), uri=uri, code="SERVICE_UNAVAILABLE")
        return None

    def _call(self, key: str, fn: Callable[[], T], **flags: bool) -> T:
        with self._errors(key, **flags):
            return fn()

    # -- writes ------------------------------------------------------------------------
    def put_file(self, key: str, source: Path) -> ObjectInfo:
        """Managed transfer: multipart above the threshold. A failed part fails the
        upload, which the transfer aborts; spec 7.1 retries it from the file."""
        size = source.stat().st_size
        self._call(
            key,
            lambda: self.client.upload_file(
                str(source),
                self.bucket_name,
                key,
                ExtraArgs={**self._sse(), **self._lock(key)},
                Config=self._transfer,
            ),
        )
        info = self.head(key)
        if info is None or info.size != size:
            got = info.size if info else "no object"
            raise TransientError(f"uploaded {got}, expected {size} bytes", uri=self.uri(key))
        return info

    def _put(self, key: str, data: bytes, extra: dict[str, str], **flags: bool) -> ObjectInfo:
        lock = self._lock(key)
        resp = self._call(
            key,
            lambda: self.client.put_object(
                Bucket=self.bucket_name, Key=key, Body=data, **extra, **self._sse(), **lock
            ),
            **flags,
        )
        return ObjectInfo(key=key, size=len(data), version=resp.get("ETag"))

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        return self._put(key, data, {})

    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        return self._put(key, data, {"IfNoneMatch": "*"}, create=True)

    def replace_if_match(self, key: str, data: bytes, version: str | None) -> ObjectInfo:
        cond = {"IfMatch": version} if version else {"IfNoneMatch": "*"}
        return self._put(key, data, cond, cas=True)

    # -- reads -------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        with self._errors(key):
            body = self.client.get_object(Bucket=self.bucket_name, Key=key)["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
            return data

    def open_read(self, key: str) -> BinaryIO:
        body = self._call(
            key, lambda: self.client.get_object(Bucket=self.bucket_name, Key=key)["Body"]
        )
        return stream(lambda n: self._call(key, lambda: body.read(n)), body.close)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            resp = self._call(
                key, lambda: self.client.head_object(Bucket=self.bucket_name, Key=key)
            )
        except ExportError as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        return ObjectInfo(
            key=key,
            size=int(resp["ContentLength"]),
            version=resp.get("ETag"),
            updated=resp.get("LastModified"),
        )

    def head_raw(self, key: str) -> dict[str, Any]:
        """The server's HEAD reply (tests read the SSE it reports)."""
        resp: dict[str, Any] = self._call(
            key, lambda: self.client.head_object(Bucket=self.bucket_name, Key=key)
        )
        return resp

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """S3 lists keys in UTF-8 binary (key) order."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket_name, Prefix=prefix
        )
        with self._errors(prefix):
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        key=obj["Key"],
                        size=int(obj["Size"]),
                        version=obj.get("ETag"),
                        updated=obj.get("LastModified"),
                    )

    # -- removal and copies ------------------------------------------------------------
    def delete(self, key: str) -> None:
        """S3 deletes of a missing key succeed. On a bucket with Object Lock, an object
        whose retention still holds is deleted by its version, which the server refuses
        (:class:`ObjectLocked`) rather than hide it behind a delete marker."""
        held = self._held(key) if self.object_lock_enabled() else None
        if held is None:
            self._call(key, lambda: self.client.delete_object(Bucket=self.bucket_name, Key=key))
            return
        version, until = held
        try:
            self._call(
                key,
                lambda: self.client.delete_object(
                    Bucket=self.bucket_name, Key=key, VersionId=version
                ),
            )
        except PermissionDenied as exc:
            raise ObjectLocked(self.uri(key), until) from exc

    def retained_until(self, key: str) -> datetime | None:
        """Until when Object Lock keeps ``key`` (None: not locked now, or no lock here)."""
        held = self._held(key) if self.object_lock_enabled() else None
        return held[1] if held is not None else None

    def _held(self, key: str) -> tuple[str, datetime] | None:
        """(version, retain-until) of ``key`` when its Object Lock holds it now."""
        try:
            resp = self.head_raw(key)
        except ExportError as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        until = resp.get("ObjectLockRetainUntilDate")
        version = resp.get("VersionId")
        if until is None or version is None or until <= datetime.now(UTC):
            return None
        return str(version), until

    def copy(self, source_key: str, dest_key: str) -> ObjectInfo:
        """Server-side (managed: multipart copy past 5 GB), with this store's SSE; a
        locked destination gets its retention right after (one more request)."""
        self._call(
            source_key,
            lambda: self.client.copy(
                {"Bucket": self.bucket_name, "Key": source_key},
                self.bucket_name,
                dest_key,
                ExtraArgs=self._sse(),
                Config=self._transfer,
            ),
        )
        lock = self._lock(dest_key)
        if lock:
            retention = {
                "Mode": lock["ObjectLockMode"],
                "RetainUntilDate": lock["ObjectLockRetainUntilDate"],
            }
            self._call(
                dest_key,
                lambda: self.client.put_object_retention(
                    Bucket=self.bucket_name, Key=dest_key, Retention=retention
                ),
            )
        info = self.head(dest_key)
        if info is None:
            raise TransientError("copy left no object", uri=self.uri(dest_key))
        return info

    def move(self, source_key: str, dest_key: str) -> ObjectInfo:
        info = self.copy(source_key, dest_key)
        self.delete(source_key)
        return info

    # -- bucket settings (lifecycle apply; not part of the Store protocol) ---------------
    def put_lifecycle(self, rules: builtins.list[dict[str, Any]]) -> None:
        """Replace the bucket's lifecycle configuration with ``rules`` (S3's own shape)."""
        self._call(
            "",
            lambda: self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket_name, LifecycleConfiguration={"Rules": rules}
            ),
        )

    def get_lifecycle(self) -> builtins.list[dict[str, Any]]:
        """The bucket's lifecycle rules as the server stores them ([] when none)."""
        try:
            resp = self._call(
                "",
                lambda: self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket_name),
            )
        except ExportError as exc:
            if "NoSuchLifecycleConfiguration" in str(exc):
                return []
            raise
        return list(resp.get("Rules", []))

    def set_versioning(self, enabled: bool) -> None:
        status = "Enabled" if enabled else "Suspended"
        self._call(
            "",
            lambda: self.client.put_bucket_versioning(
                Bucket=self.bucket_name, VersioningConfiguration={"Status": status}
            ),
        )

    def staging_dir(self) -> Path | None:
        return None

    def close(self) -> None:
        """Close the connection pool of a client this store made (not a shared one)."""
        if self._owns_client:
            self.client.close()


def _find(exc: BaseException | None, kind: type[BaseException]) -> Any:
    """``exc`` or the first exception of ``kind`` in its cause/context chain (the
    managed transfer wraps the ClientError in S3UploadFailedError)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kind):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None

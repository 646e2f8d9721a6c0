"""Google Cloud Storage through google-cloud-storage (``gs://BUCKET/key``).

Credentials are Application Default Credentials, or the service account of the
principal impersonated with them (:mod:`dpexport.security.identity`); with
``STORAGE_EMULATOR_HOST`` set the client talks to that server anonymously
(fake-gcs-server in tests). Versions are
object generations. Conditional writes use ``if_generation_match`` (0: must not
exist); real GCS checks it on every upload, fake-gcs-server only on single-request
uploads (EMULATORS.md), which is what small documents use.

Every call passes ``retry=None``: the SDK's retries (its default on most calls) are
off, and spec 7.1's policy (:mod:`dpexport.reliability.retry`) is the only layer that
retries, so its attempts and waits are what happens. A resumable upload or a chunked
read that fails on one chunk therefore fails as a whole; the policy retries it from
the file or from the start.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from dpexport.errors import ExportError, NotFound, PermissionDenied, TransientError
from dpexport.security import transit
from dpexport.security.identity import Identity, gcp_credentials
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
    widen_pool,
)

T = TypeVar("T")
EXTRA = "gcs"


class GCSStore:
    """One GCS bucket. ``encryption`` (a CMEK key name) applies to every write."""

    scheme = "gs"

    def __init__(
        self,
        bucket: str,
        *,
        client: Any = None,
        encryption: ServerSideEncryption | None = None,
        timeout: float = TIMEOUT,
        identity: Identity | None = None,
    ) -> None:
        self._storage = require("google.cloud.storage", EXTRA)
        self._gexc = require("google.api_core.exceptions", EXTRA)
        self.bucket_name = bucket
        self.url = f"gs://{bucket}"
        self.identity = identity
        self._owns_client = client is None
        self.client = client if client is not None else self._default_client()
        if self._owns_client:
            # The SDK (3.17) fetches each bucket's metadata on a thread of its own, for
            # tracing attributes dpexport never emits: an extra bucket GET that needs
            # storage.buckets.get, and a thread that outlives the store, retrying an
            # unreachable endpoint for minutes. None turns that cache off.
            self.client._bucket_metadata_cache = None
            # The client makes its HTTP session on first use, unlocked: made here, before
            # any thread calls the store, there is one session, whose pool fits them all
            widen_pool(self.client._http, CONCURRENCY)
            transit.harden_session(self.client._http)  # spec 6.3 in_transit
        self._bucket = self.client.bucket(bucket)
        self.encryption = encryption
        self.timeout = timeout

    def _default_client(self) -> Any:
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            creds = require("google.auth.credentials", EXTRA).AnonymousCredentials()
            project = os.environ.get("GOOGLE_CLOUD_PROJECT", "dpexport-emulator")
            return self._storage.Client(project=project, credentials=creds)
        with self._errors(""):
            if self.identity is not None and self.identity.gcp_service_account:
                # CONTRACT §11: the principal's service account, impersonated with ADC
                acting, home = gcp_credentials(self.identity)
                return self._storage.Client(project=home, credentials=acting)
            return self._storage.Client()

    def with_encryption(self, encryption: ServerSideEncryption | None) -> GCSStore:
        """The same bucket and client, writing with ``encryption``."""
        return GCSStore(
            self.bucket_name,
            client=self.client,
            encryption=encryption,
            timeout=self.timeout,
        )

    def encryption_info(self) -> dict[str, Any] | None:
        return self.encryption.describe("gs") if self.encryption else None

    @property
    def principal(self) -> str | None:
        creds = getattr(self.client, "_credentials", None)
        return getattr(creds, "service_account_email", None) or getattr(creds, "signer_email", None)

    def uri(self, key: str) -> str:
        return f"{self.url}/{key}" if key else self.url

    # -- errors ------------------------------------------------------------------------
    @contextmanager
    def _errors(self, key: str, *, create: bool = False, cas: bool = False) -> Iterator[None]:
        try:
            yield
        except self._gexc.GoogleAPICallError as exc:
            status = exc.code if isinstance(exc.code, int) else None
            raise error_for_status(
                status,
                f"{exc.message or type(exc).__name__}",
                uri=self.uri(key),
                bucket=self.bucket_name,
                principal=self.principal,
                create=create,
                cas=cas,
            ) from exc
        except (ConnectionError, TimeoutError) as exc:
            code = "TIMEOUT" if isinstance(exc, TimeoutError) else "SERVICE_UNAVAILABLE"
            raise TransientError(
                f"{type(exc).__name__}: {exc}", uri=self.uri(key), code=code
            ) from exc
        except Exception as exc:
            status = _status_of(exc)  # the media layer's InvalidResponse
            if status is not None:
                raise error_for_status(
                    status,
                    str(exc),
                    uri=self.uri(key),
                    bucket=self.bucket_name,
                    principal=self.principal,
                    create=create,
                    cas=cas,
                ) from exc
            mapped = _transport_error(exc, self.uri(key))
            if mapped is None:
                raise
            raise mapped from exc

    def _call(self, key: str, fn: Callable[[], T], **flags: bool) -> T:
        with self._errors(key, **flags):
            return fn()

    def _blob(self, key: str) -> Any:
        kms = self.encryption.kms_key if self.encryption else None
        return self._bucket.blob(key, kms_key_name=kms)

    def _info(self, blob: Any) -> ObjectInfo:
        return ObjectInfo(
            key=blob.name,
            size=int(blob.size or 0),
            version=str(blob.generation) if blob.generation is not None else None,
            updated=blob.updated,
        )

    # -- writes ------------------------------------------------------------------------
    def put_file(self, key: str, source: Path) -> ObjectInfo:
        size = source.stat().st_size
        blob = self._blob(key)
        if size > MULTIPART_THRESHOLD:
            blob.chunk_size = PART_SIZE  # resumable, in parts; a failed part resumes
        self._call(
            key,
            lambda: blob.upload_from_filename(
                str(source), timeout=self.timeout, retry=None, checksum="auto"
            ),
        )
        return self._checked(key, blob, size)

    def _checked(self, key: str, blob: Any, size: int) -> ObjectInfo:
        info = self._info(blob)
        if info.size != size:
            raise TransientError(
                f"uploaded {info.size} bytes, expected {size}", uri=self.uri(key), code="TIMEOUT"
            )
        return info

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        blob = self._blob(key)
        self._call(
            key,
            lambda: blob.upload_from_string(
                data, timeout=self.timeout, retry=None, checksum="auto"
            ),
        )
        return self._checked(key, blob, len(data))

    def _conditional(self, key: str, data: bytes, generation: int, **flags: bool) -> ObjectInfo:
        blob = self._blob(key)
        self._call(
            key,
            lambda: blob.upload_from_string(
                data,
                if_generation_match=generation,
                timeout=self.timeout,
                retry=None,
                checksum="auto",
            ),
            **flags,
        )
        return self._info(blob)

    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        return self._conditional(key, data, 0, create=True)

    def replace_if_match(self, key: str, data: bytes, version: str | None) -> ObjectInfo:
        return self._conditional(key, data, int(version) if version else 0, cas=True)

    # -- reads -------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        blob = self._bucket.blob(key)
        data: bytes = self._call(
            key, lambda: blob.download_as_bytes(timeout=self.timeout, retry=None)
        )
        return data

    def open_read(self, key: str) -> BinaryIO:
        blob = self._call(key, lambda: self._bucket.get_blob(key, timeout=self.timeout, retry=None))
        if blob is None:
            raise NotFound(f"no such object: {key}", uri=self.uri(key))
        reader = blob.open(
            "rb", chunk_size=PART_SIZE, if_generation_match=blob.generation, retry=None
        )
        left = int(blob.size or 0)

        def read(n: int) -> bytes:
            # Past the end the reader would ask for a range beyond it: a 416 reply, after
            # which a server may close the connection under the next request. The size
            # is known (the generation is pinned), so the end is never asked for.
            nonlocal left
            if left <= 0:
                return b""
            chunk: bytes = self._call(key, lambda: reader.read(min(n, left)))
            left -= len(chunk)
            return chunk

        return stream(read, reader.close)

    def head(self, key: str) -> ObjectInfo | None:
        blob = self._call(key, lambda: self._bucket.get_blob(key, timeout=self.timeout, retry=None))
        return self._info(blob) if blob is not None else None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """GCS lists names in lexicographic (key) order."""
        pages = self.client.list_blobs(
            self.bucket_name, prefix=prefix or None, timeout=self.timeout, retry=None
        )
        with self._errors(prefix):
            for blob in pages:
                yield self._info(blob)

    # -- removal and copies ------------------------------------------------------------
    def delete(self, key: str) -> None:
        try:
            self._call(key, lambda: self._bucket.delete_blob(key, timeout=self.timeout, retry=None))
        except NotFound:
            return

    def copy(self, source_key: str, dest_key: str) -> ObjectInfo:
        """Server-side rewrite (any size; keeps the destination's CMEK)."""
        src = self._bucket.blob(source_key)
        dst = self._blob(dest_key)
        token: str | None = None
        with self._errors(source_key):
            while True:
                token, _done, _total = dst.rewrite(
                    src, token=token, timeout=self.timeout, retry=None
                )
                if token is None:
                    break
        return self._info(dst)

    def move(self, source_key: str, dest_key: str) -> ObjectInfo:
        info = self.copy(source_key, dest_key)
        self.delete(source_key)
        return info

    # -- bucket settings (lifecycle apply; not part of the Store protocol) ---------------
    def set_lifecycle(
        self,
        transitions: builtins.list[tuple[int, str]],
        deletes: builtins.list[tuple[int, builtins.list[str]]],
        versioning: bool | None,
    ) -> None:
        """Replace the bucket's lifecycle rules: ``SetStorageClass`` at each (age, class),
        ``Delete`` at each (age, name prefixes); set versioning unless ``None``."""
        bucket = self._call(
            "", lambda: self.client.get_bucket(self.bucket_name, timeout=self.timeout, retry=None)
        )
        bucket.clear_lifecycle_rules()
        for age, storage_class in transitions:
            bucket.add_lifecycle_set_storage_class_rule(storage_class, age=age)
        for age, prefixes in deletes:
            bucket.add_lifecycle_delete_rule(age=age, matches_prefix=prefixes)
        if versioning is not None:
            bucket.versioning_enabled = versioning
        self._call("", lambda: bucket.patch(timeout=self.timeout, retry=None))

    def lifecycle_rules(self) -> builtins.list[dict[str, Any]]:
        """The lifecycle rules the server reports for the bucket."""
        bucket = self._call(
            "", lambda: self.client.get_bucket(self.bucket_name, timeout=self.timeout, retry=None)
        )
        return [dict(rule) for rule in bucket.lifecycle_rules]

    def staging_dir(self) -> Path | None:
        return None

    def close(self) -> None:
        """Close the connection pool of a client this store made (not a shared one)."""
        if self._owns_client:
            self.client.close()


def _transport_error(exc: Exception, uri: str) -> ExportError | None:
    """Transport failures (resets, timeouts, a reply cut short) of requests, urllib3,
    http.client and google-auth are transient: the ones the SDK's retry predicate
    retried, now left to spec 7.1. Missing Application Default Credentials is a
    permission problem."""
    module, name = type(exc).__module__, type(exc).__name__
    if name == "DefaultCredentialsError":
        return PermissionDenied(
            "no Google credentials found (Application Default Credentials)", uri=uri
        )
    if module == "http.client" and name in ("IncompleteRead", "BadStatusLine", "ResponseNotReady"):
        return TransientError(f"{name}: {exc}", uri=uri, code="SERVICE_UNAVAILABLE")
    if module.startswith(("requests", "urllib3", "google.auth")) and (
        "Error" in name or "Timeout" in name
    ):
        code = "TIMEOUT" if "Timeout" in name else "SERVICE_UNAVAILABLE"
        return TransientError(f"{name}: {exc}", uri=uri, code=code)
    return None


def _status_of(exc: BaseException | None) -> int | None:
    """The HTTP status of an API error or of the upload/download layer's InvalidResponse."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and type(exc).__module__.startswith("google.api_core"):
        return code
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None

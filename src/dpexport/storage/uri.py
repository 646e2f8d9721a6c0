"""URIs to stores: ``gs://B/P``, ``s3://B/P``, ``az://C/P`` and local paths.

Under ``--local-root DIR`` every cloud URI maps to the folder ``DIR/{scheme}/{bucket}``
(CONTRACT §2), so a production config runs unchanged on one machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dpexport.errors import InvalidArgument, UsageError
from dpexport.storage.base import Store
from dpexport.storage.local import LocalStore

CLOUD_SCHEMES = ("gs", "s3", "az")


@dataclass(frozen=True)
class Location:
    """A parsed URI: ``scheme`` is gs|s3|az|file; for ``file`` the bucket is the
    folder that acts as the store root and ``key`` is empty."""

    scheme: str
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        if self.scheme == "file":
            return str(Path(self.bucket) / self.key) if self.key else self.bucket
        return f"{self.scheme}://{self.bucket}/{self.key}"


def parse_uri(uri: str) -> Location:
    """Split a URI into scheme, bucket and key (keys never start with ``/``)."""
    if "://" in uri:
        scheme, rest = uri.split("://", 1)
        if scheme == "file":
            return Location("file", str(Path(rest)), "")
        if scheme not in CLOUD_SCHEMES:
            raise InvalidArgument(
                f"unsupported URI scheme {scheme!r} in {uri!r}; "
                "expected gs://, s3://, az:// or a local path"
            )
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise InvalidArgument(f"URI {uri!r} names no bucket")
        return Location(scheme, bucket, key)
    return Location("file", str(Path(uri)), "")


def open_cloud_store(scheme: str, bucket: str) -> Store:
    """The cloud backend for ``scheme``, its SDK imported only now (a missing SDK is a
    UsageError naming the extra to install)."""
    if scheme == "gs":
        from dpexport.storage.gcs import GCSStore

        return GCSStore(bucket)
    if scheme == "s3":
        from dpexport.storage.s3 import S3Store

        return S3Store(bucket)
    if scheme == "az":
        from dpexport.storage.azure import AzureStore

        return AzureStore(bucket)
    raise UsageError(f"no store for scheme {scheme!r}")


class StoreResolver:
    """Opens (and caches) the store behind each URI."""

    def __init__(self, local_root: Path | None = None) -> None:
        self.local_root = Path(local_root) if local_root else None
        self._stores: dict[tuple[str, str], Store] = {}

    def store_for(self, loc: Location) -> Store:
        cache_key = (loc.scheme, loc.bucket)
        if cache_key not in self._stores:
            self._stores[cache_key] = self._open(loc)
        return self._stores[cache_key]

    def _open(self, loc: Location) -> Store:
        if loc.scheme == "file":
            return LocalStore(Path(loc.bucket), url=loc.bucket)
        if self.local_root is not None:
            root = self.local_root / loc.scheme / loc.bucket
            return LocalStore(root, url=f"{loc.scheme}://{loc.bucket}")
        return open_cloud_store(loc.scheme, loc.bucket)

    def resolve(self, uri: str) -> tuple[Store, str]:
        """The store and the key inside it for a URI."""
        loc = parse_uri(uri)
        return self.store_for(loc), loc.key

"""The Store interface: the few primitives dpexport needs from an object store.

One Store is one bucket (or container, or local root folder). Keys are
``/``-separated paths inside it, never starting with ``/``. Everything richer
(moving an export into place, manifests, markers, tokens) is written once above
these primitives, so every backend behaves the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class ObjectInfo:
    """What the store says about one object. ``version`` is the token for
    compare-and-swap (generation, ETag, mtime_ns+inode locally)."""

    key: str
    size: int
    version: str | None = None
    updated: datetime | None = None


class Store(Protocol):
    """A bucket-like namespace of objects."""

    #: the URI of the store's root, e.g. ``gs://diagnosticpro-exports``
    url: str

    def uri(self, key: str) -> str:
        """The user-facing URI of a key."""
        ...

    def put_file(self, key: str, source: Path) -> ObjectInfo:
        """Upload (or on a local store, move into place) a local file; retried from the file."""
        ...

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo: ...

    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        """Create ``key`` only if it does not exist; raise AlreadyExists otherwise."""
        ...

    def replace_if_match(self, key: str, data: bytes, version: str | None) -> ObjectInfo:
        """Compare-and-swap: write only if the current version is ``version``
        (``None``: only if absent); raise PreconditionFailed otherwise."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; NotFound if absent."""
        ...

    def open_read(self, key: str) -> BinaryIO:
        """A binary stream of the object (for large files)."""
        ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (recursive), in key order."""
        ...

    def delete(self, key: str) -> None:
        """Delete; a missing key is not an error."""
        ...

    def copy(self, source_key: str, dest_key: str) -> ObjectInfo: ...

    def move(self, source_key: str, dest_key: str) -> ObjectInfo:
        """Rename on a local store; copy then delete on object stores."""
        ...

    def staging_dir(self) -> Path | None:
        """A local folder on the same filesystem as the store, where writers can put
        files that ``put_file`` then renames into place; ``None`` for remote stores."""
        ...


def innermost(store: Store) -> Store:
    """The backend under any wrappers (retrying, fault injection) that expose ``inner``."""
    while hasattr(store, "inner"):
        store = store.inner
    return store


def retained_until(store: Store, key: str) -> datetime | None:
    """Until when the server's own lock keeps ``key`` from deletion (S3 Object Lock), or
    None: nothing holds it now, or the store has no such lock. An optional method of a
    backend (``retained_until``), asked before deleting what dpexport's clock says is
    free."""
    method = getattr(innermost(store), "retained_until", None)
    until: datetime | None = method(key) if method is not None else None
    return until

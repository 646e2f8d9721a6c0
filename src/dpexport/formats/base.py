"""The Writer interface: Arrow record batches in, one local file out.

A writer writes one data file on local disk (the staging copy), in one format and
codec, optionally client-side encrypted. It knows the sha256 of the stored bytes,
the row count and the byte sizes the moment it closes, without reading the file
back: the bytes are hashed on their way to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa


@dataclass(frozen=True)
class WrittenFile:
    """A closed data file.

    ``stored_bytes`` are the bytes on disk (after codec and encryption) and
    ``sha256`` is their hex digest; ``uncompressed_bytes`` is the size of the rows
    before any compression (Arrow buffer sizes of the batches written), which the
    manifest reports as ``byte_size``. ``encryption`` is the sidecar's encryption
    block (algorithm, key name, wrapped data key, nonce) or ``None``.
    """

    path: Path
    rows: int
    stored_bytes: int
    uncompressed_bytes: int
    sha256: str
    encryption: dict[str, Any] | None = None
    #: set when the file is already in the store's staging area (written there by the
    #: warehouse itself, e.g. BigQuery EXPORT DATA): its key; ``path`` is a local copy
    staged_key: str | None = None
    #: sha256, size and rows were read from the stored file itself (the warehouse
    #: wrote it, nothing was hashed on the way to disk): that read is its verification
    read_back: bool = False
    #: CRC-32 of the stored bytes, taken as they were written and hashed: the
    #: verification's re-read compares it (none: it hashes them again), which proves
    #: the file holds the bytes its ``sha256`` was taken of at ~1/12 of the hash's CPU
    crc32: int | None = None


class FormatWriter(Protocol):
    """One open data file."""

    def write_batch(self, batch: pa.RecordBatch) -> None: ...

    @property
    def stored_bytes(self) -> int:
        """Bytes written to disk so far (used to roll files at the size limit)."""
        ...

    @property
    def rows(self) -> int: ...

    def close(self) -> WrittenFile: ...

    def abort(self) -> None:
        """Close and delete the partial file (on errors)."""
        ...

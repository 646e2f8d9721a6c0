"""Parquet (spec 2.1): format version 2.6, compression inside the file.

Row groups and pages are sized in bytes. pyarrow 26 has only a row-count limit
for row groups and starts a new row group on every ``write_table`` call, so the
writer keeps up to one row group of batches and writes it when the batches reach
``row_group_size`` Arrow (uncompressed, in-memory) bytes, the same measure as
``uncompressed_bytes``; rows per group = ``row_group_size`` / the pending batches'
bytes per row. ``page_size`` is passed through as the data page size (bytes,
before compression). Dictionary encoding is on, except for columns given an
explicit encoding (pyarrow forbids both); statistics are on; the Arrow schema is
stored so time zones and exact types read back.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from dpexport.config.spec import ParquetOptions
from dpexport.errors import InvalidArgument
from dpexport.formats.base import WrittenFile
from dpexport.formats.streams import OutputStack

if TYPE_CHECKING:
    from dpexport.security.crypto import Encryptor

PARQUET_CODECS = {
    "SNAPPY": "snappy",
    "ZSTD": "zstd",
    "GZIP": "gzip",
    "BROTLI": "brotli",
    "NONE": "none",
}
ENCODINGS = (
    "PLAIN",
    "RLE",
    "BYTE_STREAM_SPLIT",
    "DELTA_BINARY_PACKED",
    "DELTA_LENGTH_BYTE_ARRAY",
    "DELTA_BYTE_ARRAY",
)
_DICTIONARY_NAMES = ("PLAIN_DICTIONARY", "RLE_DICTIONARY", "DICTIONARY")
#: Levels used when the config sets none: Arrow's own defaults (gzip 9, brotli 8)
#: are 10x/2x slower for <1% smaller files.
DEFAULT_LEVELS = {"gzip": 6, "brotli": 5}


def _is_int_like(t: pa.DataType) -> bool:
    """Types stored as INT32/INT64 (what ``"*"`` applies an encoding to)."""
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_date(t)
        or pa.types.is_time(t)
    )


def _leaf_paths(name: str, t: pa.DataType) -> list[str]:
    """Parquet column paths of one Arrow field (compliant nested names)."""
    if pa.types.is_struct(t):
        return [p for f in t for p in _leaf_paths(f"{name}.{f.name}", f.type)]
    if pa.types.is_map(t):
        return _leaf_paths(f"{name}.key_value.key", t.key_type) + _leaf_paths(
            f"{name}.key_value.value", t.item_type
        )
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _leaf_paths(f"{name}.list.element", t.value_type)
    return [name]


def writer_properties(schema: pa.Schema, codec: str, options: ParquetOptions) -> dict[str, Any]:
    """Keyword arguments for ``pq.ParquetWriter`` from the options (see module doc)."""
    if codec not in PARQUET_CODECS:
        raise InvalidArgument(f"unknown Parquet codec {codec!r}; expected one of {PARQUET_CODECS}")
    encodings: dict[str, str] = {}
    wildcard = options.column_encoding.get("*")
    if wildcard:
        for field in schema:
            if _is_int_like(field.type):
                encodings[field.name] = wildcard.upper()
    for name, enc in options.column_encoding.items():
        if name == "*":
            continue
        if name not in schema.names:
            raise InvalidArgument(
                f"column_encoding names column {name!r}, which the table does not have"
            )
        encodings[name] = enc.upper()
    for name, enc in list(encodings.items()):
        if enc in _DICTIONARY_NAMES:
            del encodings[name]  # dictionary is already the default
        elif enc not in ENCODINGS:
            raise InvalidArgument(
                f"unknown Parquet encoding {enc!r} for column {name!r}; expected one of "
                f"{', '.join(ENCODINGS + _DICTIONARY_NAMES)}"
            )
    use_dictionary: bool | list[str] = options.dictionary
    if options.dictionary and encodings:
        use_dictionary = [
            p for f in schema if f.name not in encodings for p in _leaf_paths(f.name, f.type)
        ]
    compression = PARQUET_CODECS[codec]
    props: dict[str, Any] = {
        "version": options.version or "2.6",
        "compression": compression,
        "use_dictionary": use_dictionary,
        "write_statistics": True,
        "data_page_size": options.page_size,
        "column_encoding": encodings or None,
        "store_schema": True,
    }
    level = options.compression_level
    if level is None:
        level = DEFAULT_LEVELS.get(compression)
    if level is not None and compression not in ("snappy", "none"):
        props["compression_level"] = level
    return props


#: one encoder thread per process: with two cores, scan + Python on one, encoding on
#: the other; row groups of one file stay in order (one in flight per writer)
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dpexport-parquet")


class ParquetWriter:
    """Writes one Parquet file (see module doc). Implements ``FormatWriter``.

    ``stored_bytes`` is the bytes on disk plus an estimate of the pending row group
    (its Arrow bytes times the compression ratio seen so far, 1:1 before the first
    row group), so a caller rolling at a size limit never overshoots by a row group.
    """

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        codec: str = "SNAPPY",
        *,
        options: ParquetOptions | None = None,
        encryptor: Encryptor | None = None,
    ) -> None:
        self.path = Path(path)
        self.schema = schema
        self.options = options or ParquetOptions()
        props = writer_properties(schema, codec, self.options)
        self._stack = OutputStack(self.path, "NONE", encryptor, native=True)
        try:
            self._writer = pq.ParquetWriter(self._stack.stream, schema, **props)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            self._stack.abort()
            raise InvalidArgument(f"cannot write Parquet with these options: {exc}") from exc
        self._inflight: Future[Any] | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0
        self._pending_rows = 0
        self._flushed_bytes = 0  # Arrow bytes already written as row groups
        self._rows = 0
        self._uncompressed = 0

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def stored_bytes(self) -> int:
        on_disk = self._stack.stored_bytes
        if not self._pending_bytes:
            return on_disk
        ratio = on_disk / self._flushed_bytes if self._flushed_bytes else 1.0
        return on_disk + int(self._pending_bytes * min(ratio, 1.0))

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Add ``batch``; full row groups are written as soon as they are complete."""
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        self._pending_rows += batch.num_rows
        self._rows += batch.num_rows
        self._uncompressed += batch.nbytes
        if self._pending_bytes >= self.options.row_group_size:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        if not self._pending_rows:
            return
        table = pa.Table.from_batches(self._pending, self.schema)
        per_row = self._pending_bytes / self._pending_rows
        group_rows = max(1, int(self.options.row_group_size / per_row))
        full = self._pending_rows if final else self._pending_rows // group_rows * group_rows
        if full:
            # Encode on a worker thread (pyarrow releases the GIL) while the caller
            # gathers the next row group; at most one row group is in flight.
            self._wait()
            self._inflight = _POOL.submit(
                self._call,
                self._writer.write_table,
                table.slice(0, full),
                row_group_size=group_rows,
            )
            self._flushed_bytes += int(full * per_row)
        rest = table.slice(full)
        self._pending = rest.to_batches()
        self._pending_rows = rest.num_rows
        self._pending_bytes = int(rest.num_rows * per_row)

    @staticmethod
    def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as exc:
            raise InvalidArgument(f"cannot write Parquet: {exc}") from exc
        except OSError as exc:
            if "encoder only supports" in str(exc):  # Arrow reports bad encodings as IOError
                raise InvalidArgument(f"cannot write Parquet: {exc}") from exc
            raise

    def _wait(self) -> None:
        if self._inflight is not None:
            future, self._inflight = self._inflight, None
            future.result()

    def close(self) -> WrittenFile:
        self._flush(final=True)
        self._wait()
        self._call(self._writer.close)
        stored, digest, block = self._stack.close()
        return WrittenFile(self.path, self._rows, stored, self._uncompressed, digest, block)

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the file is deleted anyway
            self._wait()
        with contextlib.suppress(Exception):
            self._writer.close()
        self._stack.abort()


def read_parquet(source: Any, schema: pa.Schema | None = None) -> pa.Table:
    """Read a whole Parquet file (a path or a seekable stream)."""
    table = pq.read_table(source)
    if schema is not None and not table.schema.equals(schema, check_metadata=False):
        table = table.cast(schema)
    return table


def count_parquet(source: Any) -> int:
    """Rows from the footer only."""
    return int(pq.ParquetFile(source).metadata.num_rows)

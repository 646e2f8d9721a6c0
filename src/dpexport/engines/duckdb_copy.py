"""DuckDB writes the Parquet files itself: ``COPY (SELECT ...) TO`` into ``_staging/``.

pyarrow encodes a Parquet file on one thread while DuckDB's ``COPY`` encodes row
groups on all of the engine's threads, and holds less in memory doing it (see
``benchmarks/results.md``: 1.6x faster and half the peak RSS at 5 M rows). So when a
table's rows need nothing from Python and its Parquet options are ones DuckDB
honours, the DuckDB engine writes the files into the export's staging folder;
dpexport then reads each file once (sha256 of the stored bytes, rows and sizes from
the footer), checks the rows against the slice count, and commits it through the
same protocol as a streamed file.

What keeps a table on the streamed path (:func:`copy_reason`, shown by ``plan``):

- rows changed or observed in Python: GDPR, client-side encryption, the cross-run
  de-duplication window, named data checks, the schema-version column;
- Parquet sizes pinned in the config: DuckDB has no page size (its pages grow to
  100 MB) and sizes row groups in bytes only by buffering them whole (5x slower and
  out of memory at 256 MB). A config that sets ``row_group_size``/``page_size``, an
  encoding or PLAIN gets dpexport's writer, which honours them; otherwise files have
  DuckDB's row groups (122,880 rows) and Parquet format version 2.6 (``V2``);
- a compression level for a codec other than ZSTD;
- a partitioned layout whose files would be small (:data:`MIN_ROWS_PER_FILE`), or
  whose top-level time folders are not listed or too many (de-duplication windows,
  ``folder_scan.MAX_FOLDERS``): see "Partitioned layouts" below;
- an empty slice (a FULL_REFRESH still writes its empty file on the streamed path);
- a column DuckDB stores as another type than the streamed path (UUID, INTERVAL):
  found by copying zero rows first and comparing the file's schema
  (:func:`copy_parquet` then writes nothing and says why);
- a ``COPY`` that runs out of ``memory_limit`` (DuckDB holds a row group per thread,
  which wide rows make large: 120 columns of 300,000 rows failed under 384MB): what it
  wrote is deleted and the rows stream, which needs memory by columns, not by rows.

Partitioned layouts: one ``COPY`` per top-level time folder (its rows found by a
range on the time column, as ``folder_scan`` reads them), with ``PARTITION_BY`` on
the sub-partition keys. One ``PARTITION_BY`` over every key keeps a buffer per folder
for the whole slice and under a 256 MB memory limit took 2.9x as long (15.9 s against
5.5 s for the benchmark's 576 folders at 5 M rows). The keys are hex-encoded in the
folder names DuckDB makes (``__dp_p1=v74656D70``, ``n`` for NULL), so any value -
slashes, ``=``, percent signs, non-ASCII, NUL, the empty string - comes back exactly
and is then laid out by ``layout.folder_for`` like a streamed row's, so a value's
folder name is ``layout.safe_segment``'s on both paths (distinct values, distinct
folders). DuckDB pays more per file than dpexport's writer for tiny files (1.25 ms
against 0.7 ms at the full layout's 17 rows a file), so small-file layouts stream.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dpexport.config.spec import TableSpec
from dpexport.engines.base import ScanRequest, quote_identifier
from dpexport.engines.duckdb import DuckDBEngine
from dpexport.engines.duckdb_errors import CopyOutOfMemory, first_line
from dpexport.formats.streams import crc32
from dpexport.planning import folder_scan
from dpexport.publish.verification import crc32_of_file, sha256_of_file
from dpexport.storage import layout

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from dpexport.engines.base import Outcome
    from dpexport.publish.commit import Staging
    from dpexport.storage.base import Store

__all__ = ["Copied", "DuckDBCopy", "copy_parquet", "copy_reason", "copy_schema_reason"]

#: a partitioned layout with fewer rows per folder than this on average streams: for
#: small files dpexport's writer costs less per file than DuckDB's (see module doc)
MIN_ROWS_PER_FILE = 2_000
#: the hex-encoded partition columns given to ``PARTITION_BY`` (``__dp_p1`` for ``__dp_k1``)
PART_PREFIX = "__dp_p"

#: the codecs DuckDB's Parquet writer names differently from the config
CODECS = {
    "SNAPPY": "snappy",
    "ZSTD": "zstd",
    "GZIP": "gzip",
    "BROTLI": "brotli",
    "NONE": "uncompressed",
}


def copy_reason(
    spec: TableSpec,
    *,
    transforms_needed: bool,
    client_side_encryption: bool,
    rows: int | None,
    folders: int | None = None,
    tops: int | None = None,
) -> str | None:
    """Why dpexport streams this table instead of letting DuckDB write it (None: it can).

    ``rows``: the slice's rows; ``folders``: how many folders they fill (an estimate
    will do); ``tops``: how many top-level time folders, or None when they are not
    listed (a de-duplication window: a folder's filter would change which row wins)."""
    if spec.format != "PARQUET":
        return (
            f"{spec.format} is written by dpexport (ISA-L deflate on both cores; "
            "DuckDB's text writer compresses with zlib on one)"
        )
    if spec.compression not in CODECS:
        return f"DuckDB cannot write {spec.compression} Parquet"
    if transforms_needed or spec.gdpr:
        return "rows are anonymized or de-duplicated in dpexport"
    if client_side_encryption:
        return "files are encrypted client-side"
    if spec.schema_evolution.enabled:
        return f"the {spec.schema_evolution.version_column} column is added in dpexport"
    if spec.parquet.pinned:
        return (
            "the config sets Parquet row group/page sizes or encodings, which only "
            "dpexport's writer honours exactly"
        )
    if spec.parquet.compression_level is not None and spec.compression != "ZSTD":
        return f"DuckDB sets a compression level only for ZSTD, not {spec.compression}"
    if rows == 0:
        return "the slice is empty"
    partitioning = spec.partitioning
    if partitioning.time_expression or partitioning.sub_partitions:
        if partitioning.time_expression and tops is None:
            return "the slice's time folders are not listed (de-duplication window)"
        if tops is not None and tops > folder_scan.MAX_FOLDERS:
            return f"{tops} time folders, over {folder_scan.MAX_FOLDERS} COPY statements"
        if not rows or not folders or rows < MIN_ROWS_PER_FILE * folders:
            per = f"~{rows // folders:,}" if rows and folders else "few"
            return (
                f"the layout makes small files ({per} rows a folder), which dpexport's "
                "writer makes faster than DuckDB"
            )
    return None


#: the longest hex text a key's folder is named by; a longer value's folder is named by
#: its sha256 (a folder name holds at most 255 bytes, and hex doubles the value's)
MAX_HEX = 200


def _encoded(expression: str) -> str:
    """A partition key as a folder-name-safe text: ``n`` for NULL, ``v`` + hex, or for a
    value past :data:`MAX_HEX` ``h`` + its sha256 (:func:`_long_values` maps it back)."""
    return (
        f"CASE WHEN ({expression}) IS NULL THEN 'n' "
        f"WHEN length(hex({expression})) <= {MAX_HEX} THEN 'v' || hex({expression}) "
        f"ELSE 'h' || sha256({expression}) END"
    )


def _decoded(segment: str, long_values: Callable[[str], dict[str, str]]) -> tuple[str, str | None]:
    """``__dp_p1=v74`` -> (``__dp_k1``, ``t``): the inverse of :func:`_encoded`. The
    value is the key's exact text (or None), not yet a folder name: the caller names
    the folder with ``layout.folder_for``, as the streamed path does. ``long_values``
    gives a key's values past :data:`MAX_HEX` by their sha256."""
    name, _, value = segment.partition("=")
    if not name.startswith(PART_PREFIX) or not value or value[0] not in "nvh":
        raise ValueError(f"unexpected folder {segment!r} in DuckDB's partitioned output")
    key = layout.KEY_COLUMN_PREFIX + name[len(PART_PREFIX) :]
    if value[0] == "h":
        return key, long_values(key)[value[1:]]
    return key, None if value == "n" else bytes.fromhex(value[1:]).decode("utf-8")


def _lookup(
    engine: DuckDBEngine, request: ScanRequest, keys: dict[str, str]
) -> Callable[[str], dict[str, str]]:
    """:func:`_long_values` of one key column of ``request``, asked once, when needed."""

    @functools.cache
    def of(key: str) -> dict[str, str]:
        return _long_values(engine, request, keys[key])

    return of


def _long_values(engine: DuckDBEngine, request: ScanRequest, expression: str) -> dict[str, str]:
    """sha256 -> value of the request's key values past :data:`MAX_HEX` (rare: one more
    query, only when DuckDB named a folder by a hash)."""
    where = f"length(hex({expression})) > {MAX_HEX}"
    lookup = dataclasses.replace(
        request,
        extra={"__dp_h": f"sha256({expression})", "__dp_v": expression},
        filter=f"({request.filter}) AND {where}" if request.filter else where,
        order_by=(),
    )
    return {str(h): str(v) for h, v in engine.distinct(lookup, ("__dp_h", "__dp_v"), 10**9)}


@dataclasses.dataclass(frozen=True)
class Copied:
    """A file DuckDB wrote, the partition key values (``__dp_k0``...) of its rows, and
    the sha256 and size of its bytes as stored (read back from the file)."""

    path: Path
    keys: dict[str, object]
    sha256: str
    size: int


_CHUNK = 4 * 1024 * 1024


class Follower:
    """Hashes the Parquet files DuckDB's ``COPY`` writes into ``folder`` while it writes
    them, so the read-back costs little time after the copy.

    DuckDB does not only append: its file writer may write a file's first bytes (the
    magic and the first page header) after later ones, so a byte read while it writes
    may still change (a hole read as zeros: seen once in ~250 copies under load). So
    the reading also takes each file's CRC-32, and :meth:`finish`, called after the
    ``COPY`` returned, reads each file to its end, checks that the bytes hashed are the
    whole file (its size on disk), and reads it once more for its CRC-32 (ISA-L, ~12x
    cheaper than sha256): where that differs from the CRC of the bytes hashed, the file
    is hashed again from disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        #: fd, sha256, [size, CRC-32] of the bytes read so far
        self._files: dict[Path, tuple[int, Any, list[int]]] = {}
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dpexport-follow", daemon=True)
        self._thread.start()

    def _poll(self) -> bool:
        """Read what the files gained since the last poll; whether anything was read."""
        moved = False
        for path in self.folder.glob("*.parquet") if self.folder.is_dir() else ():
            if path not in self._files:
                self._files[path] = (os.open(path, os.O_RDONLY), hashlib.sha256(), [0, 0])
        for fd, digest, seen in self._files.values():
            while chunk := os.read(fd, _CHUNK):
                digest.update(chunk)
                seen[0] += len(chunk)
                seen[1] = crc32(chunk, seen[1])
                moved = True
        return moved

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._poll():
                    self._stop.wait(0.02)
        except BaseException as exc:  # reported by finish()
            self._error = exc

    def _close(self) -> None:
        self._stop.set()
        self._thread.join()
        for fd, _, _ in self._files.values():
            os.close(fd)

    def finish(self) -> dict[Path, tuple[str, int]]:
        """sha256 and size of every file, once the writer is done."""
        try:
            self._stop.set()
            self._thread.join()
            if self._error is not None:
                raise self._error
            self._poll()
            out = {}
            for path, (_, digest, (size, crc)) in self._files.items():
                if os.stat(path).st_size != size:
                    raise OSError(f"{path} changed while it was read back")
                out[path] = (digest.hexdigest(), size)
                if crc32_of_file(path) != crc:  # DuckDB rewrote bytes already read
                    log.info("%s changed while DuckDB wrote it: hashed again", path.name)
                    out[path] = sha256_of_file(path)
            return out
        finally:
            self._close()

    def abandon(self) -> None:
        self._close()


def _options(spec: TableSpec) -> str:
    version = "V1" if spec.parquet.version.startswith("1") else "V2"
    parts = [
        "FORMAT parquet",
        f"COMPRESSION {CODECS[spec.compression]}",
        f"PARQUET_VERSION {version}",
    ]
    if spec.parquet.compression_level is not None:
        parts.append(f"COMPRESSION_LEVEL {int(spec.parquet.compression_level)}")
    return ", ".join(parts)


def _same_type(a: pa.DataType, b: pa.DataType) -> bool:
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b):
        utc = {"UTC", "Etc/UTC", "+00:00"}
        tz_a, tz_b = a.tz, b.tz
        same_tz = tz_a == tz_b or (tz_a in utc and tz_b in utc)
        return bool(a.unit == b.unit and same_tz)
    return a.equals(b)


def schema_difference(expected: pa.Schema, stored: pa.Schema) -> str | None:
    """The first column DuckDB stores differently from the streamed path, if any."""
    if expected.names != stored.names:
        return f"columns {stored.names} instead of {expected.names}"
    for want, got in zip(expected, stored, strict=True):
        if not _same_type(want.type, got.type):
            return f"column {want.name!r} would be stored as {got.type}, not {want.type}"
    return None


def _number(path: Path) -> int:
    found = re.search(r"(\d+)", path.stem)
    return int(found.group(1)) if found else 0


def copy_schema_reason(
    engine: DuckDBEngine,
    request: ScanRequest,
    spec: TableSpec,
    directory: Path,
    expected: pa.Schema,
) -> str | None:
    """Why DuckDB's Parquet would store a column as another type than ``expected`` (the
    schema the streamed path writes: a UUID, an INTERVAL), from a ``COPY`` of no rows;
    None when it would not. ``plan`` and ``run`` both ask it, so they name one path."""
    directory.mkdir(parents=True, exist_ok=True)
    # the data columns only: keys are re-added hex-encoded, and COPY needs no order
    base = dataclasses.replace(request, extra={}, order_by=())
    nothing = dataclasses.replace(
        base, filter=f"({base.filter}) AND false" if base.filter else "false"
    )
    stored = engine.copy_schema(nothing, directory / "schema-probe.parquet", _options(spec))
    return schema_difference(expected, stored)


def copy_parquet(
    engine: DuckDBEngine,
    request: ScanRequest,
    spec: TableSpec,
    directory: Path,
    expected: pa.Schema,
    tops: list[str | None] | None = None,
) -> list[Copied] | str:
    """Let DuckDB write the request's rows as Parquet files under ``directory`` (rolled
    at ``max_file_size``; a ``COPY`` per top-level time folder in ``tops`` and
    sub-folders by ``PARTITION_BY``, see module doc). The files in folder order, or
    why DuckDB's files would not match ``expected`` (the schema the streamed path
    writes), in which case none is left."""
    why = copy_schema_reason(engine, request, spec, directory, expected)
    if why is not None:
        return why
    try:
        return _copy_files(engine, request, spec, directory, expected, tops)
    except CopyOutOfMemory as exc:
        shutil.rmtree(directory, ignore_errors=True)  # what it wrote before running out
        return (
            f"DuckDB's COPY ran out of memory_limit {engine.memory_limit} (it holds a row "
            f"group of 122,880 rows a thread; wide rows make it large): {first_line(str(exc))}"
        )


def _copy_files(
    engine: DuckDBEngine,
    request: ScanRequest,
    spec: TableSpec,
    directory: Path,
    expected: pa.Schema,
    tops: list[str | None] | None,
) -> list[Copied]:
    """:func:`copy_parquet` once the schemas agree."""
    options = _options(spec) + f", FILE_SIZE_BYTES {int(spec.max_file_size)}"
    base = dataclasses.replace(request, extra={}, order_by=())
    time_key = layout.TIME_KEY
    parts = {
        PART_PREFIX + name[len(layout.KEY_COLUMN_PREFIX) :]: _encoded(expr)
        for name, expr in request.extra.items()
        if name != time_key
    }
    if parts:
        options += f", PARTITION_BY ({', '.join(parts)}), FILENAME_PATTERN 'part_{{i}}'"
    slices: list[tuple[dict[str, object], ScanRequest]]
    if time_key in request.extra:
        if tops is None:
            raise ValueError("a time-partitioned COPY needs the slice's top-level folders")
        ordered = sorted(tops, key=lambda t: (t is None, t or ""))
        requests = folder_scan.folder_requests(base, spec.partitioning, expected, ordered)
        slices = [({time_key: top}, req) for top, req in zip(ordered, requests, strict=True)]
    else:
        slices = [({}, base)]
    if len(slices) == 1 and not parts:
        # one folder: hash the files while DuckDB writes them
        target = directory / "files-0"
        follower = Follower(target)
        try:
            engine.copy(base, target, options)
        except BaseException:
            follower.abandon()
            raise
        hashed = follower.finish()
        files = sorted(target.glob("*.parquet"), key=_number)
        return [Copied(path, {}, *hashed[path]) for path in files]
    # a COPY per time folder: hash one folder's files while DuckDB writes the next's
    with ThreadPoolExecutor(1, thread_name_prefix="dpexport-hash") as hasher:
        pending: list[tuple[Path, dict[str, object], Future[tuple[str, int]]]] = []
        for i, (keys, req) in enumerate(slices):
            target = directory / f"files-{i}"
            engine.copy(dataclasses.replace(req, extra=parts), target, options)
            long_values = _lookup(engine, req, request.extra)
            for path in sorted(target.rglob("*.parquet"), key=lambda p: (p.parent, _number(p))):
                values = dict(keys)
                for segment in path.parent.relative_to(target).parts:
                    key, value = _decoded(segment, long_values)
                    values[key] = value
                pending.append((path, values, hasher.submit(sha256_of_file, path)))
        return [Copied(path, values, *done.result()) for path, values, done in pending]


class DuckDBCopy:
    """DuckDB writing a slice's Parquet files itself (``Engine.native_writer``)."""

    label = "DuckDB COPY (DuckDB writes the Parquet files)"

    def __init__(self, engine: DuckDBEngine) -> None:
        self.engine = engine

    def reason(
        self,
        spec: TableSpec,
        *,
        transforms: bool,
        encrypts: bool,
        rows: int | None,
        folders: int | None,
        tops: int | None,
    ) -> str | None:
        return copy_reason(
            spec,
            transforms_needed=transforms,
            client_side_encryption=encrypts,
            rows=rows,
            folders=folders,
            tops=tops,
        )

    def schema_reason(
        self, spec: TableSpec, request: ScanRequest, expected: pa.Schema, directory: Path
    ) -> str | None:
        return copy_schema_reason(self.engine, request, spec, directory, expected)

    def folders_sql(self, spec: TableSpec, keys: list[str]) -> str | None:
        if spec.format != "PARQUET" or not keys:
            return None
        return "approx_count_distinct(hash(" + ", ".join(quote_identifier(k) for k in keys) + "))"

    def export(
        self,
        spec: TableSpec,
        request: ScanRequest,
        store: Store,
        staging: Staging,
        logical_time: datetime,
        scratch: Path,
        expected: pa.Schema,
        tops: list[str | None] | None,
    ) -> Outcome:
        """Let DuckDB write the slice into staging (a local folder, uploaded with the
        rest on a remote store); or why it could not match the streamed schema."""
        from dpexport.formats.router import Folder
        from dpexport.planning.serverside import read_back

        into = staging.local_dir / "duckdb"
        files = copy_parquet(self.engine, request, spec, into, expected, tops)
        if isinstance(files, str):
            return files
        suffix = layout.file_suffix(spec.format, spec.compression, encrypted=False)
        out = []
        for copied in files:
            top, sub = layout.folder_for(spec.partitioning, logical_time, copied.keys)
            # staging names are flat and unique (sidecars are named after them); DuckDB
            # names every partition's files part_0, part_1...
            path = staging.new_path(suffix)
            os.replace(copied.path, path)
            out.append((Folder(top, sub), read_back(path, hashed=(copied.sha256, copied.size))))
        return out, []

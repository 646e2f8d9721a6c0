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
- more than one folder (time or sub-partitions): DuckDB's ``PARTITION_BY`` keeps a
  buffer per folder and is slower than the streamed path under the memory limit;
- an empty slice (a FULL_REFRESH still writes its empty file on the streamed path);
- a column DuckDB stores as another type than the streamed path (UUID, INTERVAL):
  found by copying zero rows first and comparing the file's schema
  (:func:`copy_parquet` then writes nothing and says why).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dpexport.config.spec import TableSpec
from dpexport.engines.base import ScanRequest
from dpexport.engines.duckdb import DuckDBEngine

__all__ = ["copy_parquet", "copy_reason"]

#: the codecs DuckDB's Parquet writer names differently from the config
CODECS = {
    "SNAPPY": "snappy",
    "ZSTD": "zstd",
    "GZIP": "gzip",
    "BROTLI": "brotli",
    "NONE": "uncompressed",
}


def copy_reason(
    spec: TableSpec, *, transforms_needed: bool, client_side_encryption: bool, rows: int | None
) -> str | None:
    """Why dpexport streams this table instead of letting DuckDB write it (None: it can)."""
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
    if spec.partitioning.time_expression or spec.partitioning.sub_partitions:
        return "the layout has more than one folder"
    if rows == 0:
        return "the slice is empty"
    return None


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


def copy_parquet(
    engine: DuckDBEngine,
    request: ScanRequest,
    spec: TableSpec,
    directory: Path,
    expected: pa.Schema,
) -> list[Path] | str:
    """Let DuckDB write the request's rows as Parquet files under ``directory`` (rolled
    at ``max_file_size``). The files in order, or why DuckDB's files would not match
    ``expected`` (the schema the streamed path writes), in which case none is left."""
    options = _options(spec)
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / "schema-probe.parquet"
    nothing = dataclasses.replace(
        request, filter=f"({request.filter}) AND false" if request.filter else "false"
    )
    engine.copy(nothing, probe, options)
    try:
        why = schema_difference(expected, pq.read_schema(probe))
    finally:
        probe.unlink(missing_ok=True)
    if why is not None:
        return why
    target = directory / "files"
    engine.copy(request, target, f"{options}, FILE_SIZE_BYTES {int(spec.max_file_size)}")

    def number(path: Path) -> int:
        found = re.search(r"(\d+)", path.stem)
        return int(found.group(1)) if found else 0

    return sorted(target.glob("*.parquet"), key=number)

"""The warehouse writes the files itself into ``_staging/``: BigQuery ``EXPORT DATA``,
or DuckDB ``COPY``.

For a slice that needs no row transforms, the warehouse encodes the Parquet files
on its side (BigQuery shards the export; DuckDB encodes row groups on all its
threads); dpexport then hashes each staged file, reads its row count from the
Parquet footer, and hands the files to the same commit protocol as the streamed
path. Whether a table can go this way is the engine's to say (``Engine.native_writer``:
``engines.duckdb_copy.DuckDBCopy``, ``engines.bigquery_export.BigQueryExportData``);
``plan`` and ``run`` both ask it through :func:`write_path`, so they name one path.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dpexport.config.spec import TableSpec
from dpexport.engines.base import Engine, ScanRequest
from dpexport.formats.base import WrittenFile
from dpexport.formats.router import Folder
from dpexport.publish.commit import Staging
from dpexport.publish.verification import sha256_of_file
from dpexport.storage.base import Store

#: what ``export`` returns: the staged files and job ids, or why it could not after all
Outcome = tuple[list[tuple[Folder, WrittenFile]], list[str]] | str


def reason_not_to(
    engine: Engine,
    spec: TableSpec,
    *,
    transforms: bool,
    encrypts: bool,
    checks: bool,
    rows: int | None = None,
    folders: int | None = None,
    tops: int | None = None,
) -> str | None:
    """Why this export streams instead of letting the warehouse write (None: it can).
    ``rows``: the slice's row count when known; ``folders`` the folders they fill (an
    estimate); ``tops`` the top-level time folders, None when not listed."""
    writer = engine.native_writer()
    if writer is None:
        return "this engine streams every export"
    reason = writer.reason(
        spec, transforms=transforms, encrypts=encrypts, rows=rows, folders=folders, tops=tops
    )
    if reason is None and checks:
        return "named data checks observe the streamed rows"
    return reason


def write_path(
    engine: Engine,
    spec: TableSpec,
    *,
    transforms: bool,
    encrypts: bool,
    checks: bool,
    rows: int | None,
    folders: int | None,
    tops: int | None,
    request: ScanRequest,
    expected: pa.Schema,
    scratch: Path,
) -> str | None:
    """The one decision ``plan`` and ``run`` share: None when the warehouse writes the
    slice's files, else why dpexport streams them. On top of :func:`reason_not_to`, the
    warehouse's own column types are held against ``expected`` (the schema the streamed
    path writes), from a write of no rows."""
    why = reason_not_to(
        engine,
        spec,
        transforms=transforms,
        encrypts=encrypts,
        checks=checks,
        rows=rows,
        folders=folders,
        tops=tops,
    )
    writer = engine.native_writer()
    if why is not None or writer is None:
        return why
    return writer.schema_reason(spec, request, expected, scratch)


def describe_path(engine: Engine, why: str | None) -> str:
    """How ``plan`` and the export log name the path :func:`write_path` chose."""
    return path_name(engine) if why is None else f"streamed: {why}"


def path_name(engine: Engine) -> str:
    """How ``plan`` names the warehouse-written path of this engine."""
    writer = engine.native_writer()
    return writer.label if writer is not None else "streamed"


def folders_sql(engine: Engine, spec: TableSpec, keys: list[str]) -> str | None:
    """An aggregate estimating how many folders the slice fills, over its partition
    key columns ``keys``, when the engine's writer asks for it; None otherwise."""
    writer = engine.native_writer()
    return writer.folders_sql(spec, keys) if writer is not None else None


def read_back(
    path: Path, staged_key: str | None = None, hashed: tuple[str, int] | None = None
) -> WrittenFile:
    """A warehouse-written file as a WrittenFile: sha256 of the stored bytes (``hashed``:
    already read back while the warehouse wrote it), rows and uncompressed bytes (the
    row groups' total) from its footer."""
    digest, size = hashed or sha256_of_file(path)
    meta = pq.read_metadata(path)
    raw = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return WrittenFile(
        path, meta.num_rows, size, raw, digest, staged_key=staged_key, read_back=True
    )


def export(
    engine: Engine,
    spec: TableSpec,
    request: ScanRequest,
    store: Store,
    staging: Staging,
    logical_time: datetime,
    scratch: Path,
    expected: pa.Schema,
    tops: list[str | None] | None = None,
) -> Outcome:
    """Let the warehouse write the slice into staging: the staged files as
    ``(folder, WrittenFile)`` pairs and the job ids, or why it could not after all
    (it would store a column as another type than ``expected``; nothing is staged).
    ``tops``: the slice's top-level time folders (DuckDB writes a time-partitioned
    slice folder by folder)."""
    writer = engine.native_writer()
    if writer is None:
        return "this engine streams every export"
    return writer.export(spec, request, store, staging, logical_time, scratch, expected, tops)

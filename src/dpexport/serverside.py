"""The warehouse writes the files itself into ``_staging/``: BigQuery ``EXPORT DATA``,
or DuckDB ``COPY``.

For a slice that needs no row transforms, the warehouse encodes the Parquet files
on its side (BigQuery shards the export; DuckDB encodes row groups on all its
threads); dpexport then hashes each staged file, reads its row count from the
Parquet footer, and hands the files to the same commit protocol as the streamed
path. Whether a table can go this way is decided in one place per engine
(``engines.bigquery_export.server_side_reason``, ``engines.duckdb_copy.copy_reason``)
and shown by ``plan``.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dpexport import layout
from dpexport.commit import Staging
from dpexport.config.spec import TableSpec
from dpexport.engines.base import ScanRequest, quote_identifier
from dpexport.formats.base import WrittenFile
from dpexport.router import Folder
from dpexport.storage.base import Store, innermost
from dpexport.storage.local import LocalStore, local_copy
from dpexport.storage.uri import parse_uri
from dpexport.verification import sha256_of_file

#: what ``export`` returns: the staged files and job ids, or why it could not after all
Outcome = tuple[list[tuple[Folder, WrittenFile]], list[str]] | str


def reason_not_to(
    engine: Any,
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
    name = getattr(engine, "name", "")
    if name == "duckdb":
        from dpexport.engines.duckdb_copy import copy_reason

        reason = copy_reason(
            spec,
            transforms_needed=transforms,
            client_side_encryption=encrypts,
            rows=rows,
            folders=folders,
            tops=tops,
        )
    elif name == "bigquery":
        from dpexport.engines.bigquery_export import server_side_reason

        reason = server_side_reason(
            spec, spec.destination, transforms_needed=transforms, client_side_encryption=encrypts
        )
    else:
        return f"the {name or 'engine'} engine streams every export"
    if reason is None and checks:
        return "named data checks observe the streamed rows"
    return reason


def path_name(engine: Any) -> str:
    """How ``plan`` names the warehouse-written path of this engine."""
    if getattr(engine, "name", "") == "duckdb":
        return "DuckDB COPY (DuckDB writes the Parquet files)"
    return "server-side (BigQuery EXPORT DATA)"


def folders_sql(engine: Any, spec: TableSpec, keys: list[str]) -> str | None:
    """An aggregate estimating how many folders the slice fills, over its partition
    key columns ``keys``, when the warehouse might write it partitioned (DuckDB, which
    does so only for folders big enough: ``copy_reason``); None when nothing asks."""
    if getattr(engine, "name", "") != "duckdb" or spec.format != "PARQUET" or not keys:
        return None
    return "approx_count_distinct(hash(" + ", ".join(quote_identifier(k) for k in keys) + "))"


def _duckdb_export(
    engine: Any,
    spec: TableSpec,
    request: ScanRequest,
    staging: Staging,
    logical_time: datetime,
    expected: pa.Schema,
    tops: list[str | None] | None,
) -> list[tuple[Folder, WrittenFile]] | str:
    """Let DuckDB write the slice into staging; the files as ``(folder, WrittenFile)``,
    or why it could not match the streamed schema (then nothing is staged)."""
    from dpexport.engines.duckdb_copy import copy_parquet

    files = copy_parquet(engine, request, spec, staging.local_dir / "duckdb", expected, tops)
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
        out.append((Folder(top, sub), _read_back(path, hashed=(copied.sha256, copied.size))))
    return out


def _read_back(
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
    engine: Any,
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
    (DuckDB would store a column as another type than ``expected``; nothing is staged).
    ``tops``: the slice's top-level time folders (DuckDB writes a time-partitioned
    slice folder by folder)."""
    if getattr(engine, "name", "") == "duckdb":
        copied = _duckdb_export(engine, spec, request, staging, logical_time, expected, tops)
        return copied if isinstance(copied, str) else (copied, [])
    return _bigquery_export(engine, spec, request, store, staging, logical_time, scratch)


def _bigquery_export(
    engine: Any,
    spec: TableSpec,
    request: ScanRequest,
    store: Store,
    staging: Staging,
    logical_time: datetime,
    scratch: Path,
) -> tuple[list[tuple[Folder, WrittenFile]], list[str]]:
    """Run EXPORT DATA into the export's staging prefix."""
    from dpexport.engines.bigquery_export import export_server_side

    base = innermost(store)
    bucket = parse_uri(spec.destination).bucket
    staging_uri = f"gs://{bucket}/{staging.prefix}"

    def make_folder(prefix_uri: str) -> None:
        # bqemulator (under --local-root) writes only into folders that exist
        if isinstance(base, LocalStore):
            (base.root / parse_uri(prefix_uri).key).mkdir(parents=True, exist_ok=True)

    result = export_server_side(
        engine, request, staging_uri, compression=spec.compression, before_export=make_folder
    )
    written: list[tuple[Folder, WrittenFile]] = []
    for staged in result.folders:
        top = staged.folder or layout.time_folder(logical_time, "daily")
        prefix = parse_uri(staged.prefix).key
        for obj in store.list(prefix):
            name = obj.key[len(prefix) :]
            if "/" in name or not (name.startswith("part-") and name.endswith(".parquet")):
                continue  # our own staging documents, or another folder's files
            local, _ = local_copy(store, obj.key, scratch / "server-side")
            written.append((Folder(top), _read_back(local, obj.key)))
    return written, [s.job_id for s in result.folders]

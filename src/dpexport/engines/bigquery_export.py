"""Server-side export: BigQuery writes the data files itself (``EXPORT DATA``).

For a large slice without row transforms, streaming every row through this machine is
wasted work: BigQuery can write Parquet to ``gs://`` in parallel on its side. This
module decides when that is possible (:func:`server_side_reason`, the one place that
says so, shown by ``plan``) and runs it (:func:`export_server_side`): one
``EXPORT DATA OPTIONS(uri=..., format=..., compression=...) AS SELECT ...`` per
top-level time folder, the slice, de-duplication and partition expressions in SQL,
into the store's ``_staging/`` prefix. dpexport then names, hashes, verifies and
commits the staged files through the ordinary commit protocol; the job ids go into
the manifest's ``metadata.bigquery_job_id``.

What stays on the streamed path, and why, is listed in :func:`server_side_reason`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from dpexport.config.spec import TableSpec
from dpexport.engines import bigquery_sql as bsql
from dpexport.engines.base import ScanRequest
from dpexport.errors import InvalidArgument
from dpexport.storage import layout

if TYPE_CHECKING:
    from dpexport.engines.base import Outcome
    from dpexport.engines.bigquery import BigQueryEngine
    from dpexport.publish.commit import Staging
    from dpexport.storage.base import Store

__all__ = [
    "SERVER_SIDE_CODECS",
    "BigQueryExportData",
    "ServerSideExport",
    "StagedFolder",
    "export_server_side",
    "server_side_reason",
]

#: Parquet codecs EXPORT DATA writes (NONE: the option is left out).
SERVER_SIDE_CODECS = {"SNAPPY": "SNAPPY", "GZIP": "GZIP", "ZSTD": "ZSTD", "NONE": None}


def server_side_reason(
    spec: TableSpec,
    store_uri: str,
    transforms_needed: bool | Sequence[str] = False,
    *,
    client_side_encryption: bool = False,
) -> str | None:
    """Why this table cannot be exported by BigQuery itself, or ``None`` if it can.

    ``store_uri`` is the destination as the config names it (``gs://...``; under
    ``--local-root`` still the ``gs://`` URI: the emulator writes it to the local
    root). ``transforms_needed`` is true (or lists the transforms) when rows must be
    changed in Python before they are written.
    """
    scheme = store_uri.split("://", 1)[0].lower() if "://" in store_uri else "file"
    if scheme != "gs":
        where = {"s3": "S3", "az": "Azure", "file": "a local folder"}.get(scheme, scheme)
        return f"EXPORT DATA writes only to gs://, the destination is {where}"
    if spec.format != "PARQUET":
        return (
            f"{spec.format}: BigQuery's text output does not follow the contract "
            "(TIMESTAMP as '... UTC' instead of RFC 3339 with Z; CSV quotes by doubling, "
            "writes NULL as an empty field)"
        )
    if spec.compression not in SERVER_SIDE_CODECS:
        return f"BigQuery cannot write {spec.compression} Parquet"
    if transforms_needed:
        what = (
            ", ".join(transforms_needed)
            if not isinstance(transforms_needed, bool)
            else "row transforms"
        )
        return f"{what} run in dpexport, on the streamed rows"
    if spec.gdpr:
        return "GDPR anonymization/exclusion runs in dpexport, on the streamed rows"
    if spec.schema_evolution.enabled:
        return f"the {spec.schema_evolution.version_column} column is added in dpexport"
    if client_side_encryption:
        return "files are encrypted client-side"
    if spec.partitioning.sub_partitions:
        names = ", ".join(s.name for s in spec.partitioning.sub_partitions)
        return f"sub-folder layout ({names}) needs one export per folder combination"
    return None


@dataclass(frozen=True)
class StagedFolder:
    """What one EXPORT DATA job wrote: the layout folder it belongs to (``2025/09/16``,
    or ``""`` when the table is laid out by the logical date), the ``gs://`` prefix its
    files start with, the job id, and the rows BigQuery reported (``None`` if it did not)."""

    folder: str
    prefix: str
    job_id: str
    rows: int | None


@dataclass
class ServerSideExport:
    """Every EXPORT DATA job of one export."""

    folders: list[StagedFolder] = field(default_factory=list)

    @property
    def job_ids(self) -> list[str]:
        return [f.job_id for f in self.folders]

    @property
    def rows(self) -> int | None:
        counts = [f.rows for f in self.folders]
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)


def _options(uri: str, compression: str) -> str:
    parts = [f"uri={bsql.literal(uri)}", "format='PARQUET'", "overwrite=true"]
    codec = SERVER_SIDE_CODECS.get(compression)
    if compression not in SERVER_SIDE_CODECS:
        raise InvalidArgument(f"EXPORT DATA cannot write {compression} Parquet")
    if codec is not None:
        parts.append(f"compression={bsql.literal(codec)}")
    return ", ".join(parts)


def export_server_side(
    engine: BigQueryEngine,
    request: ScanRequest,
    staging_uri: str,
    *,
    compression: str = "SNAPPY",
    before_export: Callable[[str], None] | None = None,
) -> ServerSideExport:
    """Run EXPORT DATA for ``request`` into ``staging_uri`` (a ``gs://`` prefix ending
    in ``/``): one job per top-level time folder, files
    ``{staging_uri}{folder}/part-NNNNNNNNNNNN.parquet`` (``_null_`` for a NULL time).

    The request is the one the streamed path would scan (``plan.request``): its
    ``__dp_k0`` extra gives the folders; other ``__dp_`` keys are refused (sub-folder
    layouts stay streamed). The files hold the request's source columns only.
    ``before_export(prefix)`` runs before each job (bqemulator writes only into a
    folder that exists: under ``--local-root`` the caller creates it).
    """
    if not staging_uri.startswith("gs://") or not staging_uri.endswith("/"):
        raise InvalidArgument(f"staging URI must be a gs:// prefix ending in '/': {staging_uri}")
    table = f"{request.dataset}.{request.table}"
    if set(request.extra) - {layout.TIME_KEY}:
        raise InvalidArgument("server-side export handles the time folder key only", table=table)
    engine.read_path(request)  # checks every column name up front
    plain = dataclasses.replace(request, order_by=())
    result = ServerSideExport()
    if layout.TIME_KEY not in request.extra:
        result.folders.append(
            _export_one(engine, plain, staging_uri, "", None, compression, before_export)
        )
        return result
    inner = bsql.render_select(plain, project=engine.project)
    key = bsql.quote_identifier(layout.TIME_KEY)
    _, rows = engine.run_query(
        f"SELECT DISTINCT {key} AS k FROM ({inner}) ORDER BY k",
        f"listing the folders of {table} failed",
        table=table,
    )
    for row in rows:
        value = row["k"]
        folder = layout.time_segment(value)
        result.folders.append(
            _export_one(engine, plain, staging_uri, folder, value, compression, before_export)
        )
    return result


def _export_one(
    engine: BigQueryEngine,
    request: ScanRequest,
    staging_uri: str,
    folder: str,
    key_value: object,
    compression: str,
    before_export: Callable[[str], None] | None,
) -> StagedFolder:
    table = f"{request.dataset}.{request.table}"
    prefix = f"{staging_uri}{folder}/" if folder else staging_uri
    inner = bsql.render_select(request, project=engine.project)
    if layout.TIME_KEY in request.extra:
        key = bsql.quote_identifier(layout.TIME_KEY)
        match = f"{key} IS NULL" if key_value is None else f"{key} = {bsql.literal(key_value)}"
        select = f"SELECT * EXCEPT ({key}) FROM ({inner}) WHERE {match}"
    else:
        select = inner
    if before_export is not None:
        before_export(prefix)
    sql = f"EXPORT DATA OPTIONS({_options(prefix + 'part-*.parquet', compression)}) AS {select}"
    job, _ = engine.run_query(sql, f"EXPORT DATA of {table} failed", table=table)
    stats = (job._properties.get("statistics") or {}).get("query") or {}
    export_stats = stats.get("exportDataStatistics") or {}
    raw_rows = export_stats.get("rowCount")
    return StagedFolder(
        folder, prefix, str(job.job_id), int(raw_rows) if raw_rows is not None else None
    )


class BigQueryExportData:
    """BigQuery writing a slice's Parquet files itself (``Engine.native_writer``)."""

    label = "server-side (BigQuery EXPORT DATA)"

    def __init__(self, engine: BigQueryEngine) -> None:
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
        return server_side_reason(
            spec, spec.destination, transforms_needed=transforms, client_side_encryption=encrypts
        )

    def schema_reason(
        self, spec: TableSpec, request: ScanRequest, expected: pa.Schema, directory: Path
    ) -> str | None:
        return None  # the Parquet types of EXPORT DATA are the Storage Read API's

    def folders_sql(self, spec: TableSpec, keys: list[str]) -> str | None:
        return None

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
        """Run EXPORT DATA into the export's staging prefix; the staged files, hashed and
        counted from their stored bytes, and the job ids."""
        from dpexport.formats.router import Folder
        from dpexport.planning.serverside import read_back
        from dpexport.storage.base import innermost
        from dpexport.storage.local import LocalStore, local_copy
        from dpexport.storage.uri import parse_uri

        base = innermost(store)
        staging_uri = f"gs://{parse_uri(spec.destination).bucket}/{staging.prefix}"

        def make_folder(prefix_uri: str) -> None:
            # bqemulator (under --local-root) writes only into folders that exist
            if isinstance(base, LocalStore):
                (base.root / parse_uri(prefix_uri).key).mkdir(parents=True, exist_ok=True)

        result = export_server_side(
            self.engine,
            request,
            staging_uri,
            compression=spec.compression,
            before_export=make_folder,
        )
        written = []
        for staged in result.folders:
            top = staged.folder or layout.time_folder(logical_time, "daily")
            prefix = parse_uri(staged.prefix).key
            for obj in store.list(prefix):
                name = obj.key[len(prefix) :]
                if "/" in name or not (name.startswith("part-") and name.endswith(".parquet")):
                    continue  # our own staging documents, or another folder's files
                local, _ = local_copy(store, obj.key, scratch / "server-side")
                written.append((Folder(top), read_back(local, obj.key)))
        return written, [s.job_id for s in result.folders]

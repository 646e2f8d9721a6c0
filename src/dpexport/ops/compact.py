"""``dpexport compact``: fold an INCREMENTAL table's exports into one snapshot.

The increments (every file of every manifest that a SUCCESS marker lists under the
table's destination) are loaded into a scratch DuckDB database, folded to the newest
row per merge key by the change column, and exported from there as a FULL_REFRESH
snapshot under ``{destination}__snapshot/{yyyy}/{MM}/{dd}/`` (beside the increments, so a
glob over the destination reads each row once) through the same commit
protocol, which retires the previous snapshot once the new one is committed
(CONTRACT §8). The increments stay. It holds the table's lease from listing the
increments to committing the snapshot, so a run of the table meanwhile is skipped ("in
progress elsewhere") and every increment is either folded or started after the snapshot.

Each increment is read as the Arrow schema its manifest records
(:mod:`dpexport.ops.compact_types`), into a table of the newest increment's columns, so
the snapshot has the source's types and no new schema version.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from dpexport.config.spec import Partitioning, ResolvedConfig, TableSpec
from dpexport.engines.duckdb import DuckDBEngine, quote_identifier
from dpexport.errors import NotFound, UsageError
from dpexport.flow.context import ExportResult, RunOptions
from dpexport.flow.runner import run_exports, table_lease
from dpexport.formats import read_file
from dpexport.ops.compact_types import IncrementTypes, drift, increment_types, without
from dpexport.publish.committed import CommittedFile, committed_files
from dpexport.publish.tokens import Lease
from dpexport.reliability import places
from dpexport.security.crypto import KeyProvider, LocalKeyProvider
from dpexport.security.identity import identity_of
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.storage.uri import StoreResolver, parse_uri

log = logging.getLogger(__name__)


def compact(
    config: ResolvedConfig,
    table: str,
    *,
    at: datetime | None,
    local_root: Path | None,
    principal: str | None = None,
) -> ExportResult:
    """Fold ``table``'s increments into a snapshot, as ``principal`` (its export-log
    record says so); returns the snapshot's export result."""
    spec = config.table(table)
    if spec.mode != "INCREMENTAL" or not spec.merge_key:
        raise UsageError(  # a usage error (exit 2), found before anything is read or written
            f"compact folds INCREMENTAL exports by their merge key; {spec.qualified_name} is "
            f"{spec.mode}" + ("" if spec.merge_key else " without a merge_key")
        )
    where = parse_uri(spec.destination)
    if where.scheme != "file" and not where.key.strip("/"):
        raise UsageError(  # its snapshot would be a sibling of the bucket: another bucket
            f"compact writes {spec.qualified_name}'s snapshot beside its destination, but "
            f"{spec.destination} is a bucket root; give the table a folder in the bucket"
        )
    stores = StoreResolver(local_root, identity=identity_of(config.service_accounts, principal))
    store, dest_key = stores.resolve(spec.destination)
    dest_key = dest_key if not dest_key or dest_key.endswith("/") else dest_key + "/"
    # The table's lease, held from listing the increments to committing the snapshot: an
    # increment committed in between would be in neither the snapshot nor, for it started
    # before the snapshot, the increments ``files`` lists beside it (ops/files.py).
    export_id = layout.new_export()[2]  # the lease's holder until the snapshot's export
    lease = table_lease(config, places.tokens_place(config, store, stores.resolve), spec, export_id)
    acquired, holder = lease.acquire()
    if not acquired:
        return ExportResult(spec.table, holder, "SKIPPED", reason="in progress elsewhere")
    try:
        return _fold(config, spec, store, dest_key, stores, at, local_root, principal, lease)
    finally:
        lease.release()


def _fold(
    config: ResolvedConfig,
    spec: TableSpec,
    store: Store,
    dest_key: str,
    stores: StoreResolver,
    at: datetime | None,
    local_root: Path | None,
    principal: str | None,
    lease: Lease,
) -> ExportResult:
    """Compact's work under the table's lease: list, load, export the snapshot."""
    files = committed_files(store, dest_key)
    if not files:
        raise NotFound(
            f"no committed exports to compact under {spec.destination}", table=spec.qualified_name
        )
    provider = LocalKeyProvider(local_root / "kms") if local_root else None
    types = increment_types(store, files)
    evolution = spec.schema_evolution
    # the snapshot export adds the version column again (its version: the newest schema's)
    version_column = evolution.version_column if evolution.enabled else None
    with tempfile.TemporaryDirectory(prefix="dpexport-compact-") as scratch:
        db = Path(scratch) / "increments.duckdb"
        con = duckdb.connect(str(db))
        try:
            _load(con, spec, store, files, types, version_column, provider)
        finally:
            con.close()
        snapshot = dataclasses.replace(
            spec,
            mode="FULL_REFRESH",
            destination=layout.snapshot_destination(spec.destination),
            partitioning=Partitioning(),
            validation=(),
            gdpr=None,  # the increments are already anonymized
            # the increments' schema, kept: a version it already has, not a check of it
            schema_evolution=dataclasses.replace(evolution, backward_compatible=False),
        )
        folded = dataclasses.replace(config, tables=(snapshot,))
        engine = DuckDBEngine(db)
        try:
            if types.target is not None:
                _warn_of_drift(without(types.target, version_column), engine, spec)
            [result] = run_exports(
                folded,
                engine,
                RunOptions(
                    tables=(snapshot.table,),
                    at=at,
                    trigger="manual",
                    principal=principal,
                    local_root=local_root,
                    held_lease=lease,
                ),
            )
        finally:
            engine.close()
    return result


def _load(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    store: Store,
    files: list[CommittedFile],
    types: IncrementTypes,
    version_column: str | None,
    provider: KeyProvider | None,
) -> None:
    """Every increment into one table of the scratch database, folded to the newest row
    per merge key: its columns are the newest recorded schema's when there is one (each
    increment read as its own recorded types, DuckDB converting an older one's)."""
    ds, tb = quote_identifier(spec.dataset), quote_identifier(spec.table)
    con.execute(f"CREATE SCHEMA {ds}")
    created = types.target is not None
    if types.target is not None:
        con.register("increment", without(types.target, version_column).empty_table())
        con.execute(f"CREATE TABLE {ds}.raw AS SELECT * FROM increment")
        con.unregister("increment")
    for f in files:
        with store.open_read(f.key) as fh:
            increment = read_file(
                fh,
                f.format,
                f.codec,
                csv=f.csv,
                jsonl=f.jsonl,
                schema=types.by_manifest[f.manifest],
                decryptor=provider,
            )
        if version_column in increment.column_names:
            increment = increment.drop_columns([version_column])
        con.register("increment", increment)
        verb = f"INSERT INTO {ds}.raw BY NAME" if created else f"CREATE TABLE {ds}.raw AS"
        con.execute(f"{verb} SELECT * FROM increment")
        con.unregister("increment")
        created = True
    cursor = spec.change_column or spec.partitioning.time_expression
    keys = ", ".join(quote_identifier(k) for k in spec.merge_key)
    con.execute(
        f"CREATE TABLE {ds}.{tb} AS SELECT * FROM {ds}.raw QUALIFY row_number() OVER "
        f"(PARTITION BY {keys} ORDER BY {quote_identifier(str(cursor))} DESC) = 1"
    )
    con.execute(f"DROP TABLE {ds}.raw")


def _warn_of_drift(expected: pa.Schema, engine: DuckDBEngine, spec: TableSpec) -> None:
    """Say which columns the scratch database could not keep as the increments' types
    (a DECIMAL wider than DuckDB's 38 digits), so the new schema version is explained."""
    changed = drift(expected, engine.schema(spec.dataset, spec.table))
    if changed:
        log.warning(
            "compact: %s's snapshot cannot keep the increments' types of %s; the snapshot "
            "records a new schema version",
            spec.qualified_name,
            ", ".join(changed),
        )

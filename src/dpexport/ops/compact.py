"""``dpexport compact``: fold an INCREMENTAL table's exports into one snapshot.

The increments (every file of every manifest that a SUCCESS marker lists under the
table's destination) are loaded into a scratch DuckDB database, folded to the newest
row per merge key by the change column, and exported from there as a FULL_REFRESH
snapshot under ``{destination}__snapshot/{yyyy}/{MM}/{dd}/`` (beside the increments, so a
glob over the destination reads each row once) through the same commit
protocol, which retires the previous snapshot once the new one is committed
(CONTRACT §8). The increments stay.
"""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import datetime
from pathlib import Path

import duckdb

from dpexport.config.spec import (
    Partitioning,
    ResolvedConfig,
    SchemaEvolution,
)
from dpexport.engines.duckdb import DuckDBEngine, quote_identifier
from dpexport.errors import NotFound, UsageError
from dpexport.flow.context import ExportResult, RunOptions
from dpexport.flow.runner import run_exports
from dpexport.formats import read_file
from dpexport.publish.committed import committed_files
from dpexport.security.crypto import LocalKeyProvider
from dpexport.security.identity import identity_of
from dpexport.storage import layout
from dpexport.storage.uri import StoreResolver, parse_uri


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
    cursor = spec.change_column or spec.partitioning.time_expression
    stores = StoreResolver(local_root, identity=identity_of(config.service_accounts, principal))
    store, dest_key = stores.resolve(spec.destination)
    dest_key = dest_key if not dest_key or dest_key.endswith("/") else dest_key + "/"
    files = committed_files(store, dest_key)
    if not files:
        raise NotFound(
            f"no committed exports to compact under {spec.destination}", table=spec.qualified_name
        )
    provider = LocalKeyProvider(local_root / "kms") if local_root else None
    with tempfile.TemporaryDirectory(prefix="dpexport-compact-") as scratch:
        db = Path(scratch) / "increments.duckdb"
        con = duckdb.connect(str(db))
        ds, tb = quote_identifier(spec.dataset), quote_identifier(spec.table)
        con.execute(f"CREATE SCHEMA {ds}")
        for i, f in enumerate(files):
            with store.open_read(f.key) as fh:
                increment = read_file(
                    fh, f.format, f.codec, csv=f.csv, jsonl=f.jsonl, decryptor=provider
                )
            con.register("increment", increment)
            verb = f"CREATE TABLE {ds}.raw AS" if i == 0 else f"INSERT INTO {ds}.raw BY NAME"
            con.execute(f"{verb} SELECT * FROM increment")
            con.unregister("increment")
        keys = ", ".join(quote_identifier(k) for k in spec.merge_key)
        con.execute(
            f"CREATE TABLE {ds}.{tb} AS SELECT * FROM {ds}.raw QUALIFY row_number() OVER "
            f"(PARTITION BY {keys} ORDER BY {quote_identifier(str(cursor))} DESC) = 1"
        )
        con.execute(f"DROP TABLE {ds}.raw")
        con.close()
        snapshot = dataclasses.replace(
            spec,
            mode="FULL_REFRESH",
            destination=layout.snapshot_destination(spec.destination),
            partitioning=Partitioning(),
            validation=(),
            gdpr=None,  # the increments are already anonymized
            schema_evolution=SchemaEvolution(enabled=False),
        )
        folded = dataclasses.replace(config, tables=(snapshot,))
        engine = DuckDBEngine(db)
        try:
            [result] = run_exports(
                folded,
                engine,
                RunOptions(
                    tables=(snapshot.table,),
                    at=at,
                    trigger="manual",
                    principal=principal,
                    local_root=local_root,
                ),
            )
        finally:
            engine.close()
    return result

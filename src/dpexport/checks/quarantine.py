"""Rows a data check kept out of an export (``on_fail: quarantine``, CONTRACT §9) go to
``dead-letter-queue/quarantined_rows/{export_id}/{entity}.jsonl.gz`` (under the DLQ's
``storage_location`` when one is set: ``root``)."""

from __future__ import annotations

import logging
from pathlib import Path

from dpexport.config.spec import TableSpec
from dpexport.engines.base import Engine, ScanRequest
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.transforms.pipeline import Transforms

log = logging.getLogger("dpexport.flow.runner")


def write_quarantine(
    engine: Engine,
    spec: TableSpec,
    store: Store,
    export_id: str,
    request: ScanRequest | None,
    transforms: Transforms,
    scratch: Path,
    *,
    root: str = layout.DLQ_PREFIX,
) -> None:
    """Rows a check kept out go to the DLQ, anonymized like the export (CONTRACT §9)."""
    if request is None:
        return
    from dpexport.config.spec import JsonlOptions
    from dpexport.formats import open_writer as open_format_writer

    path = scratch / f"{spec.table}.jsonl.gz"
    writer = None
    for batch in engine.scan(request):
        data = batch.select([n for n in batch.schema.names if not n.startswith("__dp_")])
        data = transforms.apply(data)
        if writer is None:
            writer = open_format_writer(
                path,
                data.schema,
                "JSONL",
                "GZIP",
                parquet=spec.parquet,
                jsonl=JsonlOptions(),
                csv=spec.csv,
            )
        writer.write_batch(data)
    if writer is None:
        return
    written = writer.close()
    if written.rows:
        key = layout.quarantine_key(export_id, spec.table, root)
        store.put_file(key, path)
        log.warning(
            "%s: %d row(s) quarantined to %s",
            spec.qualified_name,
            written.rows,
            store.uri(key),
        )

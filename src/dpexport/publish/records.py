"""What an export leaves besides its data: FAILURE markers and export-log records."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dpexport.errors import DpexportError
from dpexport.publish.manifest import dumps, failure_marker, rfc3339
from dpexport.storage import layout

if TYPE_CHECKING:
    from dpexport.flow.context import ExportResult
    from dpexport.flow.export import Export

log = logging.getLogger("dpexport.flow.runner")


def mark_failure(export: Export, message: str, retry_count: int, next_retry: datetime) -> None:
    """FAILURE in each top-level folder the export touched (its logical day when none):
    the newest export into them failed before its commit point; none when spec 5.2's
    ``failure_handling`` leaves out ``create_failure_marker``."""
    if not export.ctx.config.steps.failure_marker:
        return
    repair = export.spec.repair
    fallback = repair.folder if repair else layout.time_folder(export.ctx.logical_time, "daily")
    folders = export.folders_touched or {fallback}
    now = datetime.now(UTC)
    for top in sorted(folders):
        key = layout.folder_key(export.dest_key, top) + layout.FAILURE
        doc = failure_marker(
            timestamp=now,
            error=message,
            retry_count=retry_count,
            next_retry=next_retry,
        )
        try:
            export.store.put_bytes(key, dumps(doc))
        except DpexportError as exc:
            log.error("could not write %s: %s", key, exc)


def _attempt_cost(export: Export) -> dict[str, Any]:
    """The cost of an attempt that published nothing: the warehouse jobs it ran (taken
    off the meter, so the next attempt is not charged them)."""
    from dpexport.ops import cost

    spec, ctx = export.spec, export.ctx
    billed, jobs = cost.warehouse_billed(ctx.engine, spec.qualified_name)
    usage = cost.Usage(ctx.engine.name, billed, jobs, cost.store_of(spec.destination))
    return cost.estimate(usage, cost.price_table(ctx.config.pricing))


def log_record(export: Export, result: ExportResult, duration_ms: int) -> None:
    """One export-log record per attempt: in the bucket, and in the warehouse where it
    keeps one. A failure to write it is logged; it never changes the result."""
    spec = export.spec
    record = {
        "export_id": result.export_id,
        "table_name": spec.table,
        "dataset": spec.dataset,
        "status": result.status,
        "export_timestamp": rfc3339(export.start),
        "logical_time": rfc3339(export.ctx.logical_time),
        "mode": spec.mode,
        "format": spec.format,
        "compression": spec.compression,
        "destination": spec.destination,
        "rows": result.rows,
        "files": result.files,
        "manifests": result.manifests,
        "duration_ms": duration_ms,
        "trigger": export.ctx.options.trigger,
        #: who the export acted as (CONTRACT §11; ``dpexport`` without service_accounts)
        "principal": export.ctx.options.principal or "dpexport",
        "error": result.error,
        "null_cursor_rows": export.null_cursor_rows,
        "path": export.path,
        "retry_count": export.retrier.retry_count if export.retrier else 0,
        "retries": export.retrier.history_json() if export.retrier else [],
        "cost_usd": result.cost_usd or export.cost_usd or _attempt_cost(export),
        #: every alert this export sent, and how (CONTRACT §10)
        "alerts": [d.to_json() for d in result.alerts or []],
    }
    if spec.repair is not None:  # ``reconcile``: the late rows exported into one folder
        record["reconciled_folder"] = spec.repair.folder
        record["late_rows"] = result.rows if result.status == "SUCCESS" else 0
    try:
        export.ctx.engine.write_export_logs([record])
    except DpexportError as exc:
        log.error("could not write the export log to the warehouse: %s", exc)
    key = layout.export_log_key(export.start, str(result.export_id))
    try:
        export.store.put_bytes(key, dumps(record))
    except DpexportError as exc:
        log.error("could not write export log %s: %s", key, exc)

"""``dpexport reconcile``: find rows that arrived after their folder was exported, and
export them into it.

An APPEND or INCREMENTAL export reads the rows whose cursor is past its watermark. A
row that reaches the warehouse late, with a cursor the watermark has already passed
(ingestion lag, a delayed batch), is never read again. Reconciliation compares, for
each time folder of a window (``reconcile: 7 days`` per table, ``--days``), the rows
the warehouse holds for that partition value with the rows the folder's committed
manifests published: one aggregate query for the whole window, and the folders'
SUCCESS markers and manifests.

- The rows compared are those the regular exports will never read again: a cursor at
  or before the watermark less the lookback (or the de-duplication window), so a row
  is never offered by both; only folders that end by then are compared.
- More rows in the warehouse: late rows. With a key (``deduplication: by K``, an
  INCREMENTAL ``merge_key``) the rows whose key the folder's committed files do not
  hold are exported into it, beside its files; without one the folder is published
  again whole, replacing its files atomically (as a partition overwrite). Either way
  through the export's own commit protocol, token and lease, with ``trigger:
  reconcile`` in the manifest and the export log, and ``late_rows`` in the log record.
  The watermark and the de-duplication state are left as they were.
- Fewer rows in the warehouse: rows deleted at the source (or, INCREMENTAL, updated
  into a later folder). Reported, never "fixed" by deleting exported data.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from dpexport.config.spec import Repair, ResolvedConfig, TableSpec
from dpexport.engines.base import Engine, Slice
from dpexport.errors import DpexportError, ExportError
from dpexport.flow.context import ExportResult, RunOptions
from dpexport.flow.runner import export_policy, run_exports
from dpexport.planning import folder_scan
from dpexport.planning.plan import ExportPlan, bind_for, dedupe_key, destination_of, make_plan
from dpexport.publish import commit, committed, state
from dpexport.security.identity import identity_of
from dpexport.storage import layout
from dpexport.storage.uri import StoreResolver

log = logging.getLogger(__name__)

MODES = ("APPEND", "INCREMENTAL")


@dataclass
class FolderCount:
    """One folder of the window: the rows the warehouse holds and the rows published."""

    folder: str
    source_rows: int
    published_rows: int
    #: ``ok``, ``late`` (a dry run), ``repaired``, ``failed`` or ``fewer``
    status: str = "ok"
    #: rows the warehouse holds beyond those published
    late_rows: int = 0
    #: rows the repair exported: the late rows, or the whole folder published again
    exported_rows: int = 0
    export_id: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def line(self) -> str:
        counts = f"warehouse {self.source_rows}, published {self.published_rows}"
        if self.status == "fewer":
            return f"{self.folder}  {counts}: rows deleted at the source (nothing changed)"
        if self.status == "late":
            return f"{self.folder}  {counts}: {self.late_rows} late row(s) (dry run)"
        if self.status == "failed":
            return f"{self.folder}  {counts}: FAILED {self.error}"
        how = (
            "exported"
            if self.exported_rows == self.late_rows
            else (f"exported: the folder published again whole, {self.exported_rows} row(s)")
        )
        return f"{self.folder}  {counts}: {self.late_rows} late row(s) {how} ({self.export_id})"


@dataclass
class TableReport:
    table: str
    #: why the table was not compared (None: it was)
    skipped: str | None = None
    window: dict[str, str] | None = None
    folders: list[FolderCount] = field(default_factory=list)
    #: the cursor bound the folders were compared at (``window["through"]`` decoded)
    through: Any = None
    #: why the table could not be compared (its source gone, its state unreadable)
    error: str | None = None

    @property
    def late_rows(self) -> int:
        return sum(f.late_rows for f in self.folders)

    @property
    def folders_changed(self) -> bool:
        """A folder had late rows, fewer rows, or a failed repair."""
        return self.error is not None or any(f.status != "ok" for f in self.folders)

    @property
    def failed(self) -> bool:
        return self.error is not None or any(f.status == "failed" for f in self.folders)

    def line(self) -> str:
        if self.skipped:
            return f"{self.table}: skipped: {self.skipped}"
        if self.error:
            return f"{self.table}: FAILED {self.error}"
        late = sum(1 for f in self.folders if f.status in ("late", "repaired", "failed"))
        return (
            f"{self.table}: {len(self.folders)} folder(s) compared, {late} with late rows, "
            f"{self.late_rows} late row(s)" + ("" if not self.failed else ", some FAILED")
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "skipped": self.skipped,
            "error": self.error,
            "window": self.window,
            "late_rows": self.late_rows,
            "folders": [f.to_json() for f in self.folders if f.status != "ok"],
            "folders_compared": len(self.folders),
        }


def reconcile(
    config: ResolvedConfig,
    engine: Engine,
    *,
    tables: Sequence[str] = (),
    at: datetime | None = None,
    days: int | None = None,
    dry_run: bool = False,
    local_root: Path | None = None,
    trigger: str = "reconcile",
    on_step: Callable[[str], None] | None = None,
    principal: str | None = None,
) -> list[TableReport]:
    """Compare (and, unless ``dry_run``, repair) each selected table's folders over the
    window ending at ``at``; tables without a time partition or in FULL_REFRESH mode
    are reported as skipped. ``on_step`` is each repair's ``RunOptions.on_step``."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    who = identity_of(config.service_accounts, principal)  # CONTRACT §11
    stores = StoreResolver(local_root, export_policy(config), who)
    specs = [config.table(t) for t in tables] if tables else list(config.tables)
    reports = []
    #: store URI -> what its recovery found (``None``: a dry run, which changes nothing)
    recovered: dict[str, list[commit.Recovered]] | None = None if dry_run else {}
    for spec in specs:
        window = timedelta(days=days) if days is not None else spec.reconcile
        try:
            report = _compare(config, engine, stores, spec, at, window, recovered)
        except DpexportError as exc:  # this table cannot be compared; the others can
            log.error("reconcile %s: %s", spec.qualified_name, exc)
            reports.append(TableReport(spec.qualified_name, error=str(exc)))
            continue
        if not dry_run:
            for count in report.folders:
                if count.status == "late":
                    options = RunOptions(
                        tables=(spec.table,),
                        at=at,
                        trigger=trigger,
                        principal=principal,
                        local_root=local_root,
                        on_step=on_step,
                    )
                    _repair(config, engine, spec, count, report, options)
        reports.append(report)
    return reports


def can_reconcile(spec: TableSpec) -> bool:
    """Whether the table can have late rows ``reconcile`` finds in its window."""
    return _skip_reason(spec, spec.reconcile) is None


def _skip_reason(spec: TableSpec, window: timedelta) -> str | None:
    if spec.mode not in MODES:
        return f"{spec.mode}: every export is a whole snapshot, nothing arrives late"
    if not spec.partitioning.time_expression:
        return "no time partition: its folders are export days, not the rows' own days"
    if window <= timedelta(0):
        return "reconcile: 0 days"
    return None


def _compare(
    config: ResolvedConfig,
    engine: Engine,
    stores: StoreResolver,
    spec: TableSpec,
    at: datetime,
    window: timedelta,
    recovered: dict[str, list[commit.Recovered]] | None,
) -> TableReport:
    """The table's folders compared; unless ``recovered`` is None, after what stopped
    exports left in its store is finished or rolled back, once per store and pass (a
    folder is compared as committed)."""
    report = TableReport(spec.qualified_name, _skip_reason(spec, window))
    if report.skipped:
        return report
    store, dest_key = destination_of(stores, spec.destination)
    if recovered is not None:
        if store.uri("") not in recovered:
            recovered[store.uri("")] = commit.recover(store)
            for item in recovered[store.uri("")]:
                log.warning("export %s left by a stopped run was %s", item.export_id, item.outcome)
        _finish_stopped(recovered[store.uri("")], spec)
    schema = engine.schema(spec.dataset, spec.table)
    plan = make_plan(spec, logical_time=at, schema=schema, store=store, dest_key=dest_key)
    through = _settled(plan)
    if through is None:
        report.skipped = "no committed export yet: the next run exports every row"
        return report
    behind = plan.dedup_window or spec.lookback_window
    folders = _window_folders(spec, at - window, _as_time(through), whole=bool(behind))
    report.through = through
    report.window = {
        "from": state.encode_value(at - window),
        "through": state.encode_value(through),
    }
    if not folders:
        return report
    source = _source_counts(engine, spec, plan, schema, folders, through)
    for folder in folders:
        published = committed.published_rows(store, layout.folder_key(dest_key, folder))
        count = FolderCount(folder, source[folder], published)
        if count.source_rows > published:
            count.status, count.late_rows = "late", count.source_rows - published
        elif count.source_rows < published:
            count.status = "fewer"
        report.folders.append(count)
    return report


def _finish_stopped(items: list[commit.Recovered], spec: TableSpec) -> None:
    """What ``commit.recover`` found, as every export runs it first: a committed export of
    this table that cannot be finished stops its comparison (its folders are
    half-published)."""
    for item in items:
        if item.table == spec.qualified_name and item.outcome in ("not finished", "damaged"):
            raise ExportError(
                f"export {item.export_id} of this table committed but cannot be finished: "
                f"{item.error}",
                table=spec.qualified_name,
                code="FAILED_PRECONDITION",
            )


def _settled(plan: ExportPlan) -> Any:
    """The cursor value the regular exports will never read at or before again: the
    watermark less the lookback or de-duplication window (None before any export)."""
    if plan.watermark is None or plan.watermark.value is None:
        return None
    value = plan.watermark.value
    back = plan.dedup_window or plan.spec.lookback_window
    if back and not isinstance(value, int | float):
        value = value - back
    return value


def _as_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise TypeError(f"the cursor {value!r} is not a time")


def _window_folders(spec: TableSpec, start: datetime, settled: datetime, whole: bool) -> list[str]:
    """The time folders from the one holding ``start`` to the last that ends by
    ``settled`` (``whole``), or that begins by it: a folder the regular exports may
    still read rows of (a lookback) is compared only once it is whole, since its
    published rows could hold some past ``settled``."""
    granularity, pattern = spec.partitioning.granularity, spec.partitioning.time_layout
    lo, hi = layout.time_folder_bounds(
        layout.time_folder(_as_time(start), granularity, pattern), granularity, pattern
    )
    out = []
    while hi <= settled or (not whole and lo <= settled):
        out.append(layout.time_folder(lo, granularity, pattern))
        lo, hi = layout.time_folder_bounds(
            layout.time_folder(hi, granularity, pattern), granularity, pattern
        )
    return out


def _source_counts(
    engine: Engine,
    spec: TableSpec,
    plan: ExportPlan,
    schema: pa.Schema,
    folders: list[str],
    through: Any,
) -> dict[str, int]:
    """The rows each folder's partition value holds in the warehouse, as the regular
    export reads them (keys de-duplicated, newest per merge key), in one aggregate."""
    granularity, pattern = spec.partitioning.granularity, spec.partitioning.time_layout
    first, _ = layout.time_folder_bounds(folders[0], granularity, pattern)
    _, last = layout.time_folder_bounds(folders[-1], granularity, pattern)
    cursor = plan.cursor
    kind = schema.field(cursor).type if cursor and cursor in schema.names else None
    upper = Slice(cursor=plan.request.slice.cursor, upper=bind_for(through, kind))
    request = dataclasses.replace(plan.request, slice=upper)
    request = folder_scan.range_request(request, spec.partitioning, schema, first, last)
    exprs = {
        f"f{i}": f"sum(CASE WHEN \"{layout.TIME_KEY}\" = '{folder}' THEN 1 ELSE 0 END)"
        for i, folder in enumerate(folders)
    }
    agg = engine.aggregate(request, exprs)
    return {folder: int(agg[f"f{i}"] or 0) for i, folder in enumerate(folders)}


def _repair(
    config: ResolvedConfig,
    engine: Engine,
    spec: TableSpec,
    count: FolderCount,
    report: TableReport,
    options: RunOptions,
) -> None:
    """Export the folder's late rows through the export's own protocol."""
    keys = dedupe_key(spec) if spec.mode == "APPEND" else spec.merge_key
    repair = Repair(count.folder, report.through, count.source_rows, tuple(keys))
    fixing = dataclasses.replace(spec, repair=repair)
    one = dataclasses.replace(config, tables=(fixing,))
    [result] = run_exports(one, engine, options)
    _record(count, result)


def _record(count: FolderCount, result: ExportResult) -> None:
    count.export_id = result.export_id
    if result.status == "SUCCESS" or result.already_done:
        count.status, count.exported_rows = "repaired", result.rows
    else:
        count.status, count.error = "failed", result.error or result.reason


def rerun(
    config: ResolvedConfig, engine: Engine, table: str, at: datetime, local_root: Path | None
) -> ExportResult:
    """A DLQ entry of a failed repair run again (``dlq retry``): the table's reconcile
    pass at the entry's logical time, as one result (SUCCESS when every late folder
    was repaired, or none is late any more)."""
    [report] = reconcile(config, engine, tables=(table,), at=at, local_root=local_root)
    name = config.table(table).table
    if report.failed:
        errors = [report.error] if report.error else []
        errors += [f"{f.folder}: {f.error}" for f in report.folders if f.status == "failed"]
        return ExportResult(name, None, "FAILURE", error="; ".join(e or "" for e in errors))
    repaired = [f for f in report.folders if f.status == "repaired"]
    export_id = repaired[-1].export_id if repaired else None
    return ExportResult(name, export_id, "SUCCESS", rows=sum(f.exported_rows for f in repaired))


def daily_pass(
    config: ResolvedConfig, engine: Engine, at: datetime, tables: list[str], options: RunOptions
) -> list[TableReport]:
    """The scheduler's daily pass over ``tables`` (logged; each report for its tick)."""
    reports = reconcile(config, engine, tables=tables, at=at, local_root=options.local_root)
    for report in reports:
        log.info("reconcile at %s: %s", at.isoformat(), report.line())
    return reports

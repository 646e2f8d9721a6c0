"""What one query learns of a slice before it is written: its rows, cursor window,
top-level folders and folder estimate, whether its keys repeat (so the de-duplicating
window can be skipped), and the source rows whose cursor is NULL."""

from __future__ import annotations

import dataclasses
import logging
import weakref
from typing import TYPE_CHECKING, Any

from dpexport.config.spec import TableSpec
from dpexport.engines.base import Engine, ScanRequest, quote_identifier
from dpexport.planning import folder_scan, serverside
from dpexport.planning.plan import ExportPlan
from dpexport.publish import state

if TYPE_CHECKING:
    from dpexport.flow.context import Progress

log = logging.getLogger("dpexport.flow.runner")


#: the request as it will be read, and (rows, (window, max cursor), top-level folders,
#: folder estimate)
Stats = tuple[
    ScanRequest,
    tuple[int, tuple[dict[str, Any] | None, Any], list[str | None] | None, int | None],
]


def slice_stats(
    engine: Engine,
    spec: TableSpec,
    request: ScanRequest,
    plan: ExportPlan,
    progress: Progress | None,
) -> Stats:
    """Rows in the slice, its cursor window, (when the slice may be read folder by
    folder, see ``folder_scan``) its top-level folders, and (when DuckDB might write
    a partitioned Parquet slice itself) an estimate of its folders: one aggregate.

    When the request keeps one row per key and the engine's reads are stable, the
    same aggregate counts the slice's distinct keys: with no key repeated, the
    request comes back without the de-duplication, which would keep every row
    anyway (a ``users`` table changes one row per ``user_id``), and the window
    function it costs is saved: a third of a full INCREMENTAL export of 2.5M rows."""
    exprs = {"n": "count(*)"}
    cursor = request.slice.cursor  # the cursor's SQL (a bare column quoted)
    if cursor:
        exprs.update({"lo": f"min({cursor})", "hi": f"max({cursor})"})
    if folder_scan.worth_it(engine, spec.partitioning, request):
        exprs["tops"] = folder_scan.TOPS_SQL
    estimate = serverside.folders_sql(engine, spec, list(request.extra))
    if estimate is not None:
        exprs["folders"] = estimate
    distinct = distinct_keys_sql(engine, request)
    if distinct:
        undeduped = without_dedupe(request)
        agg = engine.aggregate(undeduped, {**exprs, **distinct})
        unique = unique_keys(engine)
        if all(agg[k] == agg["n"] for k in distinct):
            unique[(spec.dataset, spec.table)] = int(agg["n"])
            log.debug(
                "%s: no key repeats among the slice's %d row(s): read without de-duplication by %s",
                spec.qualified_name,
                agg["n"],
                ", ".join(request.newest_by + request.dedupe_by),
            )
            request = undeduped
        else:
            unique.pop((spec.dataset, spec.table), None)
            agg = engine.aggregate(request, exprs)
    else:
        agg = engine.aggregate(request, exprs)
    rows = int(agg["n"])
    if progress:  # the bar starts once the slice is counted (on the
        # counting thread while the warehouse writes the slice: see copy_first)
        progress.start(spec.table, rows)
    tops = agg.get("tops")
    folders = None if agg.get("folders") is None else int(agg["folders"])
    lo, hi = agg.get("lo"), agg.get("hi")
    if not plan.cursor or hi is None:
        return request, (rows, (None, None), tops, folders)
    window = {"from": state.encode_value(lo), "to": state.encode_value(hi)}
    return request, (rows, (window, hi), tops, folders)


def copy_first(
    engine: Engine, spec: TableSpec, request: ScanRequest, reasons: dict[str, bool]
) -> ScanRequest | None:
    """The request the warehouse may write while the slice's stats are counted, on
    the other core, or None when the stats must come first.

    Only on an engine whose reads are stable (the count and the copy see the same
    rows, so the count still checks the copy) and an unpartitioned layout that the
    warehouse writes whatever the slice's size: then the stats decide nothing about
    the copy but whether to keep it. An empty slice's copy is discarded (it streams);
    so is a copy read without de-duplication when a key turns out to repeat, which
    is why that is tried only for a table whose keys did not repeat the last time
    this engine exported it. On two cores both queries compete for the CPU, so it
    saves only part of the stats' time: 1-4 ms of a held scheduler's ~45 ms fire time
    of 1 % of a 2.5 M-row table."""
    parts = spec.partitioning
    if not engine.stable_reads or parts.time_expression or parts.sub_partitions:
        return None
    if serverside.reason_not_to(engine, spec, **reasons) is not None:
        return None
    if not distinct_keys_sql(engine, request):
        return request
    last = unique_keys(engine).get((spec.dataset, spec.table))
    if last is None or last > COPY_FIRST_MAX_ROWS:
        return None  # unknown, or big enough that two queries could crowd memory
    return without_dedupe(request)


def null_cursor_rows(engine: Engine, spec: TableSpec, plan: ExportPlan) -> int:
    """Rows whose cursor is NULL: no watermark is before or after them, so APPEND
    and INCREMENTAL never export them. Counted each run and reported, never silent."""
    cursor = plan.request.slice.cursor
    if not cursor:
        return 0
    probe = ScanRequest(spec.dataset, spec.table, filter=f"({cursor}) IS NULL")
    nulls = int(engine.aggregate(probe, {"n": "count(*)"})["n"] or 0)
    if nulls:
        log.warning(
            "%s: %d row(s) have a NULL cursor (%s) and are not exported by %s: give "
            "them a value, or export the table FULL_REFRESH",
            spec.qualified_name,
            nulls,
            plan.cursor,
            spec.mode,
        )
    return nulls


#: per engine, the tables whose last slice it exported had no repeated key: their rows
_UNIQUE_KEYS: weakref.WeakKeyDictionary[Engine, dict[tuple[str, str], int]] = (
    weakref.WeakKeyDictionary()
)
#: a slice read without de-duplication while its keys are counted is tried only after a
#: slice of at most this many rows (counting distinct keys holds them all in memory)
COPY_FIRST_MAX_ROWS = 1_000_000


def unique_keys(engine: Engine) -> dict[tuple[str, str], int]:
    return _UNIQUE_KEYS.setdefault(engine, {})


def without_dedupe(request: ScanRequest) -> ScanRequest:
    """``request`` without its one-row-per-key window. One place builds it: ``run``
    tells a kept copy from a redone one by comparing two of these."""
    return dataclasses.replace(request, dedupe_by=(), newest_by=())


def distinct_keys_sql(engine: Engine, request: ScanRequest) -> dict[str, str]:
    """``count(DISTINCT key)`` for each one-column key the request de-duplicates by,
    when the engine's reads are stable (a later query sees the rows this one counted)
    and the key is an output column; otherwise nothing. A key with NULLs never counts
    as unique (``count(DISTINCT)`` skips them), so it keeps its de-duplication."""
    keys = [k for k in (request.dedupe_by, request.newest_by) if k]
    outputs = set(request.columns or ()) | set(request.extra)
    if not keys or not engine.stable_reads:
        return {}
    if any(len(k) != 1 or k[0] not in outputs for k in keys):
        return {}
    return {f"keys{i}": f"count(DISTINCT {quote_identifier(k[0])})" for i, k in enumerate(keys)}

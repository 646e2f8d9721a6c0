"""From config, logical time and stored state to what one export will read and write."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dpexport.config.schema_check import dedup_columns
from dpexport.config.spec import TableSpec
from dpexport.engines.base import Engine, ScanRequest, Slice, column_sql
from dpexport.engines.duckdb_layout import partition_key_sql
from dpexport.errors import InvalidArgument
from dpexport.publish import state
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.storage.uri import StoreResolver

if TYPE_CHECKING:
    from dpexport.reliability.places import Place


@dataclass(frozen=True)
class ExportPlan:
    """One table's export at one logical time."""

    spec: TableSpec
    logical_time: datetime
    request: ScanRequest
    cursor: str | None
    watermark: state.Watermark | None
    dedupe_key: tuple[str, ...]
    #: the watermark may not pass this (a DATE cursor's day is not over yet)
    watermark_cap: Any = None
    #: how far back keys published before are remembered for de-duplication
    dedup_window: timedelta | None = None

    @property
    def key_columns(self) -> tuple[str, ...]:
        return tuple(self.request.extra)


def dedupe_key(spec: TableSpec) -> tuple[str, ...]:
    """``deduplication: "by post_id"`` -> (post_id,); "... on consumer side" -> () (the
    consumer de-duplicates). The columns are read by the one parser ``check`` uses."""
    text = spec.deduplication or ""
    if re.search(r"\son\s+consumer\s+side\s*$", text, re.IGNORECASE):
        return ()
    return tuple(dedup_columns(text))


def cursor_of(spec: TableSpec) -> str | None:
    """APPEND's and INCREMENTAL's cursor: ``change_column``, else the partition field."""
    return spec.change_column or spec.partitioning.time_expression


def cursor_kind(arrow_type: pa.DataType | None) -> str | None:
    """How a cursor of this type is kept in JSON (``state.decode_value``'s kinds);
    None when the cursor is an expression whose type the schema does not say."""
    if arrow_type is None:
        return None
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_decimal(arrow_type):
        return "decimal"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "number"
    return "text"


def destination_of(stores: StoreResolver, uri: str) -> tuple[Store, str]:
    """The store of a destination URI and the folder key in it (``""`` or ending in
    ``/``): the key that names the export's state and bounds what it owns."""
    store, key = stores.resolve(uri)
    return store, key if not key or key.endswith("/") else key + "/"


def bind_for(value: Any, arrow_type: pa.DataType | None) -> Any:
    """A bound value matching the cursor column's type (naive UTC for TIMESTAMP)."""
    if value is None or arrow_type is None:
        return value
    if pa.types.is_timestamp(arrow_type) and isinstance(value, datetime):
        if arrow_type.tz is None:
            return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if pa.types.is_date(arrow_type) and isinstance(value, datetime):
        return value.date()
    return value


def _watermark(
    spec: TableSpec,
    store: Store,
    dest_key: str,
    cursor_type: pa.DataType | None,
    logical_time: datetime,
) -> state.Watermark | None:
    """The export's watermark (``state.read_watermark``: checked against its manifest,
    rebuilt from the manifests when it cannot be trusted)."""
    return state.read_watermark(
        store,
        state.watermark_key(spec.dataset, spec.table, dest_key),
        dest_key,
        spec.qualified_name,
        kind=cursor_kind(cursor_type),
        now=max(datetime.now(UTC), logical_time),
    )


def make_plan(
    spec: TableSpec,
    *,
    logical_time: datetime,
    schema: pa.Schema,
    store: Store,
    dest_key: str,
    excluded: tuple[str, ...] = (),
) -> ExportPlan:
    """The scan and slice for one export (CONTRACT §6, §8)."""
    if spec.repair is not None:
        return _repair_plan(spec, logical_time, schema, excluded)
    cursor = cursor_of(spec) if spec.mode != "FULL_REFRESH" else None
    if spec.mode != "FULL_REFRESH" and cursor is None:
        # Without a cursor every run would export the whole table again: duplicates.
        raise InvalidArgument(
            f"{spec.mode} needs a cursor to know which rows are new: set change_column "
            "or partitioning.field for this table",
            table=spec.qualified_name,
        )
    cursor_type = schema.field(cursor).type if cursor and cursor in schema.names else None
    mark = _watermark(spec, store, dest_key, cursor_type, logical_time) if cursor else None
    lower: Any = None
    if mark is not None and mark.value is not None:
        lower = mark.value
        if spec.lookback_window is not None and not isinstance(lower, int | float):
            lower = lower - spec.lookback_window
            if (
                isinstance(lower, datetime)
                and cursor_type is not None
                and pa.types.is_date(cursor_type)
            ):
                lower = lower.date()
    upper: Any = logical_time if cursor else None
    dedupe = dedupe_key(spec) if spec.mode == "APPEND" else ()
    cap: Any = None
    window = spec.lookback_window
    if spec.mode == "APPEND" and cursor_type is not None and pa.types.is_date(cursor_type):
        # A DATE cursor cannot tell the rows of today seen now from those still to come.
        # With a key to de-duplicate by, today is exported now and read again next time
        # (the watermark stays at yesterday; the published keys are remembered); without
        # one, only complete days are exported. Either way no row of today is lost.
        yesterday = logical_time.astimezone(UTC).date() - timedelta(days=1)
        if dedupe:
            cap = yesterday
            window = max(window or timedelta(0), timedelta(days=1))
        else:
            upper = yesterday
    # SQL of the cursor: a bare column name is quoted (a column named "at" is a keyword)
    cursor_sql = column_sql(cursor, schema.names) if cursor else None
    the_slice = Slice(
        cursor=cursor_sql,
        lower=bind_for(lower, cursor_type),
        upper=bind_for(upper, cursor_type),
        # INCREMENTAL re-reads its lookback from the watermark on (CONTRACT §6: >=)
        lower_inclusive=spec.mode == "INCREMENTAL",
    )
    request = _request(spec, schema, excluded, the_slice, dedupe)
    return ExportPlan(
        spec, logical_time, request, cursor, mark, dedupe, cap, window if dedupe else None
    )


def _request(
    spec: TableSpec,
    schema: pa.Schema,
    excluded: tuple[str, ...],
    the_slice: Slice,
    dedupe: tuple[str, ...],
) -> ScanRequest:
    keys = partition_key_sql(spec.partitioning, schema.names)
    newest = spec.merge_key if spec.mode == "INCREMENTAL" else ()
    columns = tuple(n for n in schema.names if n not in excluded)
    return ScanRequest(
        dataset=spec.dataset,
        table=spec.table,
        columns=columns,
        exclude=excluded,
        extra=keys,
        slice=the_slice,
        dedupe_by=dedupe,
        newest_by=newest,
        newest_order=the_slice.cursor if newest else None,
        order_by=tuple(keys),
    )


def _repair_plan(
    spec: TableSpec, logical_time: datetime, schema: pa.Schema, excluded: tuple[str, ...]
) -> ExportPlan:
    """One folder's rows up to the repair's cursor bound (``reconcile``): no watermark is
    read or moved, and no key is remembered across runs (the folder's own published
    keys are, see ``Export``)."""
    from dpexport.planning.folder_scan import folder_requests

    repair = spec.repair
    assert repair is not None
    cursor = cursor_of(spec)
    assert cursor is not None  # reconcile takes only tables with a time partition
    cursor_type = schema.field(cursor).type if cursor in schema.names else None
    the_slice = Slice(
        cursor=column_sql(cursor, schema.names), upper=bind_for(repair.through, cursor_type)
    )
    dedupe = dedupe_key(spec) if spec.mode == "APPEND" else ()
    request = _request(spec, schema, excluded, the_slice, dedupe)
    [request] = folder_requests(request, spec.partitioning, schema, [repair.folder])
    return ExportPlan(spec, logical_time, request, cursor, None, dedupe)


#: Below this many rows per file the layout is flagged: per-file overhead dominates
#: and readers pay for many small objects.
TINY_FILE_ROWS = 10_000


#: how many folders ``plan`` lists per table (then their count)
FOLDER_LIST = 20


def describe(
    spec: TableSpec,
    *,
    engine: Engine,
    store: Store,
    dest_key: str,
    logical_time: datetime,
    tokens_at: Place | None = None,
    prices: Mapping[str, Decimal] | None = None,
) -> dict[str, Any]:
    """What a run would do for one table, read-only: the slice, window, folders, token
    (read from ``tokens_at``, by default the destination's store), estimated rows and
    bytes, and its cost at ``prices`` (``dpexport plan``)."""
    from dpexport.publish import tokens
    from dpexport.transforms.gdpr import gdpr_plan

    schema = engine.schema(spec.dataset, spec.table)
    gdpr = gdpr_plan(spec)
    plan = make_plan(
        spec,
        logical_time=logical_time,
        schema=schema,
        store=store,
        dest_key=dest_key,
        excluded=gdpr.excluded if gdpr else (),
    )
    request = plan.request
    name = tokens.token_name(spec, logical_time)
    if tokens_at is None:
        token, _ = tokens.read_token(store, name)
    else:
        token, _ = tokens.read_token(tokens_at.store, name, tokens_at.root)
    stats = _slice_aggregates(engine, spec, request)
    rows = int(stats.get("rows") or 0)
    folders = int(stats.get("folders") or (1 if rows else 0))
    out: dict[str, Any] = {
        "table": spec.qualified_name,
        "mode": spec.mode,
        "destination": spec.destination,
        "format": spec.format,
        "compression": spec.compression,
        "logical_time": logical_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "slice": {
            "cursor": plan.cursor,
            "after": state.encode_value(request.slice.lower),
            "after_inclusive": request.slice.lower_inclusive,
            "through": state.encode_value(request.slice.upper),
        },
        "watermark": state.encode_value(plan.watermark.value) if plan.watermark else None,
        "window": {
            "from": state.encode_value(stats.get("lo")),
            "to": state.encode_value(stats.get("hi")),
        }
        if plan.cursor
        else None,
        "layout": _layout_text(spec),
        "path": _write_path(engine, spec, store, plan, schema, stats, gdpr is not None),
        "folders": folders,
        "folder_list": _folder_list(engine, spec, plan, rows),
        "idempotency_token": name,
        "token_status": token.status if token else None,
        "estimated_rows": rows,
        "estimated_bytes": int(rows * _row_bytes(engine, request)),
        "warnings": [],
    }
    out["cost_usd"] = _cost(engine, spec, request, stats, out["estimated_bytes"], prices)
    if folders and rows and rows / folders < TINY_FILE_ROWS and folders > 1:
        days = int(stats.get("days") or 1)
        out["warnings"].append(
            f"layout makes tiny files: about {rows // folders} rows per file, "
            f"{folders // days} files per day ({folders} folders); consider a coarser "
            "partitioning"
        )
    return out


def _cost(
    engine: Engine,
    spec: TableSpec,
    request: ScanRequest,
    stats: dict[str, Any],
    memory_bytes: int,
    prices: Mapping[str, Decimal] | None,
) -> dict[str, Any]:
    """The run's estimated cost (``dpexport.ops.cost``): BigQuery's dry-run bytes of the
    slice; the bytes stored, from the in-memory estimate less the middle of the codec's
    expected saving (``compression_matrix``; none known: as in memory); a file per
    folder (more past ``max_file_size``), each with its sidecar, and per top-level
    folder a manifest and a SUCCESS marker written and the marker read. The queries
    ``plan`` itself ran are not the export's: they are taken off the meter here."""
    from dpexport.ops import cost

    rows = int(stats.get("rows") or 0)
    folders = int(stats.get("folders") or (1 if rows else 0))
    tops = int(stats.get("tops") or stats.get("days") or (1 if rows else 0))
    band = spec.ratio_band
    stored = int(memory_bytes * (1 - (band[0] + band[1]) / 2)) if band else memory_bytes
    files = max(folders, -(-stored // spec.max_file_size)) if rows else 0
    estimate = getattr(engine, "estimate", None)
    scanned = (estimate(request).bytes_processed or 0) if callable(estimate) else 0
    cost.warehouse_billed(engine, spec.qualified_name)
    usage = cost.export_usage(
        engine=engine.name,
        billed=(scanned, 1 if callable(estimate) else 0),
        destination=spec.destination,
        stored_bytes=stored,
        files=files,
        folders=tops,
        reads=tops,
    )
    return cost.estimate(usage, cost.price_table(prices))


def _folder_list(engine: Engine, spec: TableSpec, plan: ExportPlan, rows: int) -> list[str]:
    """The first :data:`FOLDER_LIST` folders the run would write, as URIs, named by the
    run's own rule (``layout.folder_for``) from the slice's distinct partition keys."""
    if not rows:
        return []
    keys = plan.key_columns
    found = engine.distinct(plan.request, keys, FOLDER_LIST) if keys else [()]
    base = spec.destination.rstrip("/")
    folders = []
    for values in found:
        named = dict(zip(keys, values, strict=True))
        top, sub = layout.folder_for(spec.partitioning, plan.logical_time, named)
        folders.append("/".join(p for p in (base, top, sub) if p) + "/")
    return folders


def _slice_aggregates(engine: Engine, spec: TableSpec, request: ScanRequest) -> dict[str, Any]:
    """One query over the slice: its rows, cursor window, folders, and the figures the
    run's write path depends on (its own folder estimate, top-level folders)."""
    from dpexport.planning import folder_scan, serverside

    keys = list(request.extra)
    aggregates = {"rows": "count(*)"}
    cursor = request.slice.cursor
    if cursor:
        aggregates.update({"lo": f"min({cursor})", "hi": f"max({cursor})"})
    if keys:
        aggregates["folders"] = (
            "count(DISTINCT concat_ws('/', " + ", ".join(f'"{k}"' for k in keys) + "))"
        )
    estimate = serverside.folders_sql(engine, spec, keys)
    if estimate is not None:  # the run's own estimate, which its path depends on
        aggregates["estimate"] = estimate
    if "__dp_k0" in keys:
        aggregates["days"] = 'count(DISTINCT left("__dp_k0", 10))'
        if folder_scan.worth_it(engine, spec.partitioning, request):
            aggregates["tops"] = 'count(DISTINCT "__dp_k0")'
    return dict(engine.aggregate(request, aggregates))


def _row_bytes(engine: Engine, request: ScanRequest) -> float:
    """Average in-memory bytes of a row, from the slice's first 2,048 rows."""
    sample = engine.scan(
        ScanRequest(
            request.dataset,
            request.table,
            columns=request.columns,
            slice=request.slice,
            batch_rows=2048,
        )
    )
    try:
        batch = sample.read_next_batch()
        return float(batch.nbytes / batch.num_rows) if batch.num_rows else 0.0
    except StopIteration:
        return 0.0
    finally:
        sample.close()


def _write_path(
    engine: Engine,
    spec: TableSpec,
    store: Store,
    plan: ExportPlan,
    schema: pa.Schema,
    stats: dict[str, Any],
    gdpr: bool,
) -> str:
    """Who will write the files, and why: the run's own decision (``serverside``)."""
    import tempfile

    from dpexport.planning import serverside
    from dpexport.transforms.pipeline import encrypts_client_side

    request = plan.request
    cross_run_dedup = bool(plan.dedupe_key and plan.cursor and plan.dedup_window)
    with tempfile.TemporaryDirectory(prefix="dpexport-plan-") as scratch:
        why = serverside.write_path(
            engine,
            spec,
            transforms=gdpr or cross_run_dedup,
            encrypts=encrypts_client_side(spec, store),
            checks=bool(spec.validation),
            rows=int(stats.get("rows") or 0),
            folders=None if stats.get("estimate") is None else int(stats["estimate"]),
            tops=None if stats.get("tops") is None else int(stats["tops"]),
            request=request,
            expected=pa.schema([schema.field(c) for c in request.columns or ()]),
            scratch=Path(scratch),
        )
    return serverside.describe_path(engine, why)


def _layout_text(spec: TableSpec) -> str:
    p = spec.partitioning
    parts = ["{yyyy}/{MM}"]
    if p.granularity in ("daily", "hourly") or not p.time_expression:
        parts.append("{dd}")
    if p.time_expression and p.granularity == "hourly":
        parts.append("{HH}")
    parts += ["{" + s.name + "}" for s in p.sub_partitions]
    by = p.time_expression or "logical date"
    return f"{'/'.join(parts)}/ by {by}"

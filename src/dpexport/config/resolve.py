"""From the validated models to ``ResolvedConfig``: one ``TableSpec`` per table.

Precedence for one table (CONTRACT §3): its ``exports`` item, then its entries in
``append_only`` / ``full_refresh`` / ``incremental`` / ``high_volume``, then ``formats``.
A table named only in those sections is exported too, to
``{buckets.exports}/{environment}/{dataset}/{entity}/`` as PARQUET. There is no default
bucket: a table without its own ``destination`` needs ``buckets.exports``. Destinations
are checked against each other by :mod:`dpexport.config.destinations`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path as FsPath
from typing import Any, TypeVar, cast

from pydantic import ValidationError

from dpexport.alerts.routing import channel_notes
from dpexport.config.compression import DEFAULT_CODEC, ratio_bands, table_codec
from dpexport.config.coverage import not_enforced_notes
from dpexport.config.destinations import (
    Published,
    check_destinations,
    check_state_locations,
    state_locations,
)
from dpexport.config.encryption import table_encryption
from dpexport.config.entities import (
    TableSources,
    check_replication,
    collect_tables,
    column_paths,
)
from dpexport.config.issues import Issues
from dpexport.config.loader import Path, format_path, not_utf8, parse_yaml
from dpexport.config.models import (
    AppendOnlyEntry,
    DpexportConfig,
    ExportItem,
    FullRefreshEntry,
    GdprBlock,
    HighVolumeEntry,
    IncrementalEntry,
    SchemaEvolutionBlock,
)
from dpexport.config.models.common import Block
from dpexport.config.models.formats import table_settings
from dpexport.config.partitioning import resolve_partitioning
from dpexport.config.pricing import resolve_pricing
from dpexport.config.prune import checkable_model, entangled
from dpexport.config.schedules import table_schedule
from dpexport.config.spec import (
    RECONCILE_WINDOW,
    Codec,
    CsvOptions,
    Format,
    GdprCompliance,
    JsonlOptions,
    Mode,
    ParquetOptions,
    ResolvedConfig,
    SchemaEvolution,
    TableSpec,
    WarehouseSpec,
)
from dpexport.config.steps import Steps, resolve_steps, step_notes
from dpexport.config.table_format import table_format
from dpexport.config.validate import check_document, normalize
from dpexport.errors import ConfigError, ConfigIssue
from dpexport.storage.layout.names import DEFAULT_PATTERN, FileNames


def load_config(path: str | os.PathLike[str]) -> ResolvedConfig:
    """Read, validate and resolve the config file at ``path``.

    Raises ``ConfigError`` listing every problem found (each with YAML path and line).
    A relative ``warehouse.path`` is taken relative to the file's folder.
    """
    return _loaded(inspect_config(path))


def load_config_text(
    text: str, source: str = "<string>", base_dir: str | os.PathLike[str] | None = None
) -> ResolvedConfig:
    """Validate and resolve config ``text``; ``source`` names it in messages.

    ``base_dir`` anchors a relative ``warehouse.path`` (default: left relative).
    """
    return _loaded(inspect_config_text(text, source, base_dir))


@dataclass(frozen=True)
class Inspection:
    """A config read for ``check``: every problem the file shows (ordered by line),
    and the config as far as it resolves, problems or not (``None`` when it does not),
    so the warehouse can be asked about its tables in the same pass."""

    config: ResolvedConfig | None
    issues: list[ConfigIssue]
    source: str
    #: paths the models refused and ``config`` leaves out; what is found at, in or
    #: around them later may be the omission's doing (:func:`~.prune.entangled`)
    taken_out: tuple[str, ...] = ()


def inspect_config(path: str | os.PathLike[str]) -> Inspection:
    """:func:`inspect_config_text` of the file at ``path`` (an unreadable file is one
    issue)."""
    file = FsPath(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        issue = ConfigIssue("", f"cannot read config: {exc.strerror}")
        return Inspection(None, [issue], str(file))
    except UnicodeDecodeError as exc:
        return Inspection(None, [not_utf8(exc)], str(file))
    return inspect_config_text(text, source=str(file), base_dir=file.absolute().parent)


def inspect_config_text(
    text: str, source: str = "<string>", base_dir: str | os.PathLike[str] | None = None
) -> Inspection:
    """Every problem of config ``text`` and the config as far as it resolves: parts the
    models refuse are reported, then left out (:mod:`dpexport.config.prune`)."""
    try:
        doc = parse_yaml(text, source)
    except ConfigError as exc:
        return Inspection(None, exc.issues, source)
    issues = Issues(doc)
    data = normalize(doc.data if doc.data is not None else {}, issues)
    check_document(data, issues)
    resolved: ResolvedConfig | None = None
    taken: list[str] = []
    if isinstance(data, dict):
        try:
            model: DpexportConfig | None = DpexportConfig.model_validate(data)
        except ValidationError as exc:
            issues.from_pydantic(exc, DpexportConfig, data)
            model, taken = checkable_model(data, exc, issues)
        if model is not None:
            resolved = _resolved(model, issues, taken, source, base_dir)
    ordered = sorted(issues.items, key=lambda i: i.line or 0)
    return Inspection(resolved, ordered, source, tuple(taken))


def _resolved(
    model: DpexportConfig,
    issues: Issues,
    taken: list[str],
    source: str,
    base_dir: str | os.PathLike[str] | None,
) -> ResolvedConfig | None:
    """``resolve`` for :func:`inspect_config_text`: its issues at paths entangled with
    ``taken`` are dropped; when problems were already reported it may fail (values
    reported may trip precedence): then there is no config, the issues found stand."""
    before = len(issues.items)
    source_path = source if base_dir is not None else None
    try:
        return resolve(model, issues, source_path=source_path, base_dir=base_dir)
    except Exception:
        if not before:
            raise
        return None
    finally:
        later = [i for i in issues.items[before:] if not entangled(i.path, taken)]
        issues.items[before:] = later


def _loaded(found: Inspection) -> ResolvedConfig:
    if found.issues or found.config is None:
        raise ConfigError(found.issues, found.source)
    return found.config


def resolve(
    model: DpexportConfig,
    issues: Issues,
    *,
    source_path: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> ResolvedConfig:
    """Apply precedence to the validated ``model``; cross-block problems go to ``issues``."""
    tables = collect_tables(model, issues)
    steps = resolve_steps(model.validation_checks)
    names = FileNames(model.filenames.pattern or DEFAULT_PATTERN, model.filenames.metadata_sidecar)
    specs = tuple(
        table_format(
            model, src, replace(_table_spec(model, src, issues, steps), filenames=names), issues
        )
        for src in tables.values()
    )
    check_replication(model, issues, tables)
    _check_held_snapshots(tables, specs, issues)
    published = [_published(src, spec) for src, spec in zip(tables.values(), specs, strict=True)]
    check_destinations(published, issues)
    check_state_locations(published, state_locations(model), issues)
    buckets = dict(model.buckets)
    wh = model.warehouse
    wh_path = wh.path
    if wh_path and base_dir is not None and "://" not in wh_path:
        wh_path = str(FsPath(base_dir, wh_path))
    settings = {f.name: getattr(wh, f.name) for f in dataclasses.fields(WarehouseSpec)}
    warehouse = WarehouseSpec(**{**settings, "path": wh_path})
    lines = {format_path(p): line for p, line in issues.doc.lines.items()}
    return ResolvedConfig(
        project=model.project or wh.project or "local",
        environment=model.environment,
        warehouse=warehouse,
        buckets=buckets,
        tables=specs,
        retry_configuration=model.retry_configuration,
        dlq_configuration=model.dlq_configuration,
        idempotency_design=model.idempotency_design,
        encryption=model.encryption,
        metrics=model.metrics,
        lifecycle_policies=model.lifecycle_policies,
        bucket_policies=dict(model.bucket_policies),
        replication=tuple(model.replication),
        steps=steps,
        pricing=resolve_pricing(model, issues),
        service_accounts=dict(model.service_accounts),
        unenforced=(
            *not_enforced_notes(issues.doc.data),
            *step_notes(model.validation_checks),
            *channel_notes(model.metrics),
        ),
        source_path=source_path,
        lines=lines,
    )


def _check_held_snapshots(
    tables: dict[Any, TableSources], specs: tuple[TableSpec, ...], issues: Issues
) -> None:
    """A FULL_REFRESH retires each snapshot at its next export, which a ``compliance``
    list forbids for years (``ops.retention``): every export after the first would fail."""
    from dpexport.ops.retention import describe, table_retention

    for src, spec in zip(tables.values(), specs, strict=True):
        if spec.mode == "FULL_REFRESH" and spec.compliance and table_retention(spec):
            issues.add(
                (*src.item_path, "compliance"),
                f"FULL_REFRESH retires the previous snapshot, but {describe(spec)} keeps it: "
                "every export after the first would fail",
                expected="mode APPEND or INCREMENTAL for a table kept for compliance",
            )


def _table_spec(
    model: DpexportConfig, src: TableSources, issues: Issues, steps: Steps
) -> TableSpec:
    item, ip = src.item, src.item_path
    append = cast(AppendOnlyEntry | None, src.entries.get("append_only"))
    full = cast(FullRefreshEntry | None, src.entries.get("full_refresh"))
    incr = cast(IncrementalEntry | None, src.entries.get("incremental"))
    hv = cast(HighVolumeEntry | None, src.entries.get("high_volume"))
    origins: dict[str, Path] = {"source": (*ip, "source") if item else src.path, "table": src.path}
    origins.update(column_paths(item, ip))

    def pick(key: str, *holders: tuple[Any, Path]) -> Any:
        # First holder that sets `key` wins; remember where it was set.
        for holder, path in holders:
            value = getattr(holder, key, None) if holder is not None else None
            if value is not None:
                origins[key] = (*path, key)
                return value
        return None

    sections = (
        (append, src.paths.get("append_only", ())),
        (incr, src.paths.get("incremental", ())),
    )
    change_column = pick("change_column", (item, ip), *sections)
    lookback = pick("lookback_window", (item, ip), *sections)
    merge_key = pick("merge_key", (item, ip), (incr, src.paths.get("incremental", ())))
    dedup = pick("deduplication", (item, ip), *sections)
    reconcile = pick("reconcile", (item, ip), *sections)

    part = resolve_partitioning(
        item.partitioning if item else None,
        (*ip, "partitioning"),
        hv,
        src.paths.get("high_volume", ()),
        append,
        src.paths.get("append_only", ()),
    )
    for path, message in part.problems:
        issues.add(path, message)
    origins.update(part.origins)

    frequency = full.frequency if full else None
    streams = table_schedule(item.schedule if item else None, frequency).export_type == "continuous"
    fmt, codec = _format_codec(model, item, hv is not None, streams, issues)
    _unused_text_options(item, ip, fmt, issues)
    mode = _mode(src, item, hv, change_column or part.partitioning.time_expression, issues)

    return TableSpec(
        dataset=src.dataset,
        table=src.table,
        destination=_destination(model, src, item, issues),
        format=fmt,
        compression=codec,
        mode=mode,
        partitioning=part.partitioning,
        change_column=change_column,
        lookback_window=cast(timedelta | None, lookback),
        merge_key=(merge_key,) if isinstance(merge_key, str) else tuple(merge_key or ()),
        deduplication=dedup,
        validation=tuple(item.validation) if item else (),
        encryption=table_encryption(model, item, ip, issues),
        max_file_size=item.max_file_size if item and item.max_file_size else 1024**3,
        parquet=_parquet(model, item),
        jsonl=_text_options(JsonlOptions, model.formats.JSONL, item.jsonl if item else None),
        csv=_text_options(CsvOptions, model.formats.CSV, item.csv if item else None),
        schema_evolution=_schema_evolution(model, item, fmt),
        gdpr=_gdpr(item.gdpr_compliance) if item and item.gdpr_compliance else None,
        compliance=tuple(item.compliance) if item else (),
        overwrite=item.overwrite if item and item.overwrite else "table",
        frequency=frequency,
        **_schedule(model, item, full),
        freshness=item.freshness if item else None,
        reconcile=RECONCILE_WINDOW if reconcile is None else cast(timedelta, reconcile),
        retention=append.retention if append else None,
        archive_after=append.archive_after if append else None,
        ratio_band=ratio_bands(model).get(codec) if steps.compression_ratios else None,
        origins={k: format_path(issues.original(v)) for k, v in origins.items()},
    )


def _unused_text_options(item: ExportItem | None, ip: Path, fmt: str, issues: Issues) -> None:
    """A table's ``csv:``/``jsonl:`` block when it exports another format: no effect."""
    for key, owner in (("csv", "CSV"), ("jsonl", "JSONL")):
        if item is not None and getattr(item, key) is not None and fmt != owner:
            message = f"{key}: holds {owner} settings, but the table is exported as {fmt}"
            issues.add((*ip, key), message, expected=f"format: {owner}, or no {key}: block")


def _format_codec(
    model: DpexportConfig, item: ExportItem | None, high_volume: bool, streams: bool, issues: Issues
) -> tuple[Format, Codec]:
    """The table's format (PARQUET unless set) and codec (:func:`~.compression.table_codec`)."""
    fmt = cast(Format, item.format if item and item.format in DEFAULT_CODEC else "PARQUET")
    return fmt, table_codec(model, item, fmt, (high_volume, streams), issues)


def _schedule(
    model: DpexportConfig, item: ExportItem | None, full: FullRefreshEntry | None
) -> dict[str, Any]:
    """The table's schedule (its own, else its full-refresh frequency:
    :func:`~.schedules.table_schedule`), export type and zone (``timezone:`` of its item,
    else of its entry), and the off-peak window when it holds a frequency's fire times."""
    when = table_schedule(item.schedule if item else None, full.frequency if full else None)
    window = model.optimization_strategies.scheduling.get("off_peak_exports")
    return {
        "schedule": when.schedule,
        "export_type": when.export_type,
        "timezone": (item.timezone if item else None) or (full.timezone if full else None),
        "off_peak": window if when.by_frequency else None,
    }


_Opt = TypeVar("_Opt", JsonlOptions, CsvOptions)


def _text_options(cls: type[_Opt], block: Block, own: Block | None) -> _Opt:
    """The writer's options from a format block and the table's own ``csv:``/``jsonl:``
    keys over it: every field of ``cls`` by its name, so an option added to both is
    carried without another line here."""
    settings = table_settings(block, own)
    return cls(**{f.name: settings[f.name] for f in dataclasses.fields(cls)})


def _mode(
    src: TableSources,
    item: ExportItem | None,
    hv: HighVolumeEntry | None,
    cursor: str | None,
    issues: Issues,
) -> Mode:
    if item is not None and item.mode:
        return _norm_mode(item.mode)
    found: dict[str, Path] = {}
    for section in ("append_only", "full_refresh", "incremental"):
        entry = src.entries.get(section)
        if entry is not None:
            found.setdefault(_norm_mode(entry.export_mode), (*src.paths[section], "export_mode"))
    if len(found) > 1:
        *_, last = found.values()
        issues.add(
            last,
            f"{src.table} has conflicting modes ({', '.join(found)}) in different sections",
            expected="one mode, or set `mode` in the table's exports item",
        )
    if found:
        return cast(Mode, next(iter(found)))
    # Time-series (spec 3.2) and tables with a cursor append; others are snapshots.
    return "APPEND" if hv is not None or cursor else "FULL_REFRESH"


def _norm_mode(mode: str) -> Mode:
    upper = mode.upper()
    return cast(Mode, "FULL_REFRESH" if upper == "OVERWRITE" else upper)


def _destination(
    model: DpexportConfig, src: TableSources, item: ExportItem | None, issues: Issues
) -> str:
    """The item's destination, else ``{buckets.exports}/{env}/{dataset}/{entity}/``;
    ``""`` (and an issue at the table's path) when that bucket is not named."""
    if item is not None and item.destination:
        dest = item.destination
    elif "exports" not in model.buckets:
        issues.add(
            src.path,
            f"{src.dataset}.{src.table} has no destination and the config names no "
            "buckets.exports (there is no default bucket)",
            expected="buckets: {exports: gs://BUCKET} (or s3://, az://, a local folder), "
            "or a destination for this table",
        )
        return ""
    else:
        bucket = model.buckets["exports"].rstrip("/")
        dest = f"{bucket}/{model.environment}/{src.dataset}/{src.table}"
    return dest if dest.endswith("/") else dest + "/"


def _published(src: TableSources, spec: TableSpec) -> Published:
    if src.item is not None and src.item.destination:
        return Published(
            spec.qualified_name,
            spec.destination,
            (*src.item_path, "destination"),
            src.item.destination,
        )
    return Published(spec.qualified_name, spec.destination, src.path, spec.destination)


def _parquet(model: DpexportConfig, item: ExportItem | None) -> ParquetOptions:
    base = model.formats.PARQUET
    opt = item.optimization if item else None
    encoding: dict[str, str] = {}
    wanted = opt.column_encoding if opt is not None else None
    if isinstance(wanted, str):
        # One encoding for all: "*" means every column whose type allows it.
        encoding = {"*": wanted.upper()}
    elif wanted:
        encoding = {col: enc.upper() for col, enc in wanted.items()}
    return ParquetOptions(
        version=base.version,
        row_group_size=(opt.row_group_size if opt and opt.row_group_size else base.row_group_size),
        page_size=opt.page_size if opt and opt.page_size else base.page_size,
        dictionary=base.encoding.upper() != "PLAIN",
        column_encoding=encoding,
        compression_level=(
            opt.compression_level
            if opt and opt.compression_level is not None
            else base.compression_level
        ),
        pinned=bool(
            {"row_group_size", "page_size", "encoding"} & base.model_fields_set
            or (opt is not None and (opt.row_group_size or opt.page_size))
            or encoding
        ),
    )


def _gdpr(block: GdprBlock) -> GdprCompliance:
    rules = block.anonymization
    return GdprCompliance(
        anonymization=dict(rules) if isinstance(rules, dict) else tuple(dict(r) for r in rules),
        excluded_fields=tuple(block.excluded_fields),
        hash_key_env=block.hash_key_env,
        consent_column=block.consent_column,
    )


def _schema_evolution(model: DpexportConfig, item: ExportItem | None, fmt: str) -> SchemaEvolution:
    # The format default is Parquet's block (spec 2.1); an item's own block overrides it.
    layers: list[SchemaEvolutionBlock] = []
    if fmt == "PARQUET" and model.formats.PARQUET.schema_evolution is not None:
        layers.append(model.formats.PARQUET.schema_evolution)
    if item is not None and item.schema_evolution is not None:
        layers.append(item.schema_evolution)
    out = SchemaEvolution()
    for layer in layers:
        backward = layer.backward_compatible
        if backward is None and layer.compatibility is not None:
            backward = layer.compatibility in ("backward", "full")
        out = SchemaEvolution(
            enabled=out.enabled if layer.enabled is None else layer.enabled,
            backward_compatible=out.backward_compatible if backward is None else backward,
            version_column=layer.version_column or out.version_column,
        )
    return out

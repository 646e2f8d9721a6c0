"""Per-table health (CONTRACT §2, §8): ``dpexport status [--json]``.

From the export logs and the DLQ of the config's buckets, for each configured table:

- ``last_export``: the ``export_timestamp`` of its newest successful export, ``rows``
  that export's row count (both ``null`` when it never succeeded);
- ``hours_since_export``: hours from then to ``now``, two decimals;
- ``freshness``: ``STALE`` past 24 hours (spec 9.2), or past the table's own
  ``freshness`` when set, and when it never succeeded; ``FRESH`` otherwise;
- ``success_rate_7d``: percent of SUCCESS among the SUCCESS and FAILURE attempts of
  the last 7 × 24 hours (SKIPPED runs did no work and are not counted), two decimals,
  ``null`` without attempts (spec 9.2's ``success_rate`` shape);
- ``dlq_open``: DLQ entries for the table not yet resolved or purged (open and
  poisoned both wait for someone);
- ``cost_usd``: what that last successful export cost (its log record's breakdown,
  :mod:`dpexport.ops.cost`; ``null`` when it never succeeded or its record has none).

With ``principal`` (``status --principal P``) only the exports that acted as ``P`` count
(their log records' and DLQ requests' ``principal``, CONTRACT §11).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dpexport.ops.logs import config_stores, load_records, parse_time
from dpexport.publish.manifest import rfc3339
from dpexport.reliability.dlq import DlqEntry, DlqSettings, list_entries

DEFAULT_FRESHNESS = timedelta(hours=24)
WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class TableStatus:
    """One row of ``dpexport status``."""

    table: str
    dataset: str
    last_export: datetime | None
    rows: int | None
    hours_since_export: float | None
    freshness: str
    success_rate_7d: float | None
    dlq_open: int
    cost_usd: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "dataset": self.dataset,
            "last_export": rfc3339(self.last_export) if self.last_export else None,
            "rows": self.rows,
            "hours_since_export": self.hours_since_export,
            "freshness": self.freshness,
            "success_rate_7d": self.success_rate_7d,
            "dlq_open": self.dlq_open,
            "cost_usd": self.cost_usd,
        }


def belongs(record_table: object, record_dataset: object, spec: Any) -> bool:
    """Whether a log record's (or DLQ request's) table and dataset name ``spec``."""
    if record_table == spec.qualified_name:
        return True
    return record_table == spec.table and record_dataset in (None, spec.dataset)


def entries_of(dlq: Sequence[DlqEntry], spec: Any) -> list[DlqEntry]:
    """The DLQ entries of the ``TableSpec`` ``spec`` (its ``dlq_open``)."""
    return [
        e
        for e in dlq
        if belongs(e.table, e.request.get("dataset"), spec)
        or (e.table is None and e.error.get("table") == spec.qualified_name)
    ]


def table_statuses(
    tables: Sequence[Any],
    records: Sequence[Mapping[str, Any]],
    dlq: Sequence[DlqEntry],
    now: datetime,
) -> list[TableStatus]:
    """The status of each ``TableSpec`` in ``tables`` from log records and DLQ entries."""
    out = []
    for spec in tables:
        mine = [r for r in records if belongs(r.get("table_name"), r.get("dataset"), spec)]
        last: datetime | None = None
        rows: int | None = None
        spent: dict[str, Any] | None = None
        ok = failed = 0
        for r in mine:
            when = parse_time(r.get("export_timestamp"))
            if when is None or when > now:
                continue
            status = r.get("status")
            if status == "SUCCESS" and (last is None or when >= last):
                last, rows = when, int(r.get("rows") or 0)
                spent = r.get("cost_usd") if isinstance(r.get("cost_usd"), dict) else None
            if now - when <= WINDOW:
                ok += status == "SUCCESS"
                failed += status == "FAILURE"
        hours = round((now - last).total_seconds() / 3600, 2) if last else None
        limit = spec.freshness or DEFAULT_FRESHNESS
        stale = last is None or now - last > limit
        rate = round(100.0 * ok / (ok + failed), 2) if ok + failed else None
        open_items = len(entries_of(dlq, spec))
        out.append(
            TableStatus(
                spec.table,
                spec.dataset,
                last,
                rows,
                hours,
                "STALE" if stale else "FRESH",
                rate,
                open_items,
                spent,
            )
        )
    return out


def status(
    config: Any, *, local_root: Path | None, now: datetime, principal: str | None = None
) -> list[TableStatus]:
    """``dpexport status`` from Python: every configured table, from its buckets (only
    the exports that acted as ``principal`` when given)."""
    records, entries = sources(config, local_root=local_root, now=now, principal=principal)
    return table_statuses(config.tables, records, entries, now)


def sources(
    config: Any, *, local_root: Path | None, now: datetime, principal: str | None = None
) -> tuple[list[dict[str, Any]], list[DlqEntry]]:
    """What :func:`status` reads: the export-log records and the DLQ entries of the
    config's buckets (only ``principal``'s when given); the dashboard reads them once
    and derives the status and its charts from the same records."""
    from dpexport.reliability.places import dlq_places
    from dpexport.storage.uri import StoreResolver

    stores = config_stores(config, local_root)
    settings = DlqSettings.from_config(config)
    found = dlq_places(config, stores, StoreResolver(local_root).resolve)
    entries = [e for p in found for e in list_entries(p.store, now, settings, root=p.root)]
    records = load_records(stores)
    if principal is not None:
        records = [r for r in records if r.get("principal") == principal]
        entries = [e for e in entries if e.request.get("principal") == principal]
    return records, entries


def render(statuses: Sequence[TableStatus]) -> str:
    """The text table ``dpexport status`` prints."""
    head = ("table", "last_export", "rows", "hours", "freshness", "success_7d", "dlq_open")
    rows = [
        (
            s.table,
            rfc3339(s.last_export) if s.last_export else "-",
            "-" if s.rows is None else str(s.rows),
            "-" if s.hours_since_export is None else f"{s.hours_since_export:.2f}",
            s.freshness,
            "-" if s.success_rate_7d is None else f"{s.success_rate_7d:.2f}%",
            str(s.dlq_open),
        )
        for s in statuses
    ]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)

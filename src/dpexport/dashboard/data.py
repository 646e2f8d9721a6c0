"""What the dashboard shows, as plain JSON-ready dicts (issue 23, spec 9.2).

Everything comes from what ``dpexport status`` reads (:func:`dpexport.ops.status.sources`:
the export-log records and the DLQ entries of the config's buckets) and from the open
alert incidents (``alerts list``). Each table's last export, rows, hours since,
freshness, 7-day success rate, open DLQ count and cost are
:func:`~dpexport.ops.status.table_statuses`' own figures, so the page and
``status --json`` cannot disagree; the charts and the failure list are the same records,
per table, in time order. Nothing here writes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dpexport.alerts.incidents import open_incidents
from dpexport.alerts.rules import stored_bytes
from dpexport.errors import DpexportError
from dpexport.ops.logs import parse_time, usd_total
from dpexport.ops.status import belongs, entries_of, sources, table_statuses
from dpexport.publish.manifest import rfc3339
from dpexport.workspace import Workspace

log = logging.getLogger(__name__)

#: the attempts a table's charts show (its newest)
HISTORY = 60
#: the failures a table lists (its newest)
FAILURES = 5
#: the manifests an export's page reads (a partitioned export can have hundreds)
MANIFESTS = 24
#: the outcomes that count as attempts (SKIPPED did no work)
ATTEMPTS = ("SUCCESS", "FAILURE")


def snapshot(ws: Workspace, now: datetime) -> dict[str, Any]:
    """Every configured table's figures, history, failures, DLQ items and alerts."""
    records, entries = sources(ws.config, local_root=ws.local_root, now=now)
    statuses = table_statuses(ws.config.tables, records, entries, now)
    incidents = _incidents(ws)
    tables = []
    for spec, status in zip(ws.config.tables, statuses, strict=True):
        tried = [
            r
            for r in records
            if belongs(r.get("table_name"), r.get("dataset"), spec)
            and r.get("status") in ATTEMPTS
            and _past(r, now)
        ]
        dlq = [e.to_json() for e in entries_of(entries, spec)]
        alerts = [
            _alert(d) for d in incidents if d.get("table") in (spec.qualified_name, spec.table)
        ]
        figures = status.to_json()
        tables.append(
            {
                **figures,
                "qualified_name": spec.qualified_name,
                "cost_usd_total": usd_total(figures["cost_usd"]),
                "last_export_id": _last_success_id(tried, status.last_export),
                "health": _health(tried, status.freshness, len(dlq)),
                "history": [_point(r) for r in tried[-HISTORY:]],
                "failures": [_failure(r) for r in tried if r.get("status") == "FAILURE"][
                    -FAILURES:
                ][::-1],
                "dlq": dlq,
                "alerts": alerts,
            }
        )
    return {"generated_at": rfc3339(now), "tables": tables}


def export_detail(ws: Workspace, export_id: str, now: datetime) -> dict[str, Any] | None:
    """One export attempt: its log record and the manifests it committed (files,
    checks); ``None`` when no export-log record has that id. The id is only compared
    with the records' ids, never made into a path."""
    records, _ = sources(ws.config, local_root=ws.local_root, now=now)
    record = next((r for r in records if r.get("export_id") == export_id), None)
    if record is None:
        return None
    uris = [u for u in record.get("manifests") or [] if isinstance(u, str)]
    return {
        "record": record,
        "manifests": [_manifest(ws, uri) for uri in uris[:MANIFESTS]],
        "manifests_not_shown": max(0, len(uris) - MANIFESTS),
    }


def _at(record: Mapping[str, Any]) -> datetime | None:
    return parse_time(record.get("export_timestamp"))


def _past(record: Mapping[str, Any], now: datetime) -> bool:
    """Whether the record was written by ``now`` (``status`` ignores later ones too)."""
    at = _at(record)
    return at is not None and at <= now


def _incidents(ws: Workspace) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for store in ws.config_stores():
        try:
            out += open_incidents(store)
        except DpexportError as exc:  # the page still shows what the logs say
            log.warning("open alerts of %s not read: %s", store.url, exc)
    return out


def _alert(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) for k in ("rule", "state", "opened_at", "summary", "severity")}


def _last_success_id(tried: Sequence[Mapping[str, Any]], last: datetime | None) -> str | None:
    """The id of the record ``status`` took as the last export (the newest at that time)."""
    found = [r for r in tried if r.get("status") == "SUCCESS" and _at(r) == last]
    return str(found[-1].get("export_id")) if found and last is not None else None


def _health(tried: Sequence[Mapping[str, Any]], freshness: str, dlq_open: int) -> str:
    """``failing`` when the newest attempt failed or a DLQ item waits, else ``stale``
    or ``ok`` by freshness."""
    if (tried and tried[-1].get("status") == "FAILURE") or dlq_open:
        return "failing"
    return "stale" if freshness == "STALE" else "ok"


def _point(record: Mapping[str, Any]) -> dict[str, Any]:
    cost = record.get("cost_usd") if isinstance(record.get("cost_usd"), dict) else None
    return {
        "export_id": record.get("export_id"),
        "at": record.get("export_timestamp"),
        "status": record.get("status"),
        "rows": int(record.get("rows") or 0),
        "bytes": stored_bytes(cost) if cost else 0,
        "cost_usd": usd_total(cost),
    }


def _failure(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "export_id": record.get("export_id"),
        "at": record.get("export_timestamp"),
        "error": record.get("error"),
    }


def _manifest(ws: Workspace, uri: str) -> dict[str, Any]:
    """A manifest's files and checks, or why it could not be read."""
    try:
        store, key = ws.stores.resolve(uri)
        doc = json.loads(store.get(key))
    except (DpexportError, ValueError) as exc:
        return {"uri": uri, "error": str(exc)}
    if not isinstance(doc, dict):
        return {"uri": uri, "error": "not a JSON object"}
    found = doc.get("validation")
    validation: dict[str, Any] = found if isinstance(found, dict) else {}
    return {
        "uri": uri,
        "statistics": doc.get("statistics"),
        "files": doc.get("files") or [],
        "validation": {k: v for k, v in validation.items() if k != "checks"},
        "checks": validation.get("checks") or [],
    }

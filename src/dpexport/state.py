"""State kept in the bucket under ``_state/``: watermarks and schema history.

Small JSON documents, replaced by compare-and-swap so two writers never lose an update.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dpexport import layout
from dpexport.errors import ExportError, PreconditionFailed
from dpexport.manifest import dumps
from dpexport.storage.base import Store


def watermark_key(dataset: str, table: str) -> str:
    return f"{layout.STATE_PREFIX}watermarks/{dataset}.{table}.json"


def schema_key(dataset: str, table: str) -> str:
    return f"{layout.STATE_PREFIX}schemas/{dataset}.{table}.json"


def encode_value(value: Any) -> Any:
    """A cursor value as JSON: RFC 3339 for timestamps, ISO dates, numbers as numbers."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat(timespec="microseconds") + "Z"
        return value.isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def decode_value(value: Any, kind: str) -> Any:
    """Back from JSON, by the kind recorded beside it."""
    if value is None:
        return None
    if kind == "timestamp":
        text = str(value)
        aware = text.endswith("Z")
        parsed = datetime.fromisoformat(text.removesuffix("Z"))
        return parsed if not aware else parsed.replace(tzinfo=None)
    if kind == "date":
        return date.fromisoformat(str(value))
    if kind == "decimal":
        return Decimal(str(value))
    return value


def value_kind(value: Any) -> str:
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, date):
        return "date"
    if isinstance(value, Decimal):
        return "decimal"
    return "number" if isinstance(value, int | float) else "text"


@dataclass(frozen=True)
class Watermark:
    value: Any
    export_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "value": encode_value(self.value),
            "kind": value_kind(self.value),
            "export_id": self.export_id,
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> Watermark:
        return Watermark(decode_value(doc.get("value"), doc.get("kind", "text")), doc["export_id"])


def read_watermark(store: Store, dataset: str, table: str) -> Watermark | None:
    info = store.head(watermark_key(dataset, table))
    if info is None:
        return None
    return Watermark.from_json(json.loads(store.get(watermark_key(dataset, table))))


def write_watermark(store: Store, dataset: str, table: str, mark: Watermark) -> None:
    """Advance the watermark; never move it backwards (a slower, older export loses)."""
    key = watermark_key(dataset, table)
    for _ in range(20):
        info = store.head(key)
        if info is not None:
            current = read_watermark(store, dataset, table)
            if current is not None and current.value is not None and mark.value is not None:
                try:
                    if current.value >= mark.value:
                        return
                except TypeError:
                    pass
        try:
            store.replace_if_match(key, dumps(mark.to_json()), info.version if info else None)
            return
        except PreconditionFailed:
            continue
    raise PreconditionFailed("could not advance the watermark: too much contention", uri=key)


def incompatibilities(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """What makes ``new`` not backward compatible with ``old``: dropped or retyped
    columns, and added columns that are not nullable (spec 2.1, 8.4)."""
    before = {c["name"]: c for c in old}
    after = {c["name"]: c for c in new}
    problems = [f"column {name!r} was dropped" for name in before if name not in after]
    for name, col in after.items():
        if name in before and before[name]["type"] != col["type"]:
            problems.append(
                f"column {name!r} changed type from {before[name]['type']} to {col['type']}"
            )
        elif name not in before and not col.get("nullable", True):
            problems.append(f"column {name!r} was added as NOT NULL")
    return problems


def schema_version_for(
    store: Store,
    dataset: str,
    table: str,
    schema_hash: str,
    columns: list[dict[str, Any]],
    today: date,
    *,
    enforce_backward: bool = False,
) -> str:
    """The version (``YYYY.MM.DD.NN``) of this schema in the table's history, adding
    it as a new version when first seen. With ``enforce_backward`` a change that is
    not backward compatible with the latest version raises instead."""
    key = schema_key(dataset, table)
    for _ in range(20):
        info = store.head(key)
        history: list[dict[str, Any]] = (
            json.loads(store.get(key)).get("versions", []) if info else []
        )
        for entry in history:
            if entry["schema_hash"] == schema_hash:
                return str(entry["version"])
        if history and enforce_backward:
            problems = incompatibilities(history[-1]["columns"], columns)
            if problems:
                raise ExportError(
                    "schema change is not backward compatible with version "
                    f"{history[-1]['version']}: " + "; ".join(problems) + " (set "
                    "schema_evolution.compatibility: none to allow it)",
                    table=f"{dataset}.{table}",
                    code="INVALID_ARGUMENT",
                )
        stem = today.strftime("%Y.%m.%d")
        same_day = [e for e in history if str(e["version"]).startswith(stem)]
        version = f"{stem}.{len(same_day):02d}"
        history.append(
            {
                "version": version,
                "schema_hash": schema_hash,
                "columns": columns,
                "first_seen": today.isoformat(),
            }
        )
        try:
            store.replace_if_match(
                key, dumps({"versions": history}), info.version if info else None
            )
            return version
        except PreconditionFailed:
            continue
    raise PreconditionFailed("could not record the schema version: too much contention", uri=key)

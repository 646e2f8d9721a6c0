"""State kept in the bucket under ``_state/``: watermarks and schema history.

Small JSON documents, replaced by compare-and-swap so two writers never lose an update.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dpexport.errors import ExportError, NotFound, PreconditionFailed
from dpexport.publish.manifest import dumps
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.timestamps import parse_rfc3339

log = logging.getLogger(__name__)


#: the key is layout's; planning.plan and flow.export still ask for it here
watermark_key = layout.watermark_key


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
        # encode_value writes naive cursors (and UTC ones) with Z: they come back naive;
        # one written with a numeric offset comes back aware
        text = str(value)
        parsed = parse_rfc3339(text, default_zone=None)
        return parsed.replace(tzinfo=None) if text.endswith("Z") else parsed
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


def write_watermark(store: Store, mark: Watermark, doc: dict[str, Any]) -> None:
    """Advance the watermark at ``doc["key"]`` to ``mark``, recording the manifests of
    the export that set it (``doc["manifests"]``), so a reader can check the two agree.
    It never moves backwards past a sound watermark (a slower, older export loses); a
    damaged one is replaced."""
    key = doc.get("key") or _legacy_key(doc)
    body = dumps({**mark.to_json(), "manifests": list(doc.get("manifests", []))})
    for _ in range(20):
        info = store.head(key)
        current = _sound(store, key) if info is not None else None
        if current is not None and current.value is not None and mark.value is not None:
            try:
                if current.value >= mark.value:
                    return
            except TypeError:
                pass
        try:
            store.replace_if_match(key, body, info.version if info else None)
            return
        except PreconditionFailed:
            continue
    raise PreconditionFailed("could not advance the watermark: too much contention", uri=key)


def _legacy_key(doc: dict[str, Any]) -> str:
    """A journal written before watermarks were kept per export names its table."""
    return layout.legacy_watermark_key(doc["dataset"], doc["table"])


def _sound(store: Store, key: str) -> Watermark | None:
    """The watermark at ``key`` when it reads and agrees with its export's manifest."""
    try:
        doc = json.loads(store.get(key))
        mark = Watermark.from_json(doc)
    except (NotFound, ValueError, TypeError, KeyError, AttributeError):
        return None
    return mark if _agrees(store, doc) is not False else None


def _agrees(store: Store, doc: dict[str, Any]) -> bool | None:
    """Whether the first manifest the watermark names published exactly that watermark
    in that export; None when it names none that still exists (retention removed it)."""
    for manifest_key in (doc.get("manifests") or [])[:1]:
        try:
            manifest = json.loads(store.get(str(manifest_key)))
        except NotFound:
            return None
        except ValueError:
            return False
        return bool(
            isinstance(manifest, dict)
            and manifest.get("export_id") == doc.get("export_id")
            and manifest.get("watermark") == doc.get("value")
        )
    return False  # a watermark that names no manifest was not written by a commit


def read_watermark(
    store: Store,
    key: str,
    dest_key: str,
    qualified_table: str,
    *,
    kind: str | None,
    now: datetime,
) -> Watermark | None:
    """The export's watermark: the max cursor its committed manifests published.

    The state object says it cheaply; it is trusted when its export's manifest agrees
    (or retention has removed that manifest). Missing, unreadable or contradicted by
    the manifest, it is rebuilt from the manifests under the destination, and the
    rebuild is logged. A watermark past ``now`` that no manifest confirms is refused."""
    damage: str | None = None
    try:
        doc = json.loads(store.get(key))
        mark = Watermark.from_json(doc)
        agrees = _agrees(store, doc)
    except NotFound:
        doc, mark, agrees = None, None, False
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # garbled (``{"garbage``), not an object (``[]``), or lacking its keys
        damage = f"{type(exc).__name__}: {exc}"
        doc, mark, agrees = None, None, False
    if mark is not None and agrees is None and not _in_future(mark.value, now):
        return mark
    if mark is not None and agrees:
        return mark
    rebuilt = rebuild_watermark(store, dest_key, qualified_table, kind)
    if damage is not None:
        log.warning(
            "watermark %s is unreadable (%s); rebuilt from the committed manifests: %s",
            store.uri(key),
            damage,
            None if rebuilt is None else encode_value(rebuilt.value),
        )
    elif mark is not None or doc is not None:
        log.warning(
            "watermark %s says %s, which its export's manifests do not confirm; the "
            "committed manifests give %s: using that",
            store.uri(key),
            None if mark is None else encode_value(mark.value),
            None if rebuilt is None else encode_value(rebuilt.value),
        )
    elif rebuilt is not None:
        log.warning(
            "watermark %s is missing; rebuilt from the committed manifests: %s",
            store.uri(key),
            encode_value(rebuilt.value),
        )
    return rebuilt


def _kind_of_text(value: Any) -> str:
    """The kind of an encoded cursor value when the cursor's type is not known."""
    if not isinstance(value, str):
        return "number"
    for kind, parse in (("date", date.fromisoformat), ("timestamp", _parse_timestamp)):
        try:
            parse(value)
        except ValueError:
            continue
        return kind
    return "text"


def _parse_timestamp(text: str) -> datetime:
    if "T" not in text:
        raise ValueError(text)
    return parse_rfc3339(text, default_zone=None)


def _in_future(value: Any, now: datetime) -> bool:
    if isinstance(value, datetime):
        return value > now.replace(tzinfo=None) if value.tzinfo is None else value > now
    if isinstance(value, date):
        return value > now.date()
    return False


def rebuild_watermark(
    store: Store, dest_key: str, qualified_table: str, kind: str | None
) -> Watermark | None:
    """The max watermark the table's committed APPEND/INCREMENTAL manifests under
    ``dest_key`` recorded (``compact``'s snapshot aside). A manifest that cannot be
    read stops the rebuild: it may hold the highest cursor."""
    dataset, _, table = qualified_table.rpartition(".")
    best: Watermark | None = None
    for obj in store.list(dest_key):
        rel = obj.key[len(dest_key) :]
        if not layout.is_manifest(layout.key_name(rel)) or layout.in_snapshot(rel):
            continue
        try:
            manifest = json.loads(store.get(obj.key))
            source = manifest["source"]
        except (NotFound, ValueError, KeyError, TypeError) as exc:
            raise ExportError(
                f"the watermark must be rebuilt from the committed manifests, but "
                f"{store.uri(obj.key)} cannot be read ({exc}); restore it, or remove its "
                "folder's SUCCESS and the manifest if that export is to be dropped",
                table=qualified_table,
                code="FAILED_PRECONDITION",
            ) from exc
        if (source.get("dataset"), source.get("table")) != (dataset, table):
            continue
        value = manifest.get("watermark")
        if value is None or manifest.get("mode") not in ("APPEND", "INCREMENTAL"):
            continue
        mark = Watermark(
            decode_value(value, kind or _kind_of_text(value)), str(manifest.get("export_id"))
        )
        try:
            if best is None or mark.value > best.value:
                best = mark
        except TypeError:
            continue
    return best


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
    key = layout.schema_key(dataset, table)
    for _ in range(20):
        info = store.head(key)
        history = _schema_history(store, key, f"{dataset}.{table}") if info else []
        for entry in history:
            if entry["schema_hash"] == schema_hash:
                return str(entry["version"])
        if history and enforce_backward:
            problems = incompatibilities(history[-1]["columns"], columns)
            if problems:
                raise ExportError(
                    "schema change is not backward compatible with version "
                    f"{history[-1]['version']}: " + "; ".join(problems) + " (set "
                    "schema_evolution.backward_compatible: false, or compatibility: none, "
                    "to allow it)",
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


def _schema_history(store: Store, key: str, qualified_table: str) -> list[dict[str, Any]]:
    """The versions recorded at ``key``. No committed object holds them all (a manifest
    names only its own version), so a damaged history is not rebuilt: the export fails
    naming it, before anything is staged."""
    try:
        versions = json.loads(store.get(key)).get("versions", [])
        if not isinstance(versions, list) or not all(
            isinstance(v, dict) and {"version", "schema_hash", "columns"} <= v.keys()
            for v in versions
        ):
            raise ValueError("'versions' is not a list of schema versions")
        return versions
    except NotFound:
        return []
    except (ValueError, AttributeError) as exc:
        raise ExportError(
            f"the schema history {store.uri(key)} cannot be read ({type(exc).__name__}: "
            f"{exc}); restore it from the bucket's object versions, or delete it to start "
            "the history again (the next export records its schema as a new version)",
            table=qualified_table,
            code="FAILED_PRECONDITION",
        ) from exc

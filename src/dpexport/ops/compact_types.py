"""The Arrow types ``compact`` reads each increment as: the schema its manifest records
(``arrow_schema``), so a JSONL or CSV increment's text comes back as the types it was
written from (a DECIMAL's string of digits as that DECIMAL, a timestamp's text as the
zoned timestamp, an INTEGER as int32) and the snapshot has the source's types.

A manifest older than ``arrow_schema`` borrows the recorded schema of another
increment whose column names and type strings (the manifest's ``schema``) are the same;
without one its file is read with inferred types, converted by DuckDB to the snapshot's
columns when another increment names them, and a warning says so.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pyarrow as pa

from dpexport.publish.committed import CommittedFile
from dpexport.publish.manifest import ARROW_SCHEMA, canonical_schema, recorded_schema
from dpexport.storage.base import Store

log = logging.getLogger("dpexport.ops.compact")


@dataclasses.dataclass(frozen=True)
class IncrementTypes:
    """What types to read each increment's files as, and the snapshot's columns."""

    #: manifest key -> the schema to read its files as (None: infer, as before)
    by_manifest: dict[str, pa.Schema | None]
    #: the newest recorded schema (the snapshot's columns), None when no manifest has one
    target: pa.Schema | None


def increment_types(store: Store, files: list[CommittedFile]) -> IncrementTypes:
    """The schema of each manifest listing ``files`` (read by ``committed_files``, not
    again): recorded, borrowed or none (logged; ``store`` names it)."""
    docs: dict[str, dict[str, Any]] = {}
    recorded: dict[str, pa.Schema | None] = {}
    for f in files:
        if f.manifest in docs:
            continue
        docs[f.manifest] = doc = f.manifest_doc
        try:
            recorded[f.manifest] = recorded_schema(doc)
        except ValueError as exc:
            log.warning(
                "compact: %s: %s; its files' types are inferred", store.uri(f.manifest), exc
            )
            recorded[f.manifest] = None
    newest = sorted(
        (f for f in files if recorded[f.manifest] is not None),
        key=lambda f: (f.exported_at, f.manifest),
    )
    target = recorded[newest[-1].manifest] if newest else None
    known = [s for s in recorded.values() if s is not None]
    by_manifest: dict[str, pa.Schema | None] = {}
    for key, schema in recorded.items():
        if schema is None:
            schema = _same_columns(docs[key], known)
            if schema is None:
                log.warning(
                    "compact: %s predates %r and no other increment has its columns' types: "
                    "its files are read with inferred types%s (export that slice again to "
                    "record them)",
                    store.uri(key),
                    ARROW_SCHEMA,
                    ", then converted to the snapshot's" if target is not None else "",
                )
        by_manifest[key] = schema
    return IncrementTypes(by_manifest, target)


def _same_columns(doc: dict[str, Any], known: list[pa.Schema]) -> pa.Schema | None:
    """A recorded schema whose names, type strings and nullability are the ones ``doc``'s
    ``schema`` lists (the manifest's notes aside), if any."""
    listed = doc.get("schema")
    if not isinstance(listed, list):
        return None
    wanted = [
        {k: entry.get(k) for k in ("name", "type", "nullable")}
        for entry in listed
        if isinstance(entry, dict)
    ]
    for schema in known:
        if canonical_schema(schema) == wanted:
            return schema
    return None


def without(schema: pa.Schema, column: str | None) -> pa.Schema:
    """``schema`` less ``column`` (when it has it)."""
    if column is None or schema.get_field_index(column) < 0:
        return schema
    return schema.remove(schema.get_field_index(column))


def drift(expected: pa.Schema, got: pa.Schema) -> list[str]:
    """Columns whose type (or presence) ``got`` does not keep from ``expected``."""
    out = []
    for field in expected:
        index = got.get_field_index(field.name)
        if index < 0:
            out.append(f"{field.name} (missing)")
        elif got.field(index).type != field.type:
            out.append(f"{field.name} ({field.type} became {got.field(index).type})")
    return out

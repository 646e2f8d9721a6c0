"""Manifest, sidecar and marker documents (spec 5.1, 5.3; CONTRACT §5, §8).

Pure functions from facts to JSON-able dicts; ``commit`` decides when they are written.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from functools import cached_property
from typing import Any

import pyarrow as pa

from dpexport.config.spec import CsvOptions, JsonlOptions
from dpexport.storage import layout
from dpexport.timestamps import rfc3339 as rfc3339  # the documents' time shape


def canonical_schema(schema: pa.Schema) -> list[dict[str, Any]]:
    """Names, types and nullability, in order: what ``schema_hash`` covers."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def manifest_schema(schema: pa.Schema, format: str) -> list[dict[str, Any]]:
    """The manifest's ``schema``: :func:`canonical_schema`, each column also saying how
    ``format`` writes it when that is not its type's plain form (a JSONL decimal as a
    string, an interval's text or Parquet struct: :mod:`dpexport.formats.fidelity`)."""
    from dpexport.formats.fidelity import field_notes

    return [
        entry | field_notes(f.type, format)
        for entry, f in zip(canonical_schema(schema), schema, strict=True)
    ]


def schema_hash(schema: pa.Schema) -> str:
    text = json.dumps(canonical_schema(schema), separators=(",", ":"), sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


#: the manifest key holding the written Arrow schema, IPC-serialized and base64'd: the one
#: form that gives every type back exactly (``schema``'s type strings do not parse back),
#: so ``compact`` reads JSONL/CSV increments as the types they were written from
ARROW_SCHEMA = "arrow_schema"


def encode_schema(schema: pa.Schema) -> str:
    """``schema`` (without its schema-level metadata) as the manifest's ``arrow_schema``."""
    return base64.b64encode(schema.remove_metadata().serialize().to_pybytes()).decode("ascii")


def recorded_schema(doc: dict[str, Any]) -> pa.Schema | None:
    """The Arrow schema a manifest records (None for a manifest older than the key);
    a value that does not decode raises ``ValueError`` saying why."""
    text = doc.get(ARROW_SCHEMA)
    if text is None:
        return None
    try:
        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(str(text), validate=True)))
    except (binascii.Error, pa.ArrowException) as exc:
        raise ValueError(f"{ARROW_SCHEMA!r} is not a serialized Arrow schema ({exc})") from None


def dumps(doc: dict[str, Any] | list[Any], *, compact: bool = False) -> bytes:
    """The byte form of every JSON document we store: indented for people, or
    ``compact`` for one only dpexport reads back (a commit's journal, which lists every
    file: indenting made json use its Python encoder, ~1 s a 15,000-file commit)."""
    if compact:
        text = json.dumps(doc, ensure_ascii=False, default=str, separators=(",", ":"))
    else:
        text = json.dumps(doc, indent=2, ensure_ascii=False, default=str)
    return (text + "\n").encode("utf-8")


@dataclass(frozen=True)
class FileEntry:
    """One data file as the manifest lists it; ``name`` is relative to the manifest."""

    name: str
    rows: int
    bytes: int
    checksum: str  # sha256:<hex>
    uncompressed_bytes: int = 0


@dataclass
class ExportFacts:
    """What is known about one export, shared by all of its manifests."""

    export_id: str
    export_timestamp: datetime
    logical_time: datetime
    project: str
    dataset: str
    table: str
    format: str
    compression: str
    mode: str
    schema: pa.Schema  # the written schema
    schema_version: str
    export_type: str = "scheduled"
    trigger: str = "manual"
    operator: str = "dpexport"
    idempotency_token: str | None = None
    window: dict[str, Any] | None = None
    watermark: Any = None
    encryption: dict[str, Any] = field(default_factory=lambda: {"mode": "GMEK"})
    checks: list[dict[str, Any]] = field(default_factory=list)
    bigquery_job_id: str | None = None
    #: the settings the JSONL or CSV files were written with (the manifest says those
    #: that differ from CONTRACT §4's, so readers and ``verify`` read them right)
    jsonl: JsonlOptions = field(default_factory=JsonlOptions)
    csv: CsvOptions = field(default_factory=CsvOptions)
    #: the export's cost (``dpexport.ops.cost``'s breakdown), ``metadata.cost_usd``
    cost_usd: dict[str, Any] | None = None

    @cached_property
    def schema_digest(self) -> str:
        """``schema_hash`` of the written schema, computed once for every sidecar."""
        return schema_hash(self.schema)

    @cached_property
    def arrow_schema(self) -> str:
        """``encode_schema`` of the written schema, once for every manifest."""
        return encode_schema(self.schema)

    @cached_property
    def sidecar_template(self) -> tuple[str, list[str]] | None:
        """``dumps`` of a sidecar of this export with a unique placeholder in each
        per-file value (name, rows, bytes, checksum), and the placeholders' JSON text."""
        token = uuid.uuid4().hex
        marks = [f"\x00{token}:{key}\x00" for key in ("name", "rows", "bytes", "sum")]
        doc = sidecar_document(self, FileEntry(marks[0], 0, 0, marks[3]), None)
        doc["rows"], doc["bytes"] = marks[1], marks[2]
        text = dumps(doc).decode("utf-8")
        quoted = [json.dumps(m, ensure_ascii=False) for m in marks]
        if any(text.count(q) != 1 for q in quoted):
            return None  # cannot happen (a fresh uuid); the encoder then runs per file
        return text, quoted


def _check_status(checks: Sequence[dict[str, Any]], names: set[str]) -> str:
    """``passed``/``failed``/``warned`` from the named checks that ran, else ``not_run``."""
    ran = [c for c in checks if c.get("name") in names]
    if not ran:
        return "not_run"
    statuses = {c.get("status") for c in ran}
    for status in ("failed", "warned"):
        if status in statuses:
            return status
    return "passed"


_DUPLICATE_CHECKS = {"unique_post_ids"}
_NULL_CHECKS = {"null_percentage_threshold", "metadata_completeness", "audit_trail_completeness"}


#: how a JSONL export writes NaN and ±Infinity: as the JSON strings "NaN", "Infinity",
#: "-Infinity" (JSON has no such numbers), which a reader must know to tell them from null
JSONL_ENCODING: dict[str, str] = {"non_finite_floats": "string"}


def _changed(options: JsonlOptions | CsvOptions) -> dict[str, Any]:
    """The settings of ``options`` that differ from the defaults (CONTRACT §4's files)."""
    default = type(options)()
    out = {}
    for key, value in asdict(options).items():
        same = value == getattr(default, key)
        if key == "encoding":
            same = codecs.lookup(value).name == codecs.lookup(default.encoding).name
        if not same:
            out[key] = value
    return out


def text_options(doc: dict[str, Any]) -> tuple[JsonlOptions, CsvOptions]:
    """The JSONL and CSV options a manifest says its files were written with (a
    manifest without the ``jsonl``/``csv`` settings, or an older one: the defaults)."""
    known_jsonl = {f.name for f in fields(JsonlOptions)}
    known_csv = {f.name for f in fields(CsvOptions)}
    jsonl = {k: v for k, v in (doc.get("jsonl") or {}).items() if k in known_jsonl}
    csv = {k: v for k, v in (doc.get("csv") or {}).items() if k in known_csv}
    for options in (jsonl, csv):
        try:
            codecs.lookup(options.get("encoding", "utf-8"))
        except LookupError:
            raise ValueError(f"unknown encoding {options['encoding']!r}") from None
    return JsonlOptions(**jsonl), CsvOptions(**csv)


def manifest_document(
    facts: ExportFacts,
    *,
    folder_uri: str,
    partition: str,
    files: Sequence[FileEntry],
    duration_ms: int,
    verified: bool,
    deduplicated: bool,
    names: layout.FileNames = layout.DEFAULT_NAMES,
) -> dict[str, Any]:
    """The manifest of one top-level time folder (spec 5.1 + CONTRACT §5 added keys; a
    JSONL export also says how it wrote non-finite floats, under ``jsonl``, and a JSONL
    or CSV export each spec 2.2/2.3 setting that differs from the default, under
    ``jsonl``/``csv``: ``encoding``, ``timestamp_format``, ``delimiter``, ...; files
    named by other than the default patterns, those patterns under ``filenames``)."""
    duplicate = _check_status(facts.checks, _DUPLICATE_CHECKS)
    if duplicate == "not_run" and deduplicated:
        duplicate = "passed"
    doc: dict[str, Any] = {
        "export_id": facts.export_id,
        "export_timestamp": rfc3339(facts.export_timestamp),
        "logical_time": rfc3339(facts.logical_time),
        "source": {
            "project": facts.project,
            "dataset": facts.dataset,
            "table": facts.table,
            "partition": partition,
        },
        "destination": {
            "uri": folder_uri,
            "format": facts.format,
            "compression": facts.compression,
        },
        "statistics": {
            "row_count": sum(f.rows for f in files),
            "byte_size": sum(f.uncompressed_bytes for f in files),
            "compressed_size": sum(f.bytes for f in files),
            "schema_version": facts.schema_version,
            "column_count": len(facts.schema),
        },
        "files": [
            {"name": f.name, "rows": f.rows, "bytes": f.bytes, "checksum": f.checksum}
            for f in files
        ],
        "validation": {
            "schema_hash": facts.schema_digest,
            "row_count_verified": verified,
            "checksum_verified": verified,
            "duplicate_check": duplicate,
            "null_check": _check_status(facts.checks, _NULL_CHECKS),
            "checks": list(facts.checks),
        },
        "metadata": {
            "export_type": facts.export_type,
            "export_trigger": facts.trigger,
            "export_duration_ms": duration_ms,
            "bigquery_job_id": facts.bigquery_job_id,
            "operator": facts.operator,
            "cost_usd": facts.cost_usd,
        },
        "mode": facts.mode,
        "window": facts.window,
        "watermark": facts.watermark,
        "idempotency_token": facts.idempotency_token,
        "encryption": facts.encryption,
        "schema": manifest_schema(facts.schema, facts.format),
        ARROW_SCHEMA: facts.arrow_schema,
    }
    if facts.format == "JSONL":
        doc["jsonl"] = dict(JSONL_ENCODING) | _changed(facts.jsonl)
    elif facts.format == "CSV" and (changed := _changed(facts.csv)):
        doc["csv"] = changed
    if (block := names.manifest_block()) is not None:
        doc["filenames"] = block
    return doc


def sidecar_document(
    facts: ExportFacts, entry: FileEntry, encryption: dict[str, Any] | None
) -> dict[str, Any]:
    """``{filename}.metadata.json`` (CONTRACT §8's keys, plus encryption when present)."""
    doc: dict[str, Any] = {
        "name": layout.key_name(entry.name),
        "rows": entry.rows,
        "bytes": entry.bytes,
        "checksum": entry.checksum,
        "schema_hash": facts.schema_digest,
        "export_id": facts.export_id,
        "columns": [f.name for f in facts.schema],
        "format": facts.format,
        "compression": facts.compression,
    }
    if encryption:
        doc["encryption"] = encryption
    return doc


def sidecar_bytes(facts: ExportFacts, entry: FileEntry, encryption: dict[str, Any] | None) -> bytes:
    """``dumps(sidecar_document(...))``, the same bytes, without running the JSON encoder
    per file: an export's sidecars differ only in four values, filled into a template."""
    template = facts.sidecar_template
    plain = (
        type(entry.name) is str
        and type(entry.rows) is int
        and type(entry.bytes) is int
        and type(entry.checksum) is str
    )
    if encryption or template is None or not plain:
        return dumps(sidecar_document(facts, entry, encryption))
    text, (name, rows, size, checksum) = template
    return (
        text.replace(name, json.dumps(layout.key_name(entry.name), ensure_ascii=False))
        .replace(rows, int.__repr__(entry.rows))
        .replace(size, int.__repr__(entry.bytes))
        .replace(checksum, json.dumps(entry.checksum, ensure_ascii=False))
        .encode("utf-8")
    )


def success_marker(
    *, timestamp: datetime, manifest: str, row_count: int, manifests: Sequence[str]
) -> dict[str, Any]:
    return {
        "status": "SUCCESS",
        "timestamp": rfc3339(timestamp),
        "manifest": manifest,
        "row_count": row_count,
        "manifests": list(manifests),
    }


def failure_marker(
    *, timestamp: datetime, error: str, retry_count: int, next_retry: datetime | None
) -> dict[str, Any]:
    return {
        "status": "FAILURE",
        "timestamp": rfc3339(timestamp),
        "error": error,
        "retry_count": retry_count,
        "next_retry": rfc3339(next_retry) if next_retry else None,
    }

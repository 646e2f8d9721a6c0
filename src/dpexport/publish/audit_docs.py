"""The documents ``verify`` reads, held to their shape before they are trusted.

A manifest (CONTRACT §5) whose fields are of the wrong type is a list of problems that
name the field, its value and what was expected, never an exception from the code that
reads it; a sidecar (CONTRACT §8) is held to its manifest entry; a SUCCESS marker to
spec 5.3's shape. Pure functions from bytes to facts and problem texts: the walk over a
store is :mod:`dpexport.publish.audit`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from dpexport.config.spec import CODECS_BY_FORMAT, CsvOptions, JsonlOptions
from dpexport.publish.manifest import text_options
from dpexport.storage import layout

_CHECKSUM = re.compile(r"sha256:[0-9a-f]{64}")
_COUNT = "a whole number, 0 or more"
_MISSING = object()


def shown(value: object, limit: int = 60) -> str:
    """A value as a problem shows it: its repr (cut to ``limit``) and its JSON type."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    kind = {dict: "object", list: "array", str: "string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
    return f"{text} ({kind})"


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0


def _inside(name: str) -> bool:
    """A name relative to the manifest's folder that stays inside it."""
    parts = name.split("/")
    return bool(name) and all(p not in ("", ".", "..") for p in parts) and "\\" not in name


@dataclass(frozen=True)
class Entry:
    """One ``files`` item of a manifest, of the right types."""

    name: str
    rows: int
    bytes: int
    checksum: str


@dataclass
class Manifest:
    """A manifest as ``verify`` checks it. ``problems`` are its shape problems; when
    there are any, its files are not read (``listed`` still names the files it lists,
    so they are not reported as strays too)."""

    key: str
    format: str = ""
    compression: str = ""
    entries: list[Entry] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    names: layout.FileNames = layout.DEFAULT_NAMES
    jsonl: JsonlOptions = field(default_factory=JsonlOptions)
    csv: CsvOptions = field(default_factory=CsvOptions)
    encryption: dict[str, Any] = field(default_factory=dict)
    export_id: str | None = None
    schema_hash: str | None = None
    row_count: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def folder(self) -> str:
        return layout.key_folder(self.key)


def parse_manifest(key: str, raw: bytes) -> Manifest:
    """The manifest stored at ``key``, with a problem for each field of the wrong shape."""
    found = Manifest(key)
    try:
        doc = json.loads(raw)
    except ValueError as exc:  # also bytes that are not UTF-8
        found.problems.append(f"unreadable manifest: not JSON ({exc})")
        return found
    if not isinstance(doc, dict):
        found.problems.append(f"unreadable manifest: manifest is {shown(doc)}, expected an object")
        return found
    found.names = layout.FileNames.of_manifest(doc)
    _destination(doc, found)
    _files(doc.get("files", _MISSING), found)
    _statistics(doc.get("statistics", _MISSING), found)
    _options(doc, found)
    export_id = doc.get("export_id")
    if not isinstance(export_id, str) or not export_id:
        found.problems.append(f"export_id is {shown(export_id)}, expected the export's id")
    else:
        found.export_id = export_id
    validation = doc.get("validation")
    if isinstance(validation, dict) and isinstance(validation.get("schema_hash"), str):
        found.schema_hash = validation["schema_hash"]
    return found


def _destination(doc: dict[str, Any], found: Manifest) -> None:
    dest = doc.get("destination", _MISSING)
    if dest is _MISSING:
        found.problems.append("destination is missing, expected an object")
        return
    if not isinstance(dest, dict):
        found.problems.append(f"destination is {shown(dest)}, expected an object")
        return
    fmt, codec = dest.get("format"), dest.get("compression")
    if not isinstance(fmt, str) or fmt not in CODECS_BY_FORMAT:
        known = ", ".join(CODECS_BY_FORMAT)
        found.problems.append(f"destination.format is {shown(fmt)}, expected one of {known}")
        return
    if not isinstance(codec, str) or codec not in CODECS_BY_FORMAT[fmt]:
        known = ", ".join(CODECS_BY_FORMAT[fmt])
        found.problems.append(
            f"destination.compression is {shown(codec)}, expected one of {known} for {fmt}"
        )
        return
    found.format, found.compression = fmt, codec


def _files(files: object, found: Manifest) -> None:
    if not isinstance(files, list):
        what = "missing" if files is _MISSING else f"{shown(files)}"
        found.problems.append(f"files is {what}, expected a list of file objects")
        return
    for i, item in enumerate(files):
        where = f"files[{i}]"
        if not isinstance(item, dict):
            found.problems.append(f"{where} is {shown(item)}, expected an object")
            continue
        name, rows, size, checksum = (item.get(k) for k in ("name", "rows", "bytes", "checksum"))
        bad = []
        if not isinstance(name, str) or not _inside(name):
            bad.append(f"{where}.name is {shown(name)}, expected a path inside the folder")
        else:
            found.listed.append(name)
        for label, value in (("rows", rows), ("bytes", size)):
            if not _is_count(value):
                bad.append(f"{where}.{label} is {shown(value)}, expected {_COUNT}")
        if not isinstance(checksum, str) or not _CHECKSUM.fullmatch(checksum):
            bad.append(f"{where}.checksum is {shown(checksum)}, expected 'sha256:' and 64 hex")
        found.problems += bad
        if bad:
            continue
        if isinstance(name, str) and isinstance(rows, int) and isinstance(size, int):
            found.entries.append(Entry(name, rows, size, str(checksum)))


def _statistics(stats: object, found: Manifest) -> None:
    if not isinstance(stats, dict):
        what = "missing" if stats is _MISSING else shown(stats)
        found.problems.append(f"statistics is {what}, expected an object")
        return
    count = stats.get("row_count", _MISSING)
    if not _is_count(count):
        what = "missing" if count is _MISSING else shown(count)
        found.problems.append(f"statistics.row_count is {what}, expected {_COUNT}")
        return
    found.row_count = count
    if not found.problems and count != sum(e.rows for e in found.entries):
        found.problems.append(
            f"statistics.row_count {count} differs from its files' "
            f"{sum(e.rows for e in found.entries)} rows"
        )


def _options(doc: dict[str, Any], found: Manifest) -> None:
    """The JSONL/CSV settings and the encryption block, when they have their shape."""
    for block in ("jsonl", "csv", "encryption"):
        value = doc.get(block)
        if value is not None and not isinstance(value, dict):
            found.problems.append(f"{block} is {shown(value)}, expected an object or null")
    if found.problems:
        return
    try:
        found.jsonl, found.csv = text_options(doc)
    except (ValueError, TypeError) as exc:
        found.problems.append(f"jsonl/csv settings unusable: {exc}")
    enc = doc.get("encryption") or {}
    if enc.get("client_side") and not isinstance(enc.get("kms_key"), str):
        found.problems.append(f"encryption.kms_key is {shown(enc.get('kms_key'))}, expected a key")
    found.encryption = enc


def sidecar_problems(raw: bytes, entry: Entry, manifest: Manifest) -> list[str]:
    """How a sidecar's bytes disagree with its manifest entry (empty: they agree)."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        return [f"unreadable sidecar: not JSON ({exc})"]
    if not isinstance(doc, dict):
        return [f"unreadable sidecar: it is {shown(doc)}, expected an object"]
    expected: dict[str, object] = {
        "name": layout.key_name(entry.name),
        "rows": entry.rows,
        "bytes": entry.bytes,
        "checksum": entry.checksum,
        "format": manifest.format,
        "compression": manifest.compression,
    }
    if manifest.export_id is not None:
        expected["export_id"] = manifest.export_id
    if manifest.schema_hash is not None:
        expected["schema_hash"] = manifest.schema_hash
    problems = []
    manifest_name = layout.key_name(manifest.key)
    for key, want in expected.items():
        got = doc.get(key, _MISSING)
        if got is _MISSING:
            problems.append(f"sidecar has no {key}; {manifest_name} says {want!r}")
        elif got != want or type(got) is not type(want):
            problems.append(f"sidecar's {key} is {got!r}; {manifest_name} says {want!r}")
    return problems


@dataclass
class Marker:
    """A SUCCESS marker as ``verify`` checks it: the manifests it names (``None`` when
    it has no ``manifests`` list, as older markers), or the problem that it is garbled."""

    newest: str | None = None
    manifests: list[str] | None = None
    problem: str | None = None


def parse_success(raw: bytes) -> Marker:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        return Marker(problem=f"unreadable SUCCESS marker: not JSON ({exc})")
    if not isinstance(doc, dict):
        return Marker(problem=f"unreadable SUCCESS marker: it is {shown(doc)}, expected an object")
    newest, listed = doc.get("manifest"), doc.get("manifests", _MISSING)
    if not isinstance(newest, str) or not newest:
        return Marker(problem=f"SUCCESS marker's manifest is {shown(newest)}, expected a name")
    if listed is _MISSING:
        return Marker(newest)
    if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
        return Marker(
            problem=f"SUCCESS marker's manifests is {shown(listed)}, expected a list of names"
        )
    return Marker(newest, list(listed))

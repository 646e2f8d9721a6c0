"""What a destination's committed folders hold, read from their SUCCESS markers and
manifests: the files each vouches for, their rows, and (for ``reconcile``) the keys
of the rows they published. A file no SUCCESS vouches for (staged, uncommitted or
retired) is never counted."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pyarrow as pa

from dpexport.config.spec import CsvOptions, JsonlOptions, Repair
from dpexport.errors import DecryptionError, ExportError, NotFound
from dpexport.publish.manifest import text_options
from dpexport.storage import layout
from dpexport.storage.base import Store


@dataclasses.dataclass(frozen=True)
class CommittedFile:
    """One file a SUCCESS marker vouches for, with what its manifest says it was written
    as (format, codec, and the JSONL/CSV settings of that export, not today's config)."""

    key: str
    format: str
    codec: str
    jsonl: JsonlOptions
    csv: CsvOptions
    rows: int
    #: the export that wrote it, and when that export started (its manifest's
    #: ``export_id`` and ``export_timestamp``), so a reader can tell exports apart
    export_id: str = ""
    exported_at: str = ""
    #: the key of the manifest that lists it
    manifest: str = ""
    #: that manifest, as read (one object shared by its files; not compared or hashed)
    manifest_doc: dict[str, Any] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )


def committed_files(store: Store, prefix: str, *, snapshots: bool = False) -> list[CommittedFile]:
    """Every file a SUCCESS marker under ``prefix`` vouches for, in key order; the
    ``snapshot/`` folder an earlier ``compact`` wrote inside the destination only with
    ``snapshots`` (today's snapshot is its own destination: ``layout.snapshot_destination``)."""
    out: list[CommittedFile] = []
    for obj in store.list(prefix):
        rel = obj.key[len(prefix) :]
        if not obj.key.endswith("/" + layout.SUCCESS) and rel != layout.SUCCESS:
            continue
        if layout.in_snapshot(rel) and not snapshots:
            continue
        out += folder_files(store, obj.key[: -len(layout.SUCCESS)])
    return out


def folder_files(store: Store, folder_key: str) -> list[CommittedFile]:
    """The files the SUCCESS marker of one folder vouches for (none without a marker).
    A marker or manifest that cannot be read is named, with a way out."""
    try:
        marker = _document(store, folder_key + layout.SUCCESS)
    except NotFound:
        return []
    out: list[CommittedFile] = []
    for name in marker.get("manifests") or []:
        try:
            manifest = _document(store, folder_key + str(name))
            fmt = manifest["destination"]["format"]
            codec = manifest["destination"]["compression"]
            jsonl, csv = text_options(manifest)
            export = (str(manifest.get("export_id", "")), str(manifest.get("export_timestamp", "")))
            out += [
                CommittedFile(
                    folder_key + f["name"],
                    fmt,
                    codec,
                    jsonl,
                    csv,
                    int(f.get("rows") or 0),
                    *export,
                    folder_key + str(name),
                    manifest,
                )
                for f in manifest["files"]
            ]
        except NotFound:
            continue  # a SUCCESS naming a retired manifest: the retirement finished first
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _damaged(store, folder_key + str(name), exc) from exc
    return out


def published_rows(store: Store, folder_key: str) -> int:
    """The rows the committed files of one folder hold, by their manifests."""
    return sum(f.rows for f in folder_files(store, folder_key))


def published_keys(
    store: Store, folder_key: str, schema: pa.Schema, decryptor: Any = None
) -> pa.Array:
    """The keys (``dedup.row_keys`` of the columns of ``schema``) of every row the
    committed files of one folder hold: only those columns are decoded, as ``schema``
    types them, so a key reads the same from Parquet, JSONL and CSV."""
    from dpexport.formats import read_file
    from dpexport.publish.dedup import row_keys

    chunks: list[pa.Array] = []
    for f in folder_files(store, folder_key):
        try:
            with store.open_read(f.key) as fh:
                table = read_file(
                    fh, f.format, f.codec, csv=f.csv, jsonl=f.jsonl, decryptor=decryptor
                )
            table = table.select(schema.names).cast(schema)
        except (OSError, ValueError, KeyError, pa.ArrowException, DecryptionError) as exc:
            raise ExportError(
                f"{store.uri(f.key)} cannot be read ({type(exc).__name__}: {exc}), so the keys "
                "its folder published are unknown; restore it from the bucket's object "
                "versions (`dpexport verify` lists what else is damaged)",
                code="FAILED_PRECONDITION",
            ) from exc
        for batch in table.to_batches():
            chunks.append(row_keys(batch, schema.names))
    if not chunks:
        return pa.array([], pa.string())
    return pa.concat_arrays(chunks)


def repair_keys(
    store: Store, dest_key: str, repair: Repair, source_schema: pa.Schema, decryptor: Any
) -> pa.Array:
    """The keys the folder a ``reconcile`` repair exports into already published (its
    ``published_keys`` columns, typed as the source's)."""
    schema = pa.schema([source_schema.field(c) for c in repair.published_keys])
    return published_keys(store, layout.folder_key(dest_key, repair.folder), schema, decryptor)


def _document(store: Store, key: str) -> dict[str, Any]:
    try:
        doc = json.loads(store.get(key))
    except ValueError as exc:
        raise _damaged(store, key, exc) from exc
    if not isinstance(doc, dict):
        raise _damaged(store, key, ValueError("not a JSON object"))
    return doc


def _damaged(store: Store, key: str, exc: Exception) -> ExportError:
    return ExportError(
        f"{store.uri(key)} cannot be read ({type(exc).__name__}: {exc}); "
        "`dpexport verify` lists what else is damaged; restore it from the bucket's "
        "object versions",
        code="FAILED_PRECONDITION",
    )

"""What one export makes visible: file names, sidecars, manifests, markers, and the
previous snapshot a FULL_REFRESH retires, gathered into a ``commit.Publication``."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from dpexport.config.spec import TableSpec
from dpexport.errors import ExportError, NotFound
from dpexport.formats.base import WrittenFile
from dpexport.formats.router import Folder
from dpexport.publish import commit, delta
from dpexport.publish.manifest import (
    ExportFacts,
    FileEntry,
    manifest_document,
    rfc3339,
    sidecar_bytes,
)
from dpexport.storage import layout
from dpexport.storage.base import Store

log = logging.getLogger(__name__)


def build(
    *,
    spec: TableSpec,
    store: Store,
    staging: commit.Staging,
    facts: ExportFacts,
    written: list[tuple[Folder, WrittenFile]],
    dest_key: str,
    uuid8: str,
    duration_ms: int,
    deduplicated: bool,
) -> tuple[commit.Publication, list[str]]:
    """Name the staged files, write their sidecars into staging, and decide every move,
    manifest, marker and (FULL_REFRESH) retirement of the export, before the commit."""
    start = facts.export_timestamp
    by_folder: dict[str, list[WrittenFile]] = defaultdict(list)
    for folder, wf in written:
        by_folder[folder.path].append(wf)
    entries: dict[str, list[tuple[FileEntry, WrittenFile]]] = defaultdict(list)
    # a folder ``reconcile`` publishes again whole replaces its files, as FULL_REFRESH does
    republish = spec.repair is not None and not spec.repair.published_keys
    replace = spec.mode == "FULL_REFRESH" or republish
    pub = commit.Publication(facts.export_id, rfc3339(start), replace=replace)
    suffix = layout.file_suffix(
        spec.format, spec.compression, encrypted=bool(facts.encryption.get("client_side"))
    )
    names = spec.filenames
    # on a remote store the uploads (data files, sidecars) run concurrently; the keys,
    # the moves and the manifest entries are decided here in order, as before
    with staging.batch() as uploads:
        for folder_path, files in sorted(by_folder.items()):
            top = layout.top_folder(spec.partitioning, folder_path)
            below = folder_path[len(top) :].lstrip("/")
            for i, wf in enumerate(files, start=1):
                name = names.data(spec.table, start, uuid8, i if len(files) > 1 else None, suffix)
                rel = (below + "/" + name).lstrip("/")
                entry = FileEntry(
                    rel, wf.rows, wf.stored_bytes, "sha256:" + wf.sha256, wf.uncompressed_bytes
                )
                entries[top].append((entry, wf))
                final = layout.folder_key(dest_key, folder_path) + name
                staged = wf.staged_key or staging.put(wf.path, uploads)
                sidecar = staging.put_bytes(
                    layout.sidecar_name(wf.path.name),  # a staging name, flat and unique
                    sidecar_bytes(facts, entry, wf.encryption),
                    uploads,
                )
                pub.moves.append((staged, final))
                pub.moves.append((sidecar, names.sidecar_of(final)))
    manifest_uris = []
    tops = sorted(entries.items())
    plain_name = layout.manifest_name(start)
    taken = commit.run_all(
        [layout.folder_key(dest_key, top) + plain_name for top, _ in tops],
        store.head,
        workers=commit.io_workers(store),
    )
    for (top, items), existing in zip(tops, taken, strict=True):
        folder_key = layout.folder_key(dest_key, top)
        name = plain_name if existing is None else layout.manifest_name(start, uuid8)
        doc = manifest_document(
            facts,
            folder_uri=store.uri(folder_key),
            partition=layout.partition_label(top),
            files=[e for e, _ in items],
            duration_ms=duration_ms,
            verified=True,
            deduplicated=deduplicated,
            names=names,
        )
        pub.manifests.append((folder_key + name, doc))
        pub.markers.append(commit.MarkerUpdate(folder_key, name, sum(e.rows for e, _ in items)))
        manifest_uris.append(store.uri(folder_key + name))
    if pub.replace:
        new = {k for k, _ in pub.manifests}
        pub.retire = previous_snapshot(store, spec, dest_key, new, now=start)
    if spec.table_format == "DELTA":
        pub.delta = _delta_entry(store, spec, dest_key, pub, facts, entries)
    return pub, manifest_uris


def _delta_entry(
    store: Store,
    spec: TableSpec,
    dest_key: str,
    pub: commit.Publication,
    facts: ExportFacts,
    entries: dict[str, list[tuple[FileEntry, WrittenFile]]],
) -> dict[str, Any] | None:
    """The Delta commit of a DELTA table's export (:func:`dpexport.publish.delta.plan`):
    its data files, by final key, and what it retires."""
    files = [
        delta.DataFile(layout.folder_key(dest_key, top) + e.name, e.bytes, e.rows)
        for top, items in entries.items()
        for e, _ in items
    ]
    return delta.plan(
        store,
        dest_key,
        export_id=facts.export_id,
        table=spec.qualified_name,
        schema=delta.written_schema(
            [wf for items in entries.values() for _, wf in items], facts.schema
        ),
        files=files,
        retired=pub.retire,
        whole=pub.replace and spec.overwrite == "table" and not spec.repair,
    )


def previous_snapshot(
    store: Store,
    spec: TableSpec,
    dest_key: str,
    new_manifests: set[str],
    *,
    now: datetime | None = None,
) -> list[str]:
    """Keys of the previous snapshot under the destination, markers first.

    With ``now``, a snapshot that the table's retention still holds (CONTRACT §12)
    stops the export before its commit point with :class:`~dpexport.ops.retention.
    RetentionHeld`: nothing is published and nothing deleted, and the error names the
    object, the date and the way out. Keeping the old files beside the new snapshot
    would make every reader of the destination count their rows twice.

    Only the table's own objects: a manifest whose source is another table (a
    destination nested in this one, which ``check`` refuses) is left with its files and
    markers. A manifest that cannot be read stops the export before its commit point:
    what it lists cannot be retired, and retiring the rest would leave its folder's
    SUCCESS naming a half-deleted snapshot beside the new one."""
    markers: list[str] = []
    manifests: list[str] = []
    files: list[str] = []
    live_folders = {layout.key_folder(k) for k in new_manifests}
    for obj in store.list(dest_key):
        if not layout.is_manifest(layout.key_name(obj.key)) or obj.key in new_manifests:
            continue
        folder = layout.key_folder(obj.key)
        partitions = spec.overwrite == "partitions" or spec.repair is not None
        if partitions and folder not in live_folders:
            continue  # partition-level overwrite: other folders stay as they are
        doc = _manifest(store, obj.key, spec)
        source = doc.get("source") or {}
        if (source.get("dataset"), source.get("table")) != (spec.dataset, spec.table):
            log.warning(
                "%s: not retiring %s: it belongs to %s.%s",
                spec.qualified_name,
                store.uri(obj.key),
                source.get("dataset"),
                source.get("table"),
            )
            continue
        if now is not None:
            _check_retention(store, spec, obj.key, obj.updated or now, now)
        manifests.append(obj.key)
        names = layout.FileNames.of_manifest(doc)  # as they were written, not as configured
        for f in doc.get("files", []):
            files.append(folder + f["name"])
            files.append(names.sidecar_of(folder + f["name"]))
        if folder not in live_folders:
            markers += [folder + layout.SUCCESS, folder + layout.FAILURE]
    return sorted(set(markers)) + manifests + files


def _check_retention(
    store: Store, spec: TableSpec, key: str, written: datetime, now: datetime
) -> None:
    from dpexport.ops.retention import RetentionHeld, describe, kept_until

    until = kept_until(spec, written)
    if until is not None and now < until:
        what = "reconcile's new copy of the folder" if spec.repair else spec.mode
        way = "" if spec.repair else "export it with mode APPEND (or overwrite: partitions), or "
        raise RetentionHeld(
            f"{what} would retire the previous snapshot, but {store.uri(key)} is kept until "
            f"{until:%Y-%m-%d} ({describe(spec)}); nothing was published. While the table "
            f"is under retention, {way}run again after {until:%Y-%m-%d}",
            table=spec.qualified_name,
        )


def _manifest(store: Store, key: str, spec: TableSpec) -> dict[str, Any]:
    try:
        doc = json.loads(store.get(key))
        if not isinstance(doc, dict) or not isinstance(doc.get("files", []), list):
            raise ValueError("not a manifest document: 'files' is not a list")
        named = (isinstance(f, dict) and isinstance(f.get("name"), str) for f in doc["files"])
        if "files" in doc and not all(named):
            raise ValueError("not a manifest document: a 'files' entry has no name")
        if not isinstance(doc.get("source") or {}, dict):
            raise ValueError("not a manifest document: 'source' is not an object")
        return doc
    except (NotFound, ValueError) as exc:
        raise ExportError(
            f"the previous snapshot cannot be retired: its manifest {store.uri(key)} cannot "
            f"be read ({exc}); restore it, or delete that folder's SUCCESS, manifest and "
            "data files by hand, then run again",
            table=spec.qualified_name,
            code="FAILED_PRECONDITION",
        ) from exc

"""``dpexport files``: the committed data files of a table, for readers (CONTRACT §13).

A glob over a destination cannot tell committed files from staged, retired or stray
ones, and cannot tell a FULL_REFRESH's current snapshot from the one it is retiring.
The SUCCESS markers and manifests can (:func:`~dpexport.publish.committed.committed_files`),
so this lists exactly what they vouch for:

- APPEND: every committed file;
- FULL_REFRESH: the newest export's files (with ``overwrite: partitions``, the newest
  export of each folder), never the one a publication is about to retire;
- INCREMENTAL: every committed increment; once ``compact`` made a snapshot (under
  :func:`~dpexport.storage.layout.snapshot_destination`), the snapshot's files and the
  increments exported after it.

:mod:`dpexport.ops.file_sql` turns the list into a DuckDB view or a BigQuery external
table over exactly these files.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpexport.errors import NotFound, UsageError
from dpexport.publish.committed import CommittedFile, committed_files
from dpexport.storage import layout
from dpexport.storage.local import LocalStore

if TYPE_CHECKING:
    from dpexport.config.spec import TableSpec
    from dpexport.storage.base import Store
    from dpexport.storage.uri import StoreResolver

#: what ``--format`` takes
FORMATS = ("uris", "duckdb", "bigquery")


@dataclasses.dataclass(frozen=True)
class TableFile:
    """One committed data file: ``uri`` in the destination's scheme (``gs://b/k``, or the
    path of a local destination), ``path`` the file on this machine when it is on one
    (a local destination, or any under ``--local-root``)."""

    uri: str
    path: str | None
    committed: CommittedFile
    #: its manifest's schema, ``(name, type)`` in order (None when it has none)
    schema: tuple[tuple[str, str], ...] | None = None

    @property
    def encrypted(self) -> bool:
        return self.committed.key.endswith("." + layout.ENCRYPTED_SUFFIX)

    def document(self) -> dict[str, Any]:
        """``files --json``'s entry: ``{uri, rows, format, codec}`` (and ``path``, the
        file on this machine, when it is on one)."""
        doc: dict[str, Any] = {
            "uri": self.uri,
            "rows": self.committed.rows,
            "format": self.committed.format,
            "codec": self.committed.codec,
        }
        if self.path is not None:
            doc["path"] = self.path
        return doc


@dataclasses.dataclass(frozen=True)
class TableFiles:
    """What ``files`` answers: the table, the format asked for, the committed files and
    the statement over them (``None`` for ``uris``)."""

    table: str
    format: str
    files: list[TableFile]
    statement: str | None

    def document(self) -> dict[str, Any]:
        """``files --json``'s object."""
        return {
            "table": self.table,
            "format": self.format,
            "files": [f.document() for f in self.files],
            "statement": self.statement,
        }


def table_files(spec: TableSpec, stores: StoreResolver) -> list[TableFile]:
    """The data files a reader of ``spec``'s table should read now (see the module)."""
    store, dest_key = _resolved(stores, spec.destination)
    found = [(store, f) for f in committed_files(store, dest_key)]
    if spec.mode == "FULL_REFRESH":
        found = _current(found, by_folder=spec.overwrite == "partitions")
    elif spec.mode == "INCREMENTAL":
        found = _after_snapshot(found, stores, spec.destination)
    schemas: dict[str, tuple[tuple[str, str], ...] | None] = {}
    return [_located(s, f, schemas) for s, f in found]


def _resolved(stores: StoreResolver, uri: str) -> tuple[Store, str]:
    store, key = stores.resolve(uri)
    return store, key if not key or key.endswith("/") else key + "/"


Found = list[tuple["Store", CommittedFile]]


def _current(found: Found, *, by_folder: bool) -> Found:
    """The newest export's files (of each manifest folder when ``by_folder``): the one
    a FULL_REFRESH committed last, never the snapshot it is retiring."""
    newest: dict[str, tuple[str, str]] = {}
    for _, f in found:
        scope = layout.key_folder(f.manifest) if by_folder else ""
        stamp = (f.exported_at, f.export_id)
        newest[scope] = max(newest.get(scope, stamp), stamp)
    return [
        (s, f)
        for s, f in found
        if (f.exported_at, f.export_id)
        == newest[layout.key_folder(f.manifest) if by_folder else ""]
    ]


def _after_snapshot(increments: Found, stores: StoreResolver, destination: str) -> Found:
    """``compact``'s current snapshot, if any, and the increments not exported before it
    (:func:`_not_before`)."""
    snap_store, snap_key = _resolved(stores, layout.snapshot_destination(destination))
    snapshot = _current(
        [(snap_store, f) for f in committed_files(snap_store, snap_key)], by_folder=False
    )
    if not snapshot:
        return increments
    return snapshot + _not_before(increments, max(f.exported_at for _, f in snapshot))


def _not_before(increments: Found, taken: str) -> Found:
    """The increments that started no earlier than the snapshot's export: ``compact``
    holds the table's lease from listing what it folds to its commit, so every other
    increment started after the snapshot's export. Times are whole seconds: one started
    in the snapshot's second may be missing from it, so it is kept (one the snapshot did
    fold only repeats rows the view's newest-per-key keeps once)."""
    return [(s, f) for s, f in increments if f.exported_at >= taken]


def _located(
    store: Store, f: CommittedFile, schemas: dict[str, tuple[tuple[str, str], ...] | None]
) -> TableFile:
    path = str(Path(store.root, f.key).resolve()) if isinstance(store, LocalStore) else None
    if f.manifest not in schemas:
        schemas[f.manifest] = _schema(store, f.manifest)
    return TableFile(store.uri(f.key), path, f, schemas[f.manifest])


def _schema(store: Store, manifest_key: str) -> tuple[tuple[str, str], ...] | None:
    """A manifest's ``schema`` as ``(name, type)`` pairs; None when it has none (or it
    is gone: the files' readers then find the columns themselves)."""
    try:
        fields = json.loads(store.get(manifest_key)).get("schema")
    except (NotFound, ValueError, AttributeError):
        return None
    if not isinstance(fields, list):
        return None
    try:
        return tuple((str(f["name"]), str(f["type"])) for f in fields)
    except (KeyError, TypeError):
        return None


def list_files(spec: TableSpec, stores: StoreResolver, fmt: str) -> TableFiles:
    """``files``: ``spec``'s committed files and, for ``duckdb`` / ``bigquery``, the
    statement over them (a :class:`~dpexport.errors.UsageError` says why a reader
    cannot read them)."""
    from dpexport.ops.file_sql import bigquery_statement, duckdb_statement

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    files = table_files(spec, stores)
    statements = {"duckdb": duckdb_statement, "bigquery": bigquery_statement}
    write = statements.get(fmt)  # the readers' statements; ``uris`` has none
    statement = write(spec, files, hive=spec.partitioning.hive) if write else None
    return TableFiles(spec.qualified_name, fmt, files, statement)

"""The commit protocol: the only code that makes export data visible.

One export goes through these steps, each safe to be killed after:

1. **stage** - data files and sidecars are written under ``_staging/{export_id}/``
   with an ``_owner.json`` naming the process; nothing outside ``_staging/`` changes.
2. **verify** - every staged file is re-read: sha256, row count, readability.
3. **journal** - ``_staging/{export_id}/_commit.json`` records every move, manifest,
   marker and retirement. Writing it is the commit point: before it, recovery rolls
   the export back (deletes its staging); after it, recovery rolls it forward.
4. **manifests** - each top-level time folder gets its manifest *before* its data,
   so at no instant does a final folder hold a data file that no manifest lists.
5. **moves** - data files and sidecars are moved to their final keys.
6. **markers** - SUCCESS is updated by compare-and-swap (it names the new manifest
   and lists the folder's manifests); FAILURE in those folders is removed.
7. **retire** - FULL_REFRESH only: the previous snapshot's markers, manifests and
   files are deleted, markers first, so no SUCCESS ever points at missing files.
8. **clean** - the staging folder goes, the journal last.

Every step after the journal is idempotent, so rolling forward is re-running them.
Readers go by SUCCESS: it only ever lists manifests whose files are all in place.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dpexport import layout, state
from dpexport.errors import NotFound, PreconditionFailed
from dpexport.manifest import dumps, success_marker
from dpexport.storage.base import Store
from dpexport.storage.local import write_new_file

log = logging.getLogger(__name__)

OWNER = "_owner.json"
JOURNAL = "_commit.json"


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks (Linux), to tell a reused PID apart."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start: str | None
    #: the process's local scratch folder, removed when a dead owner's work is recovered
    scratch: str | None = None

    @staticmethod
    def me() -> Owner:
        pid = os.getpid()
        return Owner(socket.gethostname(), pid, _proc_start(pid))

    def is_dead_here(self) -> bool:
        """True when the owner ran on this host and that process no longer exists."""
        if self.host != socket.gethostname():
            return False
        return _proc_start(self.pid) != self.start or (self.start is None and not _alive(self.pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class MarkerUpdate:
    folder_key: str  # ends with "/"
    manifest: str  # manifest file name in that folder
    row_count: int


@dataclass
class Publication:
    """Everything one export makes visible, decided before the first visible write."""

    export_id: str
    timestamp: str  # RFC 3339, for the markers
    moves: list[tuple[str, str]] = field(default_factory=list)  # staged key -> final key
    manifests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    markers: list[MarkerUpdate] = field(default_factory=list)
    replace: bool = False  # FULL_REFRESH: SUCCESS lists only the new manifest
    retire: list[str] = field(default_factory=list)  # keys of the previous snapshot
    #: the watermark this export advances to: {dataset, table, value, kind, export_id}
    watermark: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "timestamp": self.timestamp,
            "moves": self.moves,
            "manifests": self.manifests,
            "markers": [asdict(m) for m in self.markers],
            "replace": self.replace,
            "retire": self.retire,
            "watermark": self.watermark,
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> Publication:
        return Publication(
            export_id=doc["export_id"],
            timestamp=doc["timestamp"],
            moves=[(a, b) for a, b in doc["moves"]],
            manifests=[(k, d) for k, d in doc["manifests"]],
            markers=[MarkerUpdate(**m) for m in doc["markers"]],
            replace=bool(doc["replace"]),
            retire=list(doc["retire"]),
            watermark=doc.get("watermark"),
        )


def staging_prefix(export_id: str) -> str:
    return f"{layout.STAGING_PREFIX}{export_id}/"


class Staging:
    """The work-in-progress area of one export, on one store."""

    def __init__(self, store: Store, export_id: str, scratch: Path) -> None:
        self.store = store
        self.export_id = export_id
        self.prefix = staging_prefix(export_id)
        local = store.staging_dir()
        # On a local store, staging is a folder of the store itself: publishing is a rename.
        self.local_dir = (local / export_id) if local is not None else scratch / export_id
        self._remote = local is None
        self._scratch = scratch
        self._seq = 0

    def begin(self) -> None:
        self.local_dir.mkdir(parents=True, exist_ok=True)
        owner = dataclasses.replace(Owner.me(), scratch=str(self._scratch))
        self.store.put_bytes(self.prefix + OWNER, dumps(asdict(owner)))

    def new_path(self, suffix: str) -> Path:
        self._seq += 1
        return self.local_dir / f"part-{self._seq:05d}.{suffix}"

    def key_of(self, path: Path) -> str:
        return self.prefix + path.relative_to(self.local_dir).as_posix()

    def put(self, path: Path) -> str:
        """Make a local staging file an object of the store's staging area."""
        key = self.key_of(path)
        if self._remote:
            self.store.put_file(key, path)
        return key

    def put_document(self, name: str, doc: dict[str, Any]) -> str:
        return self.put_bytes(name, dumps(doc))

    def put_bytes(self, name: str, data: bytes) -> str:
        """Stage a small object (a sidecar) beside the data files; returns its key.

        On a local store the staging folder is the store's own, so the bytes are written
        into it like the data files are: nothing reads staging before the journal, and a
        process killed before the journal is rolled back, torn files and all."""
        key = self.prefix + name
        if self._remote:
            self.store.put_bytes(key, data)
        else:
            write_new_file(self.local_dir / name, data)
        return key

    def discard(self) -> None:
        """Roll back: delete everything this export staged."""
        clean_prefix(self.store, self.prefix)


def clean_prefix(store: Store, prefix: str) -> None:
    keys = [o.key for o in store.list(prefix)]
    for key in sorted(keys, key=lambda k: k.endswith(JOURNAL)):  # journal last
        store.delete(key)


def publish(
    store: Store, pub: Publication, *, on_step: Callable[[str], None] | None = None
) -> None:
    """Write the journal (the commit point), then apply it."""
    store.put_bytes(staging_prefix(pub.export_id) + JOURNAL, dumps(pub.to_json()))
    if on_step:
        on_step("journal")
    apply(store, pub, on_step=on_step)


def apply(store: Store, pub: Publication, *, on_step: Callable[[str], None] | None = None) -> None:
    """Steps 4-8; idempotent, so recovery can run it again after a crash.

    ``on_step`` is called after every single write (tests stop the process there)."""
    step = on_step or (lambda _s: None)
    for key, doc in pub.manifests:
        store.put_bytes(key, dumps(doc))
        step("manifest")
    for src, dst in pub.moves:
        try:
            store.move(src, dst)
        except NotFound:
            if store.head(dst) is None:
                raise
        step("move")
    for marker in pub.markers:
        _update_success(store, marker, pub.timestamp, replace=pub.replace)
        store.delete(marker.folder_key + layout.FAILURE)
        step("marker")
    if pub.watermark is not None:
        state.write_watermark(
            store,
            pub.watermark["dataset"],
            pub.watermark["table"],
            state.Watermark.from_json(pub.watermark),
        )
        step("watermark")
    for key in pub.retire:
        store.delete(key)
        step("retire")
    clean_prefix(store, staging_prefix(pub.export_id))
    step("clean")


def _update_success(store: Store, marker: MarkerUpdate, timestamp: str, *, replace: bool) -> None:
    key = marker.folder_key + layout.SUCCESS
    ts = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    for _ in range(50):
        info = store.head(key)
        manifests: list[str] = []
        if info is not None and not replace:
            try:
                existing = json.loads(store.get(key))
                manifests = [m for m in existing.get("manifests", []) if m != marker.manifest]
            except (NotFound, ValueError):
                manifests = []
        manifests.append(marker.manifest)
        doc = success_marker(
            timestamp=ts, manifest=marker.manifest, row_count=marker.row_count, manifests=manifests
        )
        try:
            store.replace_if_match(key, dumps(doc), info.version if info else None)
            return
        except PreconditionFailed:
            continue  # another export updated the marker between our read and write
    raise PreconditionFailed(f"could not update {key}: too much contention", uri=store.uri(key))


def _remove_scratch(owner: Owner) -> None:
    """A killed process's local scratch folder (only ever one of ours, in the temp dir)."""
    if not owner.scratch:
        return
    path = Path(owner.scratch)
    temp = Path(tempfile.gettempdir()).resolve()
    if path.name.startswith("dpexport-") and path.resolve().parent == temp:
        shutil.rmtree(path, ignore_errors=True)


def staged_exports(store: Store) -> Iterator[str]:
    """Export ids that have something under ``_staging/``."""
    seen: set[str] = set()
    for obj in store.list(layout.STAGING_PREFIX):
        rest = obj.key[len(layout.STAGING_PREFIX) :]
        export = rest.split("/", 1)[0]
        if export and export not in seen:
            seen.add(export)
            yield export


def recover(store: Store) -> list[tuple[str, str]]:
    """Finish or roll back what crashed exports left in ``_staging/``.

    An export whose owner process is still alive (or ran on another host) is left
    alone. With a journal it is rolled forward, without one rolled back. Returns
    ``(export_id, "rolled forward" | "rolled back")`` pairs.
    """
    done: list[tuple[str, str]] = []
    for export in list(staged_exports(store)):
        prefix = staging_prefix(export)
        try:
            owner = Owner(**json.loads(store.get(prefix + OWNER)))
        except (NotFound, ValueError, TypeError):
            owner = None
        if owner is not None and not owner.is_dead_here():
            continue
        try:
            journal = json.loads(store.get(prefix + JOURNAL))
        except NotFound:
            journal = None
        except ValueError:
            journal = None  # a torn journal was never the commit point
        if owner is not None:
            _remove_scratch(owner)
        if journal is not None:
            log.warning("recovering export %s: rolling forward its commit", export)
            apply(store, Publication.from_json(journal))
            done.append((export, "rolled forward"))
        else:
            log.warning("recovering export %s: rolling back its unfinished staging", export)
            clean_prefix(store, prefix)
            done.append((export, "rolled back"))
    return done

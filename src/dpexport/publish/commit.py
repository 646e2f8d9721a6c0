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
   A DELTA table's log then gets its commit (:mod:`dpexport.publish.delta`).
6. **markers** - SUCCESS is updated by compare-and-swap (it names the new manifest
   and lists the folder's manifests); FAILURE in those folders is removed.
7. **retire** - FULL_REFRESH only: the previous snapshot's markers, manifests and
   files are deleted, markers first, so no SUCCESS ever points at missing files.
8. **clean** - the staging folder goes, the journal last.

Every step after the journal is idempotent, so rolling forward is re-running them.
Readers go by SUCCESS: it only ever lists manifests whose files are all in place.

Within a step the writes are independent of each other (one key each), so on a remote
store they run concurrently (:class:`Batch`): each is a request that waits on the
network, and a partitioned export has tens of thousands of them. A step still ends
before the next begins, and ``on_step`` still sees one call per write, on the calling
thread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from dpexport.errors import NotFound, PreconditionFailed
from dpexport.publish import delta, state
from dpexport.publish.manifest import dumps, success_marker
from dpexport.publish.owner import Owner as Owner  # where sweep and tokens import it
from dpexport.publish.stuck import StagedFileGone, damaged_journal_message, unfinished_message
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.storage.batch import Batch, io_workers, run_all
from dpexport.storage.local import write_new_file
from dpexport.timestamps import parse_rfc3339

log = logging.getLogger(__name__)

#: Exports this process is running now (their staging must not be recovered under them).
#: An export of this process that is not in it (it stopped after its commit point with a
#: step unfinished) is recovered like a dead process's, by the next export in this process.
_LIVE: set[str] = set()


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
    #: the watermark this export advances to: {key, value, kind, export_id, manifests}
    watermark: dict[str, Any] | None = None
    #: ``dataset.table`` and destination key of the export (recovery names them)
    table: str | None = None
    destination: str | None = None
    #: ``table_format: DELTA``: the Delta commit it makes (:func:`dpexport.publish.delta.plan`)
    delta: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "timestamp": self.timestamp,
            "table": self.table,
            "destination": self.destination,
            "moves": self.moves,
            "manifests": self.manifests,
            "markers": [asdict(m) for m in self.markers],
            "replace": self.replace,
            "retire": self.retire,
            "watermark": self.watermark,
            "delta": self.delta,
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
            table=doc.get("table"),
            destination=doc.get("destination"),
            delta=doc.get("delta"),
        )


class Staging:
    """The work-in-progress area of one export, on one store."""

    def __init__(self, store: Store, export_id: str, scratch: Path) -> None:
        self.store = store
        self.export_id = export_id
        self.prefix = layout.staging_prefix(export_id)
        local = store.staging_dir()
        # On a local store, staging is a folder of the store itself: publishing is a rename.
        self.local_dir = (local / export_id) if local is not None else scratch / export_id
        self._remote = local is None
        self._dir_text = os.path.join(self.local_dir, "")  # with its trailing separator
        self._scratch = scratch
        self._seq = 0

    def begin(self) -> None:
        _LIVE.add(self.export_id)
        owner = dataclasses.replace(Owner.me(), scratch=str(self._scratch))
        # the owner first: on a local store it makes the staging folder, which holds it
        # from then on, so no other export's prune of empty folders removes it
        self.store.put_bytes(self.prefix + layout.STAGING_OWNER, dumps(asdict(owner)))
        self.local_dir.mkdir(parents=True, exist_ok=True)

    def new_path(self, suffix: str) -> Path:
        self._seq += 1
        return self.local_dir / layout.staging_part_name(self._seq, suffix)

    def key_of(self, path: Path) -> str:
        # a file new_path made is named by string: Path.relative_to cost ~35 µs a file
        text = str(path)
        if text.startswith(self._dir_text):
            return self.prefix + text[len(self._dir_text) :].replace(os.sep, "/")
        return self.prefix + path.relative_to(self.local_dir).as_posix()

    def batch(self) -> Batch[Any]:
        """A batch for :meth:`put` and :meth:`put_bytes`: their uploads run concurrently
        on a remote store; on a local store nothing goes through it."""
        return Batch(io_workers(self.store))

    def put(self, path: Path, batch: Batch[Any] | None = None) -> str:
        """Make a local staging file an object of the store's staging area (an upload on
        a remote store: handed to ``batch`` when one is given, done once it ends)."""
        key = self.key_of(path)
        if self._remote:
            self._upload(batch, partial(self.store.put_file, key, path))
        return key

    def put_document(self, name: str, doc: dict[str, Any]) -> str:
        return self.put_bytes(name, dumps(doc))

    def put_bytes(self, name: str, data: bytes, batch: Batch[Any] | None = None) -> str:
        """Stage a small object (a sidecar) beside the data files; returns its key.

        On a local store the staging folder is the store's own, so the bytes are written
        into it like the data files are: nothing reads staging before the journal, and a
        process killed before the journal is rolled back, torn files and all. On a
        remote store the upload is handed to ``batch`` when one is given."""
        key = self.prefix + name
        if self._remote:
            self._upload(batch, partial(self.store.put_bytes, key, data))
        else:
            write_new_file(self._dir_text + name, data)
        return key

    @staticmethod
    def _upload(batch: Batch[Any] | None, call: Callable[[], Any]) -> None:
        if batch is None:
            call()
        else:
            batch.submit(partial(_without_result, call))

    def discard(self) -> None:
        """Roll back: delete everything this export staged. Never after the commit point:
        the journal is then the only record of a publication that has begun."""
        clean_prefix(self.store, self.prefix)

    def release(self) -> None:
        """This process no longer works on the export: what it left is recoverable."""
        _LIVE.discard(self.export_id)


def _without_result(call: Callable[[], Any]) -> None:
    """``call()``, its result dropped (a batch keeps results until it ends)."""
    call()


def clean_prefix(store: Store, prefix: str) -> None:
    """Delete everything under ``prefix``, the journal and then the owner file last: while
    anything is left, the owner says who works on it, so a recovery listing ``_staging/``
    meanwhile (another export of a parallel run) leaves it to its running export."""
    keys = [o.key for o in store.list(prefix)]
    last = (layout.STAGING_JOURNAL, layout.STAGING_OWNER)
    run_all(
        [k for k in keys if not k.endswith(last)],
        store.delete,
        workers=io_workers(store),
    )
    for name in last:
        for key in keys:
            if key.endswith(name):
                store.delete(key)


def publish(
    store: Store, pub: Publication, *, on_step: Callable[[str], None] | None = None
) -> None:
    """Write the journal (the commit point), then apply it."""
    write_journal(store, pub)
    if on_step:
        on_step("journal")
    apply(store, pub, on_step=on_step)


def write_journal(store: Store, pub: Publication) -> None:
    """The commit point: once this returns, the export only ever moves forward."""
    store.put_bytes(
        layout.staging_prefix(pub.export_id) + layout.STAGING_JOURNAL,
        dumps(pub.to_json(), compact=True),
    )


def apply(store: Store, pub: Publication, *, on_step: Callable[[str], None] | None = None) -> None:
    """Steps 4-8; idempotent, so recovery can run it again after a crash.

    ``on_step`` is called after every single write (tests stop the process there), on
    the calling thread. The writes of one step run concurrently on a remote store
    (:func:`io_workers`); every write of a step has completed before the next step
    starts, and the first failure stops the step (writes under way finish) and is raised.

    A FULL_REFRESH takes the previous snapshot's markers down *before* its own go up: if
    a step fails in between, readers see no snapshot until the journal is finished,
    never two at once.
    """
    step = on_step or (lambda _s: None)
    workers = io_workers(store)

    def done(name: str) -> Callable[[], None]:
        return partial(step, name)

    def put_manifest(item: tuple[str, dict[str, Any]]) -> None:
        store.put_bytes(item[0], dumps(item[1]))

    def move(item: tuple[str, str]) -> None:
        src, dst = item
        try:
            store.move(src, dst)
        except NotFound as exc:
            if store.head(dst) is None:  # else moved by an earlier run: done
                raise StagedFileGone(
                    f"the staged file {store.uri(src)} is gone, and {store.uri(dst)} does "
                    "not exist either",
                    uri=store.uri(src),
                ) from exc

    def mark(marker: MarkerUpdate) -> None:
        _update_success(store, marker, pub.timestamp, replace=pub.replace)
        store.delete(marker.folder_key + layout.FAILURE)

    phases = list(_retire_phases(pub.retire))
    old_markers = phases.pop(0) if phases and _is_marker(phases[0][0]) else []
    run_all(pub.manifests, put_manifest, workers=workers, on_done=done("manifest"))
    run_all(pub.moves, move, workers=workers, on_done=done("move"))
    if pub.delta is not None:  # every file in place, no marker yet (CONTRACT §13)
        delta.commit(store, pub.delta)
        step("delta")
    run_all(old_markers, store.delete, workers=workers, on_done=done("retire"))
    run_all(pub.markers, mark, workers=workers, on_done=done("marker"))
    if pub.watermark is not None:
        state.write_watermark(store, state.Watermark.from_json(pub.watermark), pub.watermark)
        step("watermark")
    for keys in phases:
        run_all(keys, store.delete, workers=workers, on_done=done("retire"))
    clean_prefix(store, layout.staging_prefix(pub.export_id))
    step("clean")


def _is_marker(key: str) -> bool:
    return layout.is_marker(layout.key_name(key))


def _retire_phases(keys: list[str]) -> Iterator[list[str]]:
    """The retired keys in runs of one kind (markers, manifests, data files), in journal
    order: a run is deleted concurrently, and all of it before the next run starts, so
    no SUCCESS ever names a deleted manifest, nor a manifest a deleted file."""
    run: list[str] = []
    kind = None
    for key in keys:
        this = 0 if _is_marker(key) else 1 if layout.is_manifest(layout.key_name(key)) else 2
        if run and this != kind:
            yield run
            run = []
        kind = this
        run.append(key)
    if run:
        yield run


def _update_success(store: Store, marker: MarkerUpdate, timestamp: str, *, replace: bool) -> None:
    key = marker.folder_key + layout.SUCCESS
    ts = parse_rfc3339(timestamp)
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
        export = layout.staged_export_id(obj.key)
        if export and export not in seen:
            seen.add(export)
            yield export


@dataclass(frozen=True)
class Recovered:
    """What recovery did with one export another run left in ``_staging/``."""

    export_id: str
    outcome: str  # "rolled forward" | "rolled back" | "not finished" | "damaged"
    table: str | None = None  # ``dataset.table`` (from the journal; None without one)
    error: str | None = None  # why a committed export could not be finished, and what to do
    #: the destination key it publishes into (or one of its final keys), when known
    destination: str | None = None


def _owner(store: Store, prefix: str) -> Owner | None:
    try:
        return Owner(**json.loads(store.get(prefix + layout.STAGING_OWNER)))
    except (NotFound, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class _Journal:
    pub: Publication | None  # None: no journal, or one that cannot be read
    damage: str | None = None  # why it cannot be read
    table: str | None = None  # the table a damaged journal still names, if any
    destination: str | None = None  # and its destination


def _journal(store: Store, prefix: str) -> _Journal:
    """The journal of a staged export.

    Every store writes an object whole (a local one through a temporary file and a
    rename), so a journal that exists was written complete, and its export passed its
    commit point: manifests, moves or retirements may have followed. One that cannot be
    read was damaged afterwards. It is never rolled back (its staged files may be the
    only copy of rows a manifest already lists) nor rolled forward (what it promised is
    lost): it is left in place and reported, and only a person who has checked what the
    export published can set it aside (``stuck.damaged_journal_message``)."""
    try:
        doc = json.loads(store.get(prefix + layout.STAGING_JOURNAL))
    except NotFound:
        return _Journal(None)
    except ValueError as exc:
        return _Journal(None, f"not valid JSON: {exc}")
    table, dest = (
        (doc.get("table"), doc.get("destination")) if isinstance(doc, dict) else (None, None)
    )
    try:
        pub = Publication.from_json(doc)
    except KeyError as exc:
        damage = f"not a commit journal (it has no {exc} key)"
    except (TypeError, ValueError, AttributeError) as exc:
        damage = f"not a commit journal ({exc})"
    else:
        return _Journal(pub)
    text = [v if isinstance(v, str) else None for v in (table, dest)]
    return _Journal(None, damage, text[0], text[1])


def _destination(pub: Publication) -> str | None:
    """Where a journal publishes: its own record, or (a journal written before it kept
    one) its first final key."""
    keys = [dst for _, dst in pub.moves] + [key for key, _ in pub.manifests]
    return pub.destination or (keys[0] if keys else None)


def _abandoned(export: str, owner: Owner | None) -> bool:
    """True when no process works on the export any more: its owner is gone, or it is
    this process and the export is not running (it stopped after its commit point)."""
    if owner is None:
        return True
    me = Owner.me()
    if (owner.host, owner.pid, owner.start) == (me.host, me.pid, me.start):
        return export not in _LIVE
    return owner.is_dead_here()


def recover(store: Store) -> list[Recovered]:
    """Finish or roll back what crashed or stopped exports left in ``_staging/``.

    An export whose owner process is still working on it (or ran on another host) is
    left alone. With a journal it is rolled forward, without one rolled back. A
    journal whose steps fail again stays for the next run, and is reported as
    ``not finished`` with the error: its export committed, so it is never rolled back.
    """
    done: list[Recovered] = []
    for export in list(staged_exports(store)):
        prefix = layout.staging_prefix(export)
        owner = _owner(store, prefix)
        if not _abandoned(export, owner):
            continue
        if next(iter(store.list(prefix)), None) is None:  # finished since it was listed
            continue
        journal = _journal(store, prefix)
        if owner is not None and owner.pid != os.getpid():
            _remove_scratch(owner)
        if journal.damage is not None:
            error = damaged_journal_message(store, export, journal.damage)
            log.error("%s", error)
            done.append(Recovered(export, "damaged", journal.table, error, journal.destination))
            continue
        pub = journal.pub
        if pub is None:
            log.warning("recovering export %s: rolling back its unfinished staging", export)
            clean_prefix(store, prefix)
            done.append(Recovered(export, "rolled back"))
            continue
        log.warning("recovering export %s: rolling forward its commit", export)
        try:
            apply(store, pub)
        except Exception as exc:  # whatever it is, the next run tries again; say it here
            error = unfinished_message(store, export, exc)
            log.error("export %s committed but could not be finished: %s", export, error)
            done.append(Recovered(export, "not finished", pub.table, error, _destination(pub)))
            continue
        done.append(Recovered(export, "rolled forward", pub.table))
    return done

"""Cross-cloud replication of committed exports (spec 1.2, 1.3; CONTRACT §2 ``replicate``).

Each ``replication`` item names tables and a target URI. For every table, each folder
of its destination that holds a ``SUCCESS`` marker is copied to
``{target}{dataset}/{entity}/{path below the destination}`` in the order the commit
protocol publishes (data files, sidecars, manifests, ``SUCCESS`` last), so a target
folder is only ever committed once everything it lists is in place. Only files the
manifests named in ``SUCCESS`` list are copied: staging, uncommitted or retired files
never leave the source.

Every data file's sha256 is checked against its manifest when read from the source and
again after it was written (read back from the target). An object already at the target
with the expected size and checksum is skipped; the checksum is known without a
download when the target's version still equals the one recorded in the folder's
replication state (``_state/replication/{target folder}state.json`` on the target),
otherwise it is read back. So a second run copies nothing, and a run interrupted at any
point resumes where it stopped: what it copied is skipped, and the target folder gets
its ``SUCCESS`` only at the end.

Between two stores, bytes stream through this machine (a temporary file, then
``put_file``); inside one store the copy is server-side.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpexport.config.spec import ResolvedConfig
from dpexport.errors import ExportError, NotFound
from dpexport.ops.cost import price_table, replication_cost
from dpexport.publish.manifest import dumps
from dpexport.publish.verification import sha256_of
from dpexport.storage import layout
from dpexport.storage.base import Store

if TYPE_CHECKING:
    from dpexport.config.models import Replication

log = logging.getLogger(__name__)

#: (URI) -> (store, key): how URIs open; tests wrap stores here
Opener = Callable[[str], tuple[Store, str]]


@dataclass
class TableReport:
    """What one table's replication did."""

    replication: str
    table: str
    source: str
    target: str
    folders: int = 0
    copied: int = 0
    skipped: int = 0
    bytes: int = 0  # bytes copied this run
    mismatches: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: this run's copies priced (``dpexport.ops.cost.replication_cost``): reads at the
    #: source, writes and a month of storage at the target, egress between clouds
    cost_usd: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "replication": self.replication,
            "table": self.table,
            "source": self.source,
            "target": self.target,
            "folders": self.folders,
            "copied": self.copied,
            "skipped": self.skipped,
            "bytes": self.bytes,
            "mismatches": self.mismatches,
            "errors": self.errors,
            "cost_usd": self.cost_usd,
        }

    def line(self) -> str:
        status = "OK" if self.ok else "FAILED"
        text = (
            f"{status} {self.table} -> {self.target}: {self.folders} committed folder(s), "
            f"copied {self.copied} ({self.bytes} bytes), skipped {self.skipped}"
        )
        if self.mismatches:
            text += f", {len(self.mismatches)} checksum mismatch(es)"
        if self.errors:
            text += f", {len(self.errors)} error(s)"
        return text


@dataclass(frozen=True)
class _Object:
    """One object of a committed folder: its path below the folder, and what it must
    hold (``sha256`` hex and ``size``; ``data`` when the bytes are already in memory)."""

    rel: str
    sha256: str
    size: int
    data: bytes | None = None


def replicate(
    config: ResolvedConfig,
    *,
    local_root: Path | None = None,
    tables: Iterable[str] = (),
    opener: Opener | None = None,
    items: Iterable[int] | None = None,
) -> list[TableReport]:
    """Replicate every ``replication`` item of ``config`` (a ResolvedConfig), or only
    the items at the indexes ``items``, or only the items' tables named in ``tables``;
    one report per (item, table)."""
    from dpexport.storage.uri import StoreResolver
    from dpexport.transforms.pipeline import server_side_store

    resolve = opener or StoreResolver(local_root).resolve
    wanted = set(tables)
    reports: list[TableReport] = []
    chosen = None if items is None else set(items)
    for index, item in enumerate(config.replication):
        if chosen is not None and index not in chosen:
            continue
        name = item_name(item, index)
        for table_name in item.tables:
            spec = config.table(table_name)
            if wanted and not wanted & {spec.table, spec.qualified_name}:
                continue
            dest = layout.replica_destination(item.target, spec.dataset, spec.table)
            report = TableReport(name, spec.qualified_name, spec.destination, dest)
            reports.append(report)
            try:
                src, src_prefix = resolve(spec.destination)
                tgt, tgt_prefix = resolve(dest)
                tgt = server_side_store(tgt, spec, config)  # a CMEK table stays encrypted
                replicate_table(
                    src, src_prefix, tgt, tgt_prefix, report, verify=item.verify_checksums
                )
            except ExportError as exc:
                report.errors.append(str(exc))
            report.cost_usd = replication_cost(
                spec.destination, dest, report.bytes, report.copied, price_table(config.pricing)
            )
    return reports


def item_name(item: Replication, index: int) -> str:
    """What reports call a ``replication`` item: its ``name``, or its place in the list."""
    return str(item.name or f"replication[{index}]")


def committed_folders(store: Store, prefix: str) -> Iterator[str]:
    """Keys (ending in ``/``) of the folders under ``prefix`` that hold a SUCCESS marker."""
    for obj in store.list(prefix):
        if obj.key.startswith(layout.RESERVED_PREFIXES):
            continue
        if layout.key_name(obj.key) == layout.SUCCESS:
            yield layout.key_folder(obj.key)


def replicate_table(
    src: Store,
    src_prefix: str,
    tgt: Store,
    tgt_prefix: str,
    report: TableReport,
    *,
    verify: bool = True,
) -> None:
    """Copy every committed folder under ``src_prefix`` to the same path under ``tgt_prefix``."""
    with tempfile.TemporaryDirectory(prefix="dpexport-replicate-") as scratch:
        for folder in list(committed_folders(src, src_prefix)):
            rel_folder = folder[len(src_prefix) :]
            try:
                _Folder(src, folder, tgt, tgt_prefix + rel_folder, Path(scratch), verify).run(
                    report
                )
            except ExportError as exc:
                report.errors.append(f"{src.uri(folder)}: {exc}")


class _Folder:
    """One committed folder's replication (``lifecycle archive`` copies with it too:
    ``on_object`` is called with each object's path once the target holds it, and
    ``planned`` is what the folder's SUCCESS named, in publication order)."""

    def __init__(
        self,
        src: Store,
        folder: str,
        tgt: Store,
        tgt_folder: str,
        scratch: Path,
        verify: bool,
        on_object: Callable[[str], None] = lambda rel: None,
    ) -> None:
        self.src, self.folder, self.tgt, self.tgt_folder = src, folder, tgt, tgt_folder
        self.scratch, self.verify, self.on_object = scratch, verify, on_object
        self.state_key = layout.replication_state_key(tgt_folder)
        self.state: dict[str, dict[str, Any]] = {}
        self.planned: list[_Object] = []

    def run(self, report: TableReport) -> bool:
        """Copy the folder; True when the target holds all of it, SUCCESS included."""
        try:
            success = self.src.get(self.folder + layout.SUCCESS)
        except NotFound:
            return False  # retired since it was listed
        objects = self._plan(success)
        if objects is None:
            report.errors.append(f"{self.src.uri(self.folder)}: unreadable SUCCESS or manifest")
            return False
        self.planned = objects
        report.folders += 1
        self._load_state()
        failed = False
        try:
            for obj in objects:
                if obj.rel == layout.SUCCESS and failed:
                    break  # never commit a target folder that misses a file
                if not self._sync(obj, report):
                    failed = True
                else:
                    self.on_object(obj.rel)
        finally:
            self._save_state()
        return not failed

    # -- what to copy ------------------------------------------------------------------
    def _plan(self, success: bytes) -> list[_Object] | None:
        """Data files, sidecars, manifests, SUCCESS: the publication order."""
        try:
            marker = json.loads(success)
            names = marker.get("manifests") or [marker["manifest"]]
        except (ValueError, KeyError, TypeError):
            return None
        data: list[_Object] = []
        sidecars: list[_Object] = []
        manifests: list[_Object] = []
        for name in names:
            try:
                raw = self.src.get(self.folder + name)
                doc = json.loads(raw)
                entries = doc["files"]
            except (NotFound, ValueError, KeyError, TypeError):
                return None
            manifests.append(_doc(name, raw))
            named = layout.FileNames.of_manifest(doc)  # as the files were named
            for entry in entries:
                rel = str(entry["name"])
                checksum = str(entry["checksum"]).removeprefix("sha256:")
                data.append(_Object(rel, checksum, int(entry["bytes"])))
                sidecar = named.sidecar_of(rel)
                try:
                    sidecars.append(_doc(sidecar, self.src.get(self.folder + sidecar)))
                except NotFound:
                    continue
        return [*data, *sidecars, *manifests, _doc(layout.SUCCESS, success)]

    # -- one object --------------------------------------------------------------------
    def _sync(self, obj: _Object, report: TableReport) -> bool:
        """Make the target hold ``obj``; False on a checksum mismatch."""
        key = self.tgt_folder + obj.rel
        if self._already_there(key, obj):
            report.skipped += 1
            return True
        if obj.data is not None:
            info = self.tgt.put_bytes(key, obj.data)
        elif self.src.url == self.tgt.url:
            info = self.tgt.copy(self.folder + obj.rel, key)
        else:
            path = self.scratch / hashlib.sha256(key.encode()).hexdigest()[:24]
            try:
                with self.src.open_read(self.folder + obj.rel) as fh, open(path, "wb") as out:
                    digest = _copy_hashing(fh, out)
                if digest != obj.sha256:
                    report.mismatches.append(
                        f"{self.src.uri(self.folder + obj.rel)}: sha256 at the source does "
                        "not match its manifest; not copied"
                    )
                    return False
                info = self.tgt.put_file(key, path)
            finally:
                path.unlink(missing_ok=True)
        if self.verify:
            with self.tgt.open_read(key) as fh:
                digest, size = sha256_of(fh)
            if digest != obj.sha256 or size != obj.size:
                report.mismatches.append(
                    f"{self.tgt.uri(key)}: sha256 read back from the target does not match "
                    "the source"
                )
                self.state.pop(obj.rel, None)
                return False
        head = self.tgt.head(key)
        version = head.version if head is not None else info.version
        self.state[obj.rel] = {"sha256": obj.sha256, "size": obj.size, "version": version}
        report.copied += 1
        report.bytes += obj.size
        return True

    def _already_there(self, key: str, obj: _Object) -> bool:
        info = self.tgt.head(key)
        if info is None or info.size != obj.size:
            return False
        known = self.state.get(obj.rel)
        if (
            known is not None
            and info.version is not None
            and known.get("version") == info.version
            and known.get("sha256") == obj.sha256
        ):
            return True
        with self.tgt.open_read(key) as fh:
            digest, _ = sha256_of(fh)
        if digest != obj.sha256:
            return False
        self.state[obj.rel] = {"sha256": obj.sha256, "size": obj.size, "version": info.version}
        return True

    # -- state -------------------------------------------------------------------------
    def _load_state(self) -> None:
        try:
            doc = json.loads(self.tgt.get(self.state_key))
            self.state = dict(doc.get("objects", {}))
        except (NotFound, ValueError, AttributeError):
            self.state = {}

    def _save_state(self) -> None:
        if not self.state:
            return
        doc = {"source": self.src.uri(self.folder), "objects": self.state}
        try:
            self.tgt.put_bytes(self.state_key, dumps(doc))
        except ExportError as exc:  # the state only saves reads; losing it costs a read-back
            log.warning("could not save replication state %s: %s", self.state_key, exc)


def _doc(rel: str, data: bytes) -> _Object:
    return _Object(rel, hashlib.sha256(data).hexdigest(), len(data), data)


def _copy_hashing(source: Any, out: Any) -> str:
    digest = hashlib.sha256()
    while chunk := source.read(4 * 1024 * 1024):
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()

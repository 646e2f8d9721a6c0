"""``lifecycle archive``: move old committed folders to cold storage (spec 1.4, 4.1;
CONTRACT §12).

Which folders. A table with ``archive_after`` (spec 4.1) has each committed folder of its
destination (a folder holding ``SUCCESS``; an old compact ``snapshot/`` in it excepted) moved once
the folder is older than ``archive_after``. A folder's age runs from its end: a time
folder (``2025/09/16``, hourly, monthly; a table without a time expression is laid out
by its exports' logical day, so the same rule holds) ends where its period ends; a folder
that names no time (``_null_``) ends at its newest manifest's ``export_timestamp``. A
folder still inside the table's ``reconcile`` window is not moved even when
``archive_after`` is shorter, so late rows are never exported beside an archived folder.

Where. ``buckets.cold_storage`` (spec 1.4: ``gs://diagnosticpro-cold-storage``), under
the destination's path in its source bucket, below a spec 1.4 sub-folder when the table
says which: ``financial-records/`` for a ``compliance`` naming SOX or PCI (7 years),
``compliance-data/`` for any other ``compliance`` (10 years), ``historical-telemetry/``
for a table whose name holds ``telemetry``; every other table under the same path as in
its source bucket. (``deprecated-tables/``: nothing in the config marks a table
deprecated, so nothing goes there.) ``lifecycle sweep`` treats the first two as retained.

How, for one folder, in this order:

1. ``retention`` (spec 4.1) is asked first (:func:`dpexport.ops.retention.
   check_deletable`, with the newest manifest's ``export_timestamp``): a folder it still
   holds is neither copied nor removed, and reported ``held``.
2. The folder is copied with replicate's code (data files, sidecars, manifests,
   ``SUCCESS`` last; every sha256 checked at the source and re-read at the target). A
   copy that is not whole leaves the source untouched.
3. The source ``SUCCESS`` is read again: an export that committed into the folder
   meanwhile makes it ``changed``; the next run copies the new state.
4. A journal, ``_state/archive/{folder}move.json`` on the source, records the move
   (the target, the sha256 of the ``SUCCESS`` copied, the objects to remove).
5. The source is removed: ``SUCCESS`` first, then data files, sidecars, manifests, and
   the journal last. ``SUCCESS`` goes first so a reader of the source never sees a
   commit marker whose files are gone: from that instant the source folder is simply
   not committed, and the cold copy (committed, verified) holds every row.

A process killed at any instant leaves every row whole in at least one place: before
step 4 the source is intact and committed; from step 4 the target is. The next run
finishes: a journal is completed first (its target ``SUCCESS`` is checked to be the one
copied; a source whose ``SUCCESS`` changed since is not removed but moved again), and a
folder whose copy stopped is copied again, skipping what the target already holds.

Not covered: an export committing into a folder at the very instant its removal starts
(only a hand-run ``--at`` backfill older than ``archive_after`` could; step 3 narrows it
to the time between two requests).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dpexport.config.spec import ResolvedConfig, TableSpec
from dpexport.errors import ConfigError, ConfigIssue, DpexportError, ExportError, NotFound
from dpexport.ops.replicate import Opener, TableReport, _Folder, committed_folders
from dpexport.ops.retention import RetentionHeld, check_deletable
from dpexport.publish.manifest import dumps
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.timestamps import parse_rfc3339, rfc3339

log = logging.getLogger(__name__)

#: the crash tests' hook: ``copied`` (an object at the target), ``committed`` (the
#: target's SUCCESS), ``journal``, ``deleted`` (a source object), ``finished``
Step = Callable[[str], None]
COLD_BUCKET = "cold_storage"


@dataclass
class FolderMove:
    """One folder: ``moved``, ``would move``, ``finished`` (a journaled move completed),
    ``would finish``, ``held`` (retention), ``changed`` (re-committed during the copy) or
    ``failed``."""

    folder: str
    status: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"folder": self.folder, "status": self.status, "detail": self.detail}


@dataclass
class ArchiveReport:
    """What one table's archive pass did."""

    table: str
    source: str
    target: str
    folders: list[FolderMove] = field(default_factory=list)
    copy: TableReport | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        failed = any(f.status == "failed" for f in self.folders)
        return not (failed or self.errors or (self.copy and not self.copy.ok))

    @property
    def acted(self) -> bool:
        """Something moved or failed (what the scheduler records)."""
        return not self.ok or any(f.status in ("moved", "finished") for f in self.folders)

    def count(self, *statuses: str) -> int:
        return sum(1 for f in self.folders if f.status in statuses)

    def to_json(self) -> dict[str, Any]:
        copy = self.copy
        return {
            "table": self.table,
            "source": self.source,
            "target": self.target,
            "moved": self.count("moved", "finished"),
            "held": self.count("held"),
            "copied": copy.copied if copy else 0,
            "skipped": copy.skipped if copy else 0,
            "bytes": copy.bytes if copy else 0,
            "folders": [f.to_json() for f in self.folders],
            "mismatches": copy.mismatches if copy else [],
            "errors": self.errors + (copy.errors if copy else []),
        }

    def lines(self) -> list[str]:
        doc = self.to_json()
        out = [
            f"{f.status} {f.folder}" + (f": {f.detail}" if f.detail else "") for f in self.folders
        ]
        out += [f"FAIL {problem}" for problem in doc["mismatches"] + doc["errors"]]
        status = "OK" if self.ok else "FAILED"
        text = f"{status} {self.table} -> {self.target}: "
        text += f"{self.count('moved', 'finished')} folder(s) moved"
        if would := self.count("would move", "would finish"):
            text += f", {would} would move"
        out.append(text + f", {self.count('held')} held by retention")
        return out


def cold_destination(cold: str, spec: TableSpec, dest_key: str) -> str:
    """Where a table's folders go under the cold bucket (see the module's docstring)."""
    names = " ".join(spec.compliance).upper()
    if "SOX" in names or "PCI" in names:
        sub = "financial-records/"
    elif spec.compliance:
        sub = "compliance-data/"
    elif "telemetry" in spec.table.lower():
        sub = "historical-telemetry/"
    else:
        sub = ""
    return f"{cold.rstrip('/')}/{sub}{dest_key}"


def archive(
    config: ResolvedConfig,
    *,
    now: datetime,
    dry_run: bool = False,
    tables: Iterable[str] = (),
    local_root: Path | None = None,
    opener: Opener | None = None,
    on_step: Step = lambda step: None,
) -> list[ArchiveReport]:
    """Move the due folders of every table with ``archive_after`` (or only of ``tables``)
    to cold storage; one report per table. ``ConfigError`` when such a table exists and
    ``buckets.cold_storage`` does not."""
    from dpexport.storage.uri import StoreResolver
    from dpexport.transforms.pipeline import server_side_store

    wanted = set(tables)
    specs = [
        s
        for s in config.tables
        if s.archive_after is not None and (not wanted or wanted & {s.table, s.qualified_name})
    ]
    cold = config.buckets.get(COLD_BUCKET)
    if specs and not cold:
        names = ", ".join(s.qualified_name for s in specs)
        raise ConfigError(
            [
                ConfigIssue(
                    f"buckets.{COLD_BUCKET}",
                    f"{names} set archive_after but no cold bucket is named; add "
                    f"'buckets: {{{COLD_BUCKET}: gs://...}}' or remove archive_after",
                )
            ],
            config.source_path,
        )
    resolve = opener or StoreResolver(local_root).resolve
    reports = []
    for spec in specs:
        src, src_prefix = resolve(spec.destination)
        target = cold_destination(str(cold), spec, src_prefix)
        report = ArchiveReport(spec.qualified_name, spec.destination, target)
        reports.append(report)
        try:
            tgt, tgt_prefix = resolve(target)
            tgt = server_side_store(tgt, spec, config)  # a CMEK table stays encrypted
            mover = _Table(spec, src, src_prefix, tgt, tgt_prefix, now, on_step, report)
            mover.run(dry_run)
        except ExportError as exc:
            report.errors.append(str(exc))
    return reports


def daily_pass(
    config: ResolvedConfig,
    at: datetime,
    tables: list[str],
    local_root: Path | None,
    principal: str | None = None,
) -> list[ArchiveReport]:
    """The scheduler's daily pass over its ``tables``: :func:`archive` aged by the fire
    time ``at``, as ``principal`` or the only one allowed to (CONTRACT §11); a config
    without a cold bucket, or without a principal allowed to archive, is logged (each
    day), never stops the exports."""
    from dpexport.security.identity import identity_of
    from dpexport.security.principals import lifecycle_action, principal_for
    from dpexport.storage.uri import StoreResolver

    if not any(t.archive_after is not None and t.table in tables for t in config.tables):
        return []
    try:
        who = principal_for(config, lifecycle_action("archive"), principal)
        stores = StoreResolver(local_root, identity=identity_of(config.service_accounts, who))
        reports = archive(
            config, now=at, tables=tables, local_root=local_root, opener=stores.resolve
        )
    except DpexportError as exc:
        log.error("archive at %s not run: %s", at.isoformat(), exc)
        return []
    for report in reports:
        log.info("archive at %s: %s", at.isoformat(), report.lines()[-1])
    return reports


class _Table:
    """One table's archive pass: finish the moves journaled, then move what is due."""

    def __init__(
        self,
        spec: TableSpec,
        src: Store,
        src_prefix: str,
        tgt: Store,
        tgt_prefix: str,
        now: datetime,
        on_step: Step,
        report: ArchiveReport,
    ) -> None:
        self.spec, self.src, self.src_prefix = spec, src, src_prefix
        self.tgt, self.tgt_prefix, self.now, self.on_step = tgt, tgt_prefix, now, on_step
        self.report = report
        self.copy = report.copy = TableReport("archive", spec.qualified_name, "", "")

    def run(self, dry_run: bool) -> None:
        journals = layout.archive_journal_key(self.src_prefix)[: -len("move.json")]
        for obj in list(self.src.list(journals)):
            if layout.key_name(obj.key) != "move.json":
                continue
            if dry_run:
                folder = self.src.uri(obj.key[len(layout.ARCHIVE_STATE_PREFIX) : -9])
                self.report.folders.append(FolderMove(folder, "would finish", "journaled"))
            else:
                self._finish(obj.key)
        with tempfile.TemporaryDirectory(prefix="dpexport-archive-") as scratch:
            for folder in list(committed_folders(self.src, self.src_prefix)):
                rel = folder[len(self.src_prefix) :]
                if layout.in_snapshot(rel):
                    continue
                try:
                    self._folder(folder, rel, Path(scratch), dry_run)
                except RetentionHeld as exc:
                    self.report.folders.append(_held(self.src.uri(folder), exc))
                except ExportError as exc:
                    self.report.folders.append(FolderMove(self.src.uri(folder), "failed", str(exc)))

    # -- one folder ----------------------------------------------------------------------
    def _folder(self, folder: str, rel: str, scratch: Path, dry_run: bool) -> None:
        try:
            success = self.src.get(folder + layout.SUCCESS)
        except NotFound:
            return  # moved or retired since it was listed
        written, end = self._times(folder, rel, success)
        waits = max(self.spec.archive_after or self.spec.reconcile, self.spec.reconcile)
        if end + waits > self.now:
            return  # not due
        uri = self.src.uri(folder)
        check_deletable(self.spec, uri, written, self.now)
        if dry_run:
            self.report.folders.append(FolderMove(uri, "would move", self.tgt.uri(self._to(rel))))
            return
        copier = _Folder(
            self.src, folder, self.tgt, self._to(rel), scratch, True, lambda r: self._copied(r)
        )
        if not copier.run(self.copy):
            self.report.folders.append(FolderMove(uri, "failed", "not copied whole; kept"))
            return
        copied = next(o.data for o in copier.planned if o.rel == layout.SUCCESS)
        try:
            now_there = self.src.get(folder + layout.SUCCESS)
        except NotFound:
            return  # another archive run moved it meanwhile
        if now_there != copied or copied is None:
            self.report.folders.append(
                FolderMove(uri, "changed", "an export committed into it; the next run moves it")
            )
            return
        target = self.tgt.uri(self._to(rel))
        objects = [o.rel for o in copier.planned if o.rel != layout.SUCCESS]
        journal = {
            "table": self.spec.qualified_name,
            "folder": folder,
            "target": target,
            "success_sha256": hashlib.sha256(copied).hexdigest(),
            "written": rfc3339(written),
            "objects": objects,
        }
        key = layout.archive_journal_key(folder)
        self.src.put_bytes(key, dumps(journal))
        self.on_step("journal")
        self._remove(folder, objects, key)
        self.report.folders.append(FolderMove(uri, "moved", target))

    def _copied(self, rel: str) -> None:
        self.on_step("copied")
        if rel == layout.SUCCESS:
            self.on_step("committed")

    def _to(self, rel: str) -> str:
        return self.tgt_prefix + rel

    def _times(self, folder: str, rel: str, success: bytes) -> tuple[datetime, datetime]:
        """(newest manifest's export_timestamp, the folder's end)."""
        stamps = []
        try:
            for name in json.loads(success).get("manifests") or []:
                doc = json.loads(self.src.get(folder + str(name)))
                stamps.append(parse_rfc3339(str(doc["export_timestamp"])))
        except (NotFound, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ExportError(f"{self.src.uri(folder)}: unreadable SUCCESS or manifest") from exc
        if not stamps:
            raise ExportError(f"{self.src.uri(folder)}: SUCCESS names no manifest")
        written = max(stamps)
        part = self.spec.partitioning
        granularity = part.granularity if part.time_expression else "daily"
        try:
            pattern = part.time_layout if part.time_expression else None
            _, end = layout.time_folder_bounds(
                layout.top_folder(part, rel.rstrip("/")), granularity, pattern
            )
        except ValueError:
            return written, written  # no time in its name (``_null_``)
        return written, end.replace(tzinfo=UTC)

    # -- removal ---------------------------------------------------------------------------
    def _remove(self, folder: str, objects: list[str], journal_key: str) -> None:
        """SUCCESS first, then what it vouched for, then the journal."""
        for rel in [layout.SUCCESS, *objects]:
            self.src.delete(folder + rel)
            self.on_step("deleted")
        self.src.delete(journal_key)
        self.on_step("finished")

    def _finish(self, journal_key: str) -> None:
        """Complete a move a stopped run journaled."""
        try:
            doc = json.loads(self.src.get(journal_key))
            folder, objects = str(doc["folder"]), [str(o) for o in doc["objects"]]
            expected, written = str(doc["success_sha256"]), parse_rfc3339(str(doc["written"]))
        except NotFound:
            return
        except (ValueError, KeyError, TypeError) as exc:
            self.report.errors.append(f"{self.src.uri(journal_key)}: unreadable journal ({exc})")
            return
        uri = self.src.uri(folder)
        rel = folder[len(self.src_prefix) :]
        try:
            at_target = self.tgt.get(self._to(rel) + layout.SUCCESS)
        except NotFound:
            at_target = b""
        if hashlib.sha256(at_target).hexdigest() != expected:
            self.report.folders.append(
                FolderMove(
                    uri,
                    "failed",
                    f"{self.tgt.uri(self._to(rel))}SUCCESS is not the one copied; the source "
                    f"is kept (delete {self.src.uri(journal_key)} to copy it again)",
                )
            )
            return
        try:
            current = self.src.get(folder + layout.SUCCESS)
        except NotFound:
            current = None
        if current is not None and hashlib.sha256(current).hexdigest() != expected:
            self.src.delete(journal_key)  # re-committed since: moved again, whole, below
            return
        try:
            check_deletable(self.spec, uri, written, self.now)
        except RetentionHeld as exc:
            self.report.folders.append(_held(uri, exc))
            return
        self._remove(folder, objects, journal_key)
        self.report.folders.append(FolderMove(uri, "finished", self.tgt.uri(self._to(rel))))


def _held(uri: str, exc: RetentionHeld) -> FolderMove:
    """``held URI: kept until ... (retention N days of T); not deleted``"""
    text = str(exc).split(" (table=", 1)[0].removeprefix(uri).strip()
    return FolderMove(uri, "held", text)

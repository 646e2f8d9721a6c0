"""The steps of one export, from the engine's scan to the commit.

prepare (schema, transforms, plan, checks, counts) -> write (streamed through the
router, or by the warehouse itself) -> check -> verify staged files -> build the
publication -> pass the lease check -> ``commit.publish``. ``runner`` wraps these
steps in tokens, leases, retries and failure handling.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from dpexport.checks import quarantine
from dpexport.config.schema_check import reserved_column_issues
from dpexport.config.spec import ResolvedConfig, TableSpec
from dpexport.engines.base import Engine, ScanRequest
from dpexport.errors import ExportError
from dpexport.flow import interrupts
from dpexport.formats.base import WrittenFile
from dpexport.formats.router import Folder, Router, split_by_keys
from dpexport.planning import folder_scan, serverside, slice_stats
from dpexport.planning.plan import ExportPlan, make_plan
from dpexport.publish import commit, publication, state, tokens
from dpexport.publish.dedup import CrossRunDedup
from dpexport.publish.manifest import (
    ExportFacts,
    canonical_schema,
    schema_hash,
)
from dpexport.publish.verification import verify_staged
from dpexport.reliability.retry import Retrier
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.storage.probe import probe_destination
from dpexport.storage.uri import StoreResolver
from dpexport.transforms.pipeline import Transforms

log = logging.getLogger("dpexport.flow.runner")


class Progress(Protocol):
    """What the runner reports while it works (the CLI draws a bar from it)."""

    def start(self, table: str, total_rows: int) -> None: ...

    def advance(self, table: str, rows: int, stored_bytes: int, files: int) -> None: ...

    def finish(self, table: str) -> None: ...


@dataclass
class ExportResult:
    """One export attempted, as ``run --json`` prints it (CONTRACT §2)."""

    table: str
    export_id: str | None
    status: str  # SUCCESS | FAILURE | SKIPPED
    rows: int = 0
    files: int = 0
    manifests: list[str] = field(default_factory=list)
    error: str | None = None
    reason: str | None = None
    #: SKIPPED because its token says this export was already committed (not printed:
    #: ``reason`` says it to people; this says it to code such as ``dlq retry``)
    already_done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "export_id": self.export_id,
            "status": self.status,
            "rows": self.rows,
            "files": self.files,
            "manifests": self.manifests,
            "error": self.error,
            "reason": self.reason,
        }


@dataclass
class RunOptions:
    tables: Sequence[str] = ()
    at: datetime | None = None
    trigger: str = "manual"
    principal: str | None = None
    local_root: Path | None = None
    progress: Progress | None = None
    #: called with the name of each commit step (tests use it to stop at a step)
    on_step: Callable[[str], None] | None = None
    #: makes the retrier of one export (tests inject a clock and a sleep)
    retrier: Callable[[], Retrier] | None = None
    #: wraps each destination store (tests inject faults under the retries)
    wrap_store: Callable[[Store], Store] | None = None


@dataclass
class RunContext:
    config: ResolvedConfig
    engine: Engine
    stores: StoreResolver
    options: RunOptions
    logical_time: datetime


class Export:
    """The state of one export while it runs."""

    def __init__(
        self,
        ctx: RunContext,
        spec: TableSpec,
        store: Store,
        dest_key: str,
        export_id: str,
        start: datetime,
        uuid8: str,
        lease: tokens.Lease | None = None,
    ) -> None:
        self.ctx, self.spec, self.store, self.dest_key = ctx, spec, store, dest_key
        self.lease = lease
        self.token_name: str | None = None
        self.retrier: Retrier | None = None
        self.export_id, self.start, self.uuid8 = export_id, start, uuid8
        self._scratch = tempfile.TemporaryDirectory(prefix="dpexport-")
        self.staging = commit.Staging(store, export_id, Path(self._scratch.name))
        self.router: Router | None = None
        self.folders_touched: set[str] = set()
        self.plan: ExportPlan | None = None
        #: past the commit point (the journal is written): never rolled back from here
        self.committed = False
        #: the journal's every step is done
        self.applied = False
        #: who wrote the files and why (``plan`` names the same, see ``serverside``)
        self.path: str | None = None
        #: source rows whose cursor is NULL (APPEND and INCREMENTAL leave them out)
        self.null_cursor_rows = 0
        #: what the export commits, set just before the commit point
        self.result: ExportResult | None = None

    # -- the steps -----------------------------------------------------------------
    def run(self) -> ExportResult:
        spec, engine = self.spec, self.ctx.engine
        t0 = time.monotonic()
        if not engine.table_exists(spec.dataset, spec.table):
            raise ExportError(
                "source table does not exist", table=spec.qualified_name, code="NOT_FOUND"
            )
        source_schema = engine.schema(spec.dataset, spec.table)
        reserved = reserved_column_issues(spec, source_schema.names, self.ctx.config.lines)
        if reserved:  # the CLI refuses these before it runs; the API and scheduler get here
            raise ExportError(
                "; ".join(i.render(self.ctx.config.source_path) for i in reserved),
                table=spec.qualified_name,
                code="INVALID_ARGUMENT",
            )
        transforms = Transforms.for_table(spec, self.ctx.options.local_root, store=self.store)
        plan = make_plan(
            spec,
            logical_time=self.ctx.logical_time,
            schema=source_schema,
            store=self.store,
            dest_key=self.dest_key,
            excluded=transforms.excluded,
        )
        self.plan = plan
        checks = transforms.checks(engine, plan.request, self.ctx.logical_time, source_schema)
        request = checks.prepare(plan.request)
        dedup = None
        if plan.dedupe_key and plan.cursor and plan.dedup_window:
            dedup = CrossRunDedup(
                self.store,
                spec.dataset,
                spec.table,
                plan.dedupe_key,
                plan.cursor,
                plan.dedup_window,
                self.dest_key,
            )
        reasons = {
            "transforms": transforms.gdpr is not None or dedup is not None,
            "encrypts": transforms.encrypts,
            "checks": bool(spec.validation),
        }
        data_schema = pa.schema([source_schema.field(c) for c in request.columns or ()])
        early = slice_stats.copy_first(self.ctx.engine, spec, request, reasons)
        copied: serverside.Outcome | None = None
        if early is None:
            request, (expected, window, tops, folders) = self._stats(request, plan)
            self._open_staging()
        else:
            # the warehouse writes the slice while another query counts it (slice_stats)
            log.debug("%s: the warehouse writes the slice while it is counted", spec.qualified_name)
            with ThreadPoolExecutor(1, thread_name_prefix="dpexport-stats") as pool:
                counting = pool.submit(self._stats, request, plan)
                self._open_staging()
                copied = self._warehouse_export(early, data_schema, None)
                request, (expected, window, tops, folders) = counting.result()
            if not isinstance(copied, str) and (request != early or not expected):
                log.debug(
                    "%s: the slice %s: its copy is discarded",
                    spec.qualified_name,
                    "is empty" if not expected else "repeats a key",
                )
                for _, wf in copied[0]:
                    wf.path.unlink(missing_ok=True)
                copied = None
        self.null_cursor_rows = slice_stats.null_cursor_rows(engine, spec, plan)
        watermark = window[1]
        if plan.watermark_cap is not None and watermark is not None:
            watermark = min(watermark, plan.watermark_cap)
        why_stream = serverside.write_path(
            engine,
            spec,
            **reasons,
            rows=expected,
            folders=folders,
            tops=None if tops is None else len(tops),
            request=request,
            expected=data_schema,
            scratch=Path(self._scratch.name) / "probe",
        )
        job_ids: list[str] = []
        written: list[tuple[Folder, WrittenFile]] | None = None
        if why_stream is None:
            version = self._schema_version(data_schema)
            out_schema = data_schema
            outcome = copied or self._warehouse_export(request, data_schema, tops)
            if isinstance(outcome, str):
                why_stream = outcome
            else:
                written, job_ids = outcome
                self._step("copied")
        self.path = serverside.describe_path(engine, why_stream)
        if written is not None:
            self.folders_touched.update(f.top for f, _ in written)
            if self.ctx.options.progress:
                done = sum(w.rows for _, w in written)
                self.ctx.options.progress.advance(spec.table, done, 0, 0)
        else:
            log.debug("%s streams: %s", spec.qualified_name, why_stream)
            if folder_scan.should_split(tops, expected):
                assert tops is not None
                requests = folder_scan.folder_requests(
                    request, spec.partitioning, source_schema, tops
                )
                reader = folder_scan.scan_by_folder(engine, requests)
                log.debug("%s: read folder by folder, %d queries", spec.qualified_name, len(tops))
            else:
                reader = engine.scan(request)
            data_schema = pa.schema([f for f in reader.schema if not f.name.startswith("__dp_")])
            version = self._schema_version(data_schema)
            transforms.set_schema_version(version)
            out_schema = transforms.output_schema(data_schema)
            written = self._stream(reader, transforms, checks, out_schema, dedup)
        rows = sum(w.rows for _, w in written)
        if dedup is not None:
            expected -= dedup.dropped
            if dedup.dropped:
                log.info(
                    "%s: %d row(s) already published inside the lookback window were "
                    "dropped (deduplication by %s)",
                    spec.qualified_name,
                    dedup.dropped,
                    ", ".join(plan.dedupe_key),
                )
        if rows != expected:
            raise ExportError(
                f"row count mismatch: the slice has {expected} rows but {rows} were written",
                table=spec.qualified_name,
            )
        checks.after_write(written)
        failures = checks.failures()
        if failures:
            names = ", ".join(f"{c['name']} ({c['detail']})" for c in failures)
            raise ExportError(
                f"data checks failed: {names}", table=spec.qualified_name, code="INVALID_ARGUMENT"
            )
        self._step("verify")
        # a warehouse-written file was hashed and counted from its stored bytes already
        streamed = [w for _, w in written if not w.read_back]
        if streamed:
            verify_staged(streamed, spec, transforms)
        if self.ctx.options.progress:
            stored = sum(w.stored_bytes for _, w in written)
            self.ctx.options.progress.advance(spec.table, 0, stored, len(written))
            self.ctx.options.progress.finish(spec.table)

        facts = ExportFacts(
            export_id=self.export_id,
            export_timestamp=self.start,
            logical_time=self.ctx.logical_time,
            project=self.ctx.config.project,
            dataset=spec.dataset,
            table=spec.table,
            format=spec.format,
            compression=spec.compression,
            mode=spec.mode,
            schema=out_schema,
            schema_version=version,
            export_type=spec.export_type,
            trigger=self.ctx.options.trigger,
            operator=self.ctx.options.principal or "dpexport",
            window=window[0],
            watermark=state.encode_value(watermark),
            encryption=transforms.encryption_block(),
            checks=checks.results(),
            idempotency_token=self.token_name,
            bigquery_job_id=",".join(job_ids) or None,
        )
        pub, manifests = publication.build(
            spec=spec,
            store=self.store,
            staging=self.staging,
            facts=facts,
            written=written,
            dest_key=self.dest_key,
            uuid8=self.uuid8,
            duration_ms=int((time.monotonic() - t0) * 1000),
            deduplicated=bool(plan.dedupe_key),
        )
        pub.table, pub.destination = spec.qualified_name, self.dest_key
        if plan.cursor and watermark is not None:
            pub.watermark = {
                "key": state.watermark_key(spec.dataset, spec.table, self.dest_key),
                **state.Watermark(watermark, self.export_id).to_json(),
                "manifests": [key for key, _ in pub.manifests],
            }
        if dedup is not None:
            state_file = dedup.write_state(self.staging.local_dir, watermark)
            if state_file is not None:
                pub.moves.append((self.staging.put(state_file), dedup.state_key))
        self._step("staged")
        if self.lease is not None:
            self.lease.check()  # only the lease holder may pass the commit point
        self.result = ExportResult(
            spec.table, self.export_id, "SUCCESS", rows, len(written), manifests
        )
        self._commit(pub)
        quarantine.write_quarantine(
            engine,
            spec,
            self.store,
            self.export_id,
            checks.quarantine_request(),
            transforms,
            Path(self._scratch.name),
        )
        transforms.record_stats(checks)
        return self.result

    def _commit(self, pub: commit.Publication) -> None:
        """Pass the commit point, then publish. From the journal on, the export only
        moves forward: a signal waits until the publication is applied (a second one
        stops it at once, and the journal stays for the next run to finish), and a
        failure leaves the journal too (``runner`` reports it as committed)."""
        on_step = self.ctx.options.on_step
        with interrupts.deferred():  # from before the journal: no stop between it and the flag
            commit.write_journal(self.store, pub)
            self.committed = True
            self._step("journal")
            commit.apply(self.store, pub, on_step=on_step)
            self.applied = True

    def _stats(self, request: ScanRequest, plan: ExportPlan) -> slice_stats.Stats:
        """``slice_stats.slice_stats`` of this export (the bar starts once it is counted)."""
        ctx = self.ctx
        return slice_stats.slice_stats(ctx.engine, self.spec, request, plan, ctx.options.progress)

    def _open_staging(self) -> None:
        probe_destination(self.store, self.dest_key)  # spec 5.2: fail fast on permissions
        self.staging.begin()

    def _warehouse_export(
        self, request: ScanRequest, data_schema: pa.Schema, tops: list[str | None] | None
    ) -> serverside.Outcome:
        return serverside.export(
            self.ctx.engine,
            self.spec,
            request,
            self.store,
            self.staging,
            self.ctx.logical_time,
            Path(self._scratch.name),
            data_schema,
            tops,
        )

    def _schema_version(self, data_schema: pa.Schema) -> str:
        spec = self.spec
        return state.schema_version_for(
            self.store,
            spec.dataset,
            spec.table,
            schema_hash(data_schema),
            canonical_schema(data_schema),
            self.start.date(),
            enforce_backward=spec.schema_evolution.enabled
            and spec.schema_evolution.backward_compatible,
        )

    def _stream(
        self,
        reader: pa.RecordBatchReader,
        transforms: Transforms,
        checks: Any,
        out_schema: pa.Schema,
        dedup: CrossRunDedup | None,
    ) -> list[tuple[Folder, WrittenFile]]:
        """Scan -> folders -> transforms -> rolling writers, all in staging."""
        spec = self.spec

        def open_writer(folder: Folder) -> Any:
            self.folders_touched.add(folder.top)
            path = self.staging.new_path(
                layout.file_suffix(spec.format, spec.compression, encrypted=transforms.encrypts)
            )
            return transforms.open_writer(path, out_schema)

        router = Router(open_writer, spec.max_file_size)
        self.router = router
        rows = 0
        for batch in reader:
            for values, part in split_by_keys(batch):
                top, sub = layout.folder_for(spec.partitioning, self.ctx.logical_time, values)
                folder = Folder(top, sub)
                if dedup is not None:
                    part = dedup.filter(part)
                    if part.num_rows == 0:
                        continue
                part = transforms.apply(part, out_schema)
                checks.observe(part, folder.path)
                router.write(folder, part)
                rows += part.num_rows
            if self.ctx.options.progress:
                done = router.closed
                self.ctx.options.progress.advance(
                    spec.table, batch.num_rows, sum(w.stored_bytes for _, w in done), len(done)
                )
            self._step("batch")
        if spec.mode == "FULL_REFRESH" and rows == 0:
            router.ensure(Folder(layout.time_folder(self.ctx.logical_time, "daily")))
        written = router.close()
        self.router = None
        return written

    def _step(self, name: str) -> None:
        if self.ctx.options.on_step:
            self.ctx.options.on_step(name)

    # -- failure -----------------------------------------------------------------------
    def abort(self) -> None:
        """Roll back what the export staged; after the commit point, keep it all."""
        if self.router is not None:
            self.router.abort()
        if not self.committed:
            self.staging.discard()

    def close(self) -> None:
        self.staging.release()
        self._scratch.cleanup()

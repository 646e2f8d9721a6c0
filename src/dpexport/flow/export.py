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
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from dpexport.checks import quarantine
from dpexport.config.schema_check import reserved_column_issues
from dpexport.config.spec import TableSpec
from dpexport.engines.base import ScanRequest
from dpexport.errors import ExportError
from dpexport.flow import interrupts
from dpexport.flow.context import ExportResult, RunContext
from dpexport.flow.preflight import check_freshness
from dpexport.flow.stages import Counted, Output, Prepared
from dpexport.formats.base import WrittenFile
from dpexport.formats.router import Folder, Router, split_by_keys
from dpexport.ops import cost
from dpexport.planning import folder_scan, serverside, slice_stats
from dpexport.planning.plan import ExportPlan, make_plan
from dpexport.publish import commit, committed, publication, state, tokens
from dpexport.publish.dedup import CrossRunDedup
from dpexport.publish.manifest import (
    ExportFacts,
    canonical_schema,
    schema_hash,
)
from dpexport.publish.verification import verify_staged
from dpexport.reliability.places import dlq_place
from dpexport.reliability.retry import Retrier
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.storage.probe import probe_destination
from dpexport.transforms.pipeline import Transforms, server_side_store

log = logging.getLogger("dpexport.flow.runner")


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
        #: its cost (``dpexport.ops.cost``), known once its publication is built
        self.cost_usd: dict[str, Any] | None = None

    # -- the steps -----------------------------------------------------------------
    def run(self) -> ExportResult:
        """prepare -> slice stats -> write (by the warehouse, or streamed) -> checks ->
        verify -> publish (the commit point) -> record."""
        t0 = time.monotonic()
        interrupts.checkpoint()  # a table started as a parallel run was asked to stop
        prep = self._prepare()
        counted, copied = self._count(prep)
        out = self._write(prep, counted, copied)
        self._check(prep, counted, out)
        self._verify(prep, out)
        pub, manifests = self._publication(prep, counted, out, time.monotonic() - t0)
        self._step("staged")
        if self.lease is not None:
            self.lease.check()  # only the lease holder may pass the commit point
        self.result = ExportResult(
            self.spec.table,
            self.export_id,
            "SUCCESS",
            out.rows,
            len(out.written),
            manifests,
            cost_usd=self.cost_usd,
        )
        self._commit(pub)
        self._record(prep)
        return self.result

    def _prepare(self) -> Prepared:
        """The source's schema, the transforms and checks, and what to read."""
        spec, engine = self.spec, self.ctx.engine
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
        if self.ctx.config.steps.freshness and spec.repair is None:  # spec 5.2's check
            check_freshness(engine, spec, source_schema.names, self.ctx.logical_time)
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
        if spec.repair is not None and spec.repair.published_keys and plan.cursor:
            dedup = CrossRunDedup.published(
                committed.repair_keys(
                    self.store, self.dest_key, spec.repair, source_schema, transforms.key_provider
                ),
                spec.repair.published_keys,
                plan.cursor,
            )
        elif plan.dedupe_key and plan.cursor and plan.dedup_window:
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
        return Prepared(
            source_schema, transforms, plan, checks, request, dedup, reasons, data_schema
        )

    def _count(self, prep: Prepared) -> tuple[Counted, serverside.Outcome | None]:
        """The slice's statistics, and staging opened. Where ``slice_stats.copy_first``
        says so, the warehouse already writes the slice while another query counts it;
        its copy is kept only if counting changed nothing."""
        spec, engine = self.spec, self.ctx.engine
        early = slice_stats.copy_first(engine, spec, prep.request, prep.reasons)
        copied: serverside.Outcome | None = None
        if early is None:
            counted = self._stats(prep)
            self._open_staging()
        else:
            log.debug("%s: the warehouse writes the slice while it is counted", spec.qualified_name)
            with ThreadPoolExecutor(1, thread_name_prefix="dpexport-stats") as pool:
                counting = pool.submit(self._stats, prep)
                self._open_staging()
                copied = self._warehouse_export(early, prep.data_schema, None)
                counted = counting.result()
            if not isinstance(copied, str) and (counted.request != early or not counted.expected):
                log.debug(
                    "%s: the slice %s: its copy is discarded",
                    spec.qualified_name,
                    "is empty" if not counted.expected else "repeats a key",
                )
                for _, wf in copied[0]:
                    wf.path.unlink(missing_ok=True)
                copied = None
        self.null_cursor_rows = slice_stats.null_cursor_rows(engine, spec, prep.plan)
        return counted, copied

    def _write(self, prep: Prepared, counted: Counted, copied: serverside.Outcome | None) -> Output:
        """The files in staging: written by the warehouse where ``serverside.write_path``
        says it can (the same decision ``plan`` shows), streamed otherwise."""
        spec, engine = self.spec, self.ctx.engine
        why_stream = serverside.write_path(
            engine,
            spec,
            **prep.reasons,
            rows=counted.expected,
            folders=counted.folders,
            tops=None if counted.tops is None else len(counted.tops),
            request=counted.request,
            expected=prep.data_schema,
            scratch=Path(self._scratch.name) / "probe",
        )
        out: Output | None = None
        if why_stream is None:
            version = self._schema_version(prep.data_schema)
            outcome = copied or self._warehouse_export(
                counted.request, prep.data_schema, counted.tops
            )
            if isinstance(outcome, str):
                why_stream = outcome
            else:
                out = Output(outcome[0], outcome[1], prep.data_schema, version)
                self._step("copied")
                self.folders_touched.update(f.top for f, _ in out.written)
                self._advance(out.rows, 0, 0)
        self.path = serverside.describe_path(engine, why_stream)
        if out is None:
            log.debug("%s streams: %s", spec.qualified_name, why_stream)
            out = self._stream_slice(prep, counted)
        return out

    def _stream_slice(self, prep: Prepared, counted: Counted) -> Output:
        """Scan the slice (folder by folder where that saves a sort) through the
        transforms and checks into rolling writers."""
        spec, engine, tops = self.spec, self.ctx.engine, counted.tops
        if folder_scan.should_split(tops, counted.expected):
            assert tops is not None
            requests = folder_scan.folder_requests(
                counted.request, spec.partitioning, prep.source_schema, tops
            )
            reader = folder_scan.scan_by_folder(engine, requests)
            log.debug("%s: read folder by folder, %d queries", spec.qualified_name, len(tops))
        else:
            reader = engine.scan(counted.request)
        data_schema = pa.schema([f for f in reader.schema if not f.name.startswith("__dp_")])
        version = self._schema_version(data_schema)
        prep.transforms.set_schema_version(version)
        out_schema = prep.transforms.output_schema(data_schema)
        # the writers' buffers come out of the run's budget
        with self.ctx.budget.streaming(spec, reader, counted.expected, counted.folders) as batches:
            written = self._stream(batches, prep.transforms, prep.checks, out_schema, prep.dedup)
        return Output(written, [], out_schema, version)

    def _check(self, prep: Prepared, counted: Counted, out: Output) -> None:
        """Every row of the slice written (less those de-duplicated), and the data
        checks passed."""
        spec, dedup = self.spec, prep.dedup
        expected = counted.expected
        if dedup is not None:
            expected -= dedup.dropped
            if dedup.dropped:
                log.info(
                    "%s: %d row(s) already published inside the lookback window were "
                    "dropped (deduplication by %s)",
                    spec.qualified_name,
                    dedup.dropped,
                    ", ".join(prep.plan.dedupe_key),
                )
        if out.rows != expected:
            raise ExportError(
                f"row count mismatch: the slice has {expected} rows but {out.rows} were written",
                table=spec.qualified_name,
            )
        prep.checks.after_write(out.written)
        failures = prep.checks.failures()
        if failures:
            names = ", ".join(f"{c['name']} ({c['detail']})" for c in failures)
            raise ExportError(
                f"data checks failed: {names}", table=spec.qualified_name, code="INVALID_ARGUMENT"
            )

    def _verify(self, prep: Prepared, out: Output) -> None:
        """Re-read each streamed file from staging (a warehouse-written file was hashed
        and counted from its stored bytes already)."""
        self._step("verify")
        streamed = [w for _, w in out.written if not w.read_back]
        if streamed:
            verify_staged(streamed, self.spec, prep.transforms)
        stored = sum(w.stored_bytes for _, w in out.written)
        self._advance(0, stored, len(out.written))
        if self.ctx.options.progress:
            self.ctx.options.progress.finish(self.spec.table)

    def _publication(
        self, prep: Prepared, counted: Counted, out: Output, seconds: float
    ) -> tuple[commit.Publication, list[str]]:
        """What the commit makes visible: files, sidecars, manifests, the watermark and
        the dedup state; and the manifests' URIs."""
        spec, ctx = self.spec, self.ctx
        watermark = counted.watermark(prep.plan.watermark_cap)
        facts = ExportFacts(
            export_id=self.export_id,
            export_timestamp=self.start,
            logical_time=ctx.logical_time,
            project=ctx.config.project,
            dataset=spec.dataset,
            table=spec.table,
            format=spec.format,
            compression=spec.compression,
            mode=spec.mode,
            schema=out.schema,
            schema_version=out.version,
            export_type=spec.export_type,
            trigger=ctx.options.trigger,
            operator=ctx.options.principal or "dpexport",
            window=counted.window[0],
            watermark=state.encode_value(watermark),
            encryption=prep.transforms.encryption_block(),
            checks=prep.checks.results(),
            idempotency_token=self.token_name,
            bigquery_job_id=",".join(out.job_ids) or None,
            jsonl=spec.jsonl,
            csv=spec.csv,
            cost_usd=cost.of_export(ctx.engine, spec, ctx.config.pricing, out.written),
        )
        self.cost_usd = facts.cost_usd
        pub, manifests = publication.build(
            spec=spec,
            store=self.store,
            staging=self.staging,
            facts=facts,
            written=out.written,
            dest_key=self.dest_key,
            uuid8=self.uuid8,
            duration_ms=int(seconds * 1000),
            deduplicated=bool(prep.plan.dedupe_key),
        )
        pub.table, pub.destination = spec.qualified_name, self.dest_key
        if prep.plan.cursor and watermark is not None and spec.repair is None:
            pub.watermark = {
                "key": state.watermark_key(spec.dataset, spec.table, self.dest_key),
                **state.Watermark(watermark, self.export_id).to_json(),
                "manifests": [key for key, _ in pub.manifests],
            }
        if prep.dedup is not None:
            state_file = prep.dedup.write_state(self.staging.local_dir, watermark)
            if state_file is not None:
                pub.moves.append((self.staging.put(state_file), prep.dedup.state_key))
        return pub, manifests

    def _record(self, prep: Prepared) -> None:
        """After the publication: the quarantined rows and the checks' statistics."""
        dlq = dlq_place(self.ctx.config, self.store, self.ctx.stores.resolve)
        # rows of a CMEK table stay under its key in a DLQ elsewhere too (spec 6.3)
        rows_store = dlq.store
        if rows_store is not self.store:
            rows_store = server_side_store(rows_store, self.spec, self.ctx.config)
        quarantine.write_quarantine(
            self.ctx.engine,
            self.spec,
            rows_store,
            self.export_id,
            prep.checks.quarantine_request(),
            prep.transforms,
            Path(self._scratch.name),
            root=dlq.root,
        )
        prep.transforms.record_stats(prep.checks)

    def _commit(self, pub: commit.Publication) -> None:
        """Pass the commit point, then publish. From the journal on, the export only
        moves forward: a signal waits until the publication is applied (a second one
        stops it at once, and the journal stays for the next run to finish), and a
        failure leaves the journal too (``runner`` reports it as committed)."""
        on_step = interrupts.checked(self.ctx.options.on_step)  # a stop asked "now" stops
        with interrupts.deferred():  # from before the journal: no stop between it and the flag
            commit.write_journal(self.store, pub)
            self.committed = True
            self._step("journal")
            commit.apply(self.store, pub, on_step=on_step)
            self.applied = True

    def _stats(self, prep: Prepared) -> Counted:
        """``slice_stats.slice_stats`` of this export (the bar starts once it is counted)."""
        ctx = self.ctx
        request, (expected, window, tops, folders) = slice_stats.slice_stats(
            ctx.engine, self.spec, prep.request, prep.plan, ctx.options.progress
        )
        return Counted(request, expected, window, tops, folders)

    def _open_staging(self) -> None:
        if self.ctx.config.steps.destination_probe:  # spec 5.2: fail fast on permissions
            probe_destination(self.store, self.dest_key)
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
        reader: Iterable[pa.RecordBatch],
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

    def _advance(self, rows: int, stored_bytes: int, files: int) -> None:
        if self.ctx.options.progress:
            self.ctx.options.progress.advance(self.spec.table, rows, stored_bytes, files)

    def _step(self, name: str) -> None:
        interrupts.checkpoint()
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

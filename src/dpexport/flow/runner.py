"""Run exports: each table once per logical time, retried, and failed loudly.

``run_exports`` goes table by table, or ``options.parallel`` tables at a time
(:mod:`dpexport.flow.parallel`). For each, ``export_table`` skips what a token
says is done, takes the table's lease, recovers what crashed runs left, creates the
token, runs the steps of ``export.Export`` with every store call under the spec 7.1
retry policy, and on failure leaves a FAILURE marker, a DLQ entry and an export-log
record.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dpexport.alerts import rules as alert_rules
from dpexport.config.spec import ResolvedConfig, TableSpec
from dpexport.engines.base import Engine
from dpexport.errors import AlreadyExists, DpexportError, ExportError
from dpexport.flow.context import ExportResult, Progress, RunContext, RunOptions
from dpexport.flow.export import Export
from dpexport.flow.parallel import export_all
from dpexport.publish import commit, records, tokens
from dpexport.publish.manifest import rfc3339
from dpexport.reliability import dlq, places
from dpexport.reliability.places import Place
from dpexport.reliability.retry import Retrier, RetryingStore, RetryPolicy
from dpexport.security.identity import identity_of
from dpexport.storage import layout
from dpexport.storage.base import Store
from dpexport.storage.uri import StoreResolver
from dpexport.transforms.pipeline import server_side_store

__all__ = [
    "ExportResult",
    "Progress",
    "RunOptions",
    "export_table",
    "run_exports",
    "select_tables",
]

log = logging.getLogger(__name__)

#: one export of this process recovers ``_staging/`` at a time (see ``_recover``)
_RECOVERING = threading.Lock()


def select_tables(config: ResolvedConfig, names: Sequence[str]) -> list[TableSpec]:
    if not names:
        return list(config.tables)
    return [config.table(n) for n in names]


def run_exports(config: ResolvedConfig, engine: Engine, options: RunOptions) -> list[ExportResult]:
    """Export the selected tables, one after another or ``options.parallel`` at a time;
    one failure does not stop the rest. The results are in the tables' order."""
    at = options.at or datetime.now(UTC)
    identity = identity_of(config.service_accounts, options.principal)  # CONTRACT §11
    stores = StoreResolver(options.local_root, export_policy(config), identity)
    ctx = RunContext(config, engine, stores, options, at.astimezone(UTC))
    specs = select_tables(config, options.tables)
    if options.parallel > 1 and len(specs) > 1:
        for spec in specs:  # each bucket's store opened once, before the threads share it
            stores.resolve(spec.destination)
        sizes = [engine.size_hint(s.dataset, s.table) for s in specs]
        return export_all(specs, options.parallel, lambda spec: export_table(ctx, spec), sizes)
    return [export_table(ctx, spec) for spec in specs]


def export_table(ctx: RunContext, spec: TableSpec) -> ExportResult:
    """One table at the run's logical time, exactly once (CONTRACT §5, §8), then its
    alert rules (CONTRACT §10: those of an export that failed before its log record
    here; the others' before their record, which lists what was sent)."""
    result = _export_table(ctx, spec)
    if result.alerts is None:
        result.alerts = alert_rules.after_export(ctx, spec, result)
    return result


def _export_table(ctx: RunContext, spec: TableSpec) -> ExportResult:
    """One table at the run's logical time, exactly once (CONTRACT §5, §8).

    The token says whether this (table, logical time, config) was already exported;
    the table's lease says whether another runner is exporting it right now.
    """
    start, uuid8, export_id = layout.new_export()
    store, dest_key = ctx.stores.resolve(spec.destination)
    dest_key = dest_key if not dest_key or dest_key.endswith("/") else dest_key + "/"
    try:
        store = server_side_store(store, spec, ctx.config)
    except DpexportError as exc:
        log.error("export of %s refused: %s", spec.qualified_name, exc)
        return ExportResult(spec.table, None, "FAILURE", error=str(exc))
    if ctx.options.wrap_store is not None:
        store = ctx.options.wrap_store(store)
    # every store call of the export, tokens and lease included, follows spec 7.1
    retrier = (ctx.options.retrier or (lambda: Retrier(export_policy(ctx.config))))()
    store = RetryingStore(store, retrier)
    token_name = tokens.token_name(spec, ctx.logical_time)
    try:
        tokens_at = places.tokens_place(
            ctx.config, store, ctx.stores.resolve, _wrapper(ctx, retrier)
        )
        done = _done(tokens_at, token_name, spec.table)
        if done is not None:
            return done
        held = ctx.options.held_lease
        if held is not None and held.key == tokens.lease_key(spec, tokens_at.root):
            lease, acquired, holder = held, held.hand_to(export_id), None
        else:
            lease = table_lease(ctx.config, tokens_at, spec, export_id)
            acquired, holder = lease.acquire()
    except DpexportError as exc:  # the token place cannot be read or written
        started = Export(ctx, spec, store, dest_key, export_id, start, uuid8)
        started.retrier = retrier
        return _not_started(started, exc, f"idempotency token {token_name} or the table's lease")
    if not acquired:
        return ExportResult(spec.table, holder, "SKIPPED", reason="in progress elsewhere")
    try:
        done = _done(tokens_at, token_name, spec.table)  # finished while we were taking the lease
        if done is not None:
            return done
        unfinished = _recover(ctx, spec, store, dest_key, export_id, retrier)
        if unfinished is not None:
            return unfinished
        token = tokens.Token(
            token_name,
            "IN_PROGRESS",
            export_id,
            rfc3339(ctx.logical_time),
            tokens.config_hash(spec),
            "",
            lease=lease.key,
        )
        return _export_under_lease(
            ctx, spec, store, dest_key, export_id, start, uuid8, token, tokens_at, lease, retrier
        )
    finally:
        if lease is not held:
            lease.release()


def table_lease(
    config: ResolvedConfig, tokens_at: Place, spec: TableSpec, export_id: str
) -> tokens.Lease:
    """The lease of ``spec``'s table at its token place (not taken yet)."""
    renew, expires = _lease_timing(config)
    key = tokens.lease_key(spec, tokens_at.root)
    return tokens.Lease(tokens_at.store, key, export_id, renew_every=renew, expires_after=expires)


def _wrapper(ctx: RunContext, retrier: Retrier) -> Callable[[Store], Store]:
    """Wraps a configured token location's store as the export's own store is: as the
    run asks, every call under the export's retrier (spec 7.1)."""

    def wrap(store: Store) -> Store:
        if ctx.options.wrap_store is not None:
            store = ctx.options.wrap_store(store)
        return RetryingStore(store, retrier)

    return wrap


def export_policy(config: ResolvedConfig) -> RetryPolicy:
    """Spec 7.1's policy for an export's store calls; one attempt each when spec 5.2's
    ``failure_handling`` leaves out ``initiate_retry``."""
    policy = RetryPolicy.from_config(config)
    return policy if config.steps.retry else replace(policy, max_attempts=1)


def _recover(
    ctx: RunContext, spec: TableSpec, store: Store, dest_key: str, export_id: str, retrier: Retrier
) -> ExportResult | None:
    """Finish or roll back what stopped exports left; a FAILURE (nothing written, a DLQ
    entry) when a committed export of this very table cannot be finished or its journal
    is damaged: exporting on top of it could publish its rows again, or lose them.

    A stuck journal is this table's when it names the table or, naming none (written
    before journals did, or damaged), publishes into its destination. Another table's
    fails that table's exports only; one that says neither fails none: it is reported
    (``commit.recover`` logs it) on every run until someone sets it aside, and the
    bucket's other exports go on.

    Exports running at once recover one at a time: a journal is rolled forward by the
    first, and the next finds it gone (``commit.recover`` skips this process's live
    exports, so none recovers another's staging under it)."""
    with _RECOVERING:
        recovered = commit.recover(store)
    for item in recovered:
        log.warning("export %s left by a stopped run was %s", item.export_id, item.outcome)
        ours = item.table == spec.qualified_name or (
            item.table is None and (item.destination or "\0").startswith(dest_key)
        )
        if item.outcome in ("not finished", "damaged") and ours:
            message = (
                f"export {item.export_id} of this table committed but cannot be finished: "
                f"{item.error}"
            )
            if item.outcome == "not finished":
                message += "; fix that, and the next run finishes it first"
            log.error("export of %s: %s", spec.qualified_name, message)
            error = ExportError(message, table=spec.qualified_name, code="FAILED_PRECONDITION")
            message += _to_dlq(
                ctx, spec, store, export_id, error, message, retrier, datetime.now(UTC)
            )
            return ExportResult(spec.table, export_id, "FAILURE", error=message)
    return None


def _to_dlq(
    ctx: RunContext,
    spec: TableSpec,
    store: Store,
    export_id: str,
    exc: BaseException,
    message: str,
    retrier: Retrier,
    now: datetime,
) -> str:
    """A failed export's request, error and retry history go to the DLQ (spec 7.2).
    Returns what to add to the export's error when the entry could not be written
    (the place is unwritable): the failure is then reported only by its result and log."""
    try:
        place = places.dlq_place(ctx.config, store, ctx.stores.resolve)
        dlq.record_failure(
            place.store,
            export_id,
            dlq.export_request(
                table=spec.qualified_name,
                at=ctx.logical_time,
                trigger=ctx.options.trigger,
                export_id=export_id,
                principal=ctx.options.principal,
                destination=spec.destination,
                dataset=spec.dataset,
            ),
            dlq.error_details(exc, now=now, message=message),
            retrier.history,
            now=now,
            root=place.root,
        )
    except DpexportError as err:
        log.error("could not record the DLQ entry of %s: %s", export_id, err)
        return f"; its DLQ entry could not be written: {err}"
    return ""


def _done(tokens_at: Place, token_name: str, table: str) -> ExportResult | None:
    token, _ = tokens.read_token(tokens_at.store, token_name, tokens_at.root)
    if token is None or token.status != "DONE":
        return None
    result = token.result if isinstance(token.result, dict) else {}
    return ExportResult(
        str(result.get("table") or table),
        token.export_id,
        "SKIPPED",
        rows=int(result.get("rows", 0)),
        files=int(result.get("files", 0)),
        manifests=list(result.get("manifests", [])),
        reason=f"already exported as {token.export_id} (token {token_name})",
        already_done=True,
    )


def _lease_timing(config: ResolvedConfig) -> tuple[timedelta, timedelta]:
    lease = config.idempotency_design.lease
    renew = lease.renew_every or tokens.RENEW_EVERY
    expires = lease.expires_after or tokens.EXPIRES_AFTER
    return renew, expires


def _export_under_lease(
    ctx: RunContext,
    spec: TableSpec,
    store: Store,
    dest_key: str,
    export_id: str,
    start: datetime,
    uuid8: str,
    token: tokens.Token,
    tokens_at: Place,
    lease: tokens.Lease,
    retrier: Retrier,
) -> ExportResult:
    exporter = Export(ctx, spec, store, dest_key, export_id, start, uuid8, lease)
    exporter.token_name = token.name
    exporter.retrier = retrier
    try:
        tokens.create_token(tokens_at.store, token, tokens_at.root)
    except AlreadyExists:
        done = _done(tokens_at, token.name, spec.table)
        exporter.close()
        if done is not None:
            return done
        raise
    except DpexportError as exc:
        return _not_started(exporter, exc, f"idempotency token {token.name}")
    watchdog = alert_rules.watch(ctx, spec)  # export_duration, while it runs
    clock = time.monotonic()
    try:
        result = exporter.run()
        result.reason = None
    except KeyboardInterrupt:
        exporter.abort()
        if exporter.committed:  # published, or left for the next run to finish
            _finish(exporter, tokens_at, token, _committed(exporter, "interrupted"), clock)
        else:
            token.status, token.error = "FAILED", "interrupted"
            _write_token(tokens_at, token)
        raise
    except tokens.LeaseLost:
        exporter.abort()
        return ExportResult(
            spec.table,
            export_id,
            "SKIPPED",
            reason="lease taken over by another runner; nothing committed",
        )
    except Exception as exc:  # every failure is reported, marked and logged
        exporter.abort()
        message = str(exc) if isinstance(exc, DpexportError) else f"{type(exc).__name__}: {exc}"
        log.debug("%s", traceback.format_exc())
        now = datetime.now(UTC)
        if exporter.committed and exporter.applied:
            # published; a step after it (quarantine) failed: the export stands
            log.error("export of %s: after publishing: %s", spec.qualified_name, message)
            result = exporter.result or ExportResult(spec.table, export_id, "SUCCESS")
        elif exporter.committed:
            result = _committed(exporter, message)
            log.error("export of %s: %s", spec.qualified_name, result.error)
            result.error = str(result.error) + _to_dlq(
                ctx, spec, exporter.store, export_id, exc, str(result.error), retrier, now
            )
        else:
            log.error("export of %s failed: %s", spec.qualified_name, message)
            records.mark_failure(
                exporter,
                message,
                retrier.retry_count,
                dlq.DlqSettings.from_config(ctx.config).next_retry(now),
            )
            message += _to_dlq(ctx, spec, exporter.store, export_id, exc, message, retrier, now)
            result = ExportResult(spec.table, export_id, "FAILURE", error=message)
    finally:
        exporter.close()
        sent = watchdog.stop()
    result.alerts = sent + alert_rules.after_export(ctx, spec, result)
    _finish(exporter, tokens_at, token, result, clock)
    if result.status == "SUCCESS":
        _resolve_dlq(ctx, spec, exporter.store, export_id)
    return result


def _resolve_dlq(ctx: RunContext, spec: TableSpec, store: Store, export_id: str) -> None:
    """The DLQ entries this export makes good (the same table and logical time) are
    resolved, as ``dlq retry`` resolves them: a rerun by ``run`` settles them too."""
    try:
        place = places.dlq_place(ctx.config, store, ctx.stores.resolve)
        dlq.resolve_exported(
            place.store,
            spec.qualified_name,
            ctx.logical_time,
            export_id,
            now=datetime.now(UTC),
            root=place.root,
        )
    except DpexportError as exc:
        log.error("could not resolve the DLQ entries %s made good: %s", export_id, exc)


def _not_started(exporter: Export, exc: DpexportError, what: str) -> ExportResult:
    """An export that failed before it read a row, because ``what`` (its token or lease)
    could not be read or written: a FAILURE marker where the destination takes one, a
    DLQ entry where the DLQ can be written, and an export-log record; nothing else."""
    spec, ctx = exporter.spec, exporter.ctx
    message = f"cannot read or write {what}: {exc}"
    log.error("export of %s failed: %s", spec.qualified_name, message)
    retrier = exporter.retrier or Retrier(export_policy(ctx.config))
    now = datetime.now(UTC)
    try:
        records.mark_failure(
            exporter,
            message,
            retrier.retry_count,
            dlq.DlqSettings.from_config(ctx.config).next_retry(now),
        )
        message += _to_dlq(
            ctx, spec, exporter.store, exporter.export_id, exc, message, retrier, now
        )
        result = ExportResult(spec.table, exporter.export_id, "FAILURE", error=message)
        result.alerts = alert_rules.after_export(ctx, spec, result)
        records.log_record(exporter, result, 0)
    finally:
        exporter.close()
    return result


def _committed(exporter: Export, message: str) -> ExportResult:
    """The result of an export stopped past its commit point: its rows are published,
    or will be by the next run, which rolls its journal forward; never twice."""
    result = exporter.result or ExportResult(exporter.spec.table, exporter.export_id, "SUCCESS")
    if exporter.applied:
        return result
    journal = exporter.store.uri(layout.staging_prefix(exporter.export_id) + layout.STAGING_JOURNAL)
    result.status = "FAILURE"
    result.error = (
        f"committed but not finished ({message}); its journal {journal} is kept and the "
        "next run finishes the publication (no row is published twice)"
    )
    return result


def _finish(
    exporter: Export, tokens_at: Place, token: tokens.Token, result: ExportResult, clock: float
) -> None:
    """The token and the export-log record of an export that ran. Neither decides what
    is published: a failure to write them is logged, and the result stands."""
    token.status = "DONE" if result.status == "SUCCESS" else "FAILED"
    token.error = result.error
    token.result = {
        "table": exporter.spec.table,
        "rows": result.rows,
        "files": result.files,
        "manifests": result.manifests,
    }
    _write_token(tokens_at, token)
    result.duration_seconds = time.monotonic() - clock
    records.log_record(exporter, result, int(result.duration_seconds * 1000))


def _write_token(tokens_at: Place, token: tokens.Token) -> None:
    try:
        tokens.write_token(tokens_at.store, token, tokens_at.root)
    except DpexportError as exc:
        log.error("could not record idempotency token %s: %s", token.name, exc)

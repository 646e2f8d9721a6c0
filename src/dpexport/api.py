"""The Python API: one function per command (CONTRACT §2), each making the CLI's checks.

Every function takes the config as a file path, a loaded ``ResolvedConfig`` or a
:class:`~dpexport.workspace.Workspace`, and ``local_root`` as ``--local-root`` does.
The CLI is a thin layer over these functions, so an Airflow task calling
``dpexport.run`` gets what ``dpexport run`` does: unknown tables and config problems the
warehouse shows are refused before anything is written, and a failed export raises
:class:`~dpexport.errors.ExportFailed` (unless ``raise_on_failure=False``).

Heavy modules (engines, formats, cloud SDKs) load inside the functions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpexport.errors import ConfigError, ExportFailed, UsageError
from dpexport.workspace import ConfigSource, Workspace

if TYPE_CHECKING:
    from dpexport.config.spec import ResolvedConfig
    from dpexport.errors import ConfigIssue
    from dpexport.flow.context import ExportResult, Progress
    from dpexport.ops.files import TableFiles
    from dpexport.ops.reconcile import TableReport as ReconcileReport
    from dpexport.ops.status import TableStatus
    from dpexport.publish.audit import Report
    from dpexport.reliability.dlq import DlqEntry, RetryOutcome

log = logging.getLogger("dpexport")

PathLike = str | os.PathLike[str]
#: one result of ``logs_query``: the column names and the rows
QueryResult = tuple[list[str], list[tuple[Any, ...]]]


def load_config(path: PathLike) -> ResolvedConfig:
    """Parse and validate a config file; raises ConfigError listing every problem."""
    from dpexport.config import load_config as load

    return load(path)


@dataclass(frozen=True)
class CheckReport:
    """What ``check`` found: the config holds; ``warehouse_problem`` says why the
    warehouse could not be checked against it (``None``: it was, and it holds)."""

    tables: int
    warehouse_problem: str | None = None


def check(config: ConfigSource, *, local_root: PathLike | None = None) -> CheckReport:
    """Validate the config and hold it against the warehouse when it can be opened: every
    source table exists, every column a setting names, every check can run, every
    APPEND table has a cursor. Every problem of the file and of the warehouse is in one
    ``ConfigError``. A warehouse that cannot be asked is logged as a warning and named
    in the report: the config alone was checked. Nothing is written."""
    from dpexport.config.prune import entangled

    resolved, issues, source, taken = _inspected(config, local_root)
    problem: str | None = "the config could not be read far enough to name its tables"
    if resolved is not None:
        reported = {(i.path, i.message) for i in issues}
        more, problem = Workspace(resolved, local_root=local_root).hold()
        if local_root is None:  # only a cloud run uses the Azure credentials
            from dpexport.config.table_format import delta_store_issues
            from dpexport.config.value_checks import azure_account_issues

            more += azure_account_issues(resolved) + delta_store_issues(resolved)
        issues += [
            i for i in more if (i.path, i.message) not in reported and not entangled(i.path, taken)
        ]
    if problem is not None:
        log.warning("warehouse not checked (%s): checked the config only", problem)
    for note in resolved.unenforced if resolved is not None else ():
        log.warning("%s", note)
    if resolved is not None:  # valid, but what the common readers misread (issue 22)
        from dpexport.config.reader_notes import reader_warnings

        for warning in reader_warnings(resolved):
            log.warning("%s", warning)
    if issues or resolved is None:
        raise ConfigError(sorted(issues, key=lambda i: i.line or 0), source)
    return CheckReport(len(resolved.tables), problem)


def _inspected(
    config: ConfigSource, local_root: PathLike | None
) -> tuple[ResolvedConfig | None, list[ConfigIssue], str | None, tuple[str, ...]]:
    """``check``'s config: a file read leniently (every problem, the config as far as it
    resolves, the paths left out of it), or a loaded one as it is; and the file's name."""
    if not isinstance(config, str | os.PathLike):
        resolved = Workspace.of(config, local_root=local_root).config
        return resolved, [], resolved.source_path, ()
    from dpexport.config.resolve import inspect_config

    if not Path(config).exists():
        raise UsageError(f"config file {str(config)!r} not found")
    found = inspect_config(config)
    return found.config, list(found.issues), found.source, found.taken_out


def plan(
    config: ConfigSource,
    *,
    tables: str | Sequence[str] = (),
    at: datetime | None = None,
    local_root: PathLike | None = None,
) -> list[dict[str, Any]]:
    """What a run would do per table (slice, window, folders, token, size estimate), as
    ``plan --json`` prints it; reads the warehouse and the stores, writes nothing."""
    from dpexport.ops.cost import price_table
    from dpexport.planning.plan import describe

    ws = Workspace.of(config, local_root=local_root)
    specs = ws.select(tables)
    logical = at or datetime.now(UTC)
    prices = price_table(ws.config.pricing)  # the shipped table under the config's
    with ws.engine() as engine:
        return [
            describe(
                spec,
                engine=engine,
                logical_time=logical,
                prices=prices,
                **_destination(ws, spec),
            )
            for spec in specs
        ]


def _destination(ws: Workspace, spec: Any) -> dict[str, Any]:
    from dpexport.reliability.places import tokens_place

    store, key = ws.destination(spec)
    tokens_at = tokens_place(ws.config, store, ws.stores.resolve)
    return {"store": store, "dest_key": key, "tokens_at": tokens_at}


def run(
    config: ConfigSource,
    *,
    tables: str | Sequence[str] = (),
    at: datetime | None = None,
    trigger: str = "api",
    principal: str | None = None,
    local_root: PathLike | None = None,
    raise_on_failure: bool = True,
    progress: Progress | None = None,
    parallel: int | None = None,
) -> list[ExportResult]:
    """Run the exports of ``config`` (every table, or ``tables``: a name or a list) at
    logical time ``at`` (default now); one result per export attempted, in the tables'
    order. ``parallel`` tables are exported at once (default: the cores this process
    may use, four times as many on BigQuery, whose exports mostly wait for jobs; at
    most 16; 1: one after another).

    Raises ``UnknownTable`` for a name the config lacks, ``ConfigError`` for a
    problem the warehouse shows and ``UsageError`` for a ``parallel`` below 1, before
    anything is written; ``ExportFailed`` (holding every result) when an export fails,
    unless ``raise_on_failure`` is false."""
    from dpexport.flow.context import RunOptions
    from dpexport.flow.parallel import default_parallel
    from dpexport.flow.runner import run_exports
    from dpexport.security.principals import export_action, principal_for

    if parallel is not None and (
        isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1
    ):
        raise UsageError(f"parallel={parallel!r}: expected a whole number of tables, 1 or more")
    ws = Workspace.of(config, local_root=local_root)
    specs = ws.select(tables)
    names = tuple(spec.qualified_name for spec in specs) if tables else ()
    whole = export_action("run", ws.config.tables)
    principal = principal_for(ws.config, export_action("run", specs), principal, whole)
    with ws.engine(unavailable_ok=True, principal=principal) as engine:
        options = RunOptions(
            tables=names,
            at=at,
            trigger=trigger,
            principal=principal,
            local_root=ws.local_root,
            progress=progress,
            parallel=default_parallel(engine) if parallel is None else parallel,
        )
        results = run_exports(ws.config, engine, options)
    return _checked(results, raise_on_failure)


def _checked(results: list[ExportResult], raise_on_failure: bool) -> list[ExportResult]:
    if raise_on_failure and any(r.status == "FAILURE" for r in results):
        raise ExportFailed(results)
    return results


def verify(uri: str, *, local_root: PathLike | None = None) -> Report:
    """Re-check a published export (a manifest, or every manifest under a folder): each
    file's sha256, row counts, readability, its sidecar; each folder's SUCCESS marker and
    data files no manifest lists. ``report.ok`` says whether all held; a malformed URI is
    a ``UsageError``; a damaged manifest, marker or sidecar is a problem in the report."""
    from dpexport.publish.audit import verify_uri
    from dpexport.storage.uri import uri_problem

    problem = uri_problem(uri)
    if problem is not None:  # a malformed argument, not a failed check
        hint = f"; did you mean {problem.suggestion!r}?" if problem.suggestion else ""
        raise UsageError(f"verify {uri!r}: {problem.message}; expected {problem.expected}{hint}")
    return verify_uri(uri, local_root=Path(local_root).resolve() if local_root else None)


def compact(
    config: ConfigSource,
    table: str,
    *,
    at: datetime | None = None,
    local_root: PathLike | None = None,
    raise_on_failure: bool = True,
    principal: str | None = None,
) -> ExportResult:
    """Fold an INCREMENTAL table's exports into one snapshot by its merge key (under
    ``{destination}__snapshot/``), as ``principal`` (CONTRACT §11); ``ExportFailed`` if it
    fails, unless told not to."""
    from dpexport.ops.compact import compact as fold
    from dpexport.security.principals import compact_action, principal_for

    ws = Workspace.of(config, local_root=local_root)
    spec = ws.table(table)
    who = principal_for(ws.config, compact_action(spec), principal)
    result = fold(ws.config, spec.qualified_name, at=at, local_root=ws.local_root, principal=who)
    return _checked([result], raise_on_failure)[0]


def files(
    config: ConfigSource,
    table: str,
    *,
    format: str = "uris",
    local_root: PathLike | None = None,
) -> TableFiles:
    """A table's committed data files, read from its SUCCESS markers and manifests (never
    a staged, uncommitted or retired one), and with ``format`` ``duckdb`` or ``bigquery``
    a statement reading exactly them (CONTRACT §13). Reads only; no principal."""
    from dpexport.ops.files import list_files

    ws = Workspace.of(config, local_root=local_root)
    return list_files(ws.table(table), ws.stores, format)


def reconcile(
    config: ConfigSource,
    *,
    tables: str | Sequence[str] = (),
    at: datetime | None = None,
    days: int | None = None,
    dry_run: bool = False,
    local_root: PathLike | None = None,
    principal: str | None = None,
) -> list[ReconcileReport]:
    """Compare each APPEND and INCREMENTAL table's folders over its reconcile window
    (``days`` overrides it; it ends at ``at``, default now) with the warehouse, and
    export late rows into their folders unless ``dry_run``, as ``principal`` (CONTRACT
    §11, like ``run``); one report per table."""
    from dpexport.ops.reconcile import reconcile as compare
    from dpexport.security.principals import export_action, principal_for

    if days is not None and days < 0:
        raise UsageError(f"--days {days}: expected 0 or more days")
    ws = Workspace.of(config, local_root=local_root)
    specs = ws.select(tables)
    names = tuple(spec.qualified_name for spec in specs) if tables else ()
    whole = export_action("reconcile", ws.config.tables)
    who = principal_for(ws.config, export_action("reconcile", specs), principal, whole)
    with ws.engine() as engine:
        return compare(
            ws.config,
            engine,
            tables=names,
            at=at,
            days=days,
            dry_run=dry_run,
            local_root=ws.local_root,
            principal=who,
        )


def decrypt(
    source: str, output: PathLike | None = None, *, local_root: PathLike | None = None
) -> None:
    """Restore a client-side encrypted (``.enc``) file, a path or a URI, to ``output``
    (or stdout); ``DecryptionError`` on any tampering, and then nothing is written."""
    from dpexport.security.files import decrypt_to

    root = Path(local_root).resolve() if local_root else None
    decrypt_to(source, os.fspath(output) if output is not None else None, local_root=root)


def init(directory: PathLike = ".", *, force: bool = False, example: str | None = None) -> Path:
    """Write ``dpexport.yaml`` into ``directory``: a short commented starter (one DuckDB
    warehouse, one local bucket, one table), or the shipped ``example`` config
    (``diagnosticpro``: every spec block). An existing file is kept unless ``force``.
    Returns the file written."""
    from dpexport.demo import EXAMPLES, example_config_text, starter_config_text

    if example is not None and example not in EXAMPLES:
        raise UsageError(f"no example {example!r}; expected one of: {', '.join(EXAMPLES)}")
    target = Path(directory) / "dpexport.yaml"
    if target.exists() and not force:
        raise UsageError(f"{target} exists; pass --force to overwrite it")
    text = starter_config_text() if example is None else example_config_text(example)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


@dataclass
class DemoRun:
    """What ``demo`` made: the warehouse, its config, where the buckets are, the results."""

    warehouse: Path
    config_file: Path
    local_root: Path
    results: list[ExportResult]


def demo(
    directory: PathLike = "dpexport-demo",
    *,
    rows: int = 20_000,
    local_root: PathLike | None = None,
    raise_on_failure: bool = True,
    progress: Progress | None = None,
) -> DemoRun:
    """Create a demo warehouse (``rows`` in its largest table) and config in
    ``directory``, and run every export into ``local_root`` (default
    ``directory/buckets``)."""
    from dpexport.demo import prepare_demo

    base = Path(directory).resolve()
    config_file, default_root = prepare_demo(base, rows)
    ws = Workspace.load(config_file, local_root=local_root or default_root)
    results = run(ws, trigger="manual", raise_on_failure=raise_on_failure, progress=progress)
    assert ws.local_root is not None
    return DemoRun(base / "warehouse.duckdb", config_file, ws.local_root, results)


def status(
    config: ConfigSource,
    *,
    local_root: PathLike | None = None,
    now: datetime | None = None,
    principal: str | None = None,
) -> list[TableStatus]:
    """Per table: last export, rows, hours since, FRESH/STALE, 7-day success rate, open
    DLQ entries, as of ``now`` (default now); only the exports that acted as
    ``principal`` when given."""
    from dpexport.ops.status import status as table_statuses

    ws = Workspace.of(config, local_root=local_root)
    return table_statuses(
        ws.config, local_root=ws.local_root, now=now or datetime.now(UTC), principal=principal
    )


def logs_query(
    config: ConfigSource,
    sql: str,
    *,
    local_root: PathLike | None = None,
    now: datetime | None = None,
) -> list[QueryResult]:
    """Run BigQuery-dialect SQL over the ``export_logs`` table (``CURRENT_DATE`` and
    ``CURRENT_TIMESTAMP`` are ``now``); one (columns, rows) per statement."""
    from dpexport.ops.logs import query_all

    ws = Workspace.of(config, local_root=local_root)
    return query_all(ws.config_stores(), sql, now=now or datetime.now(UTC))


def dlq_list(
    config: ConfigSource, *, local_root: PathLike | None = None, now: datetime | None = None
) -> list[DlqEntry]:
    """Every dead-letter queue entry (spec 7.2): age, attempts, whether it is due for
    auto-retry or escalated."""
    from dpexport.flow.rerun import dlq_entries

    ws = Workspace.of(config, local_root=local_root)
    return [e for _, e in dlq_entries(ws.config, ws.local_root, now or datetime.now(UTC))]


def dlq_retry(
    config: ConfigSource,
    export_id: str | None = None,
    *,
    due: bool = False,
    local_root: PathLike | None = None,
    now: datetime | None = None,
    principal: str | None = None,
) -> list[RetryOutcome]:
    """Run failed exports again: the entry ``export_id`` (``UsageError`` if there is
    none), or every open entry (only those due for auto-retry with ``due``). Success
    removes an entry, failure counts a retry, ``max_attempts`` retries poison it."""
    from dpexport.flow.rerun import dlq_entries, retry_dlq

    ws = Workspace.of(config, local_root=local_root)
    at_now = now or datetime.now(UTC)
    entries = dlq_entries(ws.config, ws.local_root, at_now)
    if export_id is not None:
        entries = [(s, e) for s, e in entries if e.export_id == export_id]
        if not entries:
            raise UsageError(f"no DLQ entry {export_id!r} (see 'dpexport dlq list')")
    else:
        entries = [(s, e) for s, e in entries if e.state == "open"]
    if due:
        entries = [(s, e) for s, e in entries if e.due_for_auto_retry]
    if not entries:
        return []
    who = _retry_principal(ws, entries, principal)
    engine = ws.open_engine()
    try:
        return retry_dlq(
            ws.config, engine, entries, local_root=ws.local_root, now=at_now, principal=who
        )
    finally:
        engine.close()


def _retry_principal(
    ws: Workspace, entries: Sequence[tuple[Any, DlqEntry]], named: str | None
) -> str | None:
    """The principal ``dlq retry`` runs as: one allowed to export every entry's table."""
    from dpexport.security.principals import export_action, principal_for

    specs = []
    for _, entry in entries:
        try:
            specs.append(ws.config.table(entry.table or ""))
        except KeyError:  # the retry reports it; it exports nothing
            continue
    whole = export_action("dlq retry", ws.config.tables)
    return principal_for(ws.config, export_action("dlq retry", specs), named, whole)


def dlq_purge(
    config: ConfigSource,
    *,
    force: bool = False,
    local_root: PathLike | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Delete the entries older than the DLQ retention (90 days), or all with ``force``;
    returns the export ids purged."""
    from dpexport.reliability.dlq import DlqSettings, purge
    from dpexport.reliability.places import dlq_places

    ws = Workspace.of(config, local_root=local_root)
    settings = DlqSettings.from_config(ws.config)
    at_now = now or datetime.now(UTC)
    found = dlq_places(ws.config, ws.config_stores(), ws.stores.resolve)
    return [eid for p in found for eid in purge(p.store, at_now, force, settings, root=p.root)]

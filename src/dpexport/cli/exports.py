"""The export commands (CONTRACT §2): ``check``, ``plan``, ``run``, ``compact``,
``reconcile``, ``verify`` and ``decrypt``, each parsing its options and printing what the
function of the same name in :mod:`dpexport.api` returns (with ``--json``: the shapes of
docs/json.md, one line each)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from dpexport import TRIGGERS, api
from dpexport.cli.common import (
    Settings,
    common_options,
    echo_err,
    echo_json,
    exit_code,
    json_option,
    parse_at,
    report_results,
    settings_of,
)
from dpexport.errors import ConfigError, UsageError

TABLE_HELP = "table or dataset.table (repeatable)"
AT_HELP = "logical run time, RFC 3339 (default: now, UTC)"


RESULTS_SHAPE = '[{"table", "export_id", "status", "rows", "files", "manifests", ...}]'


@click.command()
@common_options
@json_option('{"ok", "config", "tables", "warehouse_checked", "errors": [...], "warnings"}')
@click.pass_context
def check(
    ctx: click.Context, config_path: str | None, local_root: str | None, as_json: bool
) -> None:
    """Validate the config and hold it against the warehouse when it opens; list every
    error with its YAML path, all in one pass (exit 2 if any); write nothing.

    With --json the report is printed whatever it says, errors included."""
    settings = settings_of(ctx, config_path, local_root)
    if as_json:
        doc = _check_json(settings)
        echo_json(doc)
        ctx.exit(0 if doc["ok"] else 2)
    report = api.check(settings.existing_config(), local_root=settings.root)
    click.echo(f"{settings.config_file}: OK ({report.tables} tables)")


def _check_json(settings: Settings) -> dict[str, Any]:
    """``check --json``'s document: every error (YAML path and message) and every warning
    ``check`` logged; the errors also go to stderr, as without --json."""
    doc: dict[str, Any] = {"ok": False, "config": str(settings.config_file), "tables": None}
    doc["warehouse_checked"], doc["errors"] = False, []
    with _warnings() as warnings:
        try:
            report = api.check(settings.existing_config(), local_root=settings.root)
        except ConfigError as exc:
            doc["errors"] = [_issue(i) for i in exc.issues]
            echo_err(str(exc), logging.ERROR, "error: ")
        except UsageError as exc:
            doc["errors"] = [{"path": None, "message": str(exc)}]
            echo_err(str(exc), logging.ERROR, "error: ")
        else:
            doc.update(ok=True, tables=report.tables)
            doc["warehouse_checked"] = report.warehouse_problem is None
    doc["warnings"] = warnings
    return doc


def _issue(issue: Any) -> dict[str, Any]:
    keys = ("path", "message", "line", "value", "expected", "suggestion")
    return {key: getattr(issue, key) for key in keys}


@contextmanager
def _warnings() -> Iterator[list[str]]:
    """The messages of the warnings logged inside the block (they are logged as well)."""
    caught: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno == logging.WARNING:  # not check's own error lines
                caught.append(record.getMessage())

    handler = Catch(logging.WARNING)
    logger = logging.getLogger("dpexport")
    logger.addHandler(handler)
    try:
        yield caught
    finally:
        logger.removeHandler(handler)


@click.command()
@common_options
@click.option("--table", "tables", multiple=True, help=TABLE_HELP)
@click.option("--at", "at", default=None, help=AT_HELP)
@click.option("--trigger", type=click.Choice(TRIGGERS), default="manual")
@click.option("--as", "principal", default=None, help="principal the export runs as")
@json_option(RESULTS_SHAPE)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="write spec 9.1's figures for node_exporter's textfile collector",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    default=None,
    help="tables exported at once (default: the cores this process may use, 4 times as many "
    "on BigQuery, at most 16; 1: one after another)",
)
@click.pass_context
def run(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    tables: tuple[str, ...],
    at: str | None,
    trigger: str,
    principal: str | None,
    as_json: bool,
    metrics_file: Path | None,
    parallel: int | None,
) -> None:
    """Run the exports (all, or the named tables), several tables at once."""
    from dpexport.flow.progress import make_progress

    settings = settings_of(ctx, config_path, local_root)
    logical = parse_at(at)
    workspace = settings.workspace()
    with make_progress() as progress:
        results = api.run(
            workspace,
            tables=tables,
            at=logical,
            trigger=trigger,
            principal=principal,
            raise_on_failure=False,
            progress=progress,
            parallel=parallel,
        )
    if metrics_file is not None:  # imported only here: prometheus_client costs ~30 ms
        from dpexport.ops.figures import write_textfile

        write_textfile(metrics_file, workspace.config, results, workspace.local_root)
    report_results(results, as_json)
    ctx.exit(exit_code(results))


@click.command()
@common_options
@click.option("--table", "tables", multiple=True, help=TABLE_HELP)
@click.option("--at", "at", default=None, help=AT_HELP)
@json_option('[{"table", "mode", "slice", "window", "path", "idempotency_token", "cost_usd", ...}]')
@click.pass_context
def plan(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    tables: tuple[str, ...],
    at: str | None,
    as_json: bool,
) -> None:
    """Show what a run would do: slices, windows, folders, tokens, sizes, cost in USD.
    Writes nothing."""
    from dpexport.ops import cost
    from dpexport.ops.prices import AS_OF

    settings = settings_of(ctx, config_path, local_root)
    logical = parse_at(at)
    workspace = settings.workspace()
    plans = api.plan(workspace, tables=tables, at=logical)  # at the config's prices
    if as_json:
        echo_json(plans)
        return
    for p in plans:
        _echo_plan(p)
    total = cost.total_usd([p["cost_usd"] for p in plans])
    click.echo(f"total cost  ${total:.6f} for {len(plans)} table(s), prices of {AS_OF}")


def _echo_plan(p: dict[str, Any]) -> None:
    sl = p["slice"]
    window = p["window"] or {}
    click.echo(f"{p['table']}  {p['mode']}  {p['format']}/{p['compression']}")
    click.echo(f"  destination  {p['destination']}{p['layout']}")
    if sl["cursor"]:
        op = ">=" if sl["after_inclusive"] else ">"
        after = f"{sl['cursor']} {op} {sl['after']}" if sl["after"] is not None else "start"
        click.echo(f"  slice        {after}, <= {sl['through']}")
        click.echo(f"  window       {window.get('from')} .. {window.get('to')}")
    click.echo(f"  path         {p['path']}")
    click.echo(f"  token        {p['idempotency_token']} ({p['token_status'] or 'new'})")
    click.echo(
        f"  estimate     {p['estimated_rows']} rows, ~{p['estimated_bytes']} bytes "
        f"in memory, {p['folders']} folder(s)"
    )
    c = p["cost_usd"]
    click.echo(
        f"  cost         ${c['total']:.6f}: warehouse ${c['warehouse']['usd']:.6f} "
        f"({c['warehouse']['bytes']} bytes), storage ${c['storage']['usd_per_month']:.6f}/month, "
        f"{c['operations']['class_a']} writes + {c['operations']['class_b']} reads "
        f"${c['operations']['usd']:.6f}"
    )
    for folder in p["folder_list"]:
        click.echo(f"  folder       {folder}")
    if p["folders"] > len(p["folder_list"]):
        click.echo(f"  folder       ... and {p['folders'] - len(p['folder_list'])} more")
    for warning in p["warnings"]:
        click.echo(f"  WARNING      {warning}")


@click.command()
@common_options
@click.option("--table", "table", required=True, help="an INCREMENTAL table")
@click.option("--at", "at", default=None, help="logical time of the snapshot (default now)")
@json_option("run's array, with one object")
@click.option("--as", "principal", default=None, help="principal it acts as (CONTRACT §11)")
@click.pass_context
def compact(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    table: str,
    at: str | None,
    as_json: bool,
    principal: str | None,
) -> None:
    """Fold an INCREMENTAL table's exports into one snapshot by its merge key."""
    settings = settings_of(ctx, config_path, local_root)
    logical = parse_at(at)
    result = api.compact(
        settings.workspace(), table, at=logical, raise_on_failure=False, principal=principal
    )
    report_results([result], as_json)
    ctx.exit(exit_code([result]))


@click.command()
@common_options
@click.option("--table", "tables", multiple=True, help="table or dataset.table (repeatable)")
@click.option("--days", type=click.IntRange(min=0), default=None, help="window in days")
@click.option("--at", "at", default=None, help="the window's end, RFC 3339 (default now, UTC)")
@click.option("--dry-run", is_flag=True, help="compare only; export nothing")
@json_option('[{"table", "late_rows", "folders": [...], "error", ...}]')
@click.option("--as", "principal", default=None, help="principal it acts as (CONTRACT §11)")
@click.pass_context
def reconcile(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    tables: tuple[str, ...],
    days: int | None,
    at: str | None,
    dry_run: bool,
    as_json: bool,
    principal: str | None,
) -> None:
    """Find rows that reached the warehouse after their folder was exported, and export
    them into it (APPEND and INCREMENTAL tables with a time partition)."""
    settings = settings_of(ctx, config_path, local_root)
    reports = api.reconcile(
        settings.workspace(),
        tables=tables,
        at=parse_at(at),
        days=days,
        dry_run=dry_run,
        principal=principal,
    )
    if as_json:
        echo_json([r.to_json() for r in reports])
    else:
        for r in reports:
            click.echo(r.line())
            for f in r.folders:
                if f.status != "ok":
                    click.echo("  " + f.line())
    ctx.exit(1 if any(r.failed for r in reports) else 0)


@click.command()
@common_options
@click.argument("uri")
@json_option('{"ok", "uri", "manifests": [...], "files", "rows", "problems": [...]}')
@click.pass_context
def verify(
    ctx: click.Context, config_path: str | None, local_root: str | None, uri: str, as_json: bool
) -> None:
    """Re-check an export: a manifest, or a folder holding manifests (recursively)."""
    settings = settings_of(ctx, config_path, local_root)
    report = api.verify(uri, local_root=settings.root)
    if as_json:
        problems = [{"file": p.file, "problem": p.problem} for p in report.problems]
        echo_json(
            {
                "ok": report.ok,
                "uri": report.uri,
                "manifests": report.manifests,
                "files": report.files,
                "rows": report.rows,
                "problems": problems,
            }
        )
    else:
        for line in report.lines():
            click.echo(line)
    ctx.exit(0 if report.ok else 1)


@click.command()
@common_options
@click.argument("source")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None)
@json_option('{"source", "output", "bytes", "sha256"} (needs -o)')
@click.pass_context
def decrypt(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    source: str,
    output: str | None,
    as_json: bool,
) -> None:
    """Restore a client-side encrypted (.enc) file to its plain bytes (on stdout, or -o)."""
    settings = settings_of(ctx, config_path, local_root)
    if as_json and output is None:  # stdout holds the JSON: the bytes need a file
        raise UsageError("decrypt --json needs -o OUT (stdout carries the JSON report)")
    api.decrypt(source, output, local_root=settings.root)
    if as_json and output is not None:
        echo_json({"source": source, "output": str(Path(output).resolve()), **_digest(output)})


def _digest(path: str) -> dict[str, Any]:
    """The size and sha256 of the file written, read in blocks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"bytes": size, "sha256": digest.hexdigest()}


COMMANDS = (check, plan, run, compact, reconcile, verify, decrypt)

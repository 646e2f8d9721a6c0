"""The export commands (CONTRACT §2): ``check``, ``plan``, ``run``, ``compact``, ``verify``,
``decrypt``, ``init`` and ``demo``, each parsing its options and printing what the
function of the same name in :mod:`dpexport.api` returns."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from dpexport import TRIGGERS, api
from dpexport.cli.common import (
    common_options,
    exit_code,
    parse_at,
    report_results,
    settings_of,
)

TABLE_HELP = "table or dataset.table (repeatable)"
AT_HELP = "logical run time, RFC 3339 (default: now, UTC)"


@click.command()
@common_options
@click.pass_context
def check(ctx: click.Context, config_path: str | None, local_root: str | None) -> None:
    """Validate the config and hold it against the warehouse when it opens; list every
    error with its YAML path, all in one pass (exit 2 if any); write nothing."""
    settings = settings_of(ctx, config_path, local_root)
    report = api.check(settings.existing_config(), local_root=settings.root)
    click.echo(f"{settings.config_file}: OK ({report.tables} tables)")


@click.command()
@common_options
@click.option("--table", "tables", multiple=True, help=TABLE_HELP)
@click.option("--at", "at", default=None, help=AT_HELP)
@click.option("--trigger", type=click.Choice(TRIGGERS), default="manual")
@click.option("--as", "principal", default=None, help="principal the export runs as")
@click.option("--json", "as_json", is_flag=True, help="print one JSON array on stdout")
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="write spec 9.1's figures for node_exporter's textfile collector",
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
) -> None:
    """Run the exports (all, or the named tables)."""
    from dpexport.flow.progress import make_progress
    from dpexport.ops.figures import write_textfile

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
        )
    if metrics_file is not None:
        write_textfile(metrics_file, workspace.config, results, workspace.local_root)
    report_results(results, as_json)
    ctx.exit(exit_code(results))


@click.command()
@common_options
@click.option("--table", "tables", multiple=True, help=TABLE_HELP)
@click.option("--at", "at", default=None, help=AT_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON array on stdout")
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
        click.echo(json.dumps(plans, indent=2, default=str))
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
@click.option("--json", "as_json", is_flag=True)
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
@click.option("--json", "as_json", is_flag=True, help="print one JSON array on stdout")
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
        click.echo(json.dumps([r.to_json() for r in reports]))
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
@click.pass_context
def verify(ctx: click.Context, config_path: str | None, local_root: str | None, uri: str) -> None:
    """Re-check an export: a manifest, or a folder holding manifests (recursively)."""
    settings = settings_of(ctx, config_path, local_root)
    report = api.verify(uri, local_root=settings.root)
    for line in report.lines():
        click.echo(line)
    ctx.exit(0 if report.ok else 1)


@click.command()
@common_options
@click.argument("source")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None)
@click.pass_context
def decrypt(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    source: str,
    output: str | None,
) -> None:
    """Restore a client-side encrypted (.enc) file to its plain bytes."""
    settings = settings_of(ctx, config_path, local_root)
    api.decrypt(source, output, local_root=settings.root)


@click.command()
@common_options
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".")
@click.option("--force", is_flag=True, help="overwrite an existing dpexport.yaml")
@click.pass_context
def init(
    ctx: click.Context, config_path: str | None, local_root: str | None, directory: str, force: bool
) -> None:
    """Write a starter dpexport.yaml (the spec's blocks)."""
    target = api.init(directory, force=force)
    click.echo(f"wrote {target}")


@click.command()
@common_options
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="dpexport-demo")
@click.option(
    "--rows",
    type=click.IntRange(min=1),
    default=20_000,
    help="rows of the largest table (sensor_telemetry); others scale with it",
)
@click.pass_context
def demo(
    ctx: click.Context, config_path: str | None, local_root: str | None, directory: str, rows: int
) -> None:
    """Create a demo warehouse and config, run every export, print where to look."""
    from dpexport.flow.progress import make_progress

    settings = settings_of(ctx, config_path, local_root)
    with make_progress() as progress:
        made = api.demo(
            directory,
            rows=rows,
            local_root=settings.root,
            raise_on_failure=False,
            progress=progress,
        )
    report_results(made.results, as_json=False)
    bucket = made.local_root / "gs" / "diagnosticpro-exports"
    click.echo(
        f"\nwarehouse: {made.warehouse}\nconfig:    {made.config_file}\n"
        f"exports:   {bucket}/prod/\n"
        f"try:       {_self_command()} --local-root {made.local_root} -c {made.config_file} "
        f"verify gs://diagnosticpro-exports/prod/"
    )
    ctx.exit(exit_code(made.results))


def _self_command() -> str:
    """How to run dpexport again from here: the venv's script when it is not on PATH."""
    import shutil

    script = Path(sys.executable).parent / "dpexport"
    on_path = shutil.which("dpexport")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "dpexport"
    return str(script) if script.exists() else f"{sys.executable} -m dpexport"


COMMANDS = (check, plan, run, compact, reconcile, verify, decrypt, init, demo)

"""Storage commands (CONTRACT §2): ``replicate`` and ``lifecycle apply|sweep``.

Thin click commands over :mod:`dpexport.ops.replicate` and :mod:`dpexport.ops.lifecycle`,
registered onto the main ``cli`` group. ``sweep`` takes the hidden ``--now`` (or
``$DPEXPORT_NOW``) of the operations commands, so tests see fixed ages.
"""

from __future__ import annotations

import json

import click

from dpexport.cli import _common, _load, _settings, cli
from dpexport.cli_ops import _now, _now_option


@click.command("replicate")
@_common
@click.option("--table", "tables", multiple=True, help="only this table (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array, one object a table")
@click.pass_context
def replicate_command(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    tables: tuple[str, ...],
    as_json: bool,
) -> None:
    """Copy committed exports to the replication targets (data, sidecars, manifests,
    SUCCESS last), every sha256 verified at the target; exit 1 on any mismatch."""
    from dpexport.errors import UsageError
    from dpexport.ops.replicate import replicate

    settings = _settings(ctx, config_path, local_root)
    config = _load(settings)
    for name in tables:
        try:
            config.table(name)
        except KeyError:
            raise UsageError(f"--table {name!r}: no such table in the config") from None
    reports = replicate(config, local_root=settings.root, tables=tables)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in reports], indent=2))
    else:
        for r in reports:
            for problem in r.mismatches + r.errors:
                click.echo(f"FAIL {problem}")
            click.echo(r.line())
        if not reports:
            click.echo("nothing to replicate (no replication item names these tables)")
    ctx.exit(0 if all(r.ok for r in reports) else 1)


@click.group("lifecycle")
@_common
@click.pass_context
def lifecycle_group(ctx: click.Context, config_path: str | None, local_root: str | None) -> None:
    """Storage classes and retention (spec 6.2, 10.2): bucket rules and the sweep."""
    _settings(ctx, config_path, local_root)


@lifecycle_group.command("apply")
@_common
@click.option("--json", "as_json", is_flag=True, help="print a JSON array, one object a store")
@click.pass_context
def lifecycle_apply(
    ctx: click.Context, config_path: str | None, local_root: str | None, as_json: bool
) -> None:
    """Write the bucket rules each store supports; say what could not be applied."""
    from dpexport.ops.lifecycle import apply_rules

    settings = _settings(ctx, config_path, local_root)
    results = apply_rules(_load(settings), local_root=settings.root)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        for r in results:
            click.echo(r.store)
            if r.error:
                click.echo(f"  error: {r.error}")
            for line in r.applied:
                click.echo(f"  applied: {line}")
            for line in r.not_applied:
                click.echo(f"  not applied: {line}")
    ctx.exit(1 if any(r.error for r in results) else 0)


@lifecycle_group.command("sweep")
@_common
@click.option("--dry-run", is_flag=True, help="list what is due; delete nothing")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array, one object an item")
@_now_option
@click.pass_context
def lifecycle_sweep(
    ctx: click.Context,
    config_path: str | None,
    local_root: str | None,
    dry_run: bool,
    as_json: bool,
    now: str | None,
) -> None:
    """Delete what the auto_delete rules make due (temp 7 days, failed 30, test 1, DLQ 90,
    tokens 7), never anything under a retention rule; tier Azure blobs by age."""
    from dpexport.ops.sweep import sweep

    settings = _settings(ctx, config_path, local_root)
    items, errors = sweep(_load(settings), now=_now(now), dry_run=dry_run, local_root=settings.root)
    if as_json:
        click.echo(json.dumps([i.to_json() for i in items], indent=2))
    else:
        for item in items:
            click.echo(item.line())
        gone = sum(len(i.keys) for i in items if i.status in ("deleted", "would delete"))
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"{verb} {gone} object(s); {len(errors)} store error(s)")
    for error in errors:
        click.echo(f"error: {error}", err=True)
    ctx.exit(1 if errors else 0)


cli.add_command(replicate_command)
cli.add_command(lifecycle_group)
